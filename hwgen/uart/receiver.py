"""The frame receiver: bytes from a PHY -> checked frames (header, length, CRC-16, timeout).

It takes every byte the moment it is offered (``rx_stream.ready`` is always 1: a PHY cannot hold
the host back), so it never causes an overrun itself. Per frame it reports, in the cycle of
``done``, the command, SEQ, payload length and an error code (0: accepted). Payload bytes go out
one a cycle on ``byte`` / ``take`` / ``index`` as they arrive; ``store`` says they belong in the
frame buffer (STEP and RUN), ``load_take`` / ``commit_take`` route them to the load engine.

Rejections (the frame then reaches nobody but the reply framer, as an ERROR):

- LEN wrong for CMD -> LENGTH, unknown CMD -> COMMAND, no free frame buffer when the header is
  in -> WINDOW: the rest of the frame is skipped until the line has been quiet for
  ``timeout_cycles`` (a corrupted LEN cannot be trusted);
- ``rx_error`` inside a frame -> FRAMING, ``overrun`` -> OVERRUN (then skipped as above);
- no byte for ``timeout_cycles`` inside a frame, or ``rx_abort`` -> TIMEOUT;
- CRC mismatch -> CRC; a LOAD that is not whole words -> LENGTH, a word outside its memory ->
  ADDRESS (``ld_partial`` / ``ld_bad`` from the load engine).

``done`` of a rejected frame waits for ``slot_free`` (its ERROR reply needs a buffer too); bytes
arriving meanwhile are dropped (they can only come from a host that exceeds the window).
Latency: ``done`` in the cycle after the frame's last CRC byte is offered. Bytes must come at
least 3 cycles apart (a UART byte takes 10 x divisor >= 40 cycles): the two cycles after LEN_HI
(CHECK, DECIDE) and the one after the last CRC byte (END) take no byte.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .crc import CRC16_INIT, crc16_next
from .protocol import LOAD_HEADER_BYTES, RUN_HEADER_BYTES, SYNC, Cmd, ErrorCode

__all__ = ["FrameReceiver"]


class FrameReceiver(wiring.Component):
    """Bytes -> frames (see the module docstring).

    Parameters
    ----------
    in_bytes : payload bytes of a STEP (one input transfer).
    max_steps : the most steps of a RUN frame.
    timeout_cycles : inter-byte timeout inside a frame, and the quiet time that ends a skip.
    loadable : accept BEGIN / LOAD / COMMIT.
    """

    def __init__(self, in_bytes: int, max_steps: int, timeout_cycles: int, loadable: bool):
        self._nin, self._max_steps = in_bytes, max_steps
        self._timeout, self._loadable = timeout_cycles, loadable
        super().__init__({
            "rx_stream": In(stream.Signature(8)),
            "rx_error": In(1), "rx_abort": In(1), "overrun": In(1),
            "slot_free": In(1),
            "ld_partial": In(1), "ld_bad": In(1),
            "byte": Out(8), "index": Out(16), "take": Out(1), "store": Out(1),
            "load_take": Out(1), "commit_take": Out(1),
            "done": Out(1), "cmd": Out(8), "seq": Out(8), "length": Out(16), "err": Out(4),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        got, byte = self.rx_stream.valid, self.rx_stream.payload
        m.d.comb += [self.rx_stream.ready.eq(1), self.byte.eq(byte)]
        cmd, length, index = self.cmd, self.length, self.index
        err = Signal(4)  # a rejection found while receiving
        end_err = Signal(4)  # or at the end (END)
        m.d.comb += self.err.eq(err | end_err)
        crc = Signal(16)
        crc_bad = Signal()
        # Flags registered a cycle ahead of the decisions that use them (timing: every decision
        # is a few LUTs deep from registers, never from the PHY's byte through a comparator).
        known = {c: Signal(name=f"is_{c.name.lower()}") for c in self._commands()}
        bad_cmd, bad_len, zero_len, at_last = Signal(), Signal(), Signal(), Signal()
        last = Signal(16)
        m.d.sync += at_last.eq(index == last)

        gap = Signal(range(self._timeout + 1))
        quiet = Signal()
        with m.If(got):
            m.d.sync += [gap.eq(self._timeout), quiet.eq(0)]
        with m.Elif(gap != 0):
            m.d.sync += [gap.eq(gap - 1), quiet.eq(gap == 1)]

        def take(nxt):
            m.d.sync += crc.eq(crc16_next(crc, byte))
            m.next = nxt

        def reject(code, nxt):
            m.d.sync += err.eq(code)
            m.next = nxt

        max_run = RUN_HEADER_BYTES + self._max_steps * self._nin
        with m.FSM() as fsm:
            with m.State("SYNC"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(CRC16_INIT), err.eq(0), crc_bad.eq(0)]
                    m.next = "CMD"
            for state in ("CMD", "SEQ", "LEN0", "LEN1", "DATA", "CRC0", "CRC1"):
                with m.State(state):
                    with m.If(self.rx_error):
                        reject(ErrorCode.FRAMING, "SKIP")
                    with m.Elif(self.overrun):
                        reject(ErrorCode.OVERRUN, "SKIP")
                    with m.Elif(self.rx_abort):
                        reject(ErrorCode.TIMEOUT, "FINISH")
                    with m.Elif(got):
                        if state == "CMD":
                            m.d.sync += [cmd.eq(byte), bad_cmd.eq(1)]
                            for c, flag in known.items():
                                m.d.sync += flag.eq(byte == c)
                                with m.If(byte == c):
                                    m.d.sync += bad_cmd.eq(0)
                            take("SEQ")
                        elif state == "SEQ":
                            m.d.sync += self.seq.eq(byte)
                            take("LEN0")
                        elif state == "LEN0":
                            m.d.sync += length[:8].eq(byte)
                            take("LEN1")
                        elif state == "LEN1":
                            m.d.sync += [length[8:].eq(byte), index.eq(0)]
                            take("CHECK")
                        elif state == "DATA":
                            m.d.comb += [self.take.eq(1),
                                         self.store.eq(known[Cmd.STEP] | known[Cmd.RUN])]
                            if self._loadable:
                                m.d.comb += [self.load_take.eq(known[Cmd.LOAD]),
                                             self.commit_take.eq(known[Cmd.COMMIT])]
                            m.d.sync += index.eq(index + 1)
                            take("DATA")
                            with m.If(at_last):
                                m.next = "CRC0"
                        elif state == "CRC0":
                            m.d.sync += crc_bad.eq(byte != crc[:8])
                            m.next = "CRC1"
                        else:  # CRC1
                            with m.If(byte != crc[8:]):
                                m.d.sync += crc_bad.eq(1)
                            m.next = "END"
                    with m.Elif(quiet):
                        reject(ErrorCode.TIMEOUT, "FINISH")
            with m.State("CHECK"):  # the header is in: check LEN for CMD (registered flags)
                ok = {Cmd.PING: length == 0, Cmd.STEP: length == self._nin,
                      Cmd.RUN: (length > RUN_HEADER_BYTES) & (length <= max_run),
                      Cmd.BEGIN: length == 0, Cmd.COMMIT: length == 8,
                      Cmd.LOAD: length > LOAD_HEADER_BYTES}
                good = 0
                for c, flag in known.items():
                    good = good | (flag & ok[c])
                m.d.sync += [bad_len.eq(~good), zero_len.eq(length == 0), last.eq(length - 1)]
                m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(bad_cmd):
                    reject(ErrorCode.COMMAND, "SKIP")
                with m.Elif(bad_len):
                    reject(ErrorCode.LENGTH, "SKIP")
                with m.Elif(~self.slot_free):
                    reject(ErrorCode.WINDOW, "SKIP")
                with m.Elif(zero_len):
                    m.next = "CRC0"
                with m.Else():
                    m.next = "DATA"
            with m.State("END"):  # the frame is in; its buffer was free since DECIDE
                m.d.comb += self.done.eq(1)
                m.next = "SYNC"
                with m.If(crc_bad):
                    m.d.comb += end_err.eq(ErrorCode.CRC)
                if self._loadable:
                    with m.Elif(known[Cmd.LOAD] & self.ld_partial):
                        m.d.comb += end_err.eq(ErrorCode.LENGTH)
                    with m.Elif(known[Cmd.LOAD] & self.ld_bad):
                        m.d.comb += end_err.eq(ErrorCode.ADDRESS)
            with m.State("SKIP"):  # the rest of a rejected frame: until the line is quiet
                with m.If(quiet & ~got):
                    m.next = "FINISH"
            with m.State("FINISH"):  # a rejected frame's ERROR needs a buffer
                with m.If(self.slot_free):
                    m.d.comb += self.done.eq(1)
                    m.next = "SYNC"
        m.d.comb += self.busy.eq(~fsm.ongoing("SYNC"))
        return m

    def _commands(self) -> list[Cmd]:
        cmds = [Cmd.PING, Cmd.STEP, Cmd.RUN]
        return cmds + ([Cmd.BEGIN, Cmd.LOAD, Cmd.COMMIT] if self._loadable else [])
