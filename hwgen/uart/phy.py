"""UART receiver and transmitter (8 data bits, no parity, 1 stop bit; LSB first).

Both take ``divisor`` = clock cycles per bit (clock frequency / baud rate, rounded): 12 MHz at
115200 baud is 104 (0.2% off), at 3 Mbaud 4; a 60 MHz PLL clock at 3 Mbaud 20. `uart_divisor`
picks it and refuses a baud rate the clock makes more than 2% off (naming the nearest rates it
can make). The receiver samples each bit in its middle (its two-flip-flop synchronizer's delay
is part of the start-bit count), so the sample point is off by at most one clock cycle plus the
accumulated baud error: at the 2% limit, 9.5 bits x 2% + 1 cycle stays inside the stop bit for
any ``divisor >= 4``, the smallest it allows (3 Mbaud from 12 MHz).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_int
from .onehot import OneHot

__all__ = ["UartRx", "UartTx", "UartPhy", "check_divisor", "uart_divisor", "MIN_DIVISOR",
           "MAX_BAUD_ERROR"]

#: The fewest clock cycles per bit the receiver works with.
MIN_DIVISOR = 4
#: The largest baud-rate error `uart_divisor` accepts (relative).
MAX_BAUD_ERROR = 0.02


def check_divisor(divisor) -> int:
    divisor = check_int("UART divisor", divisor)
    if divisor < MIN_DIVISOR:
        raise HwgenError(f"UART divisor must be at least {MIN_DIVISOR} clock cycles per bit, "
                         f"not {divisor}")
    return divisor


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``: the rounded ratio, or `HwgenError`
    when it is below `MIN_DIVISOR` or makes a rate more than `MAX_BAUD_ERROR` (2%) off ``baud``
    (the message names the nearest baud rates the clock makes, with their divisors)."""
    baud = check_int("Baud rate", baud, minimum=1)
    if not clock_hz > 0:
        raise HwgenError(f"Clock frequency must be positive, not {clock_hz!r}")
    mhz = f"{clock_hz / 1e6:g} MHz"
    d = round(clock_hz / baud)
    if d < MIN_DIVISOR:
        fastest = clock_hz / MIN_DIVISOR
        raise HwgenError(f"{baud} baud is too fast for a {mhz} clock: the UART needs at least "
                         f"{MIN_DIVISOR} clock cycles per bit, so at most {fastest:.0f} baud "
                         f"(divisor {MIN_DIVISOR})")
    error = abs(clock_hz / d - baud) / baud
    if error > MAX_BAUD_ERROR:
        near = sorted({max(MIN_DIVISOR, int(clock_hz // baud)), int(clock_hz // baud) + 1})
        rates = " or ".join(f"{clock_hz / k:.0f} baud (divisor {k})" for k in near)
        raise HwgenError(f"{baud} baud is {error:.1%} off what a {mhz} clock makes (divisor "
                         f"{d}: {clock_hz / d:.0f} baud; at most {MAX_BAUD_ERROR:.0%} works): "
                         f"the nearest rates it makes are {rates}; pick one of those or another "
                         "clock")
    return d


class UartRx(wiring.Component):
    """Serial line -> bytes.

    Members
    -------
    rx : In(1), the line (idle high); synchronized inside (two flip-flops).
    o_stream : Out(stream.Signature(8)); a received byte, held until taken.
    framing_error : Out(1), one-cycle pulse: a byte's stop bit was 0 (the byte is dropped; the
        receiver waits for the line to go idle again).
    overrun : Out(1), one-cycle pulse: a byte arrived while the previous one was still not taken
        (the new byte is dropped).
    """

    def __init__(self, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o_stream": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d))
        zero = Signal()  # timer == 0, as a register (timing)
        bit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        # one flip-flop per state (timing: no state decode in front of every enable)
        fsm = OneHot(m, ["IDLE", "START", "DATA", "STOP", "BREAK"], init="IDLE", name="rx")
        with fsm.state("IDLE"):
            with m.If(~rx):
                m.d.sync += [timer.eq(d // 2 - 1), zero.eq(d // 2 - 1 == 0)]
                fsm.next("START")
        with fsm.state("START"):
            # The middle of the start bit: still low, or it was a glitch.
            m.d.sync += [timer.eq(timer - 1), zero.eq(timer == 1)]
            with m.If(zero):
                m.d.sync += [timer.eq(d - 1), zero.eq(0), bit.eq(0)]
                with m.If(rx):
                    fsm.next("IDLE")
                with m.Else():
                    fsm.next("DATA")
        with fsm.state("DATA"):
            m.d.sync += [timer.eq(timer - 1), zero.eq(timer == 1)]
            with m.If(zero):
                m.d.sync += [timer.eq(d - 1), zero.eq(0), shreg.eq(Cat(shreg[1:], rx)),
                             bit.eq(bit + 1)]
                with m.If(bit == 7):
                    fsm.next("STOP")
        with fsm.state("STOP"):
            m.d.sync += [timer.eq(timer - 1), zero.eq(timer == 1)]
            with m.If(zero):
                with m.If(rx):
                    with m.If(self.o_stream.valid & ~self.o_stream.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o_stream.payload.eq(shreg),
                                     self.o_stream.valid.eq(1)]
                    fsm.next("IDLE")
                with m.Else():
                    m.d.comb += self.framing_error.eq(1)
                    fsm.next("BREAK")
        with fsm.state("BREAK"):
            with m.If(rx):
                fsm.next("IDLE")
        return m


class UartTx(wiring.Component):
    """Bytes -> serial line.

    Members
    -------
    i_stream : In(stream.Signature(8)); a byte is taken (ready) only when the line is free.
    tx : Out(1), the line (idle high).
    busy : Out(1), a byte is being sent.
    """

    def __init__(self, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({
            "i_stream": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        timer = Signal(range(d))
        zero = Signal()  # timer == 0, as a register (timing)
        bits = Signal(range(11))
        busy = Signal()  # bits != 0, as a register (``ready`` is its inverse: no logic)
        shreg = Signal(10, init=0x3FF)  # start, 8 data, stop; shifted out LSB first
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(busy)]
        with m.If(~busy):
            m.d.comb += self.i_stream.ready.eq(1)
            with m.If(self.i_stream.valid):
                m.d.sync += [
                    shreg.eq((self.i_stream.payload << 1) | (1 << 9)),
                    bits.eq(10),
                    busy.eq(1),
                    timer.eq(d - 1),
                    zero.eq(0),
                ]
        with m.Else():
            m.d.sync += [timer.eq(timer - 1), zero.eq(timer == 1)]
            with m.If(zero):
                m.d.sync += [timer.eq(d - 1), zero.eq(0), shreg.eq((shreg >> 1) | (1 << 9)),
                             bits.eq(bits - 1)]
                with m.If(bits == 1):
                    m.d.sync += busy.eq(0)
        return m


class UartPhy(wiring.Component):
    """The UART as a byte-stream PHY (docs/uart.md; the interface every link PHY implements).

    Parameters
    ----------
    divisor : clock cycles per bit (`check_divisor`).

    Members
    -------
    rx : In(1), the serial line from the host (idle high).
    tx : Out(1), the serial line to the host (idle high).
    rx_stream : Out(stream.Signature(8)), bytes from the host. The UART cannot hold the host back:
        a byte offered while ``ready`` is low is held until the next byte's stop bit; if it is
        still not taken then, the new byte is lost and ``overrun`` strobes.
    tx_stream : In(stream.Signature(8)), bytes to the host; taken when the transmitter is free
        (one byte every 10 bit times at most).
    rx_error : Out(1) strobe, a received byte had a stop bit of 0 (the byte is dropped).
    rx_abort : Out(1), always 0: a UART has no transfer boundary (the frame engine's inter-byte
        timeout covers a stream that stops).
    overrun : Out(1) strobe, a received byte was lost because ``rx_stream.ready`` stayed low.
    tx_busy : Out(1), a byte is on the line.
    """

    def __init__(self, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "rx_stream": Out(stream.Signature(8)),
            "tx_stream": In(stream.Signature(8)),
            "rx_error": Out(1),
            "rx_abort": Out(1),
            "overrun": Out(1),
            "tx_busy": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self._divisor)
        m.submodules.tx = tx = UartTx(self._divisor)
        wiring.connect(m, rx.o_stream, wiring.flipped(self.rx_stream))
        wiring.connect(m, wiring.flipped(self.tx_stream), tx.i_stream)
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            self.rx_error.eq(rx.framing_error),
            self.overrun.eq(rx.overrun),
            self.tx_busy.eq(tx.busy),
        ]
        return m
