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

With a `LoadSpec` the link also drives a loadable core's load port (BEGIN, LOAD, COMMIT;
docs/uart.md, "Loading a model"): LOAD words are written as their last byte arrives, a CRC-32 runs
over every word written since BEGIN (one bit a cycle: a byte takes 8 cycles, far less than a UART
byte), and only a COMMIT whose CRC-32 and shape id equal the device's, with no frame rejected since
BEGIN, sets ``loaded``. Until then every STEP gets ERROR NOT_LOADED: the core never runs on half a
model. BEGIN and every LOAD clear ``loaded``; so does reset (the RAMs' contents are undefined at
power-up).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_positive_int
from .protocol import (
    INFO_BYTES,
    LOAD_HEADER_BYTES,
    PROTOCOL_VERSION,
    STATUS_BYTES,
    SYNC,
    Cmd,
    ErrorCode,
    crc8,
)

__all__ = ["FrameEngine", "LoadSpec", "crc8_next", "CRC32_POLY"]

#: CRC-32 (zlib), reflected polynomial.
CRC32_POLY = 0xEDB88320


@dataclass(frozen=True)
class LoadSpec:
    """What the link knows of a loadable core: bytes per LOAD word (the widest memory word,
    padded), each memory's depth (by load-port index), the port's address and data widths, and
    the shape id the device reports (`hwgen.shape.shape_id`)."""

    word_bytes: int
    depths: tuple[int, ...]
    addr_bits: int
    data_bits: int
    shape_id: int


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


