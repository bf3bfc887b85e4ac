"""Resources of the delta core (issue 23) before synthesis: what the fit check of ``hwgen build``,
``hwgen estimate --target / --board`` and ``hwgen synth`` judges for a model with thresholds.

`delta_resources` gives the same `hwgen.estimate.Estimate` the dense core's estimate gives,
for `hwgen.gateware.delta_core.DeltaAccelerator`:

**Memories** (`delta_memories`, the core's own): per matrix its column-major weight ROM (P codes
a word, ``cols * ceil(rows / P)`` words; the head's too), per layer the delta memories M_x and
M_h (R = ceil(G*H / P) words of P accumulators, one read port), the encoder's hat store (P values
a word, a word per input and state chunk), the cell pass's row ROM (`delta_cell.row_layout`, G*H
words) and the cell unit's sigmoid and tanh tables (each layer has its own cell unit); the
head's delta memory (ceil(O / P) words). Each is tiled onto the target's RAM blocks like the
dense core's (`RamBlock.blocks_for`, a copy per read port on iCE40), except those synthesis
keeps elsewhere (`placement`: small ROMs and the row ROM in LUTs, RAMs of a few words in
flip-flops, on ECP5 shallow RAMs in distributed RAM), counted with the logic.

**Logic** is a linear model in four features of the core (`delta_logic_features`), fitted by
least squares to Yosys runs of the bare core (`benchmarks/delta_resources.py`, docs/synthesis.md
"Delta core: the estimate"; constants in `DELTA_LOGIC_MODEL`):

- ``lane_bits``: P x (per layer the two update units' accumulator widths) + Ph x the head's
  accumulator width + Pe x (per layer the encoder's value width): the per-lane adders,
  registers and forwarding muxes (Pe the encoder's lanes, Ph the head's:
  `hwgen.delta.design.encoder_lanes`, `head_lanes`);
- ``state_bits``: bits in flip-flops: the input register, the logits, and with ``--state
  registers`` per layer h (and c) old and new (``ram``: they are block RAM, `state_memories`);
- ``mux_bits``: the multiplexers reading that state: per layer the cell unit's H:1 read of the
  old h (and c) and the encoder's chunk multiplexer (P x value width x chunks); with ``ram``
  only the input register's chunk multiplexer;
- ``cell_luts``: the dense core's calibrated base per layer (`hwgen.estimate.LOGIC_MODEL`
  ``base`` / ``ff_base``: the cell unit, scalers and control, which each delta layer has);

and, not fitted, the dense model's cost of multiplying lanes (int-N weights: `mult_excess` per
lane of every such matrix's update unit, x bits / 8).

Cycles per timestep: the delta core's worst case (`hwgen.delta.schedule`), the figure a board
build's time per timestep is judged by; the data-dependent expectation is ``hwgen estimate
--dataset``.
"""

from __future__ import annotations

import numpy as np

from ..estimate import LOGIC_MODEL, Estimate, MemoryEstimate, datapath_kind, logic_cells
from ..gateware.plan import MemoryPlan, Plan
from ..numerics import derive_widths
from ..spec import CellKind, Model
from ..targets import Family, Target, get_target
from .golden import delta_widths
from .loadable import loadable_placement

__all__ = ["LOGIC_DEPTH", "LOGIC_ROM_BITS", "LUTRAM_DEPTH", "LUTRAM_LUTS", "placement",
           "DELTA_LOGIC_MODEL", "delta_memories", "delta_logic_features", "delta_resources",
           "mult_excess"]

