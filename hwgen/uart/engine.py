"""The frame engine: protocol version 3 on a PHY's byte streams (docs/uart.md).

PHY-agnostic: the UART (`hwgen.uart.link.UartLink`) and SPI links put their PHY in front of it.
Made of four parts, each its own component:

- `FrameReceiver` (receiver.py): header, length checks, CRC-16, timeouts; payloads of STEP / RUN
  frames go into the request buffer, LOAD / COMMIT payloads to the load engine.
- `Executor` (executor.py): the oldest received frame -> core transfers -> the reply buffer.
- `ReplyFramer` (replier.py): the oldest executed frame's reply -> bytes, store and forward.
- `LoadEngine` (loader.py), for a loadable core: BEGIN / LOAD / COMMIT on its load port.

**Frame buffers.** Two slots, used in turn: a frame is received into slot A while the frame in
slot B executes or its reply is sent (ping-pong). Each slot has a request buffer
(``2 + max_steps x in_bytes`` bytes) and a reply buffer (``max_steps x out_bytes`` bytes), both
in block RAM (`amaranth.lib.memory.Memory`, one write and one read port each). A slot is taken
from the frame's header until its reply's last byte has gone to the PHY, so the window is 2:
a host that waits for reply N before sending frame N + 2 never finds both slots taken. A frame
whose header arrives while both are taken is dropped and answered ERROR WINDOW (once a slot is
free). Replies leave in request order; every frame gets exactly one reply. No buffer is read
and written in the same slot at once (the receiver writes a free slot, the executor reads the
next one; the executor writes the reply slot it runs, the reply framer reads an older one), so
the memories carry Yosys's ``no_rw_check`` (no read-during-write logic before the block RAM).

Latency (cycles): the receiver registers every byte and ends a frame 4 cycles after its last
byte; the executor takes it 2 cycles later, checks a RUN's MODE / COUNT in 6 + COUNT, reads each
step's input in ``in_bytes + 1`` before offering it to the core and writes its output in
``1 + bytes``; the reply's SYNC is offered 4 cycles after the executor is done. Every
part needs bytes at least 10 cycles apart (the CRC-16s take a byte's bits one a cycle; a UART
byte is ``10 x divisor`` >= 40 cycles, an SPI byte >= 32).

Timing: every decision is taken from registers a few LUTs deep (the PHY's byte, strobes and the
slot state are registered, comparisons are registered a cycle ahead or replaced by a
down-counter's sign bit, every state machine is one-hot, the reply is offered from a register
filled a byte ahead, each frame buffer is read through the block RAM's own register and a plain
one after it, which the ECP5 netlist pass moves into the DP16KD's output register): echo core +
link board builds place at 67-71 MHz on the iCEBreaker (UP5K) and 189-198 MHz on the ULX3S
(docs/uart.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ..spec import HwgenError, check_positive_int
from .executor import Executor
from .loader import LoadEngine, LoadSpec
from .protocol import PROTOCOL_VERSION, RUN_HEADER_BYTES, WINDOW
from .receiver import FrameReceiver
from .replier import ReplyFramer

__all__ = ["FrameEngine", "LoadSpec", "DEFAULT_MAX_STEPS", "default_max_steps"]

#: The most steps `default_max_steps` gives a RUN frame.
DEFAULT_MAX_STEPS = 32
#: Bytes of each frame buffer (both slots) that `default_max_steps` fills at most: one iCE40
#: EBR (512 x 8) or ECP5 DP16KD each for the request and the reply buffer.
BUFFER_BYTES = 512


def default_max_steps(in_bytes: int, out_bytes: int) -> int:
    """Steps per RUN frame when the build does not say: the most (up to 32) whose two request
    and two reply buffers fit ``BUFFER_BYTES`` each (at least 1). 17 + 18 bytes (GRU 16-64-10):
    14 steps, whose RUN format reaches 98% of the wire limit of 32-step frames."""
    per_slot = BUFFER_BYTES // 2
    return max(1, min(DEFAULT_MAX_STEPS, (per_slot - RUN_HEADER_BYTES) // in_bytes,
                      per_slot // out_bytes))


class FrameEngine(wiring.Component):
    """Frames on byte streams <-> stream transfers of a core (see the module docstring).

    Parameters
    ----------
    in_bytes, out_bytes : the core's input / output transfer in bytes (1 .. 65535).
    timeout_cycles : a frame whose next byte is this many cycles late is abandoned (TIMEOUT).
    load : a `LoadSpec` for a loadable core (adds ``load`` and ``loaded``), or None.
    max_steps : the most steps of a RUN frame (1 .. 255; sizes the frame buffers); default
        `default_max_steps`.
    class_field : (bit offset, bits) of the class in the output transfer (a model with an argmax:
        RUN MODE 2 answers those bits, in ``ceil(bits / 8)`` bytes a step), or None.

    Members
    -------
    rx_stream : In(stream.Signature(8)), bytes from the PHY; always ready.
    tx_stream : Out(stream.Signature(8)), bytes to the PHY.
    rx_error, rx_abort, overrun : In(1) strobes from the PHY (FRAMING, TIMEOUT, OVERRUN).
    o_stream : Out(stream.Signature(8 * in_bytes)), towards the core.
    i_stream : In(stream.Signature(8 * out_bytes)), from the core.
    errors : Out(8), count of ERROR replies (wraps), e.g. for an LED.
    busy : Out(1), a frame is being received, executed or answered.
    """

    def __init__(self, in_bytes: int, out_bytes: int, *, timeout_cycles: int,
                 load: LoadSpec | None = None, max_steps: int | None = None,
                 class_field: tuple[int, int] | None = None):
        for what, v in (("Input byte count", in_bytes), ("Output byte count", out_bytes)):
            check_positive_int(what, v, 0xFFFF)
        self._in_bytes, self._out_bytes = in_bytes, out_bytes
        self._timeout_cycles = check_positive_int("Timeout", timeout_cycles)
        if max_steps is None:
            max_steps = default_max_steps(in_bytes, out_bytes)
        self._max_steps = check_positive_int("Steps per RUN frame", max_steps, 255)
        if class_field is not None:
            off, bits = class_field
            if not (0 <= off and 1 <= bits and off + bits <= 8 * out_bytes):
                raise HwgenError(f"the class field (offset {off}, {bits} bits) is not inside "
                                 f"the {out_bytes}-byte output transfer")
        self._class = class_field
        self._load = load
        members = {
            "rx_stream": In(stream.Signature(8)),
            "tx_stream": Out(stream.Signature(8)),
            "rx_error": In(1),
            "rx_abort": In(1),
            "overrun": In(1),
            "rx_end": In(1),
            "o_stream": Out(stream.Signature(8 * in_bytes)),
            "i_stream": In(stream.Signature(8 * out_bytes)),
            "errors": Out(8),
            "busy": Out(1),
        }
        members.update(self.load_members(load))
        super().__init__(members)

    @staticmethod
    def load_members(load: LoadSpec | None) -> dict:
        """The members a `LoadSpec` adds: ``load`` (the core's load port) and ``loaded``."""
        if load is None:
            return {}
        from ..gateware.loadable import load_signature_of

        return {"load": Out(load_signature_of(len(load.depths), load.addr_bits, load.data_bits)),
                "loaded": Out(1)}

    @property
    def in_bytes(self) -> int:
        return self._in_bytes

    @property
    def out_bytes(self) -> int:
        return self._out_bytes

    @property
    def timeout_cycles(self) -> int:
        return self._timeout_cycles

    @property
    def max_steps(self) -> int:
        return self._max_steps

    @property
    def class_bytes(self) -> int:
        return 0 if self._class is None else -(-self._class[1] // 8)

    @property
    def request_slot_bytes(self) -> int:
        return max(RUN_HEADER_BYTES + self._max_steps * self._in_bytes, 1)

    @property
    def reply_slot_bytes(self) -> int:
        return self._max_steps * self._out_bytes

    def elaborate(self, platform):
        m = Module()
        nin, nout, ld = self._in_bytes, self._out_bytes, self._load
        m.submodules.receiver = rx = FrameReceiver(nin, self._max_steps, self._timeout_cycles,
                                                   ld is not None)
        m.submodules.executor = ex = Executor(nin, nout, self._max_steps, self._class)
        m.submodules.replier = tx = ReplyFramer(self.reply_slot_bytes)
        req_n, rpl_n = self.request_slot_bytes, self.reply_slot_bytes
        # no slot is read and written in the same cycle (the module docstring)
        attrs = {"no_rw_check": 1}
        m.submodules.request_buffer = req = Memory(shape=8, depth=2 * req_n, init=[],
                                                   attrs=attrs)
        m.submodules.reply_buffer = rpl = Memory(shape=8, depth=2 * rpl_n, init=[], attrs=attrs)

        wiring.connect(m, wiring.flipped(self.rx_stream), rx.rx_stream)
        wiring.connect(m, tx.tx_stream, wiring.flipped(self.tx_stream))
        wiring.connect(m, ex.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.i_stream), ex.i_stream)
        m.d.comb += [rx.rx_error.eq(self.rx_error), rx.rx_abort.eq(self.rx_abort),
                     rx.overrun.eq(self.overrun), rx.rx_end.eq(self.rx_end)]

        # Slot pointers (mod 4): frames received, executed, answered; slot = pointer bit 0.
        rx_ptr, ex_ptr, tx_ptr = Signal(2), Signal(2), Signal(2)
        in_use = Signal(2)
        m.d.comb += [in_use.eq(rx_ptr - tx_ptr), rx.slot_free.eq(in_use < WINDOW),
                     ex.start.eq(ex_ptr != rx_ptr), tx.start.eq(tx_ptr != ex_ptr)]
        # LEN as wide as the longest STEP / RUN frame (the only ones whose LEN the executor
        # reads; the receiver refuses a longer one), the reply length as the longest reply
        widths = (("cmd", 8), ("seq", 8), ("length", bits_for(req_n)), ("err", 4),
                  ("rlen", bits_for(rpl_n)), ("rerr", 4))
        meta = [{k: Signal(w, name=f"slot{s}_{k}") for k, w in widths} for s in range(2)]

        def pick(ptr, key):
            return Mux(ptr[0], meta[1][key], meta[0][key])

        for s in range(2):
            with m.If(rx.done & (rx_ptr[0] == s)):
                m.d.sync += [meta[s][k].eq(getattr(rx, k)) for k in ("cmd", "seq", "length",
                                                                      "err")]
            with m.If(ex.done & (ex_ptr[0] == s)):
                m.d.sync += [meta[s]["rlen"].eq(ex.rlen), meta[s]["rerr"].eq(ex.rerr)]
        with m.If(rx.done):
            m.d.sync += rx_ptr.eq(rx_ptr + 1)
        with m.If(ex.done):
            m.d.sync += ex_ptr.eq(ex_ptr + 1)
            with m.If(ex.rerr != 0):
                m.d.sync += self.errors.eq(self.errors + 1)
        with m.If(tx.done):
            m.d.sync += tx_ptr.eq(tx_ptr + 1)
        m.d.comb += [ex.cmd.eq(pick(ex_ptr, "cmd")), ex.length.eq(pick(ex_ptr, "length")),
                     ex.err.eq(pick(ex_ptr, "err")),
                     tx.cmd.eq(pick(tx_ptr, "cmd")), tx.seq.eq(pick(tx_ptr, "seq")),
                     tx.rerr.eq(pick(tx_ptr, "rerr")), tx.rlen.eq(pick(tx_ptr, "rlen"))]

        # The buffers: slot s occupies [s * n, (s + 1) * n).
        # Each read port is asynchronous with a plain register after it, which Yosys merges into
        # the block RAM's read port: only then does it honour ``no_rw_check`` (a read port that
        # is synchronous from the start gets read-first emulation: a write-address comparator
        # and a data multiplexer in front of the RAM, the iCE40 critical path).
        req_w, req_r = req.write_port(), req.read_port(domain="comb")
        rpl_w, rpl_r = rpl.write_port(), rpl.read_port(domain="comb")
        m.d.comb += [
            req_w.addr.eq(Mux(rx_ptr[0], req_n, 0) + rx.index),
            req_w.data.eq(rx.byte),
            req_w.en.eq(rx.take & rx.store),
            req_r.addr.eq(Mux(ex_ptr[0], req_n, 0) + ex.rd_offset),
            rpl_w.addr.eq(Mux(ex_ptr[0], rpl_n, 0) + ex.wr_offset),
            rpl_w.data.eq(ex.wr_data),
            rpl_w.en.eq(ex.wr_en),
            rpl_r.addr.eq(Mux(tx_ptr[0], rpl_n, 0) + tx.rd_offset),
        ]
        # a register after each read port (timing: an ECP5 DP16KD's data comes 5.8 ns after the
        # clock; the board build's netlist passes move this register into the block RAM's output
        # register, which they do only for a plain flip-flop: no reset, no enable)
        req_ram, rpl_ram = Signal(8, reset_less=True), Signal(8, reset_less=True)  # the RAMs'
        m.d.sync += [req_ram.eq(req_r.data), rpl_ram.eq(rpl_r.data)]
        req_q, rpl_q = Signal(8, reset_less=True), Signal(8, reset_less=True)
        m.d.sync += [req_q.eq(req_ram), rpl_q.eq(rpl_ram)]
        m.d.comb += [ex.rd_data.eq(req_q), tx.rd_data.eq(rpl_q)]

        # Load state (constants for a ROM device: loaded, nothing to load).
        if ld is None:
            loaded, dirty, crc32, words = Const(1, 1), Const(0, 1), Const(0, 32), Const(0, 24)
            m.d.comb += ex.load_idle.eq(1)
            shape_id, wbytes = 0, 0
        else:
            m.submodules.loader = lo = LoadEngine(ld)
            # the receiver's byte strobes and frame ends reach the load engine a cycle late
            # (timing; the executor takes a frame 2 cycles after its end, and waits for the
            # engine's idle); the byte, its index and the command are the receiver's registers
            # (the byte and command hold for bytes, the engine registers what it reads of the
            # index in the cycle of the byte's strobe, before it advances)
            m.d.sync += [lo.load_take.eq(rx.load_take), lo.commit_take.eq(rx.commit_take),
                         lo.accepted.eq(rx.done & (rx.err == 0)),
                         lo.rejected.eq(rx.done & (rx.err != 0))]
            m.d.comb += [lo.byte.eq(rx.byte), lo.index.eq(rx.index), lo.cmd.eq(rx.cmd)]
            m.d.comb += [
                         rx.ld_partial.eq(lo.partial), rx.ld_bad.eq(lo.bad),
                         ex.load_idle.eq(lo.idle), self.loaded.eq(lo.loaded)]
            wiring.connect(m, lo.load, wiring.flipped(self.load))
            loaded, dirty, crc32, words = lo.loaded, lo.dirty, lo.crc, lo.words
            shape_id, wbytes = ld.shape_id, ld.word_bytes
        m.d.comb += ex.loaded.eq(loaded)
        flags = Cat(Const(ld is not None, 1), loaded, dirty, Const(0, 5))
        info = Cat(Const(PROTOCOL_VERSION, 8), Const(nin, 16), Const(nout, 16), flags,
                   Const(shape_id, 32), Const(wbytes, 8), crc32, Const(self._max_steps, 16),
                   Const(WINDOW, 8), Const(self.class_bytes, 8))
        status = Cat(flags, crc32, words)
        m.d.comb += [tx.info.eq(info), tx.status.eq(status),
                     self.busy.eq(rx.busy | (rx_ptr != tx_ptr))]
        return m