class FrameEngine(wiring.Component):
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

    def __init__(self, in_bytes: int, out_bytes: int, *, timeout_cycles: int,
                 load: LoadSpec | None = None):
        for what, v in (("Input byte count", in_bytes), ("Output byte count", out_bytes)):
            check_positive_int(what, v, 0xFFFF)
        self._in_bytes, self._out_bytes = in_bytes, out_bytes
        self._timeout_cycles = check_positive_int("Timeout", timeout_cycles)
        self._load = load
        members = {
            "rx_stream": In(stream.Signature(8)),
            "tx_stream": Out(stream.Signature(8)),
            "rx_error": In(1),
            "rx_abort": In(1),
            "overrun": In(1),
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

    def elaborate(self, platform):
        m = Module()
        nin, nout = self._in_bytes, self._out_bytes
        ld = self._load
        txp = self
        m.d.comb += self.rx_stream.ready.eq(1)
        got, byte = self.rx_stream.valid, self.rx_stream.payload

        cmd, seq = Signal(8), Signal(8)
        length = Signal(16)
        # payload bytes so far (a ROM link only ever counts a STEP payload)
        count = Signal(16) if ld is not None else Signal(range(max(nin, 2)))
        crc = Signal(8)
        # STEP payloads (and a loadable link's 8-byte COMMIT) shift in from the top
        data = Signal(8 * max(nin, 8 if ld is not None else 0))
        err = Signal(8)
        gap = Signal(range(self.timeout_cycles + 1))
        timed_out = Signal()
        m.d.comb += timed_out.eq(gap == self.timeout_cycles)

        # Reply: header fields, then rlen bytes of rbuf shifted out LSB first, then the CRC.
        rcmd, rlen = Signal(8), Signal(16)
        rbytes = max(nout, INFO_BYTES, STATUS_BYTES)
        rbuf = Signal(8 * rbytes)
        rcount = Signal(16)
        rcrc = Signal(8)

        # Load state (constants for a ROM device: loaded, nothing to load).
        loaded, dirty = Signal(), Signal()
        crc32, words = Signal(32), Signal(24)
        if ld is None:
            m.d.comb += loaded.eq(1)
            shape_id, wbytes = 0, 0
        else:
            m.d.comb += self.loaded.eq(loaded)
            shape_id, wbytes = ld.shape_id, ld.word_bytes
        flags = Cat(Const(ld is not None, 1), loaded, dirty, Const(0, 5))
        info = Cat(Const(PROTOCOL_VERSION, 8), Const(nin, 16), Const(nout, 16), flags,
                   Const(shape_id, 32), Const(wbytes, 8), ~crc32)
        status = Cat(flags, ~crc32, words)

        m.d.comb += self.o_stream.payload.eq(data[-8 * nin:])
        with m.If(got):
            m.d.sync += gap.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += gap.eq(gap + 1)

        def take(next_state):
            m.d.sync += crc.eq(crc8_next(crc, byte))
            m.next = next_state

        def reject(code):
            m.d.sync += [err.eq(code), self.errors.eq(self.errors + 1), dirty.eq(1)]

        def reply(code, n, value):
            m.d.sync += [rcmd.eq(code), rlen.eq(n), rbuf.eq(value)]
            m.next = "SEND"

        if ld is not None:
            wr = self._load_words(m, ld, got, byte, crc32, words)
        receiving = ["CMD", "SEQ", "LEN0", "LEN1", "DATA", "CRC"]
        if ld is not None:
            receiving += ["LMEM", "LADDR", "LDATA"]
        with m.FSM() as fsm:
            with m.State("SYNC"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += crc.eq(0)
                    m.next = "CMD"
            for state in receiving:
                with m.State(state):
                    with m.If(self.rx_error | self.overrun | self.rx_abort):
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
                            expect = {Cmd.PING: 0, Cmd.STEP: nin}
                            if ld is not None:
                                expect.update({Cmd.BEGIN: 0, Cmd.COMMIT: 8})
                            with m.Switch(cmd):
                                for c, want in expect.items():
                                    with m.Case(c):
                                        with m.If(n != want):
                                            reject(ErrorCode.LENGTH)
                                        with m.Elif(n == 0):
                                            m.next = "CRC"
                                        with m.Else():
                                            m.next = "DATA"
                                if ld is not None:
                                    with m.Case(Cmd.LOAD):
                                        with m.If(n <= LOAD_HEADER_BYTES):
                                            reject(ErrorCode.LENGTH)
                                        with m.Else():
                                            m.next = "LMEM"
                                with m.Default():
                                    reject(ErrorCode.COMMAND)
                        elif state == "DATA":  # STEP and COMMIT payloads
                            m.d.sync += [data.eq(Cat(data[8:], byte)), count.eq(count + 1)]
                            m.d.sync += crc.eq(crc8_next(crc, byte))
                            with m.If(count == (nin - 1 if ld is None else length - 1)):
                                m.next = "CRC"
                        elif state == "LMEM":
                            # a LOAD changes the memories: no computing until a COMMIT
                            m.d.sync += [wr["mem"].eq(byte), count.eq(1), wr["nbyte"].eq(0),
                                         wr["bad"].eq(0), loaded.eq(0)]
                            take("LADDR")
                        elif state == "LADDR":
                            m.d.sync += [wr["addr"].eq(Cat(wr["addr"][8:], byte)),
                                         count.eq(count + 1)]
                            take("LADDR")
                            with m.If(count == LOAD_HEADER_BYTES - 1):
                                m.next = "LDATA"
                        elif state == "LDATA":
                            m.d.comb += wr["take"].eq(1)
                            m.d.sync += count.eq(count + 1)
                            take("LDATA")
                            with m.If(count == length - 1):
                                m.next = "CRC"
                        else:  # CRC
                            with m.If(byte != crc):
                                reject(ErrorCode.CRC)
                                m.next = "ERROR"
                            with m.Elif(cmd == Cmd.PING):
                                reply(Cmd.INFO, INFO_BYTES, info)
                            with m.Elif(cmd == Cmd.STEP):
                                with m.If(loaded):
                                    m.next = "CORE_IN"
                                with m.Else():
                                    m.d.sync += err.eq(ErrorCode.NOT_LOADED)
                                    m.next = "ERROR"
                            if ld is not None:
                                self._load_commands(m, ld, cmd, data, wr, loaded, dirty, crc32,
                                                    words, reject)
                    with m.Elif(timed_out):
                        reject(ErrorCode.TIMEOUT)
                        m.next = "ERROR"
            with m.State("DRAIN"):
                # Skip the rest of a rejected frame: wait until the line has been quiet.
                with m.If(timed_out & ~got):
                    m.next = "ERROR"
            with m.State("ERROR"):
                reply(Cmd.ERROR, 2, Cat(err, cmd))
            if ld is not None:
                with m.State("STATUS"):  # a load command's reply, once its last word is in
                    with m.If(~wr["pend"] & (wr["cbits"] == 0)):
                        reply(Cmd.STATUS, STATUS_BYTES, status)
            with m.State("CORE_IN"):
                m.d.comb += self.o_stream.valid.eq(1)
                with m.If(self.o_stream.ready):
                    m.next = "CORE_OUT"
            with m.State("CORE_OUT"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    reply(Cmd.OUTPUT, nout, self.i_stream.payload)
            with m.State("SEND"):
                m.d.sync += [rcount.eq(0), rcrc.eq(0)]
                m.next = "TX_SYNC"
            header = (("TX_SYNC", Const(SYNC, 8), "TX_CMD"), ("TX_CMD", rcmd, "TX_SEQ"),
                      ("TX_SEQ", seq, "TX_LEN0"), ("TX_LEN0", rlen[:8], "TX_LEN1"),
                      ("TX_LEN1", rlen[8:], "TX_DATA"))
            for state, value, nxt in header:
                with m.State(state):
                    m.d.comb += [txp.tx_stream.valid.eq(1), txp.tx_stream.payload.eq(value)]
                    with m.If(txp.tx_stream.ready):
                        if state != "TX_SYNC":
                            m.d.sync += rcrc.eq(crc8_next(rcrc, value))
                        m.next = nxt
            with m.State("TX_DATA"):
                with m.If(rcount == rlen):
                    m.next = "TX_CRC"
                with m.Else():
                    m.d.comb += [txp.tx_stream.valid.eq(1), txp.tx_stream.payload.eq(rbuf[:8])]
                    with m.If(txp.tx_stream.ready):
                        m.d.sync += [rcrc.eq(crc8_next(rcrc, rbuf[:8])), rbuf.eq(rbuf >> 8),
                                     rcount.eq(rcount + 1)]
            with m.State("TX_CRC"):
                m.d.comb += [txp.tx_stream.valid.eq(1), txp.tx_stream.payload.eq(rcrc)]
                with m.If(txp.tx_stream.ready):
                    m.next = "SYNC"
        m.d.comb += self.busy.eq(~fsm.ongoing("SYNC"))
        return m

    def _load_words(self, m: Module, ld: LoadSpec, got, byte, crc32, words) -> dict:
        """LOAD data bytes -> words on the load port, and the running CRC-32 over them.

        ``take`` (set by the FSM in a data byte's cycle) shifts the byte into the word; after
        the word's last byte the word is written in the next cycle at ``addr`` of ``mem``
        (``addr`` then advances) unless that is outside the memory (``bad``: the frame is
        rejected with ADDRESS). Each byte also enters the CRC-32, one bit a cycle."""
        nb = ld.word_bytes
        mem = Signal(8, name="ld_mem")
        addr = Signal(24, name="ld_addr")
        word = Signal(8 * nb, name="ld_word")
        nbyte = Signal(range(max(nb, 2)), name="ld_byte")
        pend, bad = Signal(name="ld_pending"), Signal(name="ld_bad")
        take = Signal(name="ld_take")
        cbyte, cbits = Signal(8, name="crc_byte"), Signal(range(9), name="crc_bits")
        with m.If(take & got):
            m.d.sync += [word.eq(Cat(word[8:], byte)), cbyte.eq(byte), cbits.eq(8),
                         nbyte.eq(Mux(nbyte == nb - 1, 0, nbyte + 1)), pend.eq(nbyte == nb - 1)]
        with m.Else():
            m.d.sync += pend.eq(0)
        with m.If(cbits != 0):
            bit = crc32[0] ^ cbyte[0]
            m.d.sync += [crc32.eq((crc32 >> 1) ^ Mux(bit, CRC32_POLY, 0)),
                         cbyte.eq(cbyte >> 1), cbits.eq(cbits - 1)]
        in_range = Signal(name="ld_in_range")
        with m.Switch(mem):
            for k, depth in enumerate(ld.depths):
                with m.Case(k):
                    m.d.comb += in_range.eq(addr < depth)
        port = self.load
        m.d.comb += [port.mem.eq(mem), port.addr.eq(addr), port.data.eq(word),
                     port.valid.eq(pend & in_range)]
        with m.If(pend):
            m.d.sync += [addr.eq(addr + 1), words.eq(words + in_range)]
            with m.If(~in_range):
                m.d.sync += bad.eq(1)
        return {"mem": mem, "addr": addr, "take": take, "nbyte": nbyte, "bad": bad,
                "pend": pend, "cbits": cbits}

    def _load_commands(self, m, ld: LoadSpec, cmd, data, wr, loaded, dirty, crc32, words,
                       reject) -> None:
        """The CRC state's actions for BEGIN, LOAD and COMMIT (the frame's checksum matched)."""
        with m.Elif(cmd == Cmd.BEGIN):
            m.d.sync += [loaded.eq(0), dirty.eq(0), crc32.eq(0xFFFFFFFF), words.eq(0)]
            m.next = "STATUS"
        with m.Elif(cmd == Cmd.LOAD):
            with m.If(wr["nbyte"] != 0):  # not whole words
                reject(ErrorCode.LENGTH)
                m.d.sync += wr["nbyte"].eq(0)
                m.next = "ERROR"
            with m.Elif(wr["bad"]):
                reject(ErrorCode.ADDRESS)
                m.next = "ERROR"
            with m.Else():
                m.next = "STATUS"
        with m.Elif(cmd == Cmd.COMMIT):
            want_crc, want_shape = data[-64:-32], data[-32:]
            with m.If(~dirty & (want_crc == ~crc32) & (want_shape == ld.shape_id)):
                m.d.sync += loaded.eq(1)
            m.next = "STATUS"