#: Written memories of at most this many words are flip-flops (the head's delta memory,
#: ceil(O / P) words: 2 and 3 words; Yosys 0.69 put 5-word and deeper ones in block RAM).
LOGIC_DEPTH = 4
#: ROMs of at most this many bits are logic (Yosys 0.69 on iCE40: 48 .. 960-bit ROMs of the
#: delta core in LUTs, 1,152 bits and more in block RAM). The row ROM is always logic: its
#: gate and unit fields are counters of the address and its biases few, which Yosys folds
#: (1,824 bits at 96 words and 3,456 at 192 in LUTs); the cell base of the logic model counts it.
LOGIC_ROM_BITS = 1024
#: ECP5: written memories of at most this many words are distributed RAM (TRELLIS_DPR16X4, 16
#: words of 4 bits; Yosys 0.69 mapped 2- to 48-word ones there, 96-word ones to DP16KD), each
#: taking `LUTRAM_LUTS` LUT sites (the two slices of its RAM; counted as LUT-equivalents).
LUTRAM_DEPTH = 64
LUTRAM_LUTS = 4


def placement(mem: MemoryPlan, family: Family) -> str:
    """Where synthesis puts ``mem``: ``bram``, ``logic`` (LUTs for a ROM, flip-flops for a
    RAM) or ``lutram`` (ECP5 distributed RAM); module docstring."""
    if mem.kind == "rom":
        return "logic" if mem.bits <= LOGIC_ROM_BITS or mem.name.endswith("_rows") else "bram"
    loaded = loadable_placement(mem, family)  # a loadable core's (hwgen.delta.loadable)
    if loaded is not None:
        return loaded
    if family is Family.ECP5 and mem.depth <= LUTRAM_DEPTH:
        return "lutram"
    return "logic" if mem.depth <= LOGIC_DEPTH else "bram"


