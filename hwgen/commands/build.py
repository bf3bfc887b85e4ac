"""``hwgen build``: a bitstream of the accelerator behind a UART on a board (never programs it)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..estimate import uart_link_cost
from ..fit import check_fit, fit_result
from ..gateware.schedule import max_lanes
from ..modelfile import load_model
from ..uart.board import BOARDS, build_board, get_board
from ._common import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build a board bitstream: accelerator + UART link (amaranth-boards)",
        description="Wrap the accelerator in a UART link (docs/uart.md) on a board and build its "
        "bitstream with Yosys / nextpnr (do_program=False: load it with your board's tool). A "
        "model that cannot fit the board's device is refused before any tool runs.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.add_argument("--board", required=True, choices=tuple(BOARDS), metavar="BOARD",
                   help="board: " + ", ".join(BOARDS))
    p.add_argument("--lanes", type=positive_int, metavar="P",
                   help="multiply-accumulate lanes (default: the most of 16, 8, 4, 2, 1 that fit)")
    p.add_argument("--baud", type=positive_int, default=115200, metavar="B",
                   help="UART baud rate (default: %(default)s)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="build folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from amaranth.hdl import Shape

    from ..gateware.core import Accelerator, input_layout, output_layout

    model = load_model(args.model)
    board = get_board(args.board)
    link = uart_link_cost(-(-Shape.cast(input_layout(model)).width // 8),
                          -(-Shape.cast(output_layout(model)).width // 8), board.target)
    lanes = args.lanes
    if lanes is None:
        candidates = [p for p in (16, 8, 4, 2, 1) if p <= max_lanes(model)]
        lanes = next((p for p in candidates if fit_result(model, p, board.target, link).fits),
                     candidates[-1])
    fit = check_fit(model, lanes, board.target, link)
    for w in fit.warnings:
        print(f"hwgen: warning: {w}", file=sys.stderr)

    out = Path(args.output)
    print(f"building {board.name} ({board.notes}) with {lanes} lanes in {out} ...",
          file=sys.stderr)
    r = build_board(Accelerator(model, lanes), board, out, baud=args.baud)
    (out / "model.hwgm").write_bytes(Path(args.model).read_bytes())
    util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in r.utilization.items())
    fmax = "n/a" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f} MHz"
    print(f"bitstream   {r.bitstream}")
    print(f"lanes       {lanes}; {fit.estimate.cycles_per_timestep} cycles per timestep")
    print(f"uart        {r.baud} baud (divisor {r.divisor} at {r.clock_mhz:g} MHz)")
    print(f"used        {util}")
    print(f"Fmax        {fmax} (board clock {r.clock_mhz:g} MHz)")
    return 0
