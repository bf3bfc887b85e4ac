"""``hwgen build``: a bitstream of the accelerator behind a UART on a board (never programs it)."""

from __future__ import annotations

import argparse
import sys

from .. import api
from ..board.build import parse_clock
from ..board.catalog import BOARDS
from ..board.top import LINKS
from ..boardfit import BOARD_WEIGHTS
from ..spec import HwgenError
from ._common import command, emit, positive_float, positive_int, progress_for


def register(sub) -> None:
    p = command(sub, "build", "build a board bitstream: accelerator + UART link (amaranth-boards)",
                "Wrap the accelerator in a UART link (docs/uart.md) on a board and build its "
                "bitstream with Yosys / nextpnr (do_program=False: the last line says how to "
                "load it). A model that cannot fit the board's device, UART link counted, is "
                "refused before any tool runs, with what would fit ('hwgen estimate MODEL "
                "--board B' says the same first).", run,
                "model", "board", "lanes", "sparse", "output", "quiet",
                board=dict(required=True), output=dict(metavar="DIR", help="build folder"))
    add_clock_options(p)
    p.add_argument("--weights", choices=BOARD_WEIGHTS, default="auto", metavar="W",
                   help="where the weights live: rom (in the bitstream), spram / ram (loaded at "
                   "run time with 'hwgen load': any model of the same shape runs without a "
                   "rebuild) or auto (rom when it fits, else loadable) (default: %(default)s)")
    p.add_argument("--seed", type=positive_int, default=1, metavar="N",
                   help="nextpnr placement seed (default: %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=3600.0, metavar="S",
                   help="seconds for the tools, at most 3600 (default: %(default)s)")


def add_clock_options(p) -> None:
    """--clock and --baud, as build and estimate take them."""
    p.add_argument("--clock", type=clock_arg, default="auto", metavar="C",
                   help="core clock: auto (the fastest PLL frequency the placed design meets, "
                   "starting from the estimate), a frequency in MHz the PLL makes (e.g. 60), or "
                   "board (the oscillator, no PLL) (default: %(default)s)")
    p.add_argument("--baud", type=positive_int, default=None, metavar="B",
                   help="UART baud rate (default: the board's fastest, 3000000 on the "
                   "iCEBreaker and ULX3S; at most 2%% off at the core clock)")
    p.add_argument("--link", choices=LINKS, default="uart",
                   help="host link: uart (the board's USB-serial bridge) or spi (an SPI target "
                   "for a microcontroller, pins in docs/spi.md) (default: %(default)s)")


def clock_arg(text: str):
    try:
        return parse_clock(text)
    except HwgenError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def clock_line(r) -> str:
    """The clock of a build: requested, the PLL's frequency, placed Fmax."""
    if r.pll is None:
        return f"{r.clock_mhz:g} MHz from the oscillator (requested {r.clock_request})"
    p = r.pll["params"]
    return (f"{r.clock_mhz:g} MHz from the PLL ({', '.join(f'{k} {v}' for k, v in p.items())}; "
            f"requested {r.clock_request}; placed Fmax {r.fmax_mhz} MHz)")


def run(args) -> int:
    b = api.build(args.model, args.board, args.output, lanes=args.lanes, baud=args.baud,
                  weights=args.weights, sparse=args.sparse, seed=args.seed, clock=args.clock,
                  link=args.link,
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
        f"lanes       {b.lanes}; {b.fit.fit.estimate.cycles_per_timestep} cycles per timestep"
        + (" at most (delta core: 'hwgen estimate --dataset' gives the expected)"
           if b.fit.design.model.delta is not None else "")  # issue 23
        + f", {b.us_per_timestep:.2f} us at {r.clock_mhz:g} MHz",
        f"clock       {clock_line(r)}",
        (f"uart        {r.baud} baud (divisor {r.divisor} at {r.clock_mhz:g} MHz)"
         if r.link == "uart" else
         f"spi         SPI mode 0 target, SCLK at most {r.sclk_max_mhz:g} MHz (docs/spi.md)"),
        f"used        {util}",
        f"Fmax        {fmax} placed (core clock {r.clock_mhz:g} MHz)",
    ])
    flash = BOARDS[args.board].program.format(bit=r.bitstream)
    build = "" if b.weights == "rom" else f" --build {args.output}"
    if r.link == "uart":
        host = (f"hwgen run {args.model} --port /dev/ttyUSB1 --baud {r.baud}{build} "
                "--inputs X.npy   # the board's port")
    else:
        host = (f"hwgen run {args.model} --port sim --build {args.output} --inputs X.npy   # the "
                "SPI board simulated; on the board a microcontroller drives it (docs/spi.md)")
    emit(args, {**b.to_json(), "flash": flash}, text, next_=[f"{flash}   # load the bitstream",
                                                             host])
    return 0
