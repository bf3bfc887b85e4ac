"""UART link: a `UartPhy` and a `FrameEngine` (docs/uart.md).

The PHY turns the serial pins into byte streams; the frame engine (`hwgen.uart.engine`) speaks
the protocol of `hwgen.uart.protocol` on those streams and drives the core's streams and, for a
loadable core, its load port. The engine's inter-byte timeout is ``timeout_bits`` bit times.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_positive_int
from .engine import FrameEngine
from .loader import LoadSpec
from .phy import UartPhy, check_divisor

__all__ = ["UartLink", "LoadSpec"]


class UartLink(wiring.Component):
    """Host frames over a UART <-> stream transfers of a core.

    Parameters
    ----------
    in_bytes : payload bytes of one input transfer of the core (padded to bytes).
    out_bytes : payload bytes of one output transfer of the core.
    divisor : clock cycles per bit (clock frequency / baud rate).
    timeout_bits : a frame whose next byte is this many bit times late is abandoned (TIMEOUT).
    load : a `LoadSpec` for a loadable core (adds ``load`` and ``loaded``), or None.
    max_steps, class_field : as `FrameEngine` (the most steps of a RUN frame; where the class is
        in the output transfer, for RUN MODE 2).

    Members
    -------
    rx : In(1), the serial line from the host (idle high).
    tx : Out(1), the serial line to the host (idle high).
    o_stream : Out(stream.Signature(8 * in_bytes)), towards the core.
    i_stream : In(stream.Signature(8 * out_bytes)), from the core.
    errors : Out(8), count of rejected frames (wraps), e.g. for an LED.
    busy : Out(1), a request is being handled.
    """

    def __init__(self, in_bytes: int, out_bytes: int, divisor: int, timeout_bits: int = 40,
                 load: LoadSpec | None = None, *, max_steps: int | None = None,
                 class_field: tuple[int, int] | None = None):
        check_positive_int("Timeout", timeout_bits, 0xFFFF)
        if timeout_bits < 12:
            raise HwgenError(f"Timeout must be at least 12 bit times, not {timeout_bits}")
        for what, v in (("Input byte count", in_bytes), ("Output byte count", out_bytes)):
            check_positive_int(what, v, 0xFFFF)
        self._divisor = check_divisor(divisor)
        self._timeout_bits = timeout_bits
        self._args = (in_bytes, out_bytes)
        self._kw = dict(timeout_cycles=timeout_bits * divisor, load=load, max_steps=max_steps,
                        class_field=class_field)
        if max_steps is not None:
            check_positive_int("Steps per RUN frame", max_steps, 255)
        members = {
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o_stream": Out(stream.Signature(8 * in_bytes)),
            "i_stream": In(stream.Signature(8 * out_bytes)),
            "errors": Out(8),
            "busy": Out(1),
        }
        members.update(FrameEngine.load_members(load))
        super().__init__(members)

    @property
    def in_bytes(self) -> int:
        return self._args[0]

    @property
    def out_bytes(self) -> int:
        return self._args[1]

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout_cycles(self) -> int:
        return self._kw["timeout_cycles"]

    def elaborate(self, platform):
        m = Module()
        m.submodules.phy = phy = UartPhy(self._divisor)
        m.submodules.engine = eng = FrameEngine(*self._args, **self._kw)
        wiring.connect(m, phy.rx_stream, eng.rx_stream)
        wiring.connect(m, eng.tx_stream, phy.tx_stream)
        wiring.connect(m, eng.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.i_stream), eng.i_stream)
        m.d.comb += [
            phy.rx.eq(self.rx),
            self.tx.eq(phy.tx),
            eng.rx_error.eq(phy.rx_error),
            eng.rx_abort.eq(phy.rx_abort),
            eng.overrun.eq(phy.overrun),
            self.errors.eq(eng.errors),
            self.busy.eq(eng.busy),
        ]
        if "load" in self.signature.members:
            wiring.connect(m, eng.load, wiring.flipped(self.load))
            m.d.comb += self.loaded.eq(eng.loaded)
        return m
