"""The boards hwgen builds for, each described once: device, oscillator, PLL, link limits and
the command that loads a bitstream, and the pins of the SPI link.

A `Board` is data. The fit check reads ``target``; the clocking reads ``clock_hz`` and the
target's family (`hwgen.board.pll`); the build reads ``platform`` (an amaranth-boards class);
``hwgen build`` prints ``program``; the UART link refuses baud rates above ``max_baud`` (the
USB-UART bridge's limit: the FTDI FT2232H of the iCEBreaker and ULX3S makes 3 Mbaud from its
fixed 12 MHz x 8 / 32 clock: 3,000,000, 2,000,000, 1,500,000, 1,000,000 ... 3 M / n).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from amaranth.build import Attrs, Resource, Subsignal
from amaranth.build.dsl import Pins

from ..spec import HwgenError
from ..targets import get_target

__all__ = ["Board", "BOARDS", "get_board", "board_names"]


@dataclass(frozen=True)
class Board:
    """One board (see the module docstring)."""

    name: str
    target: str  # hwgen.targets name used by the fit check
    platform: str  # amaranth_boards module:class
    clock_hz: float  # the oscillator
    notes: str
    program: str  # how to load a bitstream ({bit}: its path)
    max_baud: int = 3_000_000
    #: the SPI target's pins (docs/spi.md, Digilent PMOD SPI order): (amaranth-boards
    #: connector, its pins for cs_n, mosi, miso, sclk, I/O attributes); None: no SPI link
    spi_pins: tuple | None = None

    @property
    def family(self) -> str:
        """The PLL family (`hwgen.board.pll.FAMILIES`)."""
        return get_target(self.target).family.value

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    def make_platform(self):
        mod, cls = self.platform.split(":")
        platform_cls = getattr(importlib.import_module(mod), cls)
        if self.name.startswith("orangecrab"):

            class OrangeCrabUart(platform_cls):
                resources = platform_cls.resources + [
                    Resource("uart", 0,
                             Subsignal("rx", Pins("0", dir="i", conn=("io", 0))),
                             Subsignal("tx", Pins("1", dir="o", conn=("io", 0))),
                             Attrs(IO_TYPE="LVCMOS33")),
                ]

            return OrangeCrabUart()
        return platform_cls()


def _ulx3s(size: str) -> Board:
    """The ULX3S with an LFE5U-``size``F: 25 MHz oscillator, UART on the FTDI (US1 port), the
    SPI link on header J1 (GP4 GN4 GP5 GN5)."""
    return Board(f"ulx3s-{size}f", f"ecp5-{size}k",
                 f"amaranth_boards.ulx3s:ULX3S_{size}F_Platform", 25e6,
                 f"ECP5 LFE5U-{size}F, 25 MHz oscillator, UART on the FTDI (US1 port)",
                 "openFPGALoader -b ulx3s -m {bit}",
                 spi_pins=(("gpio", 0), ("4+", "4-", "5+", "5-"), {"IO_TYPE": "LVCMOS33"}))


BOARDS = {
    b.name: b
    for b in (
        Board("icebreaker", "ice40-up5k", "amaranth_boards.icebreaker:ICEBreakerPlatform", 12e6,
              "iCE40 UP5K, 12 MHz oscillator, UART on the FTDI's second channel",
              "iceprog {bit}",
              spi_pins=(("pmod", 0), ("1", "2", "3", "4"), {"IO_STANDARD": "SB_LVCMOS"})),
        # issue 25: the ULX3S in each size amaranth-boards describes (smallest first, so that
        # a fit check's "--board ... fits" names the smallest that does)
        *(_ulx3s(size) for size in ("12", "25", "45", "85")),
        Board("orangecrab-85f", "ecp5-85k",
              "amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_85FPlatform", 48e6,
              "ECP5 LFE5U-85F, 48 MHz oscillator; no USB-UART bridge: UART on feather pins 0 "
              "(RX), 1 (TX) through a 3.3 V USB-serial adapter",
              "dfu-util -a 0 -D {bit}  (hold the button while plugging the board in)",
              max_baud=1_000_000),
    )
}


def board_names() -> tuple[str, ...]:
    return tuple(BOARDS)


def get_board(name) -> Board:
    """The `Board` called ``name`` (a `Board` is returned as it is)."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[name]
    except KeyError:
        raise HwgenError(f"unknown board {name!r}; expected one of {', '.join(BOARDS)}") from None
