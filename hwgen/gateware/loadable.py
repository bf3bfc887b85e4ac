"""Memories written at run time: weights, biases and embedding of a loadable accelerator.

A `LoadableMemory` reads like a `Rom` (``data`` is ``mem[addr]`` `READ_LATENCY` = 2 cycles after
``addr``: a synchronous read, then an output register) and is written through a write port
(``wr_en``, ``wr_addr``, ``wr_data``). Its contents are undefined until written: the memory
declares no initial values that synthesis must honour (`hwgen.synth` strips the all-zero ones
Amaranth emits, `STRIP_INIT_PATTERN`), which is what lets Yosys map it onto iCE40 SPRAM
(SB_SPRAM256KA, no initial contents) or any block RAM.

``single_port``: one address for reads and writes (``wr_en`` selects the write address and holds
the read), the shape of a single-port SPRAM; otherwise a separate write port (block RAM).
The core never reads while it is being written (the link writes only between timesteps).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError
from .schedule import READ_LATENCY

__all__ = ["LoadableMemory", "MEMORY_NAME", "STRIP_INIT_PATTERN", "load_signature",
           "load_signature_of", "load_address_bits"]

#: Name of the memory inside every `LoadableMemory`: synthesis finds loadable memories by it.
MEMORY_NAME = "loadable_mem"

#: Yosys selection of the initial-value cells of every loadable memory (`hwgen.synth` deletes
#: them before mapping memories).
STRIP_INIT_PATTERN = f"t:$meminit_v2 r:MEMID=*{MEMORY_NAME}* %i"


class LoadableMemory(wiring.Component):
    """A RAM read in `READ_LATENCY` cycles and written at run time.

    Parameters
    ----------
    width : bits per word.
    depth : words.
    single_port : share one address between reads and writes (SPRAM), see the module docstring.
    block : ask for block RAM (``ram_style = "block"``); off for SPRAM, which synthesis picks by
        size (``synth_ice40 -spram``).

    Members
    -------
    addr : In(range(depth)), read address; data : Out(width), registered.
    wr_en : In(1); wr_addr : In(range(depth)); wr_data : In(width).
    """

    LATENCY = READ_LATENCY

    def __init__(self, width: int, depth: int, *, single_port: bool = False, block: bool = True):
        for what, v in (("Memory width", width), ("Memory depth", depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwgenError(f"{what} must be a positive integer, not {v!r}")
        self._width, self._depth = width, depth
        self._single_port, self._block = bool(single_port), bool(block)
        rng = range(max(depth, 2))
        super().__init__({"addr": In(rng), "data": Out(width), "wr_en": In(1),
                          "wr_addr": In(rng), "wr_data": In(width)})

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def single_port(self) -> bool:
        return self._single_port

    def elaborate(self, platform):
        m = Module()
        attrs = {"ram_style": "block"} if self._block else {}
        mem = m.submodules[MEMORY_NAME] = Memory(
            shape=unsigned(self._width), depth=self._depth, init=[], attrs=attrs)
        rd = mem.read_port()
        wr = mem.write_port()
        raw = Signal(self._width, name="raw")
        data = Signal(self._width, name="data_reg", reset_less=True)
        m.d.comb += [raw.eq(rd.data), self.data.eq(data), wr.en.eq(self.wr_en),
                     wr.data.eq(self.wr_data)]
        if self._single_port:
            shared = Signal.like(self.addr, name="shared_addr")
            m.d.comb += [shared.eq(Mux(self.wr_en, self.wr_addr, self.addr)),
                         rd.addr.eq(shared), wr.addr.eq(shared), rd.en.eq(~self.wr_en)]
        else:
            m.d.comb += [rd.addr.eq(self.addr), wr.addr.eq(self.wr_addr)]
        m.d.sync += data.eq(raw)
        return m


def load_address_bits(images) -> int:
    """Bits of a word address on the load port: enough for the deepest `plan.LoadImage`."""
    return max(1, (max(im.depth for im in images) - 1).bit_length())


def load_signature_of(memories: int, addr_bits: int, data_bits: int) -> wiring.Signature:
    """The load port (driven by the link, `hwgen.uart.link`): in a cycle with ``valid``, word
    ``data[:width]`` is written at ``addr`` of memory ``mem`` (`plan.LoadImage.index`)."""
    return wiring.Signature({
        "valid": Out(1),
        "mem": Out(range(max(memories, 2))),
        "addr": Out(addr_bits),
        "data": Out(data_bits),
    })


def load_signature(images) -> wiring.Signature:
    """The load port of a core with these memories: ``data`` as wide as the widest word."""
    return load_signature_of(len(images), load_address_bits(images),
                             max(im.width for im in images))
