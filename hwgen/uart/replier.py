"""The reply framer: a finished frame's reply -> bytes for the PHY, store and forward.

A reply starts (``start``) only once its whole payload is ready: OUTPUT / OUTPUTS payloads in the
reply buffer (``rd_offset`` presented one cycle before ``rd_data``: a block-RAM read port; the
framer keeps the next byte's address ahead, so a byte is offered every cycle the PHY takes one),
INFO / STATUS / ERROR payloads on ``fixed`` (INFO and STATUS fields are read as they are sent;
the host sends nothing that changes them while it waits for them). The frame goes out as
``SYNC CMD SEQ LEN_LO LEN_HI PAYLOAD CRC_LO CRC_HI`` (CRC-16/CCITT-FALSE over CMD..payload) with
no gap the framer causes; ``done`` strobes when the PHY takes the last byte.

Reply command: ERROR when ``rerr`` is not 0 (payload: ``rerr``, the request's command), else
INFO for PING, OUTPUT for STEP, OUTPUTS for RUN, STATUS for BEGIN / LOAD / COMMIT.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .crc import CRC16_INIT, crc16_next
from .protocol import INFO_BYTES, STATUS_BYTES, SYNC, Cmd

__all__ = ["ReplyFramer", "FIXED_BYTES"]

#: Bytes of the ``fixed`` payload input (the longest of INFO, STATUS, ERROR).
FIXED_BYTES = max(INFO_BYTES, STATUS_BYTES, 2)


class ReplyFramer(wiring.Component):
    """Replies -> bytes (see the module docstring).

    Members
    -------
    start : In(1), the oldest executed frame's reply is ready; ``cmd``, ``seq``, ``rerr``,
        ``rlen`` describe it and stay put until ``done``.
    fixed : In(8 * FIXED_BYTES), the INFO / STATUS / ERROR payload (LSB first).
    rd_offset : Out(16), rd_data : In(8): the reply buffer.
    tx_stream : Out(stream.Signature(8)), to the PHY.
    done : Out(1) strobe.
    """

    def __init__(self):
        super().__init__({
            "start": In(1), "cmd": In(8), "seq": In(8), "rerr": In(4), "rlen": In(16),
            "fixed": In(8 * FIXED_BYTES),
            "rd_offset": Out(16), "rd_data": In(8),
            "tx_stream": Out(stream.Signature(8)),
            "done": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        tx = self.tx_stream
        rcmd, n = Signal(8), Signal(16)
        from_ram = Signal()
        k = Signal(16)  # payload bytes sent
        crc = Signal(16)
        advance = Signal()  # a payload byte is taken
        # the reply buffer's address runs one byte ahead of what is offered
        m.d.comb += self.rd_offset.eq(Mux(advance, k + 1, k))

        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.sync += [k.eq(0), crc.eq(CRC16_INIT)]
                with m.If(self.start):
                    out = Signal(8)
                    size = Signal(16)
                    with m.If(self.rerr != 0):
                        m.d.comb += [out.eq(Cmd.ERROR), size.eq(2)]
                    with m.Elif(self.cmd == Cmd.PING):
                        m.d.comb += [out.eq(Cmd.INFO), size.eq(INFO_BYTES)]
                    with m.Elif(self.cmd == Cmd.STEP):
                        m.d.comb += [out.eq(Cmd.OUTPUT), size.eq(self.rlen)]
                    with m.Elif(self.cmd == Cmd.RUN):
                        m.d.comb += [out.eq(Cmd.OUTPUTS), size.eq(self.rlen)]
                    with m.Else():
                        m.d.comb += [out.eq(Cmd.STATUS), size.eq(STATUS_BYTES)]
                    m.d.sync += [rcmd.eq(out), n.eq(size),
                                 from_ram.eq((self.rerr == 0)
                                             & ((self.cmd == Cmd.STEP) | (self.cmd == Cmd.RUN)))]
                    m.next = "SYNC"
            header = (("SYNC", Const(SYNC, 8), "CMD"), ("CMD", rcmd, "SEQ"),
                      ("SEQ", self.seq, "LEN0"), ("LEN0", n[:8], "LEN1"),
                      ("LEN1", n[8:], "DATA"))
            for state, value, nxt in header:
                with m.State(state):
                    m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                    with m.If(tx.ready):
                        if state != "SYNC":
                            m.d.sync += crc.eq(crc16_next(crc, value))
                        m.next = nxt
                        if state == "LEN1":
                            with m.If(n == 0):
                                m.next = "CRC0"
            with m.State("DATA"):
                byte = Mux(from_ram, self.rd_data, self.fixed.word_select(k[:5], 8))
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(byte)]
                with m.If(tx.ready):
                    m.d.comb += advance.eq(1)
                    m.d.sync += [crc.eq(crc16_next(crc, byte)), k.eq(k + 1)]
                    with m.If(k == n - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc[:8])]
                with m.If(tx.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(crc[8:])]
                with m.If(tx.ready):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
