"""The accuracy cost of N:M structured sparsity (issue 11): dense vs sparse ternary models.

Trains {gru, lstm} x {dense, 2:4, 2:4 with the head sparse too} ternary models quantization-aware
on Japanese Vowels and scikit-learn digits with the same sizes, epochs and seeds (hwgen train's
code path, `hwgen.train.trainer.train`), saves each model file, evaluates it again from the file
with `hwgen.api.evaluate` (what ``hwgen eval`` runs: float forward and golden model, test split),
checks every sparse model's matrices satisfy their N:M, and writes the table into
docs/results.md and benchmarks/paper_notes.md (between the ``sparsity`` markers: paper.py
rewrites results.md and appends paper_notes.md, so the section lives in both).

Every run is stored as JSON (and its model file) under --runs (default runs/sparsity/) and skipped
when it exists, so the benchmark can be interrupted and resumed; ``--report-only`` rewrites the
table from stored runs. One torch thread per run; on a shared machine run it with nice:

    nice -n 15 .venv/bin/python benchmarks/sparsity.py
    .venv/bin/python benchmarks/sparsity.py --report-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

VARIANTS = {  # label -> (sparsity, sparse_head)
    "dense": (None, False),
    "2:4": ("2:4", False),
    "2:4 +head": ("2:4", True),
}
SETUPS = {  # dataset -> hidden, epochs, batch
    "vowels": (32, 40, 16),
    "digits": (32, 40, 32),
}
#: Penn Treebank characters (only with --datasets ptb): docs/results.md's short budget, 128 hidden,
#: embedding 16, batch 32 x 100 characters, 5 validations on 20,000 characters, tested on the
#: first 100,000 test characters; the metric is bits per character (lower is better).
PTB = {"hidden": 128, "budget_chars": 1_500_000, "batch": 32, "test_chars": 100_000}


def run_key(ds: str, cell: str, variant: str, seed: int) -> str:
    return f"{ds}-{cell}-{variant.replace(' ', '_').replace(':', 'of').replace('+', '')}-s{seed}"


def _zeros(mats) -> float:
    return float(sum(m.sparsity * m.codes.size for m in mats) / sum(m.codes.size for m in mats))


def one_run(ds_name, ds, cell, variant, seed, runs: Path, quant: str) -> dict:
    from hwgen import api
    from hwgen.train.trainer import TrainConfig, train

    nm, head = VARIANTS[variant]
    test_chars = None
    if ds_name == "ptb":
        hidden, epochs, batch, test_chars = (PTB["hidden"], None, PTB["batch"],
                                             PTB["test_chars"])
        cfg = TrainConfig(ds_name, cell=cell, hidden=hidden, quant=quant, seed=seed,
                          budget_chars=PTB["budget_chars"], batch=batch, evals=5,
                          valid_chars=20_000, test_chars=test_chars, sparsity=nm,
                          sparse_head=head)
        how = ["--budget-chars", str(PTB["budget_chars"]), "--test-chars", str(test_chars)]
    else:
        hidden, epochs, batch = SETUPS[ds_name]
        cfg = TrainConfig(ds_name, cell=cell, hidden=hidden, quant=quant, epochs=epochs,
                          seed=seed, batch=batch, sparsity=nm, sparse_head=head)
        how = ["--epochs", str(epochs)]
    path = runs / (run_key(ds_name, cell, variant, seed) + ".hwgm")
    t0 = time.monotonic()
    r = train(cfg, ds, quiet=True, output=path)
    wall = time.monotonic() - t0
    model = api.load_model(path)
    for name, m in model.matrices():  # the file says what the model is; check it holds
        if m.nm is not None:
            m.nm.check(m.codes, name)
    ev = api.evaluate(model, ds, "test", max_chars=test_chars)  # hwgen eval MODEL --dataset D
    if (ev.float_value, ev.golden_value) != (r.metrics.float_value, r.metrics.golden_value):
        raise SystemExit(f"{path}: evaluation from the file differs from training's")
    rec_mats = [m for name, m in model.matrices() if name != "head.w"]
    return {
        "dataset": ds_name, "cell": cell, "variant": variant, "seed": seed, "quant": quant,
        "metric": ev.metric,
        "hidden": hidden, "epochs": epochs, "batch": batch,
        "train_forward": r.torch_test, "float_forward": ev.float_value,
        "golden": ev.golden_value, "test_count": ev.count, "best_valid": r.best_valid,
        "train_seconds": r.seconds, "wall_seconds": wall,
        "zero_recurrent": _zeros(rec_mats), "zero_head": model.head.w.sparsity,
        "zero_all": _zeros([m for _, m in model.matrices()]),
        "nm": {name: (None if m.nm is None else m.nm.describe()) for name, m in model.matrices()},
        "command": " ".join(
            ["hwgen train --dataset", ds_name, "--cell", cell, "--hidden", str(hidden),
             "--quant", quant, *how, "--batch", str(batch), "--seed", str(seed)]
            + (["--sparsity", nm] if nm else []) + (["--sparse-head"] if head else [])
            + ["-o", path.name]),
    }


def run_all(args) -> None:
    import torch

    from hwgen.train.datasets import load_dataset

    torch.set_num_threads(1)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    plan = [(d, c, v, s) for s in range(args.seeds) for d in args.datasets for c in args.cells
            for v in args.variants]
    cache = {}
    t0 = time.monotonic()
    for i, (dsn, cell, variant, seed) in enumerate(plan):
        path = runs / (run_key(dsn, cell, variant, seed) + ".json")
        if path.exists():
            continue
        if dsn not in cache:
            cache[dsn] = load_dataset(dsn)
        rec = one_run(dsn, cache[dsn], cell, variant, seed, runs, args.quant)
        path.write_text(json.dumps(rec, indent=1))
        print(f"[{i + 1}/{len(plan)}] {dsn} {cell} {variant} seed {seed}: golden "
              f"{rec['golden']:.4f} float {rec['float_forward']:.4f} zeros "
              f"{rec['zero_recurrent']:.3f} ({rec['wall_seconds']:.0f} s; "
              f"{(time.monotonic() - t0) / 60:.1f} min so far)", flush=True)


def _ms(vals) -> str:
    a = np.array(vals, float)
    sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return f"{a.mean():.4f} ± {sd:.4f}"


def group_fill(runs: Path, recs: list[dict], variant: str) -> str:
    """How full the groups of 4 of the sparse recurrent matrices are (from the model files):
    the share of full groups holding 0, 1, 2 non-zero weights, over every stored run."""
    from hwgen.modelfile import load_model

    hist = np.zeros(5, np.int64)
    for r in recs:
        if r["variant"] != variant:
            continue
        model = load_model(runs / (run_key(r["dataset"], r["cell"], variant, r["seed"]) + ".hwgm"))
        for name, m in model.matrices():
            if name != "head.w" and m.nm is not None and m.nm.m == 4:
                full = m.shape[1] // 4  # the short last group (12 or 8 inputs: none) excluded
                c = m.nm.counts(m.codes)[:, :full]
                hist += np.bincount(c.ravel(), minlength=5)[:5]
    if not hist.sum():
        return ""
    share = hist / hist.sum()
    return (f"Groups of 4 in the {variant} recurrent matrices (all runs): "
            + ", ".join(f"{share[k]:.1%} hold {k} non-zero" for k in range(3))
            + f" (mean {float((np.arange(5) * share).sum()):.2f} non-zero weights per group).")


def report(args) -> str:
    from _record import versions

    recs = [json.loads(p.read_text()) for p in sorted(Path(args.runs).glob("*.json"))]
    if not recs:
        raise SystemExit(f"no runs under {args.runs}")
    lines = [
        "| dataset | cell | weights | metric | golden (integer) | float forward | "
        "training forward | zeros, recurrent matrices | zeros, head | golden - dense golden | "
        "wall s/run | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds in [*SETUPS, "ptb"]:
        for cell in ("gru", "lstm"):
            dense = [r["golden"] for r in recs if (r["dataset"], r["cell"], r["variant"])
                     == (ds, cell, "dense")]
            for variant in VARIANTS:
                rs = sorted((r for r in recs if (r["dataset"], r["cell"], r["variant"])
                             == (ds, cell, variant)), key=lambda r: r["seed"])
                if not rs:
                    continue
                g = [r["golden"] for r in rs]
                delta = (f"{np.mean(g) - np.mean(dense):+.4f}" if dense and variant != "dense"
                         else "")
                lines.append(
                    f"| {ds} | {cell} | {rs[0]['quant']} {variant} | "
                    f"{rs[0].get('metric', 'accuracy')} | {_ms(g)} | "
                    f"{_ms([r['float_forward'] for r in rs])} | "
                    f"{np.mean([r['train_forward'] for r in rs]):.4f} | "
                    f"{np.mean([r['zero_recurrent'] for r in rs]):.3f} | "
                    f"{np.mean([r['zero_head'] for r in rs]):.3f} | {delta} | "
                    f"{np.mean([r['wall_seconds'] for r in rs]):.0f} | "
                    f"{','.join(str(r['seed']) for r in rs)} |")
    example = next((r for r in recs if r["variant"] != "dense"), recs[0])
    setups = "; ".join(f"{d}: {h} hidden, {e} epochs, batch {b}"
                       for d, (h, e, b) in SETUPS.items())
    if any(r["dataset"] == "ptb" for r in recs):
        setups += (f"; ptb: {PTB['hidden']} hidden, embedding 16, {PTB['budget_chars']:,} "
                   f"training characters, batch {PTB['batch']} x 100, best of 5 validations, "
                   f"bits per character on the first {PTB['test_chars']:,} test characters")
    total = sum(r["wall_seconds"] for r in recs)
    return "\n".join([
        f"Written by `benchmarks/sparsity.py` from {len(recs)} stored runs (mean ± standard "
        f"deviation over seeds). Setup: 1 layer, deterministic ternary weights, formats "
        f"`Formats.standard(8)`, Adam lr 0.002, the epoch (evaluation) with the best valid "
        f"metric kept; "
        f"{setups}. \"golden\" and \"float forward\" are `hwgen eval` on the saved model file "
        f"(test split: 370 utterances / 359 digits); \"training forward\" is the training "
        f"surrogate in eval mode. Zeros: fraction of zero weights in wx and wh of every layer, "
        f"and in the head. \"golden - dense golden\": the sparse model's mean golden metric "
        f"minus the dense model's (accuracy: negative is a loss; bits per character: positive "
        f"is a loss).",
        "",
        f"Environment: {versions('torch')}; 1 torch thread per run, on a 2-core machine shared "
        f"with synthesis jobs (wall times measure the load too); all runs: {total / 60:.1f} min.",
        "",
        *lines,
        "",
        group_fill(Path(args.runs), recs, "2:4"),
        "",
        "One run by hand (the command of each stored run is in its JSON), and the benchmark:",
        "",
        "```",
        example["command"],
        f"hwgen eval {example['command'].split()[-1]} --dataset {example['dataset']}",
        f"hwgen inspect {example['command'].split()[-1]}",
        "nice -n 15 .venv/bin/python benchmarks/sparsity.py            # vowels, digits: 3 seeds",
        "nice -n 15 .venv/bin/python benchmarks/sparsity.py --datasets ptb --cells gru "
        "--variants dense,2:4 --seeds 1",
        "```",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "sparsity"))
    ap.add_argument("--datasets", type=lambda s: s.split(","), default=list(SETUPS))
    ap.add_argument("--cells", type=lambda s: s.split(","), default=["gru", "lstm"])
    ap.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quant", default="ternary")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-report", action="store_true", help="do not write docs/results.md")
    args = ap.parse_args()
    if not args.report_only:
        run_all(args)
    text = report(args)
    print(text)
    if not args.no_report:
        from _record import write_block

        write_block("results.md", "sparsity", text)
        write_block("../benchmarks/paper_notes.md", "sparsity", text)


if __name__ == "__main__":
    main()
