"""State stores: h (two banks, P values per word), the GRU's narrow copy of h, the LSTM's c.

A `StateStore` has one read port (latency 2: address, synchronous read, registered output) and
one write port with one enable per value of the word. The top address bit selects the *zero
region*: it is never written, so a read there yields zeros (how old state reads as zero after a
start of sequence, without clearing anything). Two implementations with the same ports and
latency: block RAM (``ram``: an amaranth Memory of twice the words, the upper half never written)
or flip-flops (``registers``: only the real words exist; the zero region is a constant).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError
from .plan import StoreLayout
from .schedule import READ_LATENCY

__all__ = ["StateStore"]


class StateStore(wiring.Component):
    """One state store laid out by a `plan.StoreLayout`.

    Members
    -------
    raddr : In(layout.addr_bits); the top bit selects the zero region.
    rdata : Out(layout.word_bits); the word at ``raddr`` two cycles later (registered).
    waddr : In(layout.addr_bits - 1); a word below the zero region.
    wen : In(layout.values); value k of the word is written when bit k is set.
    wdata : In(layout.word_bits); value k at bits [k*value_bits, (k+1)*value_bits).

    Contract: never read a word in the cycle it is written (the RAM build leaves that case
    undefined; the register build reads the old word), nor write a word in the cycle after it
    is read (on iCE40 the synthesis flow moves the read register onto the address,
    `hwgen.netlist.retime_ice40_read_registers`, which delays the RAM's read by one cycle).
    """

    LATENCY = READ_LATENCY

    def __init__(self, layout: StoreLayout):
        if not isinstance(layout, StoreLayout):
            raise HwgenError(f"Store layout must be a StoreLayout, not {layout!r}")
        if layout.mode not in ("ram", "registers"):
            raise HwgenError(f"Store mode must be 'ram' or 'registers', not {layout.mode!r}")
        self._layout = layout
        super().__init__({
            "raddr": In(layout.addr_bits),
            "rdata": Out(layout.word_bits),
            "waddr": In(layout.addr_bits - 1),
            "wen": In(layout.values),
            "wdata": In(layout.word_bits),
        })

    def elaborate(self, platform):
        m = Module()
        lay = self._layout
        raw = Signal(lay.word_bits, name="raw", reset_less=True)
        if lay.mode == "ram":
            # The core never reads a word in the cycle it is written (old-bank reads and new-bank
            # writes never meet; new-bank reads come after the layer's gap; a unit's narrow-store
            # read precedes its write), so the read port's collision behaviour is don't-care:
            # Yosys then needs no read-first emulation (on iCE40: ~1 LUT per bit, in the path).
            # Block RAM, not ECP5 distributed RAM: its registered read is faster and costs no
            # LUTs (distributed RAM needs a LUT multiplexer per 16 words).
            m.submodules.mem = mem = Memory(
                shape=unsigned(lay.word_bits), depth=2 * lay.words, init=[],
                attrs={"no_rw_check": 1, "ram_style": "block"},
            )
            # An asynchronous read port and a register: the same read (the word before this
            # cycle's write) as a synchronous port, but Yosys then merges the register into the
            # port itself (memory_dff), which is where it honours ``no_rw_check``. A synchronous
            # port from Amaranth's RTLIL (board builds) got read-first emulation on iCE40
            # instead: a LUT per bit plus registered write data and a collision flag.
            rp = mem.read_port(domain="comb")
            wp = mem.write_port(granularity=lay.value_bits)
            m.d.comb += [
                rp.addr.eq(self.raddr),
                wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.wen),
            ]
            m.d.sync += raw.eq(rp.data)
        else:
            words = [Signal(lay.word_bits, name=f"word{i}", reset_less=True)
                     for i in range(lay.words)]
            vb = lay.value_bits
            for i, word in enumerate(words):
                with m.If(self.waddr == i):
                    for k in range(lay.values):
                        with m.If(self.wen[k]):
                            m.d.sync += word[k * vb : (k + 1) * vb].eq(
                                self.wdata[k * vb : (k + 1) * vb])
            with m.Switch(self.raddr):
                for i, word in enumerate(words):
                    with m.Case(i):
                        m.d.sync += raw.eq(word)
                with m.Default():
                    m.d.sync += raw.eq(0)
        # A reset-less output register (see rom.Rom): the ECP5 flow moves it into the RAM block.
        q = Signal(lay.word_bits, name="rdata_reg", reset_less=True)
        m.d.comb += self.rdata.eq(q)
        m.d.sync += q.eq(raw)
        return m

