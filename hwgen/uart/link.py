"""UART link: frames from the host become stream transfers into a core, and back (docs/uart.md).

The link owns a `UartRx` / `UartTx` pair and speaks the protocol of `hwgen.uart.protocol`: a STEP
frame's payload is presented as one transfer on ``o_stream`` (to the core), the core's next
``i_stream`` transfer goes back as an OUTPUT frame with the same sequence number. Every frame the
link cannot accept gets an ERROR frame instead, never silence:

- wrong checksum -> CRC; wrong length for the command -> LENGTH; unknown command -> COMMAND
  (after the line has been quiet for ``timeout_bits`` bit times, so the rest of the bad frame is
  skipped);
- a frame that stops arriving for ``timeout_bits`` bit times -> TIMEOUT (a lost byte);
- a bad stop bit inside a frame -> FRAMING.

Bytes that arrive while the link is busy with a request (waiting for the core or sending a reply)
are dropped: the host waits for each reply before sending the next request.
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_positive_int
from .phy import UartRx, UartTx, check_divisor
from .protocol import PROTOCOL_VERSION, SYNC, Cmd, ErrorCode, crc8

__all__ = ["UartLink", "crc8_next"]


def _crc8_matrix() -> list[int]:
    """CRC-8 (polynomial 0x07) of one byte is linear: bit i of the result is the XOR of the bits
    of ``crc ^ byte`` selected by mask i."""
    masks = []
    for i in range(8):
        mask = 0
        for j in range(8):
            if crc8(bytes([1 << j])) >> i & 1:
                mask |= 1 << j
        masks.append(mask)
    return masks


_CRC8_MASKS = _crc8_matrix()


def crc8_next(crc, byte):
    """CRC-8 (polynomial 0x07) of ``crc`` updated by one byte, as 8 XOR trees (`protocol.crc8`)."""
    v = crc ^ byte
    return Cat(*[
        functools.reduce(operator.xor, [v[j] for j in range(8) if mask >> j & 1])
        for mask in _CRC8_MASKS
    ])


class UartLink(wiring.Component):
    """Host frames over a UART <-> one stream transfer per frame.

    Parameters
    ----------
    in_bytes : payload bytes of a STEP frame (the core's input transfer, padded to bytes).
    out_bytes : payload bytes of an OUTPUT frame (the core's output transfer).
    divisor : clock cycles per bit (clock frequency / baud rate).
    timeout_bits : a frame whose next byte is this many bit times late is abandoned (TIMEOUT).

    Members
    -------
    rx : In(1), the serial line from the host (idle high).
    tx : Out(1), the serial line to the host (idle high).
    o_stream : Out(stream.Signature(8 * in_bytes)), towards the core.
    i_stream : In(stream.Signature(8 * out_bytes)), from the core.
    errors : Out(8), count of rejected frames (wraps), e.g. for an LED.
    busy : Out(1), a request is being handled.
    """

    def __init__(self, in_bytes: int, out_bytes: int, divisor: int, timeout_bits: int = 40):
        for what, v in (("Input byte count", in_bytes), ("Output byte count", out_bytes),
                        ("Timeout", timeout_bits)):
            check_positive_int(what, v, 0xFFFF)
        if timeout_bits < 12:
            raise HwgenError(f"Timeout must be at least 12 bit times, not {timeout_bits}")
        self._in_bytes, self._out_bytes = in_bytes, out_bytes
        self._divisor = check_divisor(divisor)
        self._timeout_bits = timeout_bits
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o_stream": Out(stream.Signature(8 * in_bytes)),
            "i_stream": In(stream.Signature(8 * out_bytes)),
            "errors": Out(8),
            "busy": Out(1),
        })

    @property
    def in_bytes(self) -> int:
        return self._in_bytes

    @property
    def out_bytes(self) -> int:
        return self._out_bytes

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout_cycles(self) -> int:
        return self._timeout_bits * self._divisor

    def elaborate(self, platform):
        m = Module()
        nin, nout = self._in_bytes, self._out_bytes
        m.submodules.rx = rxp = UartRx(self._divisor)
        m.submodules.tx = txp = UartTx(self._divisor)
        m.d.comb += [rxp.rx.eq(self.rx), self.tx.eq(txp.tx), rxp.o_stream.ready.eq(1)]
        got, byte = rxp.o_stream.valid, rxp.o_stream.payload

        cmd, seq = Signal(8), Signal(8)
        length = Signal(16)
        count = Signal(range(max(nin, 2)))
        crc = Signal(8)
        data = Signal(8 * nin)
        err = Signal(8)
        gap = Signal(range(self.timeout_cycles + 1))
        timed_out = Signal()
        m.d.comb += timed_out.eq(gap == self.timeout_cycles)

        # Reply: header fields, then rlen bytes of rbuf shifted out LSB first, then the CRC.
        rcmd, rlen = Signal(8), Signal(16)
        rbytes = max(nout, 5)
        rbuf = Signal(8 * rbytes)
        rcount = Signal(16)
        rcrc = Signal(8)
        info = Cat(Const(PROTOCOL_VERSION, 8), Const(nin, 16), Const(nout, 16))

        m.d.comb += self.o_stream.payload.eq(data)
        with m.If(got):
            m.d.sync += gap.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += gap.eq(gap + 1)

        def take(next_state):
            m.d.sync += crc.eq(crc8_next(crc, byte))
            m.next = next_state

        def reject(code):
            m.d.sync += [err.eq(code), self.errors.eq(self.errors + 1)]

        receiving = ("CMD", "SEQ", "LEN0", "LEN1", "DATA", "CRC")
        with m.FSM() as fsm:
            with m.State("SYNC"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += crc.eq(0)
                    m.next = "CMD"
            for state in receiving:
                with m.State(state):
                    with m.If(rxp.framing_error):
                        reject(ErrorCode.FRAMING)
                        m.next = "DRAIN"
                    with m.Elif(got):
                        if state == "CMD":
                            m.d.sync += cmd.eq(byte)
                            take("SEQ")
                        elif state == "SEQ":
                            m.d.sync += seq.eq(byte)
                            take("LEN0")
                        elif state == "LEN0":
                            m.d.sync += length[:8].eq(byte)
                            take("LEN1")
                        elif state == "LEN1":
                            n = Cat(length[:8], byte)
                            m.d.sync += [length[8:].eq(byte), count.eq(0)]
                            take("DRAIN")
                            with m.If(cmd == Cmd.PING):
                                with m.If(n == 0):
                                    m.next = "CRC"
                                with m.Else():
                                    reject(ErrorCode.LENGTH)
                            with m.Elif(cmd == Cmd.STEP):
                                with m.If(n == nin):
                                    m.next = "DATA"
                                with m.Else():
                                    reject(ErrorCode.LENGTH)
                            with m.Else():
                                reject(ErrorCode.COMMAND)
                        elif state == "DATA":
                            m.d.sync += [data.eq(Cat(data[8:], byte)), count.eq(count + 1)]
                            m.d.sync += crc.eq(crc8_next(crc, byte))
                            with m.If(count == nin - 1):
                                m.next = "CRC"
                        else:  # CRC
                            with m.If(byte != crc):
                                reject(ErrorCode.CRC)
                                m.next = "ERROR"
                            with m.Elif(cmd == Cmd.PING):
                                m.d.sync += [rcmd.eq(Cmd.INFO), rlen.eq(5), rbuf.eq(info)]
                                m.next = "SEND"
                            with m.Else():
                                m.next = "CORE_IN"
                    with m.Elif(timed_out):
                        reject(ErrorCode.TIMEOUT)
                        m.next = "ERROR"
            with m.State("DRAIN"):
                # Skip the rest of a rejected frame: wait until the line has been quiet.
                with m.If(timed_out & ~got):
                    m.next = "ERROR"
            with m.State("ERROR"):
                m.d.sync += [rcmd.eq(Cmd.ERROR), rlen.eq(2), rbuf.eq(Cat(err, cmd))]
                m.next = "SEND"
            with m.State("CORE_IN"):
                m.d.comb += self.o_stream.valid.eq(1)
                with m.If(self.o_stream.ready):
                    m.next = "CORE_OUT"
            with m.State("CORE_OUT"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    m.d.sync += [rcmd.eq(Cmd.OUTPUT), rlen.eq(nout),
                                 rbuf.eq(self.i_stream.payload)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.sync += [rcount.eq(0), rcrc.eq(0)]
                m.next = "TX_SYNC"
            header = (("TX_SYNC", Const(SYNC, 8), "TX_CMD"), ("TX_CMD", rcmd, "TX_SEQ"),
                      ("TX_SEQ", seq, "TX_LEN0"), ("TX_LEN0", rlen[:8], "TX_LEN1"),
                      ("TX_LEN1", rlen[8:], "TX_DATA"))
            for state, value, nxt in header:
                with m.State(state):
                    m.d.comb += [txp.i_stream.valid.eq(1), txp.i_stream.payload.eq(value)]
                    with m.If(txp.i_stream.ready):
                        if state != "TX_SYNC":
                            m.d.sync += rcrc.eq(crc8_next(rcrc, value))
                        m.next = nxt
            with m.State("TX_DATA"):
                with m.If(rcount == rlen):
                    m.next = "TX_CRC"
                with m.Else():
                    m.d.comb += [txp.i_stream.valid.eq(1), txp.i_stream.payload.eq(rbuf[:8])]
                    with m.If(txp.i_stream.ready):
                        m.d.sync += [rcrc.eq(crc8_next(rcrc, rbuf[:8])), rbuf.eq(rbuf >> 8),
                                     rcount.eq(rcount + 1)]
            with m.State("TX_CRC"):
                m.d.comb += [txp.i_stream.valid.eq(1), txp.i_stream.payload.eq(rcrc)]
                with m.If(txp.i_stream.ready):
                    m.next = "TX_WAIT"
            with m.State("TX_WAIT"):
                with m.If(~txp.busy & ~txp.i_stream.valid):
                    m.next = "SYNC"
        m.d.comb += self.busy.eq(~fsm.ongoing("SYNC"))
        return m
