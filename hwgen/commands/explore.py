"""``hwgen explore``: from a dataset and a board to the best accelerator, on Ray Tune
(docs/explore.md)."""

from __future__ import annotations

import argparse
import sys

from ..spec import HwgenError
from ._common import OPTIONS, add_options, command, emit, positive_float, positive_int

DEFAULT_BUDGET = {"classify": 20, "charlm": 500_000}


def _nonnegative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {v}")
    return v


def register(sub) -> None:
    p = command(
        sub, "explore",
        "design-space exploration on Ray: the best accelerator for a dataset and a board",
        "Train every combination of --cells x --quant x --hidden quantization-aware "
        "on Ray Tune (local, or a cluster with --address), measure each with the golden model "
        "(selection on the valid split, reported on test), estimate every --lanes count on the "
        "device (cycles, LUT4, FF, RAM blocks, DSP, fit, microseconds per timestep), and write "
        "the table (trials.csv / trials.json), the Pareto fronts (front_*.png) and the "
        "recommended design per objective with its build command (summary.md) into DIR. "
        "Trials are cached by a hash of their configuration: run the same command again to "
        "continue an interrupted exploration. Needs the explore extra (Ray).", run_command,
        "output", output=dict(required=False, metavar="DIR",
                              help="exploration folder (cache and results)"))
    space = p.add_argument_group("design space")
    add_options(space, "dataset", "seed", "bits", dataset=dict(required=False))
    space.add_argument("--cells", default="gru", metavar="C,..",
                       help="rnn, gru, lstm (default: %(default)s)")
    space.add_argument("--quant", default="ternary", metavar="Q,..",
                       help="weight encodings as in hwgen train: binary, ternary, pow2, exp[N], "
                       "int[N], float (default: %(default)s)")
    space.add_argument("--hidden", default="32", metavar="H,..",
                       help="hidden sizes (default: %(default)s)")
    space.add_argument("--lanes", default="1,2,4,8,16", metavar="P,..",
                       help="lane counts estimated for every trial; counts above a model's "
                       "widest matrix row are skipped (default: %(default)s)")
    space.add_argument("--layers", type=positive_int, default=1, metavar="L",
                       help="(default: %(default)s)")
    space.add_argument("--budget", type=positive_int, metavar="N",
                       help="training per trial: epochs for classification, training "
                       "characters for a character model (default: 20 epochs / 500000 chars)")
    space.add_argument("--batch", type=positive_int, default=32, metavar="B",
                       help="(default: %(default)s)")
    space.add_argument("--lr", type=positive_float, default=2e-3, metavar="LR",
                       help="(default: %(default)s)")
    space.add_argument("--delta", metavar="THX,THH",
                       help="train delta networks with these thresholds (as 'hwgen train "
                       "--delta'; docs/delta.md) and estimate the delta core: cycles per "
                       "timestep are its expected ones at the valid split's measured fraction "
                       "of columns processed (column cycles_worst: every column processed)")
    space.add_argument("--samples", type=positive_int, metavar="N",
                       help="run N distinct points of the grid drawn at random (seed --seed) "
                       "instead of all of it")
    dev = p.add_argument_group("device and objectives")
    add_options(dev, "board", "target",
                board=dict(help=lambda: OPTIONS["board"][1]["help"]()
                           + " (its device, clock and UART link)"),
                target=dict(help=lambda: "bare " + OPTIONS["target"][1]["help"]()
                            + " (needs --clock-mhz)"))
    dev.add_argument("--clock-mhz", type=positive_float, metavar="MHZ",
                     help="with --target: the clock for microseconds per timestep")
    dev.add_argument("--max-latency-us", type=positive_float, metavar="US",
                     help="designs slower than US microseconds per timestep are not recommended")
    dev.add_argument("--tolerance", type=_nonnegative_float, default=0.02, metavar="T",
                     help="the cost objectives pick the cheapest design within T of the best "
                     "valid metric (accuracy or bits per character) (default: %(default)s)")
    dev.add_argument("--synth", action="store_true",
                     help="synthesize the best Pareto-optimal designs (Yosys + nextpnr) for "
                     "real resources and Fmax")
    dev.add_argument("--synth-max", type=positive_int, default=3, metavar="N",
                     help="with --synth: at most N designs (default: %(default)s)")
    dev.add_argument("--synth-seeds", type=positive_int, default=1, metavar="N",
                     help="with --synth: place-and-route seeds per design (default: %(default)s)")
    run = p.add_argument_group("Ray")
    run.add_argument("--address", metavar="ADDR",
                     help="an existing Ray cluster (host:port, or 'auto'); default: a local Ray")
    run.add_argument("--cpus", type=positive_int, metavar="N",
                     help="CPUs of the local Ray (default: all cores of this machine)")
    run.add_argument("--concurrent", type=positive_int, metavar="N",
                     help="trials running at once (default: one per CPU)")
    run.add_argument("--early-stop", action="store_true",
                     help="ASHA: stop trials whose valid metric falls behind (they get no design)")
    run.add_argument("--retry-failed", action="store_true",
                     help="run failed and early-stopped trials again (default: keep their record)")
    p.add_argument("--report", metavar="DIR",
                   help="only re-render DIR's table, fronts and summary from its stored results")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG fronts")


