"""The board top: clock, link and accelerator on a board's pins.

`BoardTop` drives the ``sync`` domain from the board's PLL (`hwgen.board.clocking.PllClock`;
or the oscillator, ``clock=None``), puts the core behind a `hwgen.uart.board.LinkedCore` on the
platform's ``uart`` resource (or a `hwgen.uart.spi.SpiLinkedCore` on the board's SPI pins), and
lights the board's LED (the OrangeCrab's green ``rgb_led``)
while a request is handled. Link and core share the one clock: the UART divisor is counted in
that clock's cycles.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Module
from amaranth.lib import io, wiring

from ..spec import HwgenError, check_positive_int
from ..uart.phy import uart_divisor
from .clocking import PllClock
from .pll import PllConfig

__all__ = ["BoardTop", "divisor_ok", "LINKS"]

#: The host links a board build offers (``hwgen build --link``).
LINKS = ("uart", "spi")

def divisor_ok(clock_hz: float, baud: int) -> bool:
    """Whether `uart_divisor` accepts ``baud`` at ``clock_hz``."""
    try:
        uart_divisor(clock_hz, baud)
    except HwgenError:
        return False
    return True


class BoardTop(wiring.Component):
    """A core on a board's UART (no ports: pins come from ``platform.request``).

    Parameters
    ----------
    core : the accelerator (or any core `LinkedCore` takes).
    baud : UART baud rate; the divisor is derived from the clock (`uart_divisor`).
    shape_id : what a loadable device reports (`hwgen.shape.shape_id`).
    clock : the PLL setting of the ``sync`` domain, or None for the board oscillator.
    link : ``uart`` (the platform's ``uart``) or ``spi`` (an SPI target on the pins of
        `hwgen.board.catalog.Board.spi_pins` of ``board``, docs/spi.md).
    board : the board's name (the SPI pins).
    sclk_hz : the fastest SPI clock the controller will use (default: a quarter of the core
        clock, the most `SpiPhy` follows).
    constraint_mhz : the clock nextpnr is asked to meet when above the PLL's (`PllClock`).
    """

    def __init__(self, core, baud: int = 115200, shape_id: int = 0, *,
                 clock: PllConfig | None = None, link: str = "uart", board: str | None = None,
                 sclk_hz: float | None = None, constraint_mhz: float | None = None):
        self.core, self.baud = core, check_positive_int("Baud rate", baud)
        self.shape_id = int(shape_id)
        self.clock = clock
        if link not in LINKS:
            raise HwgenError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
        self.link, self.board, self.sclk_hz = link, board, sclk_hz
        self.constraint_mhz = constraint_mhz
        super().__init__({})

    def clock_hz(self, platform) -> float:
        return (platform.default_clk_frequency if self.clock is None
                else float(self.clock.f_out) * 1e6)

    def divisor(self, platform) -> int:
        return uart_divisor(self.clock_hz(platform), self.baud)

    def max_sclk_hz(self, platform) -> float:
        """The fastest SPI clock the target follows at this core clock (`SpiPhy`)."""
        from ..uart.spi import MIN_CLOCK_RATIO

        return self.clock_hz(platform) / MIN_CLOCK_RATIO

    def elaborate(self, platform):
        m = Module()
        # iCE40: an asynchronous domain reset (asserted at once, released synchronously by the
        # clock's reset synchronizer, on a global buffer). A synchronous one enters the LUTs of
        # every flip-flop with a clock enable (the UP5K's SB_DFFESR resets only when enabled, so
        # Yosys ORs the reset into the enable): that was an iCE40 critical path (18.7 ns, from
        # the synchronizer through the global buffer and two LUTs to a counter's enable).
        from amaranth.vendor import SiliconBluePlatform

        ice40 = isinstance(platform, SiliconBluePlatform)
        m.domains.sync = sync = ClockDomain("sync", async_reset=ice40)
        m.submodules.clock = PllClock(self.clock, platform.default_clk, sync.clk,
                                      constraint_mhz=self.constraint_mhz)
        if self.link == "uart":
            linked = self._uart(m, platform)
        else:
            linked = self._spi(m, platform)
        names = {r.name for r in platform.resources.values()}
        led = None
        if "led" in names:
            led = platform.request("led", 0, dir="-")
        elif "rgb_led" in names:
            led = platform.request("rgb_led", 0, dir="-").g
        if led is not None:
            m.submodules.led_buffer = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(linked.busy)
        return m

    def _uart(self, m: Module, platform):
        from ..uart.board import LinkedCore

        m.submodules.linked = linked = LinkedCore(self.core, self.divisor(platform),
                                                  shape_id=self.shape_id)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [linked.rx.eq(rx.i), tx.o.eq(linked.tx)]
        return linked

    def _spi(self, m: Module, platform):
        from ..uart.spi import SpiLinkedCore, spi_target_resource

        sclk = self.sclk_hz or self.max_sclk_hz(platform)
        m.submodules.linked = linked = SpiLinkedCore(self.core, self.clock_hz(platform), sclk,
                                                     shape_id=self.shape_id)
        platform.add_resources([spi_target_resource(self.board)])
        pins = platform.request("spi_target", 0, dir="-")
        for name in ("cs_n", "mosi", "sclk"):
            m.submodules[f"{name}_buffer"] = buf = io.Buffer("i", getattr(pins, name))
            m.d.comb += getattr(linked, name).eq(buf.i)
        m.submodules.miso_buffer = miso = io.Buffer("o", pins.miso)
        m.d.comb += miso.o.eq(linked.miso)
        return linked
