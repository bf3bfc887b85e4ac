"""Sizing for a board: the fit check and speed of an accelerator *as a board build makes it*.

A board build (`hwgen.uart.board.build_board`) wraps the accelerator in a UART link, so it needs
more logic than the bare accelerator that ``hwgen estimate --target`` judges. This module is a thin
layer over the public estimate and fit functions (`hwgen.estimate.estimate`,
`hwgen.estimate.uart_link_cost`, `hwgen.fit.fit_result`): it adds the link's cost, chooses the lane
count the same way ``hwgen build`` does, phrases what would fit in the options of ``hwgen build``
(``--lanes``, ``--board``), and gives the time per timestep at the board's clock and over its
UART (each timestep is one STEP frame out and one OUTPUT frame back, 8N1, docs/uart.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .estimate import uart_link_cost
from .fit import FitResult, fit_result
from .spec import HwgenError, Model
from .targets import get_target

__all__ = ["LANE_CHOICES", "BoardFit", "link_bytes", "choose_lanes", "board_fit",
           "check_board_fit"]

#: Lane counts tried when none is given, most first (``hwgen build``, ``hwgen demo``).
LANE_CHOICES = (16, 8, 4, 2, 1)
_FRAME_OVERHEAD = 6  # SYNC, CMD, SEQ, LEN_LO, LEN_HI, CRC (hwgen.uart.protocol)


def link_bytes(model: Model) -> tuple[int, int]:
    """(input, output) payload bytes of one timestep on the UART link."""
    from amaranth.hdl import Shape

    from .gateware.core import input_layout, output_layout

    return (-(-Shape.cast(input_layout(model)).width // 8),
            -(-Shape.cast(output_layout(model)).width // 8))


def choose_lanes(model: Model, target, extra: tuple[int, int] = (0, 0)) -> int:
    """The most lanes of `LANE_CHOICES` (at most the model's widest matrix allows) whose estimate
    fits ``target`` with ``extra`` (LUTs, flip-flops) around the accelerator; the fewest when
    none fits (the fit check then says why)."""
    from .gateware.schedule import max_lanes

    candidates = [p for p in LANE_CHOICES if p <= max_lanes(model)] or [1]
    return next((p for p in candidates if fit_result(model, p, target, extra).fits),
                candidates[-1])


@dataclass(frozen=True)
class BoardFit:
    """The estimate of a board build: ``fit`` counts the UART link (``link`` = its LUTs and
    flip-flops); times per timestep at the board clock (compute) and over the UART (link)."""

    board: str
    target: str
    clock_mhz: float
    baud: int
    link: tuple[int, int]
    payload_bytes: tuple[int, int]
    fit: FitResult

    @property
    def lanes(self) -> int:
        return self.fit.lanes

    @property
    def fits(self) -> bool:
        return self.fit.fits

    @property
    def us_per_timestep(self) -> float:
        """Accelerator time per timestep at the board clock (cycles / MHz)."""
        return self.fit.estimate.cycles_per_timestep / self.clock_mhz

    @property
    def link_us_per_timestep(self) -> float:
        """UART time per timestep: both frames at 10 bits per byte (a lower bound)."""
        n = sum(self.payload_bytes) + 2 * _FRAME_OVERHEAD
        return n * 10 / self.baud * 1e6

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "target": self.target,
            "clock_mhz": self.clock_mhz,
            "baud": self.baud,
            "lanes": self.lanes,
            "uart_link": {"luts": self.link[0], "ffs": self.link[1],
                          "input_bytes": self.payload_bytes[0],
                          "output_bytes": self.payload_bytes[1]},
            "us_per_timestep": self.us_per_timestep,
            "link_us_per_timestep": self.link_us_per_timestep,
            "estimate": self.fit.estimate.to_json(),
            "fits": self.fits,
            "problems": list(self.fit.problems),
            "warnings": list(self.fit.warnings),
        }


def board_fit(model: Model, board, lanes: int | None = None, baud: int = 115200) -> BoardFit:
    """Estimate ``model`` built for ``board`` (a name or `hwgen.uart.board.Board`) with ``lanes``
    lanes (default: `choose_lanes`); never raises for a design that does not fit."""
    from .uart.board import Board, get_board

    b = board if isinstance(board, Board) else get_board(board)
    payload = link_bytes(model)
    link = uart_link_cost(*payload, b.target)
    if lanes is None:
        lanes = choose_lanes(model, b.target, link)
    fit = fit_result(model, lanes, b.target, link)
    return BoardFit(b.name, b.target, b.clock_hz / 1e6, baud, link, payload, fit)


def check_board_fit(model: Model, board, lanes: int | None = None,
                    baud: int = 115200) -> BoardFit:
    """`board_fit`, raising `HwgenError` when the build cannot fit; the message names what
    would, in ``hwgen build`` options: fewer ``--lanes`` or another ``--board``."""
    from .uart.board import BOARDS

    r = board_fit(model, board, lanes, baud)
    if r.fits:
        return r
    hints = []
    for p in range(r.lanes - 1, 0, -1):
        alt = fit_result(model, p, r.target, r.link)
        if alt.fits:
            hints.append(f"--lanes {p} fits (about {alt.estimate.luts} LUT4, "
                         f"{alt.estimate.cycles_per_timestep} cycles per timestep)")
            break
    for other in BOARDS.values():
        if other.name != r.board and get_target(other.target).luts >= get_target(r.target).luts:
            alt = board_fit(model, other, r.lanes, baud)
            if alt.fits:
                hints.append(f"--board {other.name} fits {r.lanes} lanes")
                break
    msg = (f"this model does not fit {r.board} ({r.target}) with {r.lanes} lanes and the UART "
           f"link ({r.link[0]} LUT4, {r.link[1]} flip-flops): " + "; ".join(r.fit.problems) + ".")
    msg += (" What would fit: " + "; ".join(hints) + "." if hints else
            " No smaller lane count or other board fits; use fewer units or ternary weights.")
    raise HwgenError(msg)
