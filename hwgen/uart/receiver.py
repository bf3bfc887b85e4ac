"""The frame receiver: bytes from a PHY -> checked frames (header, length, CRC-16, timeout).

It takes every byte the moment it is offered (``rx_stream.ready`` is always 1: a PHY cannot hold
the host back), so it never causes an overrun itself. Per frame it reports, in the cycle of
``done``, the command, SEQ, payload length and an error code (0: accepted). Payload bytes go out
one a cycle on ``byte`` / ``take`` / ``index`` as they arrive; ``store`` says they belong in the
frame buffer (STEP and RUN), ``load_take`` / ``commit_take`` route them to the load engine.

Rejections (the frame then reaches nobody but the reply framer, as an ERROR):

- LEN wrong for CMD -> LENGTH, unknown CMD -> COMMAND, no free frame buffer when the header is
  in -> WINDOW: the rest of the frame is skipped until the line has been quiet for
  ``timeout_cycles`` (a corrupted LEN cannot be trusted) or the PHY ends a transfer (``rx_end``:
  SPI chip select released at a byte boundary; a host that reads the answer right away clocks
  filler bytes, so the line is never quiet);
- ``rx_error`` inside a frame -> FRAMING, ``overrun`` -> OVERRUN (then skipped as above);
- no byte for ``timeout_cycles`` (up to max(16, timeout / 8) more) inside a frame, or
  ``rx_abort`` -> TIMEOUT;
- CRC mismatch -> CRC; a LOAD that is not whole words -> LENGTH, a word outside its memory ->
  ADDRESS (``ld_partial`` / ``ld_bad`` from the load engine).

``done`` of a rejected frame waits for ``slot_free`` (its ERROR reply needs a buffer too); bytes
arriving meanwhile are dropped (they can only come from a host that exceeds the window).
Latency: every byte is registered on arrival; ``done`` comes 3 cycles after the frame's last CRC
byte is offered. Bytes must come at least 10 cycles apart (a UART byte takes 10 x divisor >= 40
cycles, an SPI byte 8 SCLK periods >= 32): the CRC-16 takes a byte's bits one a cycle in the 9
cycles after it (`hwgen.uart.crc.crc16_serial`); the three cycles after LEN_HI (CHECK, CHECK2,
DECIDE) and the two after the last CRC byte (END, DONE) take no byte.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from .crc import CRC16_INIT, crc16_serial
from .onehot import OneHot
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
            "rx_error": In(1), "rx_abort": In(1), "overrun": In(1), "rx_end": In(1),
            "slot_free": In(1),
            "ld_partial": In(1), "ld_bad": In(1),
            "byte": Out(8), "index": Out(16), "take": Out(1), "store": Out(1),
            "load_take": Out(1), "commit_take": Out(1),
            "done": Out(1), "cmd": Out(8), "seq": Out(8), "length": Out(16), "err": Out(4),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # every byte is registered first (timing: the PHY's fan-out ends here)
        got, byte, is_sync = Signal(), Signal(8), Signal()
        # ... with the PHY's strobes sorted into exclusive events: a byte, a damaged or lost
        # byte (``bad``, its code in ``bad_code``), a cut transfer (``cut``)
        bad, cut, bad_code = Signal(), Signal(), Signal(4)
        event = Signal()  # bad | cut, registered (timing)
        ended = Signal()  # the PHY's transfer ended at a byte boundary (SPI chip select)
        m.d.sync += ended.eq(self.rx_end)
        damaged = self.rx_error | self.overrun
        m.d.sync += [got.eq(self.rx_stream.valid & ~damaged & ~self.rx_abort),
                     byte.eq(self.rx_stream.payload),
                     is_sync.eq(self.rx_stream.payload == SYNC),
                     bad.eq(damaged), cut.eq(self.rx_abort & ~damaged),
                     event.eq(damaged | self.rx_abort),
                     bad_code.eq(Mux(self.rx_error, ErrorCode.FRAMING,
                                     Mux(self.overrun, ErrorCode.OVERRUN, ErrorCode.TIMEOUT)))]
        m.d.comb += [self.rx_stream.ready.eq(1), self.byte.eq(byte)]
        cmd, length, index = self.cmd, self.length, self.index
        err = Signal(4)  # why the frame is rejected (0: accepted)
        m.d.comb += self.err.eq(err)
        crc = Signal(16)
        # the received CRC bytes differ from the computed CRC's (each compared as it arrives:
        # the CRC holds every earlier byte by then)
        crc_bad, ne_lo = Signal(), Signal()
        # a byte enters the CRC from the cycle after it is taken, one bit a cycle (`crc16_serial`:
        # done 9 cycles after the take, before the next byte; ``byte`` holds it meanwhile, the
        # PHYs' payload registers change only with a new byte)
        crc_pend = Signal()
        m.d.sync += crc_pend.eq(0)
        crc16_serial(m, crc, crc_pend, byte)
        # Flags registered a cycle ahead of the decisions that use them (timing: every decision
        # is a few LUTs deep from registers, never from the PHY's byte through a comparator).
        known = {c: Signal(name=f"is_{c.name.lower()}") for c in self._commands()}
        bad_cmd, bad_len, zero_len = Signal(), Signal(), Signal()
        # payload bytes after the next one, counted down: negative at the last (timing: its sign
        # bit, no 16-bit comparator)
        # (as wide as the longest frame it accepts: a longer LEN is rejected before DATA; timing:
        # the carry chain of a narrower down counter is shorter)
        longest = 0xFFFF if self._loadable else RUN_HEADER_BYTES + self._max_steps * self._nin
        after = Signal(signed(bits_for(longest) + 1))
        at_last = after[-1]

        # the buffer state, registered (a cycle late is harmless: only this receiver takes a
        # free slot)
        slot_free = Signal()
        m.d.sync += slot_free.eq(self.slot_free)

        # the line is quiet once ceil(timeout / T) + 1 ticks of a free-running T-cycle
        # prescaler pass without a byte (between timeout and timeout + T cycles), T = 2^k the
        # smallest power of two from 16 that keeps the tick count at most 16: two short
        # counters instead of one long one (timing: the loaded, enabled tick counter stays
        # 5 bits, its carry chain unbroken, whatever the divisor), the count down to -1 (its
        # sign bit)
        k = max(4, bits_for(max(0, -(-self._timeout // 16) - 1)))
        pre, tick = Signal(k), Signal()
        m.d.sync += [pre.eq(pre - 1), tick.eq(pre == 0)]
        ticks = -(-self._timeout // 2**k) + 1
        gap = Signal(signed(bits_for(ticks) + 1))
        quiet = gap[-1]
        with m.If(got):
            m.d.sync += gap.eq(ticks - 1)
        with m.Elif(tick & ~quiet):
            m.d.sync += gap.eq(gap - 1)

        # One flip-flop per state (timing: no state decode in front of the enables). The seven
        # byte states of a frame are one state, FRAME, with the byte expected in a one-hot
        # ``phase``: the timeout and error exits are taken from FRAME alone.
        fsm = OneHot(m, ["SYNC", "FRAME", "CHECK", "CHECK2", "DECIDE", "END", "DONE", "SKIP",
                         "FINISH"], init="SYNC", name="rx")
        phases = ["CMD", "SEQ", "LEN0", "LEN1", "DATA", "CRC0", "CRC1"]
        phase = OneHot(m, phases, init="CMD", name="phase")

        def set_phase(name):
            m.d.sync += [phase.ongoing(p).eq(p == name) for p in phases]

        def take(nxt):
            m.d.sync += crc_pend.eq(1)
            phase.next(nxt)

        def reject(code, nxt):
            m.d.sync += err.eq(code)
            fsm.next(nxt)

        max_run = RUN_HEADER_BYTES + self._max_steps * self._nin
        len_ok = {"zero": length == 0, "step": length == self._nin,
                  "run": (length > RUN_HEADER_BYTES) & (length <= max_run),
                  "commit": length == 8, "load": length > LOAD_HEADER_BYTES}
        lens = {name: Signal(name=f"len_{name}") for name in len_ok}
        want = {Cmd.PING: "zero", Cmd.STEP: "step", Cmd.RUN: "run", Cmd.BEGIN: "zero",
                Cmd.COMMIT: "commit", Cmd.LOAD: "load"}
        with fsm.state("SYNC"):
            m.d.sync += [crc.eq(CRC16_INIT), err.eq(0), index.eq(0)]
            set_phase("CMD")
            with m.If(got & is_sync):
                fsm.next("FRAME")
        with fsm.state("FRAME"):
            # err is 0 while a frame arrives: written every cycle, no enable (timing)
            m.d.sync += err.eq(Mux(event, bad_code, Mux(~got & quiet, ErrorCode.TIMEOUT, 0)))
            with m.If(got):
                with phase.state("CMD"):
                    m.d.sync += [cmd.eq(byte), bad_cmd.eq(1)]
                    for c, flag in known.items():
                        m.d.sync += flag.eq(byte == c)
                        with m.If(byte == c):
                            m.d.sync += bad_cmd.eq(0)
                    take("SEQ")
                with phase.state("SEQ"):
                    m.d.sync += self.seq.eq(byte)
                    take("LEN0")
                with phase.state("LEN0"):
                    m.d.sync += length[:8].eq(byte)
                    take("LEN1")
                with phase.state("LEN1"):
                    m.d.sync += length[8:].eq(byte)
                    take("DATA")  # DECIDE makes it CRC0 for an empty payload
                    fsm.next("CHECK")
                with phase.state("DATA"):
                    m.d.comb += [self.take.eq(1),
                                 self.store.eq(known[Cmd.STEP] | known[Cmd.RUN])]
                    if self._loadable:
                        m.d.comb += [self.load_take.eq(known[Cmd.LOAD]),
                                     self.commit_take.eq(known[Cmd.COMMIT])]
                    m.d.sync += [index.eq(index + 1), after.eq(after - 1), crc_pend.eq(1)]
                    with m.If(at_last):
                        phase.next("CRC0")
                with phase.state("CRC0"):
                    m.d.sync += ne_lo.eq(byte != crc[:8])
                    phase.next("CRC1")
                with phase.state("CRC1"):
                    m.d.sync += crc_bad.eq(ne_lo | (byte != crc[8:]))
                    fsm.next("END")
            with m.Elif(bad):
                fsm.next("SKIP")
            with m.Elif(cut | quiet):
                fsm.next("FINISH")
        with fsm.state("CHECK"):  # the header is in: compare LEN (registered), then
            for name, cmp in lens.items():
                m.d.sync += cmp.eq(len_ok[name])
            m.d.sync += [zero_len.eq(length == 0), after.eq(length - 2)]
            fsm.next("CHECK2")
        with fsm.state("CHECK2"):  # ... match it to CMD (registered flags)
            good = 0
            for c, flag in known.items():
                good = good | (flag & lens[want[c]])
            m.d.sync += bad_len.eq(~good)
            fsm.next("DECIDE")
        with fsm.state("DECIDE"):  # phase: DATA
            with m.If(bad_cmd):
                reject(ErrorCode.COMMAND, "SKIP")
            with m.Elif(bad_len):
                reject(ErrorCode.LENGTH, "SKIP")
            with m.Elif(~slot_free):
                reject(ErrorCode.WINDOW, "SKIP")
            with m.Else():
                fsm.next("FRAME")
                with m.If(zero_len):
                    set_phase("CRC0")
        with fsm.state("END"):  # the frame is in; its buffer was free since DECIDE
            with m.If(crc_bad):
                m.d.sync += err.eq(ErrorCode.CRC)
            if self._loadable:
                with m.Elif(known[Cmd.LOAD] & self.ld_partial):
                    m.d.sync += err.eq(ErrorCode.LENGTH)
                with m.Elif(known[Cmd.LOAD] & self.ld_bad):
                    m.d.sync += err.eq(ErrorCode.ADDRESS)
            fsm.next("DONE")
        with fsm.state("DONE"):  # a registered strobe, with cmd, seq, length and err
            m.d.comb += self.done.eq(1)
            fsm.next("SYNC")
        with fsm.state("SKIP"):  # the rest of a rejected frame: until the line is quiet, or
            # the transfer ends (SPI: a host reading the answer clocks fillers, never quiet)
            with m.If((quiet | ended) & ~got):
                fsm.next("FINISH")
        with fsm.state("FINISH"):  # a rejected frame's ERROR needs a buffer
            with m.If(slot_free):
                fsm.next("DONE")
        m.d.comb += self.busy.eq(~fsm.ongoing("SYNC"))
        return m

    def _commands(self) -> list[Cmd]:
        cmds = [Cmd.PING, Cmd.STEP, Cmd.RUN]
        return cmds + ([Cmd.BEGIN, Cmd.LOAD, Cmd.COMMIT] if self._loadable else [])
