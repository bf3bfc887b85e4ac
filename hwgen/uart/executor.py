"""The executor: runs a received frame's steps through the core and writes the reply payload.

It takes the oldest received frame (``start``, with the frame's ``cmd`` / ``length`` / ``err``)
and ends it with one ``done`` strobe carrying ``rerr`` (0, or why the frame was refused) and
``rlen`` (the reply payload bytes it wrote, for STEP / RUN). Nothing reaches the core unless the
frame was accepted by the receiver, the device is ``loaded``, and a RUN's MODE and COUNT are
valid (1 <= COUNT <= max_steps, LEN = 2 + COUNT x in_bytes): else ``done`` comes with NOT_LOADED,
LENGTH or MODE before any transfer, so a refused frame never advances the core.

Taking a frame takes 2 cycles, checking a RUN 8 + COUNT more. Per step: ``in_bytes + 2`` cycles
to read the input transfer out of the frame buffer (``rd_data`` comes 2 cycles after its
``rd_offset``: a block-RAM read port and a register after it), the
``o_stream`` handshake, then, once the core offers its output, one cycle per reply byte
written and one before them (``out_bytes`` for MODE 0 / 1, ``class_bytes`` for MODE 2: each
byte is picked out of the output a cycle before it is written); ``i_stream.ready`` is raised
in the cycle of the last byte
(the core holds its payload until then, as a stream must); a STEP / RUN frame's ``done`` comes 2
cycles after its last reply byte. MODE 1 writes every step's output
over the same bytes, so the last one remains. Load commands and PING end as soon as the load
engine is ``load_idle`` (so STATUS shows every word of the frame).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..spec import HwgenError
from .onehot import OneHot, pair_differences
from .protocol import RUN_HEADER_BYTES, Cmd, ErrorCode, Mode

__all__ = ["Executor"]


class Executor(wiring.Component):
    """Frames -> core transfers -> reply payloads (see the module docstring).

    Parameters
    ----------
    in_bytes, out_bytes : the core's transfer sizes in bytes.
    max_steps : the most steps of a RUN frame.
    class_field : (bit offset, bits) of the class in the core's output transfer, or None (a
        model without an argmax: MODE 2 is refused with MODE).
    """

    def __init__(self, in_bytes: int, out_bytes: int, max_steps: int,
                 class_field: tuple[int, int] | None):
        self._nin, self._nout, self._max_steps = in_bytes, out_bytes, max_steps
        self._class = class_field
        self.class_bytes = 0 if class_field is None else -(-class_field[1] // 8)
        if self.class_bytes > 4:
            raise HwgenError(f"the class field is at most 32 bits, not {class_field[1]}")
        super().__init__({
            "start": In(1), "cmd": In(8), "length": In(16), "err": In(4),
            "loaded": In(1), "load_idle": In(1),
            "rd_offset": Out(16), "rd_data": In(8),
            "wr_offset": Out(16), "wr_data": Out(8), "wr_en": Out(1),
            "done": Out(1), "rlen": Out(16), "rerr": Out(4),
            "o_stream": Out(stream.Signature(8 * in_bytes)),
            "i_stream": In(stream.Signature(8 * out_bytes)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        nin, nout = self._nin, self._nout
        rptr = Signal(range(RUN_HEADER_BYTES + self._max_steps * nin + 1))
        wptr = Signal(range(self._max_steps * nout + 1))
        m.d.comb += [self.rd_offset.eq(rptr), self.wr_offset.eq(wptr)]
        count, left = Signal(8, name="count"), Signal(8, name="left")
        # 2 + COUNT x in_bytes, as wide as the longest RUN frame (a COUNT above max_steps wraps
        # it, and is refused by ``bad_range`` anyway; timing: a shorter carry chain)
        need = Signal.like(rptr)
        j = Signal(range(nin + 1))
        inp = Signal(8 * nin)
        m.d.comb += self.o_stream.payload.eq(inp)

        # flags registered ahead of the decisions that use them (timing)
        # (``err`` and ``length`` stay put while the frame runs: read where they are needed)
        f_bad, f_step, f_run = Signal(), Signal(), Signal()
        ne = Signal(8)  # need != LEN, per bit pair (registered)
        bad_count, bad_mode, bad_range = Signal(), Signal(), Signal()
        classes, last_mode, final = Signal(), Signal(), Signal()
        m.d.sync += final.eq(count == 1)

        payload = self.i_stream.payload
        # the byte to write, picked out of the output into a register a cycle ahead (``bn``:
        # the index of the next one; one byte multiplexer, no word register)
        src = [payload[8 * k : 8 * k + 8] for k in range(nout)]
        if self._class is None:
            last_byte = nout - 1
        else:  # MODE 2: the class bytes in place of the first ones
            off, bits = self._class
            last_byte = Mux(classes, self.class_bytes - 1, nout - 1)
            cls = Cat(payload[off : off + bits], Const(0, 8 * self.class_bytes - bits))
            for k in range(self.class_bytes):
                src[k] = Mux(classes, cls[8 * k : 8 * k + 8], src[k])
        bn = Signal(range(nout + 1))
        wbyte = Signal(8)
        pick = Cat(*src).word_select(bn, 8)
        m.d.comb += self.wr_data.eq(wbyte)

        rerr, rlen = Signal(4), Signal(16)
        m.d.comb += [self.rerr.eq(rerr), self.rlen.eq(rlen)]
        b_last = Signal()  # the byte written now (bn - 1) is byte last_byte (registered)
        # last_byte - 1 - bn, counted down with bn: its sign bit is bn >= last_byte, which is
        # bn == last_byte while bytes remain (timing: no adder and comparator before b_last)
        rest = Signal(signed(bits_for(nout) + 1))
        sh1, sh2 = Signal(), Signal()  # an offset was presented 1, 2 cycles ago (in FETCH)
        left_zero = Signal()

        def finish(code=None, length=None):
            """End the frame: an error ``code`` (rerr is 0 otherwise, from IDLE), or a reply of
            ``length`` bytes."""
            if code is not None:
                m.d.sync += rerr.eq(code)
            if length is not None:
                m.d.sync += rlen.eq(length)
            fsm.next("DONE")

        fsm = OneHot(m, ["IDLE", "DISPATCH", "MODE0", "MODE_WAIT", "MODE1", "COUNT", "NEED",
                         "VERIFY", "VERIFY2", "CHECK", "FETCH", "CORE_IN", "CORE_OUT", "WRITE",
                         "LENGTH", "DONE"], init="IDLE")
        more = Signal(init=1)  # j != nin, registered (timing: no comparator before rptr)
        m.d.sync += [sh1.eq(fsm.ongoing("FETCH") & more), sh2.eq(sh1)]
        with fsm.state("IDLE"):
            # defaults (a STEP is a RUN of one step in mode 0); a RUN overwrites them
            m.d.sync += [rptr.eq(0), wptr.eq(0), j.eq(0), more.eq(1), bn.eq(0), rerr.eq(0),
                         count.eq(1), classes.eq(0), last_mode.eq(0)]
            with m.If(self.start):
                m.d.sync += [f_bad.eq(self.err != 0),
                             f_step.eq(self.cmd == Cmd.STEP), f_run.eq(self.cmd == Cmd.RUN)]
                fsm.next("DISPATCH")
        with fsm.state("DISPATCH"):
            with m.If(f_bad):
                finish(code=self.err)
            with m.Elif((f_step | f_run) & ~self.loaded):
                finish(code=ErrorCode.NOT_LOADED)
            with m.Elif(f_step):
                fsm.next("FETCH")
            with m.Elif(f_run):
                fsm.next("MODE0")
            with m.Elif(self.load_idle):
                finish()
        with fsm.state("MODE0"):  # offset 0 presented
            m.d.sync += rptr.eq(1)
            fsm.next("MODE_WAIT")
        with fsm.state("MODE_WAIT"):  # offset 1 presented
            m.d.sync += rptr.eq(RUN_HEADER_BYTES)
            fsm.next("MODE1")
        with fsm.state("MODE1"):  # rd_data: offset 0
            modes = [Mode.ALL, Mode.LAST] + ([Mode.CLASSES] if self._class else [])
            mode_ok = Const(0, 1)
            for v in modes:
                mode_ok = mode_ok | (self.rd_data == v)
            m.d.sync += [bad_mode.eq(~mode_ok),
                         classes.eq(self.rd_data == Mode.CLASSES),
                         last_mode.eq(self.rd_data == Mode.LAST)]
            fsm.next("COUNT")
        with fsm.state("COUNT"):
            m.d.sync += [count.eq(self.rd_data), left.eq(self.rd_data),
                         need.eq(RUN_HEADER_BYTES), left_zero.eq(self.rd_data == 0)]
            fsm.next("NEED")
        with fsm.state("NEED"):  # need = 2 + COUNT x in_bytes, one addition a cycle
            # COUNT is checked meanwhile (registered: at least one cycle here)
            m.d.sync += bad_range.eq((count == 0) | (count > self._max_steps))
            with m.If(left_zero):  # left == 0 (registered)
                fsm.next("VERIFY")
            with m.Else():
                m.d.sync += [need.eq(need + nin), left.eq(left - 1), left_zero.eq(left == 1)]
        with fsm.state("VERIFY"):  # need != LEN per bit pair, then their OR (timing)
            m.d.sync += ne.eq(pair_differences(need, self.length[:len(need)]))
            fsm.next("VERIFY2")
        with fsm.state("VERIFY2"):
            m.d.sync += bad_count.eq(bad_range | ne.any())
            fsm.next("CHECK")
        with fsm.state("CHECK"):
            with m.If(bad_count):
                finish(code=ErrorCode.LENGTH)
            with m.Elif(bad_mode):
                finish(code=ErrorCode.MODE)
            with m.Else():
                fsm.next("FETCH")
        with fsm.state("FETCH"):  # present the step's input offsets; the bytes follow 2 later
            with m.If(more):
                m.d.sync += [rptr.eq(rptr + 1), j.eq(j + 1), more.eq(j != nin - 1)]
            with m.If(sh2):
                m.d.sync += inp.eq(Cat(inp[8:], self.rd_data))
                with m.If(~sh1):  # the last byte
                    m.d.sync += [j.eq(0), more.eq(1), b_last.eq(last_byte == 0),
                                 rest.eq(last_byte - 2), self.o_stream.valid.eq(1)]
                    fsm.next("CORE_IN")
        with fsm.state("CORE_IN"):  # o_stream.valid is a register (set by FETCH)
            with m.If(self.o_stream.ready):
                m.d.sync += self.o_stream.valid.eq(0)
                fsm.next("CORE_OUT")
        with fsm.state("CORE_OUT"):  # the core's output is there: its byte 0 (bn is 0)
            with m.If(self.i_stream.valid):
                m.d.sync += [wbyte.eq(pick), bn.eq(1)]
                fsm.next("WRITE")
        with fsm.state("WRITE"):  # wbyte: the byte bn - 1 (the core holds its output)
            m.d.comb += self.wr_en.eq(1)
            m.d.sync += [wptr.eq(wptr + 1), wbyte.eq(pick), bn.eq(bn + 1), rest.eq(rest - 1),
                         b_last.eq(rest[-1])]
            with m.If(b_last):
                m.d.comb += self.i_stream.ready.eq(1)
                m.d.sync += [bn.eq(0), count.eq(count - 1)]
                with m.If(final):  # the reply length is taken from wptr in LENGTH, a cycle
                    fsm.next("LENGTH")  # later (timing: no carry chain of wptr before rlen)
                with m.Else():
                    fsm.next("FETCH")
                    with m.If(last_mode):
                        m.d.sync += wptr.eq(0)
        with fsm.state("LENGTH"):  # wptr: the bytes written
            finish(length=Mux(last_mode, nout, wptr))
        with fsm.state("DONE"):  # a registered strobe: the engine moves on to the next slot
            m.d.comb += self.done.eq(1)
            fsm.next("IDLE")
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