def _lutram_cells(mem: MemoryPlan) -> int:
    """TRELLIS_DPR16X4 cells of ``mem`` in distributed RAM."""
    return -(-mem.width // 4) * -(-mem.depth // 16)


#: Per family: coefficients of (lane_bits, state_bits, mux_bits, cell_luts) for LUT4s (ECP5:
#: LUT-equivalents) and flip-flops, fitted by benchmarks/delta_resources.py (module docstring).
DELTA_LOGIC_MODEL = {
    Family.ICE40: {"lut": (5.699, 1.624, 0.0, 2.97), "ff": (1.892, 1.061, 0.036, 1.037)},
    Family.ECP5: {"lut": (6.449, 1.553, 0.0, 1.949), "ff": (2.695, 0.997, 0.055, 1.014)},
}


def _value_width(model: Model, layer: int) -> int:
    """The encoder's value width of ``layer`` (its input's and its state's, the wider)."""
    return max(model.layer_input_format(layer).width, model.formats.state.width)


def _chunks(model: Model, layer: int, lanes: int) -> int:
    """Hat-store words of ``layer``: its input's and its state's chunks of ``lanes`` values
    (the encoder's lanes, `hwgen.delta.design.encoder_lanes`)."""
    return -(-model.layer_input_width(layer) // lanes) + -(-model.hidden // lanes)


def state_memories(model: Model, plan: Plan) -> list[MemoryPlan]:
    """The block-RAM state of the delta core (``--state ram``; none in registers): per layer h
    (and c for LSTM), two banks of ceil(H / Pe) words (a power of two) of Pe values."""
    from ..gateware.plan import uint_bits
    from .design import encoder_lanes, state_in_ram

    if not state_in_ram(plan):
        return []
    f, H, pe = model.formats, model.hidden, encoder_lanes(plan)
    depth = 2 << uint_bits(-(-H // pe))
    kinds = [("h", f.state.width)] + ([("c", f.cell.width)] if model.cell is CellKind.LSTM
                                      else [])
    return [MemoryPlan(f"layer{i}_{k}_state", "ram", pe * w, depth, 2 * H * w)
            for i in range(model.num_layers) for k, w in kinds]


def delta_memories(model: Model, plan: Plan) -> list[MemoryPlan]:
    """Every memory of the delta core of ``model`` (with thresholds) on the dense ``plan`` of its
    weights (`hwgen.delta.design.delta_plan`), module docstring."""
    from ..gateware.delta_cell import row_layout
    from .design import encoder_lanes, head_lanes

    P, G, H, NO = plan.lanes, model.cell.num_gates, model.hidden, model.outputs
    pe, ph = encoder_lanes(plan), head_lanes(plan)
    R = -(-G * H // P)
    out = []
    kind = "ram" if plan.loadable else "rom"  # loadable: hwgen.delta.loadable
    for mid in sorted(plan.matrices):
        mp = plan.matrices[mid]
        rows, cols = mp.matrix.shape
        lanes = ph if mid == 2 * model.num_layers + 1 else P  # the head's
        out.append(MemoryPlan(f"{mp.name}_columns", kind, lanes * mp.matrix.encoding.bits,
                              cols * -(-rows // lanes), mp.matrix.memory_bits))
    tables = [x for x in plan.memories() if x.name.endswith(".table")]
    row_bits = row_layout(plan).size
    for i, w in enumerate(delta_widths(model)):
        vw, chunks = _value_width(model, i), _chunks(model, i, pe)
        out += [MemoryPlan(f"layer{i}_m_x", "ram", P * w.mx_width, R, G * H * w.mx_width),
                MemoryPlan(f"layer{i}_m_h", "ram", P * w.mh_width, R, G * H * w.mh_width),
                MemoryPlan(f"layer{i}_hats", "ram", pe * vw, chunks,
                           (model.layer_input_width(i) + H) * vw),
                MemoryPlan(f"layer{i}_rows", kind, row_bits, G * H, G * H * row_bits)]
        out += [MemoryPlan(f"layer{i}_{t.name}", t.kind, t.width, t.depth, t.payload_bits,
                           t.read_ports) for t in tables]
    hw = derive_widths(model).head_acc_width
    out.append(MemoryPlan("head_m", "ram", ph * hw, -(-NO // ph), NO * hw))
    if plan.loadable:  # the head's biases, registers written by the load port
        out.append(MemoryPlan("head_bias", "ram", plan.bias_width, NO, NO * plan.bias_width))
    return out + state_memories(model, plan)


def delta_logic_features(model: Model, plan: Plan, target: str | Target) -> dict[str, float]:
    """The quantities `DELTA_LOGIC_MODEL` multiplies (module docstring)."""
    from .design import encoder_lanes, head_lanes, state_in_ram
    from .schedule import head_overlaps

    t = get_target(target)
    P, H, f = plan.lanes, model.hidden, model.formats
    pe, ram, ph = encoder_lanes(plan), state_in_ram(plan), head_lanes(plan)
    lstm = model.cell is CellKind.LSTM
    cw = f.cell.width if lstm else 0
    widths = derive_widths(model)
    lanes = sum(P * (w.mx_width + w.mh_width) + pe * _value_width(model, i)
                for i, w in enumerate(delta_widths(model))) + ph * widths.head_acc_width
    state = model.input.width * f.input.width + model.outputs * widths.logit_width
    if ram:  # h (and c) in block RAM: the input register's chunk multiplexer only
        mux = pe * f.input.width * -(-model.input.width // pe)
    else:
        state += model.num_layers * 2 * H * (f.state.width + cw)
        mux = sum(H * (f.state.width + cw) + P * _value_width(model, i) * _chunks(model, i, P)
                  for i in range(model.num_layers))
        if not head_overlaps(model, ph):  # the head reads the top layer's new h: an H:1 mux
            mux += H * f.state.width
    mems = [x for x in delta_memories(model, plan) if placement(x, t.family) == "logic"]
    state += sum(x.bits for x in mems if x.kind != "rom")  # flip-flops
    mux += sum(x.bits for x in mems if x.kind == "rom" and not x.name.endswith("_rows"))
    mult = sum(plan.lanes * mp.matrix.encoding.bits / 8 for mp in plan.matrices.values()
               if datapath_kind(mp.matrix.encoding) == "mult")
    lm = LOGIC_MODEL[t.family]
    return {"lane_bits": lanes, "state_bits": state, "mux_bits": mux, "mult_lanes": mult,
            "cell_luts": model.num_layers * lm["base"][model.cell.value],
            "cell_ffs": model.num_layers * lm["ff_base"][model.cell.value]}


def mult_excess(lm: dict, key: str) -> float:
    """What a multiplying lane costs beyond an add/subtract one in the dense logic model
    (`hwgen.estimate.LOGIC_MODEL` ``lane`` / ``ff_lane``), per lane (x bits / 8)."""
    return lm[key]["mult"] - lm[key]["addsub"]


def _logic(model: Model, plan: Plan, t: Target) -> tuple[dict[str, int], int, int]:
    """(LUT breakdown, LUTs, flip-flops) of the logic model."""
    ft = delta_logic_features(model, plan, t)
    c, lm = DELTA_LOGIC_MODEL[t.family], LOGIC_MODEL[t.family]
    names = ("delta lanes (update units, encoders, head)", "state in flip-flops",
             "state multiplexers", "cells, scalers, control")
    values = (ft["lane_bits"], ft["state_bits"], ft["mux_bits"], ft["cell_luts"])
    breakdown = {n: round(k * v) for n, k, v in zip(names, c["lut"], values, strict=True)}
    if ft["mult_lanes"]:  # multiplying lanes: the dense core's calibrated excess over add/sub
        breakdown["lane multipliers"] = round(mult_excess(lm, "lane") * ft["mult_lanes"])
    ff_values = (*values[:3], ft["cell_ffs"])
    ffs = round(sum(k * v for k, v in zip(c["ff"], ff_values, strict=True))
                + mult_excess(lm, "ff_lane") * ft["mult_lanes"])
    return breakdown, max(100, sum(breakdown.values())), max(100, ffs)


def delta_resources(model: Model, plan: Plan, target: str | Target) -> Estimate:
    """The delta core's `Estimate` on ``target`` (module docstring): ``model`` with thresholds,
    ``plan`` the dense plan of its weights (`hwgen.design.resolve` of it). Pure: runs no tool."""
    from .schedule import delta_schedule

    t = get_target(target)
    mems, blocks, lutram = [], 0, 0
    for mem in delta_memories(model, plan):
        copies = mem.read_ports if t.family is Family.ICE40 else 1
        where = placement(mem, t.family)
        for k in range(copies):
            name = mem.name + (f".copy{k}" if copies > 1 else "")
            n, mode = t.bram.blocks_for(mem.width, mem.depth) if where == "bram" else (0, None)
            mems.append(MemoryEstimate(name, mem.width, mem.depth, mem.payload_bits, where, n,
                                       mode))
            blocks += n
            lutram += _lutram_cells(mem) if where == "lutram" else 0
    breakdown, luts, ffs = _logic(model, plan, t)
    if lutram:
        breakdown["distributed RAM"] = LUTRAM_LUTS * lutram
        luts += LUTRAM_LUTS * lutram
    sched = delta_schedule(model, plan)
    mult = sum(plan.lanes for mp in plan.matrices.values()
               if datapath_kind(mp.matrix.encoding) == "mult")
    codes = [np.asarray(mx.codes) for _, mx in model.matrices()]
    return Estimate(
        target=t.name, lanes=plan.lanes, memories=tuple(mems),
        weight_bits=model.weight_memory_bits, bram_blocks=blocks, bram_bits=blocks * t.bram.bits,
        luts=luts, ffs=ffs, dsp=round(mult * LOGIC_MODEL[t.family]["dsp_per_mult_lane"]),
        luts_breakdown=breakdown, logic_cells=logic_cells(luts, ffs, t.family),
        macs_per_timestep=plan.timing.macs, cycles_per_timestep=sched.cycles_per_timestep,
        notes=(f"delta core: {sched.cycles_per_timestep} cycles per timestep at most (every "
               f"column processed), {sched.fixed} with none, at most {sched.per_column} per "
               "processed column; 'hwgen estimate --dataset' gives the expected cycles",),
        zeros=sum(int((c == 0).sum()) for c in codes) / max(1, sum(c.size for c in codes)),
        weight_memory_bits=sum(m.bits for m in delta_memories(model, plan)
                               if m.name.endswith("_columns")),
        dense_cycles_per_timestep=sched.dense_cycles, plan=plan)
