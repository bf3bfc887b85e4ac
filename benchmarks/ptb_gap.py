"""Where the ternary gap on Penn Treebank comes from (issue 15): one-factor comparisons.

Trains a GRU on PTB characters with ``hwgen train`` (each run is the literal command, run as a
subprocess with ``--json``) in several variants at one character budget: float, deterministic
ternary with the defaults, and ternary with ONE factor changed (no shadow clipping, a learned
per-matrix scale, learning rates scaled by the Glorot W0, the stochastic quantizer, a warm start
from a float checkpoint), plus exponential weights. Every model is tested with the golden
(integer) model on the first ``--test-chars`` test characters (``hwgen train --test-chars``: the
same numbers ``hwgen eval --max-chars`` gives).

Warm-start variants spend the same total budget: a float run of 2/3 of it (stored as the
``float`` variant at that budget, itself a learning-curve point), then quantization-aware
fine-tuning for the remaining 1/3 from its checkpoint (``--warm-start``).

Every run is stored as JSON (with its model file and checkpoint) under --runs (default
runs/ptb_gap/) and skipped when its JSON exists, so the benchmark can be interrupted and
continued, or extended to a larger ``--budget`` later; ``--resume`` also continues an
interrupted training from its checkpoint (``hwgen train --resume``). ``--report`` writes the
tables into docs/results.md and benchmarks/paper_notes.md (between the ``ptb_gap`` markers).
One torch thread per run; on a shared machine run it with nice:

    nice -n 15 .venv/bin/python benchmarks/ptb_gap.py --budget 1500000
    nice -n 15 .venv/bin/python benchmarks/ptb_gap.py --budget 3000000 --variants float,ternary
    .venv/bin/python benchmarks/ptb_gap.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: variant -> (hwgen train options, what changes against "ternary", warm start from float)
VARIANTS = {
    "float": (["--quant", "float"], "float weights (frozen as int8)", False),
    "ternary": (["--quant", "ternary"], "deterministic ternary, the defaults (Glorot W0, "
                "shadow clip at +-W0, one learning rate)", False),
    "ternary-noclip": (["--quant", "ternary", "--no-shadow-clip"], "no shadow clipping", False),
    "ternary-learned": (["--quant", "ternary", "--weight-scale", "learned"],
                        "learned W0 per matrix", False),
    "ternary-lr-w0": (["--quant", "ternary", "--lr-scale", "w0"],
                      "weight lr times W0", False),
    "ternary-lr-1/w0": (["--quant", "ternary", "--lr-scale", "1/w0"],
                        "weight lr over W0 (BinaryConnect)", False),
    "ternary-stoch": (["--quant", "ternary", "--stochastic"], "stochastic quantizer", False),
    "ternary-warm": (["--quant", "ternary"], "warm start from float (2/3 of the budget float, "
                     "1/3 ternary fine-tuning)", True),
    "ternary-warm-learned": (["--quant", "ternary", "--weight-scale", "learned"],
                             "warm start + learned W0 (fitted to the float weights)", True),
    "ternary-learned-noclip": (["--quant", "ternary", "--weight-scale", "learned",
                                "--no-shadow-clip"], "learned W0, no shadow clipping", False),
    "ternary-lr0.013": (["--quant", "ternary", "--lr", "0.013"],
                        "every lr 0.013 (about 0.002 / W0 of wh)", False),
    "ternary-lr-1/w0-learned": (["--quant", "ternary", "--lr-scale", "1/w0",
                                 "--weight-scale", "learned"], "lr over W0 + learned W0", False),
    "ternary-lr-1/w0-warm-learned": (["--quant", "ternary", "--lr-scale", "1/w0",
                                      "--weight-scale", "learned"],
                                     "lr over W0 + learned W0 + warm start (2/3 + 1/3)", True),
    "float-lr0.006": (["--quant", "float", "--lr", "0.006"], "float, lr 0.006", False),
    "float-lr0.013": (["--quant", "float", "--lr", "0.013"], "float, lr 0.013", False),
    "float-cos": (["--quant", "float", "--lr-schedule", "cosine"],
                  "float, cosine lr decay", False),
    "ternary-cos": (["--quant", "ternary", "--lr-schedule", "cosine"], "cosine lr decay", False),
    "ternary-cos-learned": (["--quant", "ternary", "--lr-schedule", "cosine",
                             "--weight-scale", "learned"], "cosine lr decay + learned W0",
                            False),
    "ternary-cos-lr-1/w0": (["--quant", "ternary", "--lr-schedule", "cosine",
                             "--lr-scale", "1/w0"], "cosine lr decay + weight lr over W0",
                            False),
    "binary-cos": (["--quant", "binary", "--lr-schedule", "cosine"],
                   "binary weights, cosine lr decay", False),
    "pow2-cos": (["--quant", "pow2", "--lr-schedule", "cosine"],
                 "pow2 weights, cosine lr decay", False),
    "exp": (["--quant", "exp"], "deterministic exponential (7 exponents)", False),
    "exp-cos": (["--quant", "exp", "--lr-schedule", "cosine"],
                "exponential, cosine lr decay", False),
    "exp-lr0.006": (["--quant", "exp", "--lr", "0.006"], "exponential, lr 0.006", False),
    "exp-warm": (["--quant", "exp"], "exponential, warm start from float (2/3 + 1/3)", True),
    "ternary-lm": (["--quant", "ternary", "--recipe", "lm"], "the lm recipe: cosine from 0.03, "
                   "learned W0, int8 input and head matrices (ternary recurrent)", False),
    "ternary-lm-in8": (["--quant", "ternary", "--recipe", "lm", "--head-quant", "ternary"],
                       "the lm recipe with a ternary head (int8 input matrix only)", False),
    "ternary-lm-head8": (["--quant", "ternary", "--recipe", "lm", "--input-quant", "ternary"],
                         "the lm recipe with a ternary input matrix (int8 head only)", False),
    "ternary-lm-exp": (["--quant", "ternary", "--recipe", "lm", "--input-quant", "exp",
                        "--head-quant", "exp"], "the lm recipe with exponential input and head "
                       "matrices", False),
    "exp-lm": (["--quant", "exp", "--recipe", "lm"], "the lm recipe for exponential weights: "
               "cosine from 0.013, int8 input and head matrices", False),
    "binary-lm": (["--quant", "binary", "--recipe", "lm"], "the lm recipe for binary weights: "
                  "cosine from 0.03, learned W0, int8 input and head matrices", False),
    "pow2-lm": (["--quant", "pow2", "--recipe", "lm"], "the lm recipe for pow2 weights: cosine "
                "from 0.013, int8 input and head matrices", False),
}
DEFAULT_VARIANTS = ("float,ternary,ternary-learned,ternary-warm-learned,ternary-warm,"
                    "ternary-noclip,exp,exp-warm,ternary-lr-1/w0,ternary-lr-w0")
#: fixed settings of every run (docs/results.md's PTB setup; the rest are hwgen train defaults)
COMMON = ["--dataset", "ptb", "--cell", "gru", "--hidden", "128", "--batch", "32",
          "--seq-len", "100", "--embed", "16"]


def spec(variant: str) -> tuple[list[str], str, bool]:
    """(options, what changes, warm start) of ``variant``: a name of VARIANTS, optionally with
    ``@lrX`` appended (the same with ``--lr X``, e.g. ``ternary-lr-1/w0@lr0.006``)."""
    name, _, lr = variant.partition("@lr")
    if name not in VARIANTS or (variant != name and not lr):
        raise SystemExit(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}, "
                         "optionally followed by @lr<rate>")
    opts, what, warm = VARIANTS[name]
    if lr:
        float(lr)
        opts, what = [*opts, "--lr", lr], f"{what}; lr {lr}"
    return opts, what, warm


def _order(variant: str) -> tuple[int, float]:
    name, _, lr = variant.partition("@lr")
    return list(VARIANTS).index(name), float(lr or 0)


def key(variant: str, budget: int, seed: int) -> str:
    return f"{variant.replace('/', '')}-b{budget}-s{seed}"


def warm_split(budget: int) -> tuple[int, int]:
    """(float characters, fine-tuning characters) of a warm-start run of ``budget`` in total."""
    first = (2 * budget) // 3
    return first, budget - first


def hwgen_train(argv: list[str], env: dict) -> tuple[dict, float]:
    t0 = time.monotonic()
    code = "import sys; from hwgen.cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run([sys.executable, "-c", code, "train", *argv, "--json", "-q"],
                       env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"hwgen train {' '.join(argv)} failed:\n{p.stderr}")
    return json.loads(p.stdout), wall


def one_run(args, variant: str, budget: int, seed: int, runs: Path, env: dict) -> dict:
    path = runs / (key(variant, budget, seed) + ".json")
    if path.exists():
        return json.loads(path.read_text())
    opts, what, warm = spec(variant)
    chars, start = budget, None
    if warm:
        first, chars = warm_split(budget)
        lr = variant.partition("@lr")[2]  # the float part trains at the same rate
        base = one_run(args, "float" + (f"@lr{lr}" if lr else ""), first, seed, runs, env)
        start = base["checkpoint"]
    model = runs / (key(variant, budget, seed) + ".hwgm")
    argv = [*COMMON, *opts, "--budget-chars", str(chars), "--seed", str(seed),
            "--test-chars", str(args.test_chars), "-o", str(model)]
    if start is not None:
        argv += ["--warm-start", start]
    if args.resume:
        argv.append("--resume")
    elif model.exists() or Path(str(model) + ".ckpt").exists():  # a leftover of a killed run
        model.unlink(missing_ok=True)
        Path(str(model) + ".ckpt").unlink(missing_ok=True)
    out, wall = hwgen_train(argv, env)
    from hwgen import api

    m = api.load_model(model)
    mats = [x for _, x in m.matrices()]
    rec = {
        "variant": variant, "what": what, "budget": budget, "chars": chars,
        "warm_from": start, "seed": seed, "test_chars": args.test_chars,
        "command": "hwgen train " + " ".join(argv),
        "golden": out["golden"], "float_forward": out["float_forward"],
        "train_forward": out["train_forward"], "train_seconds": out["seconds"],
        "wall_seconds": wall, "best_valid": m.meta.get("best_valid"),
        "zero_fraction": float(sum(x.sparsity * x.codes.size for x in mats)
                               / sum(x.codes.size for x in mats)),
        "scales": {n: x.scale.value for n, x in m.matrices()},
        "weights": out["weights"],
        "weight_bits": m.weight_memory_bits,
        "checkpoint": str(model) + ".ckpt",
        "load": os.getloadavg()[0],
    }
    path.write_text(json.dumps(rec, indent=1))
    print(f"{key(variant, budget, seed)}: golden {rec['golden']:.4f} float forward "
          f"{rec['float_forward']:.4f} ({wall:.0f} s wall)", flush=True)
    return rec


#: post-training quantization diagnostics: label -> {matrix: how}; how is "glorot" (ternary,
#: Glorot W0), "fit" (ternary, W0 fitted to the float weights: `fit_ternary_scale`), "exp"
PTQ = {
    "float (no weight quantization)": {},
    "wx ternary, Glorot W0": {"weight_ih_l0": "glorot"},
    "wh ternary, Glorot W0": {"weight_hh_l0": "glorot"},
    "head ternary, Glorot W0": {"head.weight": "glorot"},
    "all ternary, Glorot W0": {"weight_ih_l0": "glorot", "weight_hh_l0": "glorot",
                               "head.weight": "glorot"},
    "wx ternary, fitted W0": {"weight_ih_l0": "fit"},
    "wh ternary, fitted W0": {"weight_hh_l0": "fit"},
    "head ternary, fitted W0": {"head.weight": "fit"},
    "all ternary, fitted W0": {"weight_ih_l0": "fit", "weight_hh_l0": "fit",
                               "head.weight": "fit"},
    "all exp": {"weight_ih_l0": "exp", "weight_hh_l0": "exp", "head.weight": "exp"},
}


def ptq(args, runs: Path) -> dict:
    """Quantize the float run's weights after training, one matrix at a time (no training),
    and measure the training forward (fake-quantized activations, float weights as given) on
    the test prefix: which matrix's ternarization costs what, and whether the Glorot W0 or a
    fitted one is the better ternary scale for trained weights."""
    import torch

    from hwgen.quant import QuantConfig, fit_ternary_scale
    from hwgen.spec import CellKind
    from hwgen.train.datasets import load_dataset
    from hwgen.train.importer import warm_start_params
    from hwgen.train.qrnn import QRNN
    from hwgen.train.tquant import quantize_tensor
    from hwgen.train.trainer import torch_metric

    suffix = "" if args.ptq_variant == "float" else "-" + args.ptq_variant.replace("/", "")
    path = runs / f"ptq-b{args.budget}-s{args.seed}{suffix}.json"
    if path.exists():
        return json.loads(path.read_text())
    if spec(args.ptq_variant)[0][:2] != ["--quant", "float"]:
        raise SystemExit(f"--ptq-variant {args.ptq_variant}: not a float variant")
    base = one_run(args, args.ptq_variant, args.budget, args.seed, runs, _env())
    torch.set_num_threads(1)
    ds = load_dataset("ptb")
    params = warm_start_params(base["checkpoint"], CellKind.GRU)
    tern, expq = QuantConfig.parse("ternary"), QuantConfig.parse("exp")
    rows = {}
    t0 = time.monotonic()
    for label, plan in PTQ.items():
        from hwgen.spec import Formats

        net = QRNN(CellKind.GRU, 128, ds.classes, vocab=ds.vocab, embed=16, quant=None,
                   formats=Formats.standard(8))
        net.load_float_params(params)
        with torch.no_grad():
            for name, how in plan.items():
                w = net.get_parameter(name)
                fan_in, fan_out = net._fans[name]
                if how == "exp":
                    q = quantize_tensor(w, expq, fan_in=fan_in, fan_out=fan_out)
                else:
                    sc = None if how == "glorot" else fit_ternary_scale(w.double().numpy())
                    q = quantize_tensor(w, tern, fan_in=fan_in, fan_out=fan_out, scale=sc)
                w.copy_(q)
        rows[label] = torch_metric(net, ds, "test", max_chars=args.test_chars)
        print(f"ptq {label}: {rows[label]:.4f}", flush=True)
    rec = {"budget": args.budget, "seed": args.seed, "from": base["checkpoint"],
           "variant": args.ptq_variant,
           "test_chars": args.test_chars, "bpc": rows, "seconds": time.monotonic() - t0}
    path.write_text(json.dumps(rec, indent=1))
    return rec


#: --small: the same options on Japanese Vowels and digits (does an option that helps PTB hurt
#: the small datasets?): dataset -> hwgen train options (docs/results.md's setups)
SMALL = {
    "vowels": ["--dataset", "vowels", "--cell", "gru", "--hidden", "32", "--epochs", "40",
               "--batch", "16"],
    "digits": ["--dataset", "digits", "--cell", "gru", "--hidden", "32", "--epochs", "40",
               "--batch", "32"],
}
SMALL_VARIANTS = {
    "ternary": ["--quant", "ternary"],
    "ternary-lr-1/w0": ["--quant", "ternary", "--lr-scale", "1/w0"],
    "ternary-learned": ["--quant", "ternary", "--weight-scale", "learned"],
    "ternary-cos": ["--quant", "ternary", "--lr-schedule", "cosine"],
    "ternary-cos-learned": ["--quant", "ternary", "--lr-schedule", "cosine",
                            "--weight-scale", "learned"],
}


def small(args, runs: Path, env: dict) -> None:
    for ds, opts in SMALL.items():
        for v in args.small_variants.split(","):
            for seed in range(args.small_seeds):
                path = runs / f"small-{ds}-{v.replace('/', '')}-s{seed}.json"
                if path.exists():
                    continue
                model = runs / (path.stem + ".hwgm")
                argv = [*opts, *SMALL_VARIANTS[v], "--seed", str(seed), "-o", str(model)]
                out, wall = hwgen_train(argv, env)
                rec = {"dataset": ds, "variant": v, "seed": seed,
                       "command": "hwgen train " + " ".join(argv), "golden": out["golden"],
                       "float_forward": out["float_forward"], "wall_seconds": wall}
                path.write_text(json.dumps(rec, indent=1))
                print(f"{path.stem}: golden {out['golden']:.4f} ({wall:.0f} s)", flush=True)


def small_report(runs: Path) -> list[str]:
    recs = [json.loads(p.read_text()) for p in sorted(runs.glob("small-*.json"))]
    if not recs:
        return []
    import numpy as np

    lines = ["| dataset | variant | golden accuracy (mean ± sd) | per seed | wall s/run |",
             "|---|---|---|---|---|"]
    for ds in SMALL:
        for v in SMALL_VARIANTS:
            rs = sorted((r for r in recs if r["dataset"] == ds and r["variant"] == v),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            a = np.array([r["golden"] for r in rs])
            sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
            lines.append(f"| {ds} | {v} | {a.mean():.4f} ± {sd:.4f} | "
                         + ", ".join(f"{x:.4f}" for x in a)
                         + f" (seeds {', '.join(str(r['seed']) for r in rs)}) | "
                         f"{np.mean([r['wall_seconds'] for r in rs]):.0f} |")
    return lines


def full_test(args, variants: list[str], runs: Path, env: dict) -> None:
    """Golden BPC of the stored runs' models (``variants`` at --budget / --seed) on the WHOLE
    PTB test split (``hwgen eval MODEL --dataset ptb``), stored as fulltest-<key>.json."""
    for v in variants:
        k = key(v, args.budget, args.seed)
        path = runs / f"fulltest-{k}.json"
        if path.exists() or not (runs / f"{k}.json").exists():
            continue
        model = runs / f"{k}.hwgm"
        t0 = time.monotonic()
        code = "import sys; from hwgen.cli import main; sys.exit(main(sys.argv[1:]))"
        p = subprocess.run([sys.executable, "-c", code, "eval", str(model), "--dataset", "ptb",
                            "--json"], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"hwgen eval {model} failed:\n{p.stderr}")
        out = json.loads(p.stdout)
        rec = {"key": k, "variant": v, "budget": args.budget, "seed": args.seed,
               "command": f"hwgen eval {model.name} --dataset ptb", "golden": out["golden"],
               "float_forward": out["float_forward"], "count": out["count"],
               "wall_seconds": time.monotonic() - t0}
        path.write_text(json.dumps(rec, indent=1))
        print(f"{path.stem}: golden {rec['golden']:.4f} on {rec['count']:,} test characters",
              flush=True)


def full_test_report(runs: Path, by_key: dict) -> list[str]:
    recs = [json.loads(p.read_text()) for p in sorted(runs.glob("fulltest-*.json"))]
    if not recs:
        return []
    recs.sort(key=lambda r: (r["budget"], _order(r["variant"]), r["seed"]))
    lines = ["| variant | weights | train chars | seed | BPC golden, whole test | float forward "
             "| vs float | BPC golden, first 100k | zeros | test chars |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        run = by_key.get(r["key"], {})
        floats = [x for x in recs if x["budget"] == r["budget"] and x["seed"] == r["seed"]
                  and spec(x["variant"])[0][:2] == ["--quant", "float"]]
        best = min(floats, key=lambda x: x["golden"]) if floats else None
        d = "" if best is None or r in floats else f"{r['golden'] - best['golden']:+.4f}"
        q = spec(r["variant"])[0][1]
        if q != "float":  # float runs freeze as int8: keep the word "float"
            q = run.get("weights", q)
        lines.append(f"| {r['variant']} | {q} | {r['budget']:,} | {r['seed']} | "
                     f"**{r['golden']:.4f}** | {r['float_forward']:.4f} | {d} | "
                     f"{run.get('golden', float('nan')):.4f} | "
                     f"{run.get('zero_fraction', float('nan')):.2f} | {r['count']:,} |")
    return lines


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


CURVE_VARIANTS = ("float", "ternary", "exp", "float-lr0.013", "ternary-lr0.013",
                  "ternary-lr-1/w0", "exp@lr0.013", "float-cos@lr0.013", "float-cos@lr0.03",
                  "ternary-cos@lr0.03", "ternary-cos-learned@lr0.03", "exp-cos@lr0.013",
                  "exp-cos@lr0.03", "binary-cos@lr0.03", "pow2-cos@lr0.03", "ternary-lm",
                  "exp-lm", "binary-lm", "pow2-lm")


def _curves(recs: list[dict]) -> list[str]:
    import torch

    rows = []
    for budget in sorted({r["budget"] for r in recs}):
        for v in CURVE_VARIANTS:
            for r in [x for x in recs if x["variant"] == v and x["budget"] == budget]:
                ck = Path(r["checkpoint"])
                if not ck.exists():
                    continue
                h = torch.load(ck, weights_only=True)["history"]
                rows.append((r, [(e["chars"], e["valid"]) for e in h]))
    rows.sort(key=lambda rh: (rh[0]["budget"], _order(rh[0]["variant"]), rh[0]["seed"]))
    if not rows:
        return []
    n = max(len(h) for _, h in rows)
    out = ["| variant | budget | seed | " + " | ".join(f"eval {i + 1}" for i in range(n)) + " |",
           "|---|---|---|" + "---|" * n]
    for r, h in rows:
        out.append(f"| {r['variant']} | {r['budget']:,} | {r['seed']} | "
                   + " | ".join(f"{c / 1e6:.2f}M: {v:.3f}" for c, v in h) + " |")
    return out


def _total_wall(r: dict, by_key: dict) -> float:
    if r["warm_from"] is None:
        return r["wall_seconds"]
    base = by_key.get(Path(r["warm_from"]).name.removesuffix(".hwgm.ckpt"))
    return r["wall_seconds"] + (base["wall_seconds"] if base else float("nan"))


def report(runs: Path) -> str:
    from _record import versions

    recs = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))
            if not p.name.startswith(("small-", "ptq-", "fulltest-"))]
    if not recs:
        raise SystemExit(f"no runs under {runs}")
    by_key = {key(r["variant"], r["budget"], r["seed"]): r for r in recs}
    lines = [
        f"Written by `benchmarks/ptb_gap.py --report` from {len(recs)} stored runs. Setup: GRU, "
        "1 layer, 128 hidden, embedding 16, formats `Formats.standard(8)`, Adam lr 0.002 unless "
        "the row says otherwise, batch 32 x 100 characters, 10 validations on the first 50,000 "
        "valid characters (the best kept), the seed given per row. **BPC = golden (integer) "
        "model on the first "
        f"{recs[0]['test_chars']:,} test characters** (windows of 1,000 from the zero state; "
        "`hwgen train --test-chars`, the same as `hwgen eval --max-chars`). \"vs float lr "
        "0.002\": "
        "golden BPC minus the float run's (default lr) at the same total budget and seed; \"vs "
        "best float\": minus the best float run's at that budget and seed, any lr (+ is worse). "
        "Warm-start rows: "
        "float for 2/3 of the budget, then quantization-aware fine-tuning for 1/3 from its "
        "checkpoint; their wall time includes the float part.",
        "",
        f"Environment: {versions('torch')}; 1 torch thread per run, `nice -n 15`, on a 2-core "
        "machine shared with simulation and synthesis jobs (wall times measure the load too).",
        "",
        "| variant | what changes | total train chars | seed | BPC golden | float forward | "
        "training forward | vs float lr 0.002 | vs best float | zeros | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for budget in sorted({r["budget"] for r in recs}):
        rows = sorted((r for r in recs if r["budget"] == budget),
                      key=lambda r: (_order(r["variant"]), r["seed"]))
        for r in rows:
            floats = [x for x in rows if x["seed"] == r["seed"]
                      and spec(x["variant"])[0][:2] == ["--quant", "float"]]
            base = [x for x in floats if x["variant"] == "float"]
            d = "" if not base or r in floats else f"{r['golden'] - base[0]['golden']:+.4f}"
            best = min(floats, key=lambda x: x["golden"]) if floats else None
            db = "" if best is None or r in floats else f"{r['golden'] - best['golden']:+.4f}"
            lines.append(
                f"| {r['variant']} | {r['what']} | {budget:,} | {r['seed']} | "
                f"{r['golden']:.4f} | {r['float_forward']:.4f} | {r['train_forward']:.4f} | "
                f"{d} | {db} | {r['zero_fraction']:.2f} | {_total_wall(r, by_key):.0f} |")
    budgets = sorted({r["budget"] for r in recs})
    if len(budgets) > 1:
        lines += ["", "Golden BPC (first test characters as above) against the training budget, "
                  "cold starts, the seed-0 run of each variant:", "",
                  "| variant | " + " | ".join(f"{b / 1e6:g}M" for b in budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        for v in sorted({r["variant"] for r in recs if r["warm_from"] is None}, key=_order):
            cells = [by_key.get(key(v, b, 0)) for b in budgets]
            if sum(c is not None for c in cells) > 1:
                lines.append(f"| {v} | " + " | ".join(
                    f"{c['golden']:.4f}" if c else "" for c in cells) + " |")
    curves = _curves(recs)
    if curves:
        lines += ["", "Learning curves: valid BPC (the trainer's evaluations, first 50,000 valid "
                  "characters, training forward) after the given training characters, from "
                  "each run's checkpoint history (cold starts only):", "", *curves]
    for q in sorted(runs.glob("ptq-*.json")):
        rec = json.loads(q.read_text())
        base = rec["bpc"]["float (no weight quantization)"]
        pv = rec.get("variant", "float")
        src = by_key[key(pv, rec["budget"], rec["seed"])]
        lines += ["", f"Post-training quantization of the {pv} run ({rec['budget']:,} "
                  f"characters, seed {rec['seed']}, golden {src['golden']:.4f}), "
                  "no training (`ptb_gap.py --ptq`, "
                  f"{rec['seconds']:.0f} s): training forward (fake-quantized activations; "
                  "within 0.001 of the golden model in every run above) on the same test "
                  "prefix.", "", "| weights quantized | BPC | vs float weights |",
                  "|---|---|---|"]
        for label, v in rec["bpc"].items():
            lines.append(f"| {label} | {v:.4f} | {v - base:+.4f} |")
    ft = full_test_report(runs, by_key)
    if ft:
        lines += ["", "Whole PTB test split (449,944 predictions; `ptb_gap.py --full-test`, i.e. "
                  "`hwgen eval MODEL --dataset ptb`): golden (integer) BPC; \"vs float\": minus "
                  "the best float run's at that budget and seed (+ is worse).", "", *ft]
    sm = small_report(runs)
    if sm:
        lines += ["", "The same options on the small datasets (`ptb_gap.py --small`; GRU, 32 "
                  "hidden, 40 epochs, batch 16 (vowels) / 32 (digits), lr 0.002, best valid "
                  "epoch kept, golden accuracy on the whole test split):", "", *sm]
    lines += ["", "Each run's exact command is in its JSON (`command`); for example:", "", "```"]
    for v in ("ternary-cos-learned@lr0.03", "ternary-warm-learned"):
        ex = [r for r in recs if r["variant"] == v]
        if ex:
            lines.append(ex[0]["command"].replace(str(runs) + "/", ""))
    lines += ["```"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default=str(ROOT / "runs" / "ptb_gap"), metavar="DIR")
    p.add_argument("--budget", type=int, default=1_500_000, metavar="N",
                   help="total training characters per run (default: %(default)s)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, metavar="LIST",
                   help="comma-separated, from: " + ", ".join(VARIANTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-chars", type=int, default=100_000, metavar="N")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted training from its checkpoint (finished runs "
                        "are always skipped)")
    p.add_argument("--small", action="store_true",
                   help="run --small-variants on Japanese Vowels and digits (GRU, 32 hidden, "
                        "40 epochs) for --small-seeds seeds instead")
    p.add_argument("--small-variants", default="ternary,ternary-lr-1/w0", metavar="LIST")
    p.add_argument("--small-seeds", type=int, default=3, metavar="N")
    p.add_argument("--ptq", action="store_true",
                   help="post-training quantization of the float run at --budget, one matrix "
                        "at a time (a diagnostic; no training)")
    p.add_argument("--ptq-variant", default="float", metavar="V",
                   help="--ptq: the float variant to quantize (default: %(default)s)")
    p.add_argument("--full-test", action="store_true",
                   help="golden BPC of the stored --variants runs at --budget on the whole test "
                        "split (hwgen eval), no training")
    p.add_argument("--block", default="ptb_gap", metavar="NAME",
                   help="--report: the marker block of docs/results.md to write "
                        "(default: %(default)s; paper_notes.md only for ptb_gap)")
    p.add_argument("--report", action="store_true",
                   help="only write the table into docs/results.md and paper_notes.md")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    if args.report:
        from _record import write_block

        text = report(runs)
        write_block("results.md", args.block, text)
        if args.block != "ptb_gap":
            return 0
        notes = ROOT / "benchmarks" / "paper_notes.md"
        import re

        body = notes.read_text()
        pat = re.compile(r"(<!-- ptb_gap:begin -->\n).*?(<!-- ptb_gap:end -->)", re.S)
        if pat.search(body):
            notes.write_text(pat.sub(lambda m: m.group(1) + text + "\n" + m.group(2), body))
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        spec(v)
    runs.mkdir(parents=True, exist_ok=True)
    env = _env()
    sys.path.insert(0, str(ROOT))
    if args.ptq:
        ptq(args, runs)
        return 0
    if args.small:
        small(args, runs, env)
        return 0
    if args.full_test:
        full_test(args, variants, runs, env)
        return 0
    for v in variants:
        one_run(args, v, args.budget, args.seed, runs, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
