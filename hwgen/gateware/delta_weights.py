"""The delta core's model memories (issue 23): ROMs, or memories written at run time.

Everything the delta core (`delta_core.DeltaAccelerator`) knows of its model's weights and biases
lives in memories made here, so a ROM core and a loadable one (``--weights ram``) differ only in
this file:

- each `delta_update.DeltaColumnUpdate`'s weight columns (layer l's W_x and W_h, the head's W_o:
  column-major words, `delta_update.column_words`), read through `read_port`;
- each `delta_cell.DeltaCellPass`'s row descriptors (the rows' biases, gate and unit,
  `delta_cell.row_layout`), read through `read_port`;
- the head's biases (`head_biases`): constants in a ROM core, registers in a loadable one.

`read_port` keeps one interface for both: an asynchronous read port (``addr`` in, ``data`` the
word at ``addr`` in the same cycle; its readers register it). A ROM core's memory is exactly the
Amaranth ROM the readers made before (same names, same Verilog). A loadable core's is a RAM of
the same shape and depth, named so that synthesis finds it (`memory.MEMORY_NAME`: its undefined
initial contents are stripped) and written through the core's load port (`LoadBus`, the dense
core's port and registers: `loadable.register_load_port`); what is written where is
`hwgen.delta.loadable.delta_load_images` (docs/manifest.md, "load" of a delta core). The core
never reads while it is written (the link writes only between timesteps), so the RAM declares no
read-during-write behaviour.

Placement: a weight memory's word is registered right after the read (``w1``), so synthesis
puts the RAM in block RAM like the ROM; the row memory's word passes a multiplexer first, so a
loadable row memory is distributed RAM on ECP5 and flip-flops on iCE40 (as the ROM is logic).
"""

from __future__ import annotations

from amaranth.hdl import Signal, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..spec import HwgenError
from .loadable import register_load_port
from .memory import MEMORY_NAME

__all__ = ["LoadBus", "read_port", "row_words", "head_biases", "tap_of",
           "image_name"]


class LoadBus:
    """The load port of a loadable delta core, registered once in the core's module ``m``
    (`loadable.register_load_port`), handed down to the memories that `read_port` and
    `head_biases` make: ``tap(name)`` is what writes the memory of load image ``name``
    (`hwgen.delta.loadable.delta_load_images`), None in a ROM core (``bus`` None)."""

    def __init__(self, m, port, images):
        self._taps = register_load_port(m, port, images)

    def tap(self, name: str):
        if name not in self._taps:
            raise HwgenError(f"internal: the delta core has no load image {name!r}")
        return self._taps[name]


def image_name(matrix: str) -> str:
    """The load image of a matrix's weight columns: its name with ``_`` for ``.``
    (``layer0.wx`` -> ``layer0_wx``, ``head.w`` -> ``head_w``)."""
    return matrix.replace(".", "_")


def tap_of(bus: LoadBus | None, name: str):
    """``bus.tap(name)``, or None without a bus (a ROM core)."""
    return None if bus is None else bus.tap(name)


def read_port(m, name: str, shape, init, tap=None, *, block: bool = True):
    """An asynchronous read port (``addr``, ``data``) of a memory of ``len(init)`` words of
    ``shape``: with ``tap`` None the ROM ``m.submodules[name]`` holding ``init``; with a tap
    (`LoadBus.tap`), a RAM of the same shape and depth, written by the load port (module
    docstring; ``init`` gives only the depth), in block RAM when ``block`` (its reader registers
    the word right after the read)."""
    if tap is None:
        m.submodules[name] = rom = Memory(shape=shape, depth=len(init), init=init)
        return rom.read_port(domain="comb", src_loc_at=1)  # named as the caller's variable
    im, en, addr, word = tap
    if im.depth != len(init):
        raise HwgenError(f"internal: load image {im.name} has {im.depth} words, the memory "
                         f"{len(init)}")
    attrs = {"no_rw_check": 1, **({"ram_style": "block"} if block else {})}
    mem = Memory(shape=shape, depth=len(init), init=[], attrs=attrs)
    m.submodules[f"{name}_{MEMORY_NAME}"] = mem
    wp = mem.write_port()
    width = data.Layout.cast(shape).size if isinstance(shape, data.Layout) else len(wp.data)
    raw = wp.data.as_value() if isinstance(wp.data, data.View) else wp.data
    m.d.comb += [wp.en.eq(en), wp.addr.eq(addr), raw.eq(word[:width])]
    return mem.read_port(domain="comb", src_loc_at=1)


def row_words(plan, layer: int, model=None) -> list[dict]:
    """The row memory of ``layer`` in a `delta_cell.DeltaCellPass` of ``plan`` (its
    `delta_cell.row_layout` fields per row, in the plan's issue order): the row's input-part
    bias, its recurrent-part bias (the GRU n rows' b_hn, else 0), its gate and unit; the
    biases of ``model`` (default: the plan's; another model of the shape for a load image)."""
    from ..spec import CellKind

    model = plan.model if model is None else model
    H = model.hidden
    order = plan.matrices[2 * layer].row_order
    lay = model.layers[layer]
    gru = model.cell is CellKind.GRU
    return [{"bias_x": int(lay.bias[r]),
             "bias_h": int(lay.bias_hn[r % H]) if gru and r // H == 2 else 0,
             "gate": r // H, "unit": r % H} for r in order]


def head_biases(m, biases, width: int, tap=None) -> list:
    """The head's O biases: the ints ``biases`` in a ROM core; with a load ``tap`` (image
    ``head.bias``: one ``width``-bit two's complement bias a word, word o for output o) O
    registers written by the load port."""
    if tap is None:
        return [int(b) for b in biases]
    im, en, addr, word = tap
    regs = []
    for o in range(len(biases)):
        r = Signal(signed(width), name=f"head_bias{o}", reset_less=True)
        with m.If(en & (addr == o)):
            m.d.sync += r.eq(word[:width].as_signed())
        regs.append(r)
    return regs