_ROW_KEYS = ("label", "cell", "quant", "hidden", "lanes", "valid", "test", "cycles",
             "us_per_timestep", "luts", "ffs", "bram", "dsp", "fits", "train_command",
             "build_command")


def _finish(args, r, folder: str) -> int:
    """The exploration's result: the summary (or JSON: the recommendations, the counts, the
    files) and the build command of the most accurate recommended design as ``next:``."""
    from ..explore.report import format_summary

    recs = {name: None if row is None else {k: row.get(k) for k in _ROW_KEYS}
            for name, row in r.recommendations.items()}
    designs = [x for x in r.rows if x.get("lanes") is not None]
    best = next((row for row in (r.recommendations.get("accuracy"),
                                 *r.recommendations.values()) if row), None)
    nxt = ([best["build_command"]] if best else
           [f"hwgen explore --report {folder}   # after more trials: no design fits yet"])
    files = {"table": [f"{folder}/trials.csv", f"{folder}/trials.json"],
             "fronts": f"{folder}/front_*.png", "summary": f"{folder}/summary.md"}
    text = None if args.json else (
        format_summary(r) + f"\ntable: {folder}/trials.csv, trials.json; fronts: "
        f"{folder}/front_*.png; summary: {folder}/summary.md")
    emit(args, {"folder": folder, "trials": len(r.settings.get("trials", [])),
                "designs": len(designs), "fitting": sum(1 for x in designs if x.get("fits")),
                "not_run": len(r.missing), "recommendations": recs, "files": files},
         text, next_=nxt)
    return 0


def run_command(args) -> int:
    if args.report:
        if args.output or args.dataset:
            raise HwgenError("--report DIR re-renders an exploration; it takes no -o or --dataset")
        from ..explore.report import render

        return _finish(args, render(args.report, plots=not args.no_plots), args.report)
    if not args.dataset:
        raise HwgenError("give --dataset NAME|PATH (or --report DIR)")
    if not args.output:
        raise HwgenError("give -o DIR, the exploration folder")
    from ..explore.designs import make_platform
    from ..explore.space import CELLS, dataset_ref, grid, parse_list, sample
    from ..train import require_torch

    plat = make_platform(args.target, args.board, args.clock_mhz)
    cells = parse_list(args.cells, "--cells", choices=CELLS)
    quants = parse_list(args.quant, "--quant")
    hiddens = parse_list(args.hidden, "--hidden", cast=int)
    lanes = sorted(parse_list(args.lanes, "--lanes", cast=int))
    from ..explore.runner import require_ray

    require_ray(args.address)
    require_torch()
    from ..train.trainer import TrainConfig

    for q in quants:  # the trainer's own validation, before any trial starts
        TrainConfig(dataset=args.dataset, quant=q, epochs=1, delta=args.delta,
                    layers=args.layers).check()
    ds = dataset_ref(args.dataset)
    budget = args.budget or DEFAULT_BUDGET[ds.kind]
    configs = grid(cells, quants, hiddens, budget=budget, layers=args.layers, seed=args.seed,
                   batch=args.batch, lr=args.lr, bits=args.bits, delta=args.delta)
    search = {"grid": {"cells": cells, "quant": quants, "hidden": hiddens}, "size": len(configs),
              "samples": args.samples, "early_stop": args.early_stop}
    if args.samples:
        configs = sample(configs, args.samples, args.seed)
    from ..explore.runner import explore

    print(f"exploring {len(configs)} trials x lanes {lanes} of {ds.source} on "
          f"{plat.board or plat.target} ({plat.clock_mhz:g} MHz), {budget} {ds.budget_unit} "
          f"each, into {args.output}", file=sys.stderr)
    r = explore(
        args.output, ds, configs, plat, lanes=lanes, max_latency_us=args.max_latency_us,
        tolerance=args.tolerance, address=args.address, cpus=args.cpus,
        concurrent=args.concurrent, early_stop=args.early_stop, retry_failed=args.retry_failed,
        synth=args.synth, synth_max=args.synth_max, synth_seeds=args.synth_seeds, search=search,
        plots=not args.no_plots,
    )
    return _finish(args, r, args.output)
