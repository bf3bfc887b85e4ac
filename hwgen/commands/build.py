"""``hwgen build``: a bitstream of the accelerator behind a UART on a board (never programs it)."""

from __future__ import annotations

import sys

from .. import api
from ..boardfit import BOARD_WEIGHTS
from ..gateware.packing import SPARSE_MODES
from ..uart.board import BOARDS
from ._common import add_json, emit, positive_float, positive_int, progress_for

#: How to load a bitstream onto each board (amaranth-boards' own program commands).
FLASH = {
    "icebreaker": "iceprog {bit}",
    "ulx3s-85f": "openFPGALoader -b ulx3s -m {bit}",
    "orangecrab-85f": "dfu-util -a 0 -D {bit}  (hold the button while plugging the board in)",
}


def register(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build a board bitstream: accelerator + UART link (amaranth-boards)",
        description="Wrap the accelerator in a UART link (docs/uart.md) on a board and build its "
        "bitstream with Yosys / nextpnr (do_program=False: the last line says how to load it). "
        "A model that cannot fit the board's device, UART link counted, is refused before any "
        "tool runs, with what would fit ('hwgen estimate MODEL --board B' says the same first).",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.add_argument("--board", required=True, choices=tuple(BOARDS), metavar="BOARD",
                   help="board: " + ", ".join(BOARDS))
    p.add_argument("--lanes", type=positive_int, metavar="P",
                   help="multiply-accumulate lanes (default: the most of 16, 8, 4, 2, 1 that fit)")
    p.add_argument("--baud", type=positive_int, default=115200, metavar="B",
                   help="UART baud rate (default: %(default)s)")
    p.add_argument("--weights", choices=BOARD_WEIGHTS, default="auto", metavar="W",
                   help="where the weights live: rom (in the bitstream), spram / ram (loaded at "
                   "run time with 'hwgen load': any model of the same shape runs without a "
                   "rebuild) or auto (rom when it fits, else loadable) (default: %(default)s)")
    p.add_argument("--sparse", choices=SPARSE_MODES, default="auto",
                   help="zero skipping: on builds the sparse core (2:4 sparse matrices take half "
                   "the cycles), off the dense one, auto the sparse core when it is faster "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=positive_int, default=1, metavar="N",
                   help="nextpnr placement seed (default: %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=3600.0, metavar="S",
                   help="seconds for the tools, at most 3600 (default: %(default)s)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="build folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    b = api.build(args.model, args.board, args.output, lanes=args.lanes, baud=args.baud,
                  weights=args.weights, sparse=args.sparse, seed=args.seed,
                  timeout=args.timeout,
                  progress=progress_for(args),
                  warn=lambda w: print(f"hwgen: warning: {w}", file=sys.stderr))
    r = b.result
    util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in r.utilization.items())
    fmax = "n/a" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f} MHz"
    where = ("in the bitstream (ROM)" if b.weights == "rom" else
             f"{b.weights}, loaded at run time: 'hwgen load MODEL --build {args.output}'")
    text = "\n".join([
        f"bitstream   {r.bitstream}",
        f"weights     {where}",
        f"lanes       {b.lanes}; {b.fit.fit.estimate.cycles_per_timestep} cycles per timestep, "
        f"{b.fit.us_per_timestep:.2f} us at {r.clock_mhz:g} MHz",
        f"uart        {r.baud} baud (divisor {r.divisor} at {r.clock_mhz:g} MHz)",
        f"used        {util}",
        f"Fmax        {fmax} (board clock {r.clock_mhz:g} MHz)",
    ])
    flash = FLASH[args.board].format(bit=r.bitstream)
    build = "" if b.weights == "rom" else f" --build {args.output}"
    emit(args, {**b.to_json(), "flash": flash}, text, next_=[
        f"{flash}   # load the bitstream",
        f"hwgen run {args.model} --port /dev/ttyUSB1{build} --inputs X.npy   # the board's port",
    ])
    return 0
