"""Normalization folded into per-row scales (issue 26): does it close the ternary gap?

Three measurements, each a list of ``hwgen train`` runs (the literal command, a subprocess with
``--json``), stored as JSON (with the model file and checkpoint) under ``--runs`` (default
runs/norm/) and skipped when stored, so the benchmark can be interrupted and continued:

- ``--screen``: Penn Treebank characters, GRU-128, 1,500,000 training characters, seed 0, the
  first 100,000 test characters: float and ternary with and without batch normalization (and the
  other normalized recipes);
- ``--small``: Japanese Vowels and digits (GRU-32, 40 epochs, seeds 0-2, whole test split): the
  defaults against the same with normalization;
- ``--long``: the like-for-like PTB measurement, GRU-256, 15,000,000 training characters, seeds
  0-1, float / ternary / exponential / binary with the same recipe (``--recipe lm-bn``: the
  lm recipe, int8 input and head matrices, with batch normalization of every matrix product
  and the fixed Glorot W0 for binary / ternary; the rate 0.013 for all), 30 validations, the
  whole test split. The runs made before issue 26's fix, when lm-bn learned W0 and ternary
  diverged, stay listed with ``--weight-scale learned`` (benchmarks/norm_diag.py shows why).
  These runs take hours on a 2-core machine, so each invocation trains ONE run for at most
  ``--chunk`` seconds (``hwgen train --time-limit``, then ``--resume`` next time) and exits with
  status 3 while runs remain, 0 when all are done. Loop it through the heavy slot:

      until HEAVY_TAG=norm /work/wt/heavy .venv/bin/python benchmarks/norm.py --long \
          --chunk 1200; [ $? -ne 3 ]; do :; done

``--report`` writes the tables (learning curves of unfinished long runs included, from their
checkpoints) into docs/results.md between the ``norm_screen``, ``norm_small`` and ``norm_long``
markers. One torch thread per run.
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
sys.path.insert(0, str(ROOT))  # this checkout's hwgen, as in the runs' subprocesses

from ptb_gap import SMALL  # noqa: E402  (the small datasets' setups: GRU-32, 40 epochs)

PTB = ["--dataset", "ptb", "--cell", "gru", "--batch", "32", "--seq-len", "100", "--embed", "16"]
#: screen variant -> hwgen train options (on top of PTB, GRU-128)
SCREEN = {
    "float": ["--quant", "float", "--lr-schedule", "cosine", "--lr", "0.03"],
    "float-bn": ["--quant", "float", "--lr-schedule", "cosine", "--lr", "0.03",
                 "--norm", "batch"],
    "ternary": ["--quant", "ternary", "--lr-schedule", "cosine", "--weight-scale", "learned",
                "--lr", "0.03"],
    "ternary-bn": ["--quant", "ternary", "--lr-schedule", "cosine", "--weight-scale",
                   "learned", "--lr", "0.03", "--norm", "batch"],
    "ternary-lm": ["--quant", "ternary", "--recipe", "lm"],
    # made when lm-bn learned W0 for ternary (before issue 26's fix)
    "ternary-lm-bn": ["--quant", "ternary", "--recipe", "lm-bn", "--weight-scale", "learned"],
    "ternary-hou": ["--quant", "ternary", "--recipe", "hou"],
    "ternary-ardakani": ["--quant", "ternary", "--recipe", "ardakani"],
}
SCREEN_DEFAULT = "float,float-bn,ternary,ternary-bn,ternary-lm-bn,ternary-hou,ternary-ardakani"
SMALL_VARIANTS = {
    "ternary": ["--quant", "ternary"],
    "ternary-bn": ["--quant", "ternary", "--norm", "batch"],
    "ternary-wn": ["--quant", "ternary", "--norm", "weight"],
}
#: the long runs: (variant, options), in the order they are trained (seed 0 of every variant
#: first)
LONG = {
    "float": ["--quant", "float", "--recipe", "lm-bn"],  # lm-bn for float: 0.013, batch norm
    # binary / ternary with lm-bn's fixed (Glorot) W0 (issue 26: the learned W0 of a batch-
    # normalized matrix has all but no gradient; Adam made it drift until training
    # diverged: the runs below and benchmarks/norm_diag.py)
    "ternary-glorotw0": ["--quant", "ternary", "--recipe", "lm-bn", "--lr", "0.013"],
    "exp": ["--quant", "exp", "--recipe", "lm-bn"],
    "binary-glorotw0": ["--quant", "binary", "--recipe", "lm-bn", "--lr", "0.013"],
    # made before the fix, when lm-bn learned W0 for binary / ternary: both diverged (0.03:
    # valid BPC 2.29 -> 3.09 at 1M characters; 0.013: 2.08 -> 2.83 at 2.5M)
    "ternary-lr0.013": ["--quant", "ternary", "--recipe", "lm-bn", "--lr", "0.013",
                        "--weight-scale", "learned"],
    "ternary": ["--quant", "ternary", "--recipe", "lm-bn", "--weight-scale", "learned"],
    "binary-lr0.013": ["--quant", "binary", "--recipe", "lm-bn", "--lr", "0.013",
                       "--weight-scale", "learned"],
    "binary": ["--quant", "binary", "--recipe", "lm-bn", "--weight-scale", "learned"],
    # issue 26, closing the rest: the recurrent matrix at a fraction of the rate
    # (--recurrent-lr), against the churn of its ternary codes while the cosine rate is high
    **{f"{q}-rl{m}": ["--quant", q, "--recipe", "lm-bn", "--lr", "0.013", "--recurrent-lr", m]
       for q in ("ternary", "exp", "float", "binary") for m in ("0.5", "0.25", "0.125")},
    # issue 26: quantization delay (--quant-delay F): the first F of the run with float
    # weights (clipped to the quantizer's range), the rest quantization-aware, same budget
    **{f"{q}-qd{f}": ["--quant", q, "--recipe", "lm-bn", "--lr", "0.013", "--quant-delay", f]
       for q in ("ternary", "exp", "binary") for f in ("0.25", "0.5", "0.75", "0.9")},
    # issue 26: W0 fitted to the shadow weights at every step, no clipping (--weight-scale
    # fitted): under batch normalization the shadow weights' norm then grows as float's does
    # (W_h std 0.06 -> 0.63 over float's run), shrinking Adam's step against them as for float
    **{f"{q}-fitted": ["--quant", q, "--recipe", "lm-bn", "--lr", "0.013",
                       "--weight-scale", "fitted"] for q in ("ternary", "binary")},
}
#: the long runs to make, in this order for each seed (seed 0 first)
LONG_DEFAULT = "float,ternary-glorotw0,exp,binary-glorotw0,ternary-rl0.25"
LONG_BUDGET, LONG_HIDDEN, LONG_EVALS = 15_000_000, 256, 30


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return env


def hwgen_train(argv: list[str]) -> tuple[int, dict | None, str, float]:
    """Run ``hwgen train ARGV --json -q``: (exit status, its JSON or None, stderr, wall s)."""
    t0 = time.monotonic()
    code = "import sys; from hwgen.cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run([sys.executable, "-c", code, "train", *argv, "--json", "-q"],
                       env=_env(), capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode not in (0, 3):
        raise SystemExit(f"hwgen train {' '.join(argv)} failed:\n{p.stderr}")
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else None), p.stderr, wall


def _record(path: Path, argv: list[str], out: dict, wall: float, **extra) -> dict:
    from hwgen import api

    model = Path(argv[argv.index("-o") + 1])
    m = api.load_model(model)
    rec = {**extra, "command": "hwgen train " + " ".join(argv), "golden": out["golden"],
           "float_forward": out["float_forward"], "train_forward": out["train_forward"],
           "train_seconds": out["seconds"], "wall_seconds": wall,
           "best_valid": m.meta.get("best_valid"), "weights": out["weights"],
           "weight_bits": m.weight_memory_bits, "checkpoint": str(model) + ".ckpt",
           "row_scaled": [n for n, x in m.matrices() if getattr(x, "row_mult", None) is not None],
           "history": _history(Path(str(model) + ".ckpt")), "load": os.getloadavg()[0]}
    path.write_text(json.dumps(rec, indent=1))
    print(f"{path.stem}: golden {rec['golden']:.4f} float forward {rec['float_forward']:.4f} "
          f"training forward {rec['train_forward']:.4f} ({wall:.0f} s wall)", flush=True)
    return rec


def _history(ckpt: Path) -> list:
    """The valid evaluations stored in a training checkpoint ([] when there is none)."""
    if not ckpt.exists():
        return []
    import torch

    return list(torch.load(ckpt, weights_only=True).get("history", []))


def _fresh(model: Path) -> None:
    """Remove what a killed run left (its model file and checkpoint)."""
    model.unlink(missing_ok=True)
    Path(str(model) + ".ckpt").unlink(missing_ok=True)


def screen(args, runs: Path) -> None:
    for v in args.variants.split(","):
        if v not in SCREEN:
            raise SystemExit(f"unknown screen variant {v!r}; expected one of {', '.join(SCREEN)}")
        path = runs / f"screen-{v}-b{args.budget}-s{args.seed}.json"
        if path.exists():
            continue
        model = runs / (path.stem + ".hwgm")
        _fresh(model)
        argv = [*PTB, "--hidden", "128", *SCREEN[v], "--budget-chars", str(args.budget),
                "--seed", str(args.seed), "--test-chars", "100000", "-o", str(model)]
        _, out, _, wall = hwgen_train(argv)
        _record(path, argv, out, wall, variant=v, budget=args.budget, seed=args.seed,
                test_chars=100000)


def small(args, runs: Path) -> None:
    for ds, opts in SMALL.items():
        for v in SMALL_VARIANTS:
            for seed in range(args.small_seeds):
                path = runs / f"small-{ds}-{v}-s{seed}.json"
                if path.exists():
                    continue
                model = runs / (path.stem + ".hwgm")
                _fresh(model)
                argv = [*opts, *SMALL_VARIANTS[v], "--seed", str(seed), "-o", str(model)]
                _, out, _, wall = hwgen_train(argv)
                _record(path, argv, out, wall, dataset=ds, variant=v, seed=seed)


def long_argv(v: str, seed: int, runs: Path, hidden: int = LONG_HIDDEN,
              budget: int = LONG_BUDGET, test_chars: int | None = None) -> list[str]:
    """The hwgen train command of long run ``v`` / ``seed`` (the model file last)."""
    model = runs / f"long-{v}-h{hidden}-b{budget}-s{seed}.hwgm"
    test = [] if test_chars is None else ["--test-chars", str(test_chars)]
    return [*PTB, "--hidden", str(hidden), *LONG[v], "--budget-chars", str(budget),
            "--evals", str(LONG_EVALS), "--seed", str(seed), *test, "-o", str(model)]


def _long_argvs(args, runs: Path) -> list[tuple[str, int, list[str]]]:
    """(variant, seed, command) of every long run, in training order (seed 0 first)."""
    return [(v, seed, long_argv(v, seed, runs, args.long_hidden, args.long_budget,
                                args.long_test_chars))
            for seed in range(args.long_seeds) for v in args.long_variants.split(",")]


def long_runs(args, runs: Path) -> int:
    """Train the first unfinished long run for at most ``args.chunk`` seconds: 0 when every
    long run is done, 3 when one was paused or others remain (call again)."""
    todo = [(v, seed, argv) for v, seed, argv in _long_argvs(args, runs)
            if not Path(argv[-1]).with_suffix(".json").exists()]
    if not todo:
        return 0
    v, seed, argv = todo[0]
    path = Path(argv[-1]).with_suffix(".json")
    rc, out, err, wall = hwgen_train([*argv, "--resume", "--time-limit", str(args.chunk)])
    if rc == 3:
        print(f"{path.stem}: paused after {wall:.0f} s ({err.strip()})", flush=True)
        return 3
    _record(path, argv, out, wall, variant=v, seed=seed, budget=args.long_budget,
            hidden=args.long_hidden)
    return 3 if len(todo) > 1 else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "norm"))
    ap.add_argument("--screen", action="store_true")
    ap.add_argument("--variants", default=SCREEN_DEFAULT, help="screen variants")
    ap.add_argument("--budget", type=int, default=1_500_000, help="screen budget")
    ap.add_argument("--seed", type=int, default=0, help="screen seed")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--small-seeds", type=int, default=3)
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--long-variants", default=LONG_DEFAULT)
    ap.add_argument("--long-seeds", type=int, default=2)
    ap.add_argument("--long-hidden", type=int, default=LONG_HIDDEN)
    ap.add_argument("--long-budget", type=int, default=LONG_BUDGET)
    ap.add_argument("--long-test-chars", type=int, default=None,
                    help="long runs: test on the first N characters (default: the whole split)")
    ap.add_argument("--chunk", type=float, default=1200.0,
                    help="long runs: seconds of training per invocation (default 1200)")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    rc = 0
    if args.screen:
        screen(args, runs)
    if args.small:
        small(args, runs)
    if args.long:
        rc = long_runs(args, runs)
    if args.report:
        from norm_report import report

        report(runs, args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
