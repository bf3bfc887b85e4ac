"""The load engine of a loadable core: BEGIN, LOAD and COMMIT (docs/uart.md, "Loading a model").

LOAD payload bytes arrive from the frame receiver as they come off the line (a LOAD frame is
never buffered): byte 0 names the memory, bytes 1-3 the first word address (LE), then whole
words of ``word_bytes`` bytes (LE). A word is written on the load port in the cycle after its
last byte (``addr`` then advances); a word outside its memory is not written and marks the frame
``bad`` (the receiver rejects it with ADDRESS). Every data byte enters a CRC-32 (zlib), one bit a
cycle: 8 cycles a byte, far less than a byte on any link. BEGIN clears ``loaded``, ``dirty``, the
CRC-32 and the word count; every LOAD clears ``loaded``; a COMMIT whose CRC-32 and shape id equal
the device's, with no frame rejected since BEGIN (``dirty``), sets ``loaded``. Reset clears
``loaded`` (RAM contents are undefined at power-up).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .crc import crc32_bit
from .protocol import LOAD_HEADER_BYTES, Cmd

__all__ = ["LoadSpec", "LoadEngine"]


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


class LoadEngine(wiring.Component):
    """BEGIN / LOAD / COMMIT on a core's load port (see the module docstring).

    Members
    -------
    byte : In(8), a payload byte of the frame being received.
    index : In(16), its position in the payload, in the cycle before its ``load_take`` /
        ``commit_take`` (the engine registers what it reads of it; ``byte`` holds both cycles).
    load_take : In(1), ``byte`` is a LOAD payload byte (one cycle per byte).
    commit_take : In(1), ``byte`` is a COMMIT payload byte (compared with the device's CRC-32
        and shape id).
    accepted, rejected : In(1) strobes, a frame was received in full and accepted / rejected
        (the receiver's ``done`` with its ``err`` 0 / not 0, decoded by the engine); ``cmd``
        says which (it is set bytes before).
    cmd : In(8).
    loaded, dirty : Out(1); crc : Out(32), the CRC-32 of the words written since BEGIN (final
        XOR applied); words : Out(24), their count.
    partial : Out(1), the LOAD frame so far does not end on a word boundary.
    bad : Out(1), the LOAD frame named a word outside its memory.
    idle : Out(1), no word write or CRC bit pending (STATUS may be read).
    load : the core's load port (`hwgen.gateware.loadable.load_signature_of`).
    """

    def __init__(self, spec: LoadSpec):
        from ..gateware.loadable import load_signature_of

        self._spec = spec
        super().__init__({
            "byte": In(8), "index": In(16), "load_take": In(1), "commit_take": In(1),
            "accepted": In(1), "rejected": In(1), "cmd": In(8),
            "loaded": Out(1), "dirty": Out(1), "crc": Out(32), "words": Out(24),
            "partial": Out(1), "bad": Out(1), "idle": Out(1),
            "load": Out(load_signature_of(len(spec.depths), spec.addr_bits, spec.data_bits)),
        })

    def _in_range(self, m, mem, addr):
        """``addr < depth`` of memory ``mem``, registered: a compare of the bits a depth can
        have and a zero test of the rest (a shorter carry chain per memory)."""
        depths = self._spec.depths
        in_range = Signal()
        nb_addr = max(d - 1 for d in depths).bit_length()
        low, high_zero = addr[:nb_addr], (addr[nb_addr:] == 0) if nb_addr < len(addr) else 1
        with m.Switch(mem):
            for k, depth in enumerate(depths):
                with m.Case(k):
                    m.d.sync += in_range.eq(high_zero & (low < depth))
            with m.Default():
                m.d.sync += in_range.eq(0)
        return in_range

    def elaborate(self, platform):
        m = Module()
        ld = self._spec
        nb = ld.word_bytes
        crc32 = Signal(32)
        mem, addr = Signal(8), Signal(24)
        word = Signal(8 * nb)
        nbyte = Signal(range(max(nb, 2)))
        pend = Signal()
        cbyte, cbits = Signal(8), Signal(range(9))
        m.d.comb += [self.crc.eq(~crc32), self.partial.eq(nbyte != 0),
                     self.idle.eq(~pend & (cbits == 0))]

        # where the next payload byte goes, registered (timing): index changes only as a byte
        # arrives, and the next one is cycles away
        first, header = Signal(), Signal()
        m.d.sync += [first.eq(self.index == 0), header.eq(self.index < LOAD_HEADER_BYTES)]
        m.d.sync += pend.eq(0)
        with m.If(self.load_take):
            with m.If(first):
                # a LOAD changes the memories: no computing until a COMMIT
                m.d.sync += [mem.eq(self.byte), nbyte.eq(0), self.bad.eq(0),
                             self.loaded.eq(0)]
            with m.Elif(header):
                m.d.sync += addr.eq(Cat(addr[8:], self.byte))
            with m.Else():
                m.d.sync += [word.eq(Cat(word[8:], self.byte)), cbyte.eq(self.byte),
                             cbits.eq(8), nbyte.eq(Mux(nbyte == nb - 1, 0, nbyte + 1)),
                             pend.eq(nbyte == nb - 1)]
        # COMMIT bytes are checked as they arrive against the byte the device expects there
        # (its CRC-32 and shape id, LE; the CRC-32 is final: the last LOAD's bits end 8 cycles
        # after its last byte): one mismatch flag, not a 64-bit register and comparator. The
        # expected byte is picked from the index, registered (like ``first``: index is set
        # cycles before its byte comes).
        expect = Signal(8)
        m.d.sync += expect.eq(Cat(~crc32, Const(ld.shape_id, 32)).word_select(self.index[:3], 8))
        mismatch = Signal()  # the COMMIT bytes so far differ from the device's
        with m.If(self.commit_take):
            m.d.sync += mismatch.eq((self.byte != expect) | (mismatch & ~first))
        with m.If(cbits != 0):
            m.d.sync += [crc32.eq(crc32_bit(crc32, cbyte[0])), cbyte.eq(cbyte >> 1),
                         cbits.eq(cbits - 1)]

        # registered a cycle ahead (timing): addr and mem settle bytes before the word is done
        in_range = self._in_range(m, mem, addr)
        port = self.load
        m.d.comb += [port.mem.eq(mem), port.addr.eq(addr), port.data.eq(word),
                     port.valid.eq(pend & in_range)]
        # addr and words advance in two 12-bit halves, the upper one on a registered carry
        # (timing: no 24-bit carry chain; they change at most once a word, cycles apart)
        words = self.words
        addr_carry, words_carry = Signal(), Signal()
        m.d.sync += [addr_carry.eq(addr[:12].all()), words_carry.eq(words[:12].all())]
        with m.If(pend):
            m.d.sync += addr[:12].eq(addr[:12] + 1)
            with m.If(addr_carry):
                m.d.sync += addr[12:].eq(addr[12:] + 1)
            with m.If(in_range):
                m.d.sync += words[:12].eq(words[:12] + 1)
                with m.If(words_carry):
                    m.d.sync += words[12:].eq(words[12:] + 1)
            with m.Else():
                m.d.sync += self.bad.eq(1)

        # the frame's command decoded a cycle ahead (timing: ``cmd`` is set bytes before the end)
        is_begin, is_commit = Signal(), Signal()
        m.d.sync += [is_begin.eq(self.cmd == Cmd.BEGIN), is_commit.eq(self.cmd == Cmd.COMMIT)]
        with m.If(self.rejected):
            m.d.sync += self.dirty.eq(1)
        with m.If(self.accepted):
            with m.If(is_begin):
                m.d.sync += [self.loaded.eq(0), self.dirty.eq(0), crc32.eq(0xFFFFFFFF),
                             self.words.eq(0)]
            with m.Elif(is_commit):
                with m.If(~self.dirty & ~mismatch):
                    m.d.sync += self.loaded.eq(1)
        return m
