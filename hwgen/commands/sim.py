"""``hwgen sim``: run generated Verilog in Icarus or Verilator against the golden model."""

from __future__ import annotations

import sys

from .. import api
from ..api import _random_sequences  # noqa: F401 - tests draw sequences the way sim does
from ..toolenv import SIMULATORS
from ._common import (
    add_json,
    emit,
    load_npy,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
    progress_for,
)
from .golden import add_normalize


def register(sub) -> None:
    p = sub.add_parser(
        "sim",
        help="simulate generated Verilog against the golden model",
        description="Simulate the accelerator in RTL_DIR (from 'hwgen generate') with cocotb and "
        "compare every output with the golden model by exact equality. Exit 0 with a one-line "
        "summary when all outputs match, 1 with the first mismatch otherwise. Progress lines "
        "(sequences done, time left) go to stderr.",
    )
    p.add_argument("rtl_dir", metavar="RTL_DIR", help="folder written by 'hwgen generate'")
    p.add_argument("--simulator", choices=SIMULATORS, default="icarus",
                   help="(default: %(default)s)")
    p.add_argument("--model", metavar="MODEL",
                   help="reference model (default: the model.hwgm generated with the RTL)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--inputs", metavar="X.npy",
                     help="real features (N, T, F), normalized and quantized like the model's "
                     "inputs, or token ids (N, T)")
    src.add_argument("--dataset", metavar="NAME",
                     help="the test split of a dataset (digits, vowels, ptb, or a .npz/.txt path)")
    add_normalize(p)
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
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="S",
                   help="(default: %(default)s)")
    p.add_argument("--waves", metavar="FILE.vcd", help="write a VCD waveform")
    p.add_argument("--time-limit", type=positive_float, default=3600.0, metavar="S",
                   help="give up after S seconds of wall clock (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_json(p)
    p.set_defaults(func=run)


def _warn(line: str) -> None:
    print(f"hwgen: warning: {line}", file=sys.stderr)


def run(args) -> int:
    features = load_npy(args.inputs) if args.inputs else None
    report = api.simulate(
        args.rtl_dir, features, dataset=args.dataset, sequences=args.sequences,
        length=args.length, simulator=args.simulator, model=args.model,
        normalize=not args.no_normalize, stall_in=args.stall_in, stall_out=args.stall_out,
        resets=args.resets, seed=args.seed, waves=args.waves, time_limit=args.time_limit,
        progress=progress_for(args), warn=_warn,
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
