"""``hwgen sim``: run generated Verilog in Icarus or Verilator against the golden model."""

from __future__ import annotations

import sys

from .. import api
from ..api import _random_sequences  # noqa: F401 - tests draw sequences the way sim does
from ..toolenv import SIMULATORS
from ._common import (
    add_options,
    command,
    emit,
    load_npy,
    positive_float,
    positive_int,
    probability,
    progress_for,
)


def register(sub) -> None:
    p = command(sub, "sim", "simulate generated Verilog against the golden model",
                "Simulate the accelerator in RTL_DIR (from 'hwgen generate') with cocotb and "
                "compare every output with the golden model by exact equality. Exit 0 with a "
                "one-line summary when all outputs match, 1 with the first mismatch otherwise. "
                "Progress lines (sequences done, time left) go to stderr.", run,
                "rtl_dir", "no_normalize", "seed", "quiet")
    p.add_argument("--simulator", choices=SIMULATORS, default="icarus",
                   help="(default: %(default)s)")
    p.add_argument("--model", metavar="MODEL",
                   help="reference model (default: the model.hwgm generated with the RTL)")
    add_options(p.add_mutually_exclusive_group(), "inputs", "dataset",
                inputs=dict(required=False), dataset=dict(
                    required=False, help="the test split of a dataset (digits, vowels, ptb, or "
                    "a .npz/.txt path)"))
    p.add_argument("--sequences", type=positive_int, metavar="N",
                   help="at most N sequences (default: all given, or 8 random ones)")
    p.add_argument("--length", type=positive_int, metavar="T",
                   help="random sequences of exactly T timesteps (default: 1..16), or windows "
                   "of T characters for a character dataset (default: 100)")
    p.add_argument("--stall-in", type=probability, default=0.0, metavar="P",
                   help="probability of idle cycles before an input (default: %(default)s)")
    p.add_argument("--stall-out", type=probability, default=0.0, metavar="P",
                   help="probability of withholding output ready (default: %(default)s)")
    p.add_argument("--resets", action="store_true",
                   help="also reset between sequences and in the middle of one")
    p.add_argument("--waves", metavar="FILE.vcd", help="write a VCD waveform")
    p.add_argument("--time-limit", type=positive_float, default=3600.0, metavar="S",
                   help="give up after S seconds of wall clock (default: %(default)s)")
    p.add_argument("--fast", action="store_true",
                   help="bulk check: a compiled Verilator harness, no Python per cycle, same plan "
                   "(hwgen/fastsim; --simulator and --waves do not apply)")


def _warn(line: str) -> None:
    print(f"hwgen: warning: {line}", file=sys.stderr)


def run(args) -> int:
    features = load_npy(args.inputs) if args.inputs else None
    report = api.simulate(
        args.rtl_dir, features, dataset=args.dataset, sequences=args.sequences,
        length=args.length, simulator=args.simulator, model=args.model,
        normalize=not args.no_normalize, stall_in=args.stall_in, stall_out=args.stall_out,
        resets=args.resets, seed=args.seed, waves=args.waves, time_limit=args.time_limit,
        fast=args.fast, progress=progress_for(args), warn=_warn,
    )
    data = {
        "ok": report.ok, "simulator": report.simulator, "sequences": report.sequences,
        "timesteps": report.timesteps, "cycles": report.cycles,
        "cycles_per_timestep": report.cycles_per_timestep,
        "manifest_cycles_per_timestep": report.manifest_cycles_per_timestep,
        "wall_s": report.wall_s,
        "mismatch": None if report.ok else str(report.mismatch),
    }
    emit(args, data, report.summary(),
         next_=[f"hwgen synth {args.rtl_dir} --target ice40-up5k"] if report.ok else None)
    return 0 if report.ok else 1
