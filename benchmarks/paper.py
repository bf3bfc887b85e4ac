"""Reproduce the claims of Ott et al. (arXiv:1608.06902) with hwgen's quantization-aware training.

Trains {float, binary, ternary det, ternary stoch, pow2, exp det, exp stoch, int8} x {rnn, gru,
lstm} on Penn Treebank characters (bits per character, a fixed character budget per run) and on
Japanese Vowels (accuracy, several seeds), and writes docs/results.md (+ PNG plots when matplotlib
is installed: pip install -e .[bench]).

Every run is stored as JSON under --runs (default runs/paper/) and skipped when it exists, so the
benchmark can be interrupted and resumed; ``--report-only`` rewrites the report from stored runs.
One torch thread per run; run it with ``nice -n 10`` on a shared machine.

    nice -n 10 .venv/bin/python benchmarks/paper.py                 # the full benchmark
    .venv/bin/python benchmarks/paper.py --report-only              # table and plots only
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUANTS = [  # label, --quant, --stochastic
    ("float", "float", False),
    ("binary", "binary", False),
    ("ternary det", "ternary", False),
    ("ternary stoch", "ternary", True),
    ("pow2", "pow2", False),
    ("exp det", "exp", False),
    ("exp stoch", "exp", True),
    ("int8", "int8", False),
]
CELLS = ["rnn", "gru", "lstm"]


def run_key(ds: str, cell: str, label: str, seed: int) -> str:
    return f"{ds}-{cell}-{label.replace(' ', '_')}-s{seed}"


def one_run(args, ds_name, ds, cell, label, quant, stoch, seed) -> dict:
    from hwgen.train.trainer import TrainConfig, train

    if ds_name == "ptb":
        cfg = TrainConfig(
            "ptb", cell=cell, hidden=args.ptb_hidden, quant=quant, stochastic=stoch,
            budget_chars=args.ptb_chars, seed=seed, batch=32, seq_len=100, embed=16,
            lr=args.lr, evals=5, valid_chars=20_000, test_chars=args.ptb_test_chars,
        )
    else:
        cfg = TrainConfig(
            "vowels", cell=cell, hidden=args.vowels_hidden, quant=quant, stochastic=stoch,
            epochs=args.vowels_epochs, seed=seed, batch=16, lr=args.lr,
        )
    r = train(cfg, ds, quiet=True)
    m = r.model
    mats = m.matrices()
    return {
        "dataset": ds_name, "cell": cell, "label": label, "seed": seed,
        "quant": quant, "stochastic": stoch, "metric": r.metrics.metric,
        "train_forward": r.torch_test, "float_forward": r.metrics.float_value,
        "golden": r.metrics.golden_value, "best_valid": r.best_valid,
        "test_count": r.metrics.count, "seconds": r.seconds,
        "weight_bits": m.weight_memory_bits,
        "weights": int(sum(x.codes.size for _, x in mats)),
        "zero_fraction": float(sum(x.sparsity * x.codes.size for _, x in mats)
                               / sum(x.codes.size for _, x in mats)),
        "encoding": m.layers[0].wx.encoding.describe(),
        "config": m.meta["train"],
    }


def run_all(args) -> None:
    import torch

    from hwgen.train.datasets import load_dataset

    torch.set_num_threads(1)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    plan = []
    if "vowels" in args.datasets:
        for seed in range(args.vowels_seeds):
            for cell in [c for c in CELLS if c in args.cells]:
                for label, q, st in QUANTS:
                    plan.append(("vowels", cell, label, q, st, seed))
    if "ptb" in args.datasets:
        for cell in [c for c in ("gru", "lstm", "rnn") if c in args.cells]:
            for label, q, st in [x for x in QUANTS if x[0] in args.quants]:
                plan.append(("ptb", cell, label, q, st, 0))
    cache = {}
    t0 = time.monotonic()
    for i, (dsn, cell, label, q, st, seed) in enumerate(plan):
        path = runs / (run_key(dsn, cell, label, seed) + ".json")
        if path.exists():
            continue
        if dsn not in cache:
            cache[dsn] = load_dataset(dsn)
        rec = one_run(args, dsn, cache[dsn], cell, label, q, st, seed)
        path.write_text(json.dumps(rec, indent=1))
        el = time.monotonic() - t0
        print(f"[{i + 1}/{len(plan)}] {dsn} {cell} {label} seed {seed}: golden "
              f"{rec['golden']:.4f} float {rec['float_forward']:.4f} "
              f"({rec['seconds']:.0f} s train; {el / 60:.1f} min so far)", flush=True)


# -- report ---------------------------------------------------------------------------------------
def load_runs(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]


def _stats(vals):
    a = np.array(vals, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def table(recs, ds, metric_name):
    chars = ds == "ptb"
    lines = [
        f"| cell | weights | {metric_name} golden (integer) | {metric_name} float forward | "
        f"training forward | weight bits | zero weights | train s/run | runs |"
        + (" train chars | test chars |" if chars else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if chars else ""),
    ]
    summary = {}
    for cell in CELLS:
        for label, _, _ in QUANTS:
            rs = [r for r in recs if r["dataset"] == ds and r["cell"] == cell
                  and r["label"] == label]
            if not rs:
                continue
            g, gs, n = _stats([r["golden"] for r in rs])
            f, fs, _ = _stats([r["float_forward"] for r in rs])
            t, _, _ = _stats([r["train_forward"] for r in rs])
            sec = np.mean([r["seconds"] for r in rs])
            pm = (lambda m, s: f"{m:.4f} ± {s:.4f}") if n > 1 else (lambda m, s: f"{m:.4f}")
            lines.append(
                f"| {cell} | {label} | {pm(g, gs)} | {pm(f, fs)} | {t:.4f} | "
                f"{rs[0]['weight_bits']} | {np.mean([r['zero_fraction'] for r in rs]):.2f} | "
                f"{sec:.0f} | {n} |"
                + (f" {rs[0]['config']['budget_chars']:,} | {rs[0]['test_count']:,} |"
                   if chars else "")
            )
            summary[(cell, label)] = (g, gs, n, f)
    return "\n".join(lines), summary


def verdicts(summary, higher_better: bool, tol: float, unit: str) -> list[str]:
    out = []
    for cell in CELLS:
        if (cell, "float") not in summary:
            continue
        base = summary[(cell, "float")][0]

        def delta(label, cell=cell, base=base):
            g = summary[(cell, label)][0]
            return (g - base) if higher_better else (base - g)  # > 0: better than float

        parts = []
        if (cell, "binary") in summary:
            d = delta("binary")
            parts.append(f"binary is worse than float by {-d:.4f} {unit}" if d < -tol
                         else f"binary does not fail ({d:+.4f} {unit} vs float)")
        ok, bad = [], []
        for label in ("ternary det", "ternary stoch", "pow2", "exp det", "exp stoch"):
            if (cell, label) in summary:
                d = delta(label)
                (ok if d >= -tol else bad).append(f"{label} {d:+.4f}")
        if ok:
            parts.append("match or beat float (within " f"{tol}): " + ", ".join(ok))
        if bad:
            parts.append("worse than float by more than " f"{tol}: " + ", ".join(bad))
        out.append(f"- **{cell}**: " + "; ".join(parts) + ".")
    return out


def plots(recs, docs: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    for ds, ylabel in (("ptb", "test bits per character (lower is better)"),
                       ("vowels", "test accuracy (higher is better)")):
        rs = [r for r in recs if r["dataset"] == ds]
        if not rs:
            continue
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.27
        labels = [q[0] for q in QUANTS]
        for k, cell in enumerate(CELLS):
            means, errs = [], []
            for label in labels:
                v = [r["golden"] for r in rs if r["cell"] == cell and r["label"] == label]
                means.append(np.mean(v) if v else math.nan)
                errs.append(np.std(v, ddof=1) if len(v) > 1 else 0.0)
            x = np.arange(len(labels)) + (k - 1) * width
            ax.bar(x, means, width, yerr=errs, label=cell, capsize=2)
            if ds == "ptb":  # bars past the clipped axis get their value written on them
                for xi, m in zip(x, means, strict=True):
                    if m > 4.5:
                        ax.text(xi, 4.45, f"{m:.1f}", ha="center", va="top", rotation=90,
                                fontsize=8, color="white")
        ax.set_xticks(np.arange(len(labels)), labels, rotation=20)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ds}: golden (integer) model, per weight quantizer")
        vals = [r["golden"] for r in rs]
        lo, hi = min(vals), max(vals)
        if ds == "ptb":
            ax.set_ylim(max(0.0, lo - 0.2), min(hi, 4.5))
        else:
            ax.set_ylim(max(0, lo - 0.05), hi + 0.05 * (hi - lo + 1e-9))
        ax.legend()
        fig.tight_layout()
        name = f"results_{ds}.png"
        fig.savefig(docs / name, dpi=100)
        plt.close(fig)
        made.append(name)
    return made


def report(args) -> None:
    import torch

    recs = load_runs(Path(args.runs))
    docs = ROOT / "docs"
    pngs = plots(recs, docs)
    ptb_tab, ptb_sum = table(recs, "ptb", "BPC")
    vow_tab, vow_sum = table(recs, "vowels", "accuracy")
    ptb_runs = [r for r in recs if r["dataset"] == "ptb"]
    vow_runs = [r for r in recs if r["dataset"] == "vowels"]
    pc = ptb_runs[0]["config"] if ptb_runs else {}
    vc = vow_runs[0]["config"] if vow_runs else {}
    seeds = sorted({r["seed"] for r in vow_runs})
    total_min = sum(r["seconds"] for r in recs) / 60
    lines = [
        "# Results: do low-precision RNNs work? (reproducing Ott et al. 2016)",
        "",
        "Written by `benchmarks/paper.py` from the runs it stored; the prose under "
        "\"Verdict (generated from the tables)\" is generated from the same numbers, the "
        "sections after \"Reproduce\" are hand-written (benchmarks/paper_notes.md). Every "
        "model was trained "
        "quantization-aware by `hwgen train` code (docs/training.md), frozen through "
        "`hwgen.freeze` and evaluated on the test split by the float forward "
        "(`hwgen.floatref`: quantized weights, float activations) and by the bit-exact integer "
        "golden model (`hwgen.golden`: what the hardware computes). \"training forward\" is the "
        "training surrogate in eval mode (deterministic quantizer). \"float\" rows are trained "
        "without weight quantization and frozen as int8 (so their golden number includes int8 "
        "post-training quantization).",
        "",
        f"Environment: torch {torch.__version__} (CPU, 1 thread per run), Python "
        f"{platform.python_version()}, NumPy {np.__version__}, {platform.machine()}; "
        f"training time of all stored runs: {total_min:.0f} min (the machine was shared).",
        "",
        "## Penn Treebank, character level (bits per character, test split; lower is better)",
        "",
    ]
    if ptb_runs:
        lines += [
            f"Setup: 1 layer, {pc['hidden']} hidden units, embedding {pc['embed']} (token "
            f"input, int s8.5), formats `Formats.standard({pc['bits']})`, Adam lr {pc['lr']}, "
            f"batch {pc['batch']} x {pc['seq_len']} characters, **budget "
            f"{pc['budget_chars']:,} training characters per run** (about "
            f"{pc['budget_chars'] / 5_101_618:.2f} epochs of PTB train), best of 5 validations on "
            "the first 20,000 valid characters kept; test in windows of 1,000 characters, each "
            "from the zero state, on the number of test characters given per row (the whole "
            "test split is 449,944 predictions). One seed (0) per configuration.",
            "",
            ptb_tab,
            "",
        ]
    else:
        lines += ["(not run)", ""]
    long_runs = load_runs(Path(args.long_runs)) if Path(args.long_runs).is_dir() else []
    long_sum = {}
    if long_runs:
        lc = long_runs[0]["config"]
        long_tab, long_sum = table(long_runs, "ptb", "BPC")
        lines += [
            "### PTB with a longer budget (GRU only)",
            "",
            f"The same setup with **{lc['budget_chars']:,} training characters per run** "
            f"(about {lc['budget_chars'] / 5_101_618:.2f} epochs), {lc['hidden']} hidden units, "
            f"{lc['evals']} validations; test on {long_runs[0]['test_count']:,} characters.",
            "",
            long_tab,
            "",
        ]
    lines += ["## Japanese Vowels (speaker accuracy, test split; higher is better)", ""]
    if vow_runs:
        lines += [
            f"Setup: 1 layer, {vc['hidden']} hidden units, 12 standardized LPC channels "
            f"(input s8.5), formats `Formats.standard({vc['bits']})`, Adam lr {vc['lr']}, batch "
            f"{vc['batch']}, {vc['epochs']} epochs, the epoch with the best accuracy on the 45 "
            f"valid utterances kept; 370 test utterances. Seeds {seeds}: mean ± standard "
            "deviation over seeds.",
            "",
            vow_tab,
            "",
        ]
    else:
        lines += ["(not run)", ""]
    for p in pngs:
        lines += [f"![{p}]({p})", ""]
    gaps = []
    for ds, unit in (("ptb", "bits per character"), ("vowels", "accuracy")):
        rs = [r for r in recs + long_runs if r["dataset"] == ds]
        if rs:
            g = [abs(r["golden"] - r["float_forward"]) for r in rs]
            t = [abs(r["train_forward"] - r["float_forward"]) for r in rs]
            gaps.append(f"{ds}: golden vs float forward at most {max(g):.4f} {unit} (mean "
                        f"{np.mean(g):.4f}); training forward vs float forward at most "
                        f"{max(t):.4f} (mean {np.mean(t):.4f}), over {len(rs)} runs")
    if gaps:
        lines += ["## Cost of the fixed-point hardware arithmetic (measured)", "",
                  "The golden model is what the hardware computes; the float forward uses the "
                  "same quantized weights with float activations and state. "
                  + "; ".join(gaps) + ".", ""]
    lines += ["## Verdict (generated from the tables)", "",
              "Differences are golden-model metric minus float's (signed so that + means "
              "better than float).", ""]
    if ptb_sum:
        lines += ["PTB (tolerance 0.02 bits per character):", ""]
        lines += verdicts(ptb_sum, False, 0.02, "BPC")
        lines += [""]
    if long_sum:
        lines += ["PTB, longer budget (tolerance 0.02 bits per character):", ""]
        lines += verdicts(long_sum, False, 0.02, "BPC")
        lines += [""]
    if vow_sum:
        lines += ["Japanese Vowels (tolerance 0.01 accuracy, means over seeds):", ""]
        lines += verdicts(vow_sum, True, 0.01, "acc")
        lines += [""]
    lines += [
        "## Reproduce",
        "",
        "```",
        "scripts/setup.sh && .venv/bin/pip install --no-deps sktime==1.2.0 "
        "&& .venv/bin/pip install -e .[bench]",
        f"nice -n 10 .venv/bin/python benchmarks/paper.py {args.cmdline}".rstrip(),
    ]
    if long_runs:
        lines.append(
            "nice -n 10 .venv/bin/python benchmarks/paper.py --runs runs/paper-long "
            f"--datasets ptb --cells gru --ptb-chars {long_runs[0]['config']['budget_chars']} "
            f"--ptb-test-chars {long_runs[0]['test_count']} "
            f"--quants '{','.join(sorted({r['label'] for r in long_runs}))}' --no-report"
        )
    lines += [
        "```",
        "",
        "One configuration by hand (the same code path):",
        "",
        "```",
    ]
    if pc:
        lines.append(
            f"hwgen train --dataset ptb --cell gru --hidden {pc['hidden']} --quant ternary "
            f"--stochastic --budget-chars {pc['budget_chars']} --seed 0 -o ptb-gru-ternary.hwgm"
        )
    if vc:
        lines.append(
            f"hwgen train --dataset vowels --cell gru --hidden {vc['hidden']} --quant binary "
            f"--epochs {vc['epochs']} --batch {vc['batch']} --seed 0 -o vowels-gru-binary.hwgm"
        )
    lines += ["hwgen eval ptb-gru-ternary.hwgm --dataset ptb", "```", ""]
    extra = getattr(args, "notes", None)
    if extra and Path(extra).exists():
        lines += [Path(extra).read_text().rstrip(), ""]
    (docs / "results.md").write_text("\n".join(lines))
    print(f"wrote {docs / 'results.md'} ({len(recs)} runs)" + (f", {', '.join(pngs)}" if pngs
                                                                else ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default=str(ROOT / "runs" / "paper"), metavar="DIR")
    p.add_argument("--datasets", default="vowels,ptb", metavar="LIST")
    p.add_argument("--ptb-chars", type=int, default=1_500_000, metavar="N")
    p.add_argument("--ptb-hidden", type=int, default=128, metavar="H")
    p.add_argument("--ptb-test-chars", type=int, default=None, metavar="N")
    p.add_argument("--vowels-seeds", type=int, default=3, metavar="N")
    p.add_argument("--vowels-epochs", type=int, default=40, metavar="E")
    p.add_argument("--vowels-hidden", type=int, default=32, metavar="H")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--notes", default=str(ROOT / "benchmarks" / "paper_notes.md"),
                   help="hand-written notes appended to the report when the file exists")
    p.add_argument("--cells", default="rnn,gru,lstm", metavar="LIST")
    p.add_argument("--quants", default=",".join(q[0] for q in QUANTS), metavar="LIST",
                   help="PTB: the quantizer labels to run (default: all)")
    p.add_argument("--long-runs", default=str(ROOT / "runs" / "paper-long"), metavar="DIR",
                   help="report: runs of a longer PTB budget (a second section, when present)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--no-report", action="store_true")
    args = p.parse_args(argv)
    args.cmdline = " ".join(a for a in (argv if argv is not None else sys.argv[1:])
                            if a != "--report-only")
    args.datasets = [d.strip() for d in args.datasets.split(",")]
    args.cells = [c.strip() for c in args.cells.split(",")]
    args.quants = [q.strip() for q in args.quants.split(",")]
    if not args.report_only:
        run_all(args)
    if not args.no_report:
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
