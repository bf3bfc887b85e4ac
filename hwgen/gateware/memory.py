"""The accelerator's memories: one component for ROMs and for memories written at run time.

Every weight, bias and embedding memory is an amaranth.lib.memory.Memory with one synchronous read
port followed by a reset-less output register (`schedule.READ_LATENCY` = 2), so synthesis infers
block RAM and nothing but routing follows the RAM's clock-to-output time (on ECP5, `hwgen.synth`
moves that register into the DP16KD's own output register; on iCE40, for a read-only memory,
onto the RAM's read address: `hwgen.netlist.retime_ice40_read_registers`). ``writable`` adds
a write port: a loadable core's memories, whose contents are undefined until written
(`MEMORY_NAME`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_positive_int
from .schedule import READ_LATENCY

__all__ = ["RegisteredMemory", "MEMORY_NAME", "SPRAM_MEMORY_NAME", "STRIP_INIT_PATTERN",
           "SPRAM_STYLE_COMMAND"]

#: Name of the memory inside every writable `RegisteredMemory`: synthesis finds loadable memories
#: by it.
MEMORY_NAME = "loadable_mem"

#: Yosys selection of the initial-value cells of every writable memory (`hwgen.synth` deletes
#: them before mapping memories).
STRIP_INIT_PATTERN = f"t:$meminit_v2 r:MEMID=*{MEMORY_NAME}* %i"

#: Name of the memory inside a single-port writable `RegisteredMemory` (the shape of an iCE40
#: SPRAM); it contains `MEMORY_NAME`, so `STRIP_INIT_PATTERN` selects it too.
SPRAM_MEMORY_NAME = f"{MEMORY_NAME}_spram"

#: The Yosys command that sends every single-port writable memory to iCE40 SPRAM (``ram_style =
#: "huge"``). Run only for a device with SPRAM, before ``synth_ice40 -spram``: left to its cost
#: model, Yosys puts a small one (an int8 core's 64-bit weight words, a few thousand deep) in
#: block RAM, which then runs out (43 of 30 EBR). The attribute is not in the gateware because
#: Yosys refuses it where no huge RAM exists (ECP5: "no valid mapping found").
SPRAM_STYLE_COMMAND = f'setattr -set ram_style "huge" m:*{SPRAM_MEMORY_NAME}*'


class RegisteredMemory(wiring.Component):
    """A memory read in `READ_LATENCY` cycles: ``data`` is word ``addr`` two cycles after
    ``addr`` (a synchronous read, then an output register without reset; consumers gate it with
    their own valid flags).

    Parameters (keyword-only)
    ----------
    width : bits per word.
    depth : words (a read-only memory: ``len(init)``).
    init : the words of a read-only memory (at least one; non-negative, below 2**width).
    writable : add the write port; the contents are undefined until written (the memory declares
        no initial values that synthesis must honour: `hwgen.synth` strips the all-zero ones
        Amaranth emits, `STRIP_INIT_PATTERN`, which lets Yosys map it onto iCE40 SPRAM).
    single_port : (writable only) one address for reads and writes, the shape of a single-port
        SPRAM: ``wr_en`` selects the write address and holds the read.
    block : ask for block RAM (``ram_style = "block"``). A ROM always does: a small ROM in logic
        (Yosys' choice below ~1-2 kbit) puts a deep LUT multiplexer before its output register.
        Off for SPRAM (single-port memories are named `SPRAM_MEMORY_NAME`; on iCE40 synthesis
        sends them there with `SPRAM_STYLE_COMMAND`).

    Members
    -------
    addr : In(range(depth)), read address; data : Out(width), registered.
    wr_en : In(1); wr_addr : In(range(depth)); wr_data : In(width): writable only.

    Raises
    ------
    HwgenError : for a bad width or depth, words that do not fit, a read-only memory without
        words, or a writable one with some.
    """

    LATENCY = READ_LATENCY

    def __init__(self, *, width: int, depth: int | None = None, init=None,
                 writable: bool = False, single_port: bool = False, block: bool = True):
        self._writable, self._single_port = bool(writable), bool(single_port)
        self._block = bool(block) or not self._writable
        if self._writable and init is not None:
            raise HwgenError("a writable memory has no initial words")
        if self._single_port and not self._writable:
            raise HwgenError("a single-port memory must be writable")
        words = [] if init is None else [int(w) for w in init]
        if not self._writable:
            if not words:
                raise HwgenError("a ROM needs at least one word")
            depth = len(words) if depth is None else depth
            if depth != len(words):
                raise HwgenError(f"a ROM of depth {depth} needs {depth} words, not {len(words)}")
        self._width = check_positive_int("Memory width", width)
        self._depth = check_positive_int("Memory depth", depth)
        if words and (min(words) < 0 or max(words) >> width):
            raise HwgenError(f"ROM words must be non-negative and fit {width} bits")
        self._init = words
        rng = range(max(depth, 2))
        members = {"addr": In(rng), "data": Out(width)}
        if self._writable:
            members.update(wr_en=In(1), wr_addr=In(rng), wr_data=In(width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        attrs = {"ram_style": "block"} if self._block else {}
        mem = Memory(shape=unsigned(self._width), depth=self._depth, init=self._init,
                     attrs=attrs)
        name = "mem"
        if self._writable:
            name = SPRAM_MEMORY_NAME if self._single_port else MEMORY_NAME
        m.submodules[name] = mem
        rd = mem.read_port()
        raw = Signal(self._width, name="raw")
        # The output register has no reset: a plain flip-flop right after the RAM, which the
        # ECP5 flow moves into the RAM block.
        data = Signal(self._width, name="data_reg", reset_less=True)
        m.d.comb += [raw.eq(rd.data), self.data.eq(data)]
        m.d.sync += data.eq(raw)
        if not self._writable:
            m.d.comb += rd.addr.eq(self.addr)
            return m
        wr = mem.write_port()
        m.d.comb += [wr.en.eq(self.wr_en), wr.data.eq(self.wr_data)]
        if self._single_port:
            shared = Signal.like(self.addr, name="shared_addr")
            m.d.comb += [shared.eq(Mux(self.wr_en, self.wr_addr, self.addr)),
                         rd.addr.eq(shared), wr.addr.eq(shared), rd.en.eq(~self.wr_en)]
        else:
            m.d.comb += [rd.addr.eq(self.addr), wr.addr.eq(self.wr_addr)]
        return m
