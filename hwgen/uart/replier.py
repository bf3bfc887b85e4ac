"""The reply framer: a finished frame's reply -> bytes for the PHY, store and forward.

A reply starts (``start``) only once its whole payload is ready: OUTPUT / OUTPUTS payloads in the
reply buffer (``rd_offset``: a block-RAM read port and a register, data 2 cycles after the
address), INFO /
STATUS on ``info`` / ``status`` (read as they are sent; the host sends nothing that changes them
while it waits for them), ERROR from ``rerr`` and ``cmd``. The frame goes out as
``SYNC CMD SEQ LEN_LO LEN_HI PAYLOAD CRC_LO CRC_HI`` (CRC-16/CCITT-FALSE over CMD..payload).
``tx_stream.payload`` is a register, filled a byte ahead: the next byte is offered at most 10
cycles after the PHY takes one, once the CRC-16 has taken that byte's bits (one a cycle,
`hwgen.uart.crc.crc16_serial`; a UART byte lasts 10 x divisor >= 40 cycles, an SPI byte >= 32).
``done`` strobes the cycle after the last byte is taken.

Reply command: ERROR when ``rerr`` is not 0 (payload: ``rerr``, the request's command), else
INFO for PING, OUTPUT for STEP, OUTPUTS for RUN, STATUS for BEGIN / LOAD / COMMIT.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from .crc import CRC16_INIT, crc16_serial
from .onehot import OneHot
from .protocol import INFO_BYTES, STATUS_BYTES, SYNC, Cmd

__all__ = ["ReplyFramer"]


class ReplyFramer(wiring.Component):
    """Replies -> bytes (see the module docstring).

    Members
    -------
    start : In(1), the oldest executed frame's reply is ready; ``cmd``, ``seq``, ``rerr``,
        ``rlen`` describe it and stay put until ``done``.
    info : In(8 * INFO_BYTES), status : In(8 * STATUS_BYTES), LSB first.
    rd_offset : Out(16), rd_data : In(8): the reply buffer.
    tx_stream : Out(stream.Signature(8)), to the PHY.
    done : Out(1) strobe.
    """

    def __init__(self, max_payload: int = 0xFFFF):
        #: the longest reply payload (``rlen``, INFO, STATUS, ERROR): the width of the byte
        #: counter (timing: a shorter carry chain)
        self._max_payload = max(max_payload, INFO_BYTES, STATUS_BYTES, 2)
        super().__init__({
            "start": In(1), "cmd": In(8), "seq": In(8), "rerr": In(4), "rlen": In(16),
            "info": In(8 * INFO_BYTES), "status": In(8 * STATUS_BYTES),
            "rd_offset": Out(16), "rd_data": In(8),
            "tx_stream": Out(stream.Signature(8)),
            "done": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        tx = self.tx_stream
        wide = bits_for(self._max_payload)  # the payload length and byte counter
        rcmd, n = Signal(8), Signal(wide)
        is_err, is_info, is_step, from_ram = Signal(), Signal(), Signal(), Signal()
        # the ERROR payload: the error code, the request's command (they stay put until done)
        error = Cat(self.rerr, Const(0, 4), self.cmd)
        k = Signal(wide)  # payload bytes offered
        # payload bytes still to offer after the next one, counted down (set while CMD is
        # offered): ``last`` (k == n) is its sign bit, registered (timing: no 16-bit comparator)
        rem = Signal(signed(bits_for(self._max_payload) + 1))
        last = Signal()
        crc = Signal(16)
        settle = Signal(2)  # cycles until rd_data shows offset k (2 after it is presented)
        counted = Signal()  # the byte offered enters the CRC
        m.d.comb += self.rd_offset.eq(k)
        m.d.sync += last.eq(rem[-1])
        taken = tx.valid & tx.ready
        with m.If(taken):
            m.d.sync += tx.valid.eq(0)
        # a counted byte enters the CRC one bit a cycle once taken (`crc16_serial`; the PHY
        # takes the next byte no sooner than a byte time later: >= 32 cycles)
        crc_idle = crc16_serial(m, crc, taken & counted, tx.payload)
        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        free = Signal()  # the output register may take the next byte (and the CRC is current)
        m.d.comb += free.eq(~tx.valid & (settle == 0) & crc_idle)

        # byte k of an INFO / STATUS / ERROR payload, picked in two registered steps (timing:
        # k settles for 3 cycles): the INFO or STATUS byte, then the payload's
        fixed, table_b = Signal(8), Signal(8)
        m.d.sync += [table_b.eq(Mux(is_info, self.info.word_select(k[:5], 8),
                                    self.status.word_select(k[:3], 8))),
                     fixed.eq(Mux(is_err, error.word_select(k[:1], 8), table_b))]

        # the byte each state offers: the output register takes the one of the current state
        # whenever it is free (an AND-OR of one-hot states, enabled by ``free`` alone: timing;
        # its content only counts once ``valid`` is set)
        sources = []

        def offer(value, nxt, count=True):
            """Put ``value`` in the output register once it is free, and go to ``nxt`` (the FSM
            runs a byte ahead of the PHY)."""
            sources.append((fsm.ongoing(fsm.current), value, count))
            with m.If(free):
                m.d.sync += tx.valid.eq(1)
                fsm.next(nxt)

        # one flip-flop per state (timing: no state decode in front of the enables)
        fsm = OneHot(m, ["IDLE", "FLAGS", "KIND", "SYNC", "CMD", "SEQ", "LEN0", "LEN1", "DATA",
                         "CRC0", "CRC1", "FLUSH"], init="IDLE", name="tx")
        with fsm.state("IDLE"):
            m.d.sync += [k.eq(0), crc.eq(CRC16_INIT)]
            with m.If(self.start):
                fsm.next("FLAGS")
        with fsm.state("FLAGS"):  # from the request's command and error
            rerr, cmd = self.rerr, self.cmd
            m.d.sync += [
                is_err.eq(rerr != 0),
                is_info.eq(cmd == Cmd.PING),
                is_step.eq(cmd == Cmd.STEP),
                from_ram.eq((rerr == 0) & ((cmd == Cmd.STEP) | (cmd == Cmd.RUN))),
            ]
            fsm.next("KIND")
        with fsm.state("KIND"):  # registered flags -> command and length
            with m.If(is_err):
                m.d.sync += [rcmd.eq(Cmd.ERROR), n.eq(2)]
            with m.Elif(is_info):
                m.d.sync += [rcmd.eq(Cmd.INFO), n.eq(INFO_BYTES)]
            with m.Elif(from_ram):
                m.d.sync += [rcmd.eq(Mux(is_step, Cmd.OUTPUT, Cmd.OUTPUTS)),
                             n.eq(self.rlen)]
            with m.Else():
                m.d.sync += [rcmd.eq(Cmd.STATUS), n.eq(STATUS_BYTES)]
            fsm.next("SYNC")
        header = (("SYNC", Const(SYNC, 8), "CMD"), ("CMD", rcmd, "SEQ"),
                  ("SEQ", self.seq, "LEN0"), ("LEN0", n[:8], "LEN1"),
                  ("LEN1", n[8:].as_unsigned(), "DATA"))
        for state, value, nxt in header:
            with fsm.state(state):
                if state == "CMD":
                    m.d.sync += rem.eq(n - 1)
                offer(value, nxt, count=state != "SYNC")
        with fsm.state("DATA"):  # k: payload bytes offered (last: k == n, registered)
            with m.If(last):
                fsm.next("CRC0")
            with m.Elif(free):
                offer(Mux(from_ram, self.rd_data, fixed), "DATA")
                m.d.sync += [k.eq(k + 1), rem.eq(rem - 1), settle.eq(3)]
        with fsm.state("CRC0"):  # once the last payload byte is taken (and in the CRC)
            offer(crc[:8], "CRC1", count=False)
        with fsm.state("CRC1"):
            offer(crc[8:], "FLUSH", count=False)
        with fsm.state("FLUSH"):  # done once the last byte has been taken (registered)
            with m.If(~tx.valid):
                m.d.comb += self.done.eq(1)
                fsm.next("IDLE")
        pay, counts = Const(0, 8), Const(0, 1)
        for bit, value, count in sources:
            pay = pay | Mux(bit, value, 0)
            if count:
                counts = counts | bit
        with m.If(free):
            m.d.sync += [tx.payload.eq(pay), counted.eq(counts)]
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
