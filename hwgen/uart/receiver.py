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
Latency: ``done`` in the cycle the frame's last CRC byte is offered.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
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
        err = Signal(4)  # a rejection found while receiving
        self._crc_err = Signal(4)  # or at the end (CRC1)
        m.d.comb += self.err.eq(err | self._crc_err)
        crc = Signal(16)
        crc_bad = Signal()
        gap = Signal(range(self._timeout + 1))
        quiet = Signal()
        m.d.comb += quiet.eq(gap == self._timeout)
        with m.If(got):
            m.d.sync += gap.eq(0)
        with m.Elif(~quiet):
            m.d.sync += gap.eq(gap + 1)

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
                        self._byte(m, state, byte, take, reject, crc, crc_bad, max_run)
                    with m.Elif(quiet):
                        reject(ErrorCode.TIMEOUT, "FINISH")
            with m.State("SKIP"):  # the rest of a rejected frame: until the line is quiet
                with m.If(quiet & ~got):
                    m.next = "FINISH"
            with m.State("FINISH"):  # a rejected frame's ERROR needs a buffer
                with m.If(self.slot_free):
                    m.d.comb += self.done.eq(1)
                    m.next = "SYNC"
        m.d.comb += self.busy.eq(~fsm.ongoing("SYNC"))
        return m

    def _byte(self, m, state, byte, take, reject, crc, crc_bad, max_run):
        """What a byte does in a receiving ``state``."""
        cmd, length, index = self.cmd, self.length, self.index
        if state == "CMD":
            m.d.sync += cmd.eq(byte)
            take("SEQ")
        elif state == "SEQ":
            m.d.sync += self.seq.eq(byte)
            take("LEN0")
        elif state == "LEN0":
            m.d.sync += length[:8].eq(byte)
            take("LEN1")
        elif state == "LEN1":
            n = Cat(length[:8], byte)
            m.d.sync += [length[8:].eq(byte), index.eq(0)]
            take("DATA")
            ok = {Cmd.PING: n == 0, Cmd.STEP: n == self._nin,
                  Cmd.RUN: (n > RUN_HEADER_BYTES) & (n <= max_run)}
            if self._loadable:
                ok.update({Cmd.BEGIN: n == 0, Cmd.COMMIT: n == 8,
                           Cmd.LOAD: n > LOAD_HEADER_BYTES})
            with m.Switch(cmd):
                for c, good in ok.items():
                    with m.Case(c):
                        with m.If(~good):
                            reject(ErrorCode.LENGTH, "SKIP")
                        with m.Elif(~self.slot_free):
                            reject(ErrorCode.WINDOW, "SKIP")
                        with m.Elif(n == 0):
                            m.next = "CRC0"
                with m.Default():
                    reject(ErrorCode.COMMAND, "SKIP")
        elif state == "DATA":
            m.d.comb += [self.take.eq(1), self.store.eq((cmd == Cmd.STEP) | (cmd == Cmd.RUN))]
            if self._loadable:
                m.d.comb += [self.load_take.eq(cmd == Cmd.LOAD),
                             self.commit_take.eq(cmd == Cmd.COMMIT)]
            m.d.sync += index.eq(index + 1)
            take("DATA")
            with m.If(index == length - 1):
                m.next = "CRC0"
        elif state == "CRC0":
            m.d.sync += crc_bad.eq(byte != crc[:8])
            m.next = "CRC1"
        else:  # CRC1: the frame is in; its buffer was free since LEN1
            m.d.comb += self.done.eq(1)
            m.next = "SYNC"
            with m.If(crc_bad | (byte != crc[8:])):
                m.d.comb += self._crc_err.eq(ErrorCode.CRC)
            if self._loadable:
                with m.Elif((cmd == Cmd.LOAD) & self.ld_partial):
                    m.d.comb += self._crc_err.eq(ErrorCode.LENGTH)
                with m.Elif((cmd == Cmd.LOAD) & self.ld_bad):
                    m.d.comb += self._crc_err.eq(ErrorCode.ADDRESS)
