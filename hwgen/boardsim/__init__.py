"""A simulated board on Verilator: the board-level design (link + core, one clock domain ``sync``,
the PLL output in hardware) compiled with a C++ host model, behind the pyserial interface.

- `VerilatedBoard` (port.py): ``write`` / ``read`` / ``in_waiting`` / ``flush`` /
  ``reset_input_buffer`` / ``close``, ``timeout`` and ``sim_seconds`` in **simulated** seconds,
  fault injection (``drop``, ``corrupt``), a bounded receive buffer that reports overflow
  (``idle`` models a host that stops reading), a progress callback.
- harness.cpp: the Verilated design plus the host's side of the wire: a UART 8N1 line
  (bit-banged at the divisor, the device's bytes decoded, framing errors counted) or an SPI mode-0
  controller (MSB first, chip select per transfer, SCLK half period with optional seeded jitter,
  full duplex: written bytes go out on MOSI, a waiting host clocks filler 0x00 bytes).
- build.py: the design's Verilog and the compiled executable, cached by content.
- `open_sim_board`: what ``hwgen run --port sim`` calls.

amaranth.sim (`hwgen.uart.sim.SimSerial`) stays for small unit tests; docs/simulation.md gives
the speed of both.
"""

from __future__ import annotations

from .build import BoardBuild, board_verilog, build_board_sim, cache_root, link_kind
from .port import BLOCK_LIMIT_S, ReceiveOverflow, SpiClock, VerilatedBoard

__all__ = ["VerilatedBoard", "SpiClock", "ReceiveOverflow", "BLOCK_LIMIT_S", "BoardBuild",
           "build_board_sim", "board_verilog", "link_kind", "cache_root", "open_sim_board"]


def open_sim_board(design, *, clock_hz: float, divisor: int | None = None,
                   spi: SpiClock | None = None, timeout: float = 1.0, progress=None,
                   **options) -> VerilatedBoard:
    """The simulated board of ``design`` (see `VerilatedBoard`) for ``hwgen run --port sim``:
    ``clock_hz`` the core clock the build runs at, ``divisor`` the UART's clock cycles per bit
    (UART designs) or ``spi`` the controller's timing (SPI designs), ``timeout`` in simulated
    seconds, ``progress(msg)`` every few wall seconds. ``options``: the other `VerilatedBoard`
    keywords (``drop``, ``corrupt``, ``rx_buffer``, ``progress_s``, ``cache_dir``)."""
    return VerilatedBoard(design, clock_hz=clock_hz, divisor=divisor, spi=spi, timeout=timeout,
                          progress=progress, **options)
