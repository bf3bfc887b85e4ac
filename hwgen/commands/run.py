"""``hwgen run``: stream inputs through the accelerator over a serial port and check every output
against the golden model."""

from __future__ import annotations

import sys

from .. import api
from ..api import ANSWERS
from ..fileio import check_distinct_output, check_output_file, save_npy
from ..spec import HwgenError
from ._common import command, emit, load_npy, progress_for


def register(sub) -> None:
    p = command(sub, "run", "run inputs on a board over UART and compare with the golden model",
                "Send each timestep as a STEP frame (docs/uart.md), collect the logits and "
                "compare them with the golden model, bit for bit. --port sim runs the same "
                "board-level design (UART link + accelerator) cycle for cycle on Verilator "
                "instead of a real board.", run,
                "model", "port", "inputs", "no_normalize", "baud", "timeout", "lanes", "output",
                model=dict(help="model file (.hwgm) the bitstream was built from"),
                port=dict(help="serial device (e.g. /dev/ttyUSB1), or 'sim' for a simulated "
                          "board"),
                lanes=dict(default=4, help="lanes of the simulated accelerator with --port sim "
                           "and no --build (default: %(default)s)"),
                output=dict(required=False, metavar="Y.npy",
                            help="write the hardware's logits here"))
    p.add_argument("--build", metavar="DIR",
                   help="build folder ('hwgen build -o DIR'): its baud rate; with --port sim the "
                   "simulated board is that build's design (lanes, clock, UART divisor); for a "
                   "loadable bitstream (--weights spram / ram) the model is loaded first unless "
                   "the board holds it")
    p.add_argument("--answers", choices=ANSWERS, default="logits",
                   help="what the board answers: logits (RUN frames of many timesteps, every "
                   "logit compared), classes (only the class of each timestep: the fastest; "
                   "the classes compared) or step (one STEP frame per timestep, stop and wait) "
                   "(default: %(default)s)")


def run(args) -> int:
    if args.output and args.answers == "classes":
        raise HwgenError("--answers classes brings no logits back: drop -o, or use --answers "
                         "logits")
    out = check_output_file(args.output) if args.output else None
    if out is not None:
        check_distinct_output(out, args.model, args.inputs)
    r = api.run(args.model, args.port, load_npy(args.inputs), normalize=not args.no_normalize,
                baud=args.baud, timeout=args.timeout, sim_lanes=args.lanes,
                build_dir=args.build, answers=args.answers, progress=progress_for(args),
                warn=lambda w: print(f"hwgen: warning: {w}", file=sys.stderr))
    if out is not None:
        save_npy(out, r.logits)
    if r.mismatch is not None:
        b, t, k = r.mismatch
        raise HwgenError(
            f"hardware and golden model differ: sequence {b}, timestep {t}, logit {k}: "
            f"hardware {r.logits[b, t, k]}, golden {r.golden[b, t, k]}"
        )
    if not r.argmax_ok:
        raise HwgenError("hardware and golden model disagree on the classes" +
                         ("" if r.logits is None else " (the logits agree)"))
    B, T = r.golden.shape[:2]
    what = "classes" if r.logits is None else "logits"
    where = "simulated board" if args.port == "sim" else "board"
    rate = ("" if r.steps_per_second is None else
            f"; {r.steps_per_second:,.0f} timesteps/s on the {where}")
    if args.port == "sim" and not args.build:
        nxt = [f"hwgen build {args.model} --board icebreaker -o build/NAME   # the real board"]
    elif args.port == "sim":
        nxt = [f"hwgen run {args.model} --port /dev/ttyUSB1 --build {args.build} "
               f"--inputs {args.inputs}   # the same on the board"]
    elif r.answers != "classes":
        nxt = [f"hwgen run {args.model} --port {args.port} --inputs {args.inputs} --answers "
               "classes   # classes only: the fastest"]
    else:
        nxt = [f"hwgen estimate {args.model} --board icebreaker   # lanes, clock, link time"]
    emit(args, {"ok": True, "sequences": B, "timesteps": T, "output": out, "answers": r.answers,
                "steps_per_second": r.steps_per_second},
         f"{B} sequences x {T} timesteps: hardware {what} equal the golden model's "
         f"(bit-exact){rate}", next_=nxt)
    return 0
