"""Resource and speed estimates before synthesis: a pure function of (model, lanes, target).

What is estimated, and how (docs/synthesis.md compares every figure with Yosys + nextpnr):

**Memories** are the accelerator's own, read from its plan (`hwgen.gateware.plan.Plan.memories`,
the module the gateware builds from): one weight ROM per weight encoding whose word holds ``P``
codes (each row of each matrix as ``ceil(cols/P)`` words, in issue order), the bias ROM, the
sigmoid and tanh tables (one copy per read port on iCE40, whose EBR has one read port), the
embedding of token models and the state stores in block RAM (h in two banks, ``P`` values a
word, with a zero region; the GRU's narrow copy of h; the LSTM's c). Every memory is marked for
block RAM; each is tiled onto the target's RAM blocks in its best width/depth mode
(`RamBlock.blocks_for`): iCE40 EBR 4 kbit as 16x256 .. 2x2048, ECP5 DP16KD 18 kbit as 36x512 ..
1x16384. Padding counts: block counts, not bits, decide whether a model fits. iCE40 SPRAM has no
initial contents, so ROMs cannot live there; the weight memories of a loadable core
(``weights="spram"``, written at run time) are tiled onto it (16x16384 blocks) instead.

**Logic** is a linear model in features of the plan, calibrated on synthesis runs of the real
accelerator (constants in `LOGIC_MODEL`, runs and errors in docs/synthesis.md)::

    LUT = base[cell] + P * lane[datapath] + input_bit * I*input_width
          + logit_bit * O*logit_width + register_state_bit * (state bits kept in registers)
          + per_layer * (L - 1)
    FF  = the same form with the ff_* constants + the RAM read registers in the fabric

``datapath`` is the kind of multiplier a lane needs: ``addsub`` (binary, ternary and
ternary-like pow2: add / subtract / skip), ``shift`` (exponential: sign + barrel shift) or
``mult`` (int-N and wider pow2, scaled by N / 8). The state in block RAM costs no logic that
grows with H (the point of the v2 core; `tests/test_estimate.py` checks it). On iCE40 every
memory's read register is a fabric flip-flop, which the synthesis flow moves onto the RAM's
address for ROMs and state stores (`hwgen.netlist.retime_ice40_read_registers`: the address
bits are counted) and leaves after loadable RAMs and SPRAM (the data bits); on ECP5 the
synthesis flow moves it into the DP16KD.

**Cycles per timestep** come from the gateware's own schedule (`hwgen.gateware.schedule`), the
figure the hardware is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gateware.packing import packable
from .gateware.plan import Plan, make_plan, weight_memory_bits
from .gateware.schedule import schedule
from .numerics import derive_widths
from .spec import EncodingKind, HwgenError, Model, WeightEncoding, json_fields
from .targets import Family, Target, get_target

__all__ = [
    "MemoryEstimate",
    "Estimate",
    "LOGIC_MODEL",
    "datapath_kind",
    "memory_layout",
    "logic_features",
    "estimate",
    "format_estimate",
    "uart_link_cost",
    "LINK_BUFFER_BLOCKS",
    "logic_cells",
    "ICE40_PAIRING",
    "row_multiply_bits",
]


def datapath_kind(enc: WeightEncoding) -> str:
    """The lane hardware an encoding needs: ``addsub``, ``shift`` or ``mult``."""
    if enc.is_ternary_like:
        return "addsub"
    if enc.kind is EncodingKind.EXP:
        return "shift"
    return "mult"


#: Logic-model constants per family (see the module docstring), fitted by least squares to Yosys
#: 0.69 runs of the v2 accelerator (`benchmarks/synth_sweep.py calibrate`: 17 configurations
#: x 2 targets, rows and per-row errors in docs/synthesis.md). ``input_bit`` and ``logit_bit``
#: are set from the hardware (the input buffer and its chunk multiplexer; logit and output
#: registers and the argmax tree), the calibration set varying them too little to fit them.
#: ``cascade_bit``: per data bit per extra block stacked in depth (the read multiplexer).
#: One row per constant: (iCE40, ECP5).
_LOGIC_ROWS = {
    "lane": ({"addsub": 26.4, "shift": 56.4, "mult": 192.4},
             {"addsub": 19.5, "shift": 86.8, "mult": 10.0}),
    "ff_lane": ({"addsub": 27.9, "shift": 25.7, "mult": 19.0},
                {"addsub": 37.3, "shift": 37.7, "mult": 35.7}),
    "base": ({"rnn": 244.5, "gru": 327.5, "lstm": 411.6},
             {"rnn": 251.5, "gru": 435.4, "lstm": 582.5}),
    "ff_base": ({"rnn": 411.5, "gru": 1368.6, "lstm": 1401.3},
                {"rnn": 435.6, "gru": 1416.7, "lstm": 1468.7}),
    "input_bit": (0.5, 0.5), "ff_input_bit": (1.0, 1.0),
    "logit_bit": (2.0, 2.0), "ff_logit_bit": (3.0, 3.0),
    "register_state_bit": (1.18, 1.55), "ff_register_state_bit": (1.13, 0.99),
    "per_layer": (28.3, 34.9), "ff_per_layer": (19.3, 36.5),
    "cascade_bit": (0.18, 0.35), "ff_cascade_bit": (0.17, 0.32),
    "dsp_per_mult_lane": (0, 1),  # synth_ice40 runs without -dsp (Yosys 0.69 miscompiles it)
    # per-row scales (issue 26): per bit of `row_multiply_bits` (the shared row multiplier's
    # partial products and adder tree, the constant scalers' wider inputs)
    "row_mult_bit": (1.0, 1.0), "ff_row_mult_bit": (1.0, 1.0),
}
LOGIC_MODEL = {family: {name: row[k] for name, row in _LOGIC_ROWS.items()}
               for k, family in enumerate((Family.ICE40, Family.ECP5))}


@dataclass(frozen=True)
class MemoryEstimate:
    """One memory of the accelerator and where it goes on the target."""

    name: str
    width: int
    depth: int
    payload_bits: int  # bits that carry information (weights, table entries); the rest is padding
    placement: str  # "bram", "spram" or "logic"
    blocks: int  # RAM blocks used (0 in logic)
    mode: tuple[int, int] | None  # block (width, depth) configuration

    @property
    def bits(self) -> int:
        return self.width * self.depth

    def to_json(self) -> dict:
        return {**json_fields(self, "name", "width", "depth", "bits", "payload_bits", "placement",
                              "blocks"),
                "mode": None if self.mode is None else list(self.mode)}


@dataclass(frozen=True)
class Estimate:
    """Estimated resources and speed of one accelerator configuration on one target."""

    target: str
    lanes: int
    memories: tuple[MemoryEstimate, ...]
    weight_bits: int  # the model's weight codes (Model.weight_memory_bits)
    bram_blocks: int
    bram_bits: int  # capacity of the blocks used
    luts: int
    ffs: int
    dsp: int
    luts_breakdown: dict[str, int]
    logic_cells: int  # see `logic_cells`: what the device's LUT count limits
    macs_per_timestep: int
    cycles_per_timestep: int  # from the gateware's schedule: what the hardware takes
    notes: tuple[str, ...] = field(default_factory=tuple)
    state: tuple = ()  # the plan's state stores (name, mode, layout)
    spram_blocks: int = 0  # iCE40 SPRAM blocks (loadable weight memories)
    zeros: float = 0.0  # fraction of zero weights (all matrices)
    zero_skipping: bool = False  # the sparse core (hwgen.gateware.packing)
    packed: tuple[str, ...] = ()  # matrices a sparse core stores 2:4 packed
    dense_cycles_per_timestep: int | None = None  # the dense core's figure, for comparison
    weight_memory_bits: int = 0  # bits of the weight memories as built
    dense_weight_memory_bits: int = 0  # ... and in the dense core
    plan: Plan | None = field(default=None, compare=False, repr=False)  # the plan estimated

    @property
    def rom_bits(self) -> int:
        return sum(m.bits for m in self.memories)

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "lanes": self.lanes,
            "weight_bits": self.weight_bits,
            "memories": [m.to_json() for m in self.memories],
            "bram_blocks": self.bram_blocks,
            "bram_bits": self.bram_bits,
            "spram_blocks": self.spram_blocks,
            "luts": self.luts,
            "ffs": self.ffs,
            "dsp": self.dsp,
            "luts_breakdown": dict(self.luts_breakdown),
            "logic_cells": self.logic_cells,
            "macs_per_timestep": self.macs_per_timestep,
            "cycles_per_timestep": self.cycles_per_timestep,
            "state": list(self.state),
            "notes": list(self.notes),
            "zeros": self.zeros,
            "zero_skipping": self.zero_skipping,
            "packed_matrices": list(self.packed),
            "dense_cycles_per_timestep": self.dense_cycles_per_timestep,
            "weight_memory_bits": self.weight_memory_bits,
            "dense_weight_memory_bits": self.dense_weight_memory_bits,
        }


def memory_layout(model: Model | Plan, lanes: int | None = None, family: Family | None = None,
                  state: str = "auto", *, spram: bool = False,
                  weights: str = "rom") -> list[tuple[str, int, int, int]]:
    """(name, word width, depth, payload bits) of every memory of the accelerator that block RAM
    holds, from its plan; a memory with two read ports appears twice on iCE40 (``.copy0`` /
    ``.copy1``). ``spram``: the list of SPRAM-resident memories instead (single-port loadable
    weight memories on a target that has SPRAM)."""
    plan = model if isinstance(model, Plan) else make_plan(model, lanes, state, weights)
    out = []
    for mem in plan.memories():
        if (mem.kind == "spram" and family is Family.ICE40) != spram:
            continue
        copies = mem.read_ports if family is Family.ICE40 and not spram else 1
        for k in range(copies):
            suffix = f".copy{k}" if copies > 1 else ""
            out.append((mem.name + suffix, mem.width, mem.depth, mem.payload_bits))
    return out


def row_multiply_bits(plan: Plan) -> int:
    """Bits of the per-row multiply (issue 26; 0 without row multipliers), the feature its
    logic and flip-flops are counted by: the `PipelinedMul`'s W gated partial products of the
    accumulator (A bits) and its W - 1 adders (A + W bits), plus, for every matrix, its
    constant scaler's adders (one per set mantissa bit beyond the first) made as much wider as
    the product is wider than the accumulator, and the row counter (its two registers)."""
    w = plan.row_mult_width
    if not w:
        return 0
    a = max(plan.acc_widths.values())
    bits = w * a + (w - 1) * (a + w)
    for mp in plan.matrices.values():
        extra = mp.product_width - plan.acc_widths[mp.matrix.encoding]
        bits += (bin(mp.matrix.scale.mantissa).count("1") - 1) * max(0, extra)
    return bits + 2 * max(1, (len(plan.row_mults) - 1).bit_length())


def logic_features(plan: Plan, target: str | Target) -> dict[str, float]:
    """The quantities the logic model multiplies (see the module docstring)."""
    t = get_target(target)
    family = t.family
    m, f = plan.model, plan.model.formats
    kinds = []
    for mp in plan.matrices.values():
        kind = datapath_kind(mp.matrix.encoding)
        kinds.append((kind, mp.matrix.encoding.bits / 8 if kind == "mult" else 1.0))
    lanes = {}
    for kind, scale in kinds:  # one lane array per encoding
        lanes[kind] = max(lanes.get(kind, 0.0), plan.lanes * scale)
    outreg = cascade = 0
    loadable = {im.name for im in plan.load_images()} if plan.loadable else set()
    for name, width, depth, _ in memory_layout(plan, family=family):
        _, (_, mode_depth) = t.bram.blocks_for(width, depth)
        # blocks stacked in depth: a read multiplexer over them, per data bit
        cascade += width * (-(-depth // mode_depth) - 1)
        if family is Family.ICE40:
            # every memory's output register is a fabric flip-flop; the netlist pass moves it
            # onto the address of a ROM or a state store (hwgen.netlist.
            # retime_ice40_read_registers), not of a loadable memory
            if name.split(".copy")[0] in loadable:
                outreg += width
            else:
                outreg += max(1, (depth - 1).bit_length())
    load_ffs = load_luts = 0
    if plan.loadable:  # the load port's registers; a single-port memory's address multiplexer
        images = plan.load_images()
        load_ffs = max(im.width for im in images) + len(images) + max(
            (im.depth - 1).bit_length() for im in images)
        load_luts = len(images) + sum((im.depth - 1).bit_length() for im in images
                                      if im.single_port)
        if family is Family.ICE40:  # SPRAM outputs are registered in the fabric too
            outreg += sum(w for _, w, _, _ in memory_layout(plan, family=family, spram=True))
    # A sparse core (zero skipping): per lane of every MAC unit, a registered 3:1 operand
    # multiplexer with a zero gate; the operand word (input chunk / state word multiplexer) is
    # 2P values instead of P.
    select = plan.lanes * len(plan.weight_roms) * plan.operand_width if plan.sparse else 0
    return {
        **{f"lanes.{k}": v for k, v in lanes.items()},
        "sparse_select_bits": select,
        "load_ffs": load_ffs,
        "load_luts": load_luts,
        "input_bits": m.input.width * f.input.width,
        # one input chunk (paired input segments, or I <= span): wired from the input buffer
        # without the chunk register (`core._operands`), whose I x input-width flip-flops the
        # calibrated constants include
        "static_input_bits": (m.input.width * f.input.width
                              if plan.paired or m.input.width <= plan.span else 0),
        "logit_bits": m.outputs * derive_widths(m).logit_width,
        "register_state_bits": plan.register_state_bits(),
        "extra_layers": m.num_layers - 1,
        "cascade_bits": cascade,
        "outreg_bits": outreg,
        "row_mult_bits": row_multiply_bits(plan),
    }


def estimate(model: Model | Plan, lanes: int | None, target: str | Target, state: str = "auto",
             weights: str = "rom", sparse: str = "auto") -> Estimate:
    """Estimated memories, RAM blocks, LUTs, flip-flops, DSPs and cycles per timestep.
    ``model``: a `Plan` (a resolved design, `hwgen.design`: ``lanes`` and the options are then
    the plan's and must be left at their defaults or agree), or a model planned here with
    ``lanes`` and the options. ``weights``: ROMs or loadable memories
    (`hwgen.gateware.plan.WEIGHT_MODES`); for a loadable core pass the model it is built from
    (`hwgen.shape.capacity_model`). ``sparse``: the zero-skipping option
    (`hwgen.gateware.packing.SPARSE_MODES`; ``auto``, like the gateware, estimates the sparse
    core when it is faster). The estimate's ``plan`` is the plan it judged.

    Pure: runs no tool and reads no file. See the module docstring for the model behind it.
    """
    t = get_target(target)
    if isinstance(model, Plan):
        plan = model
        if lanes is not None and int(lanes) != plan.lanes:
            raise HwgenError(f"lanes {lanes} given with a plan of {plan.lanes} lanes")
    else:
        plan = make_plan(model, lanes, state, weights, sparse)
    model = plan.model
    mems, blocks, sprams = _memories(plan, t)
    breakdown, luts, ffs, dsp = _logic(plan, t)
    sched = plan.timing
    dense = schedule(model, plan.lanes, False) if plan.sparse else plan.timing
    zeros, notes = _zeros_and_notes(plan, t, sprams)
    return Estimate(
        target=t.name,
        lanes=plan.lanes,
        memories=tuple(mems),
        weight_bits=model.weight_memory_bits,
        bram_blocks=blocks,
        bram_bits=blocks * t.bram.bits,
        spram_blocks=sprams,
        luts=luts,
        ffs=ffs,
        dsp=dsp,
        luts_breakdown=breakdown,
        logic_cells=logic_cells(luts, ffs, t.family),
        macs_per_timestep=sched.macs,
        cycles_per_timestep=sched.cycles_per_timestep,
        notes=tuple(notes),
        state=tuple(plan.to_json()["stores"]),
        zeros=zeros,
        zero_skipping=plan.sparse,
        packed=tuple(plan.matrices[i].name for i in sorted(plan.matrices)
                     if plan.sparse and plan.repeat(i) == 1),
        dense_cycles_per_timestep=dense.cycles_per_timestep if plan.sparse else None,
        weight_memory_bits=sum(r.bits for r in plan.weight_roms),
        dense_weight_memory_bits=weight_memory_bits(model, dense),
        plan=plan,
    )


def _memories(plan: Plan, t: Target) -> tuple[list[MemoryEstimate], int, int]:
    """(memories, block RAMs, SPRAM blocks): every memory tiled onto the target's blocks."""
    mems = []
    for name, width, depth, payload in memory_layout(plan, family=t.family):
        n, mode = t.bram.blocks_for(width, depth)
        mems.append(MemoryEstimate(name, width, depth, payload, "bram", n, mode))
    blocks = sum(x.blocks for x in mems)
    sprams = 0
    if t.spram is not None:
        for name, width, depth, payload in memory_layout(plan, family=t.family, spram=True):
            n, mode = t.spram.blocks_for(width, depth)
            mems.append(MemoryEstimate(name, width, depth, payload, "spram", n, mode))
            sprams += n
    return mems, blocks, sprams


def _logic(plan: Plan, t: Target) -> tuple[dict[str, int], int, int, int]:
    """(LUT breakdown, LUTs, flip-flops, DSPs): the logic model (module docstring)."""
    lm = LOGIC_MODEL[t.family]
    ft = logic_features(plan, t)
    cell = plan.model.cell.value
    lane_luts = sum(lm["lane"][k[6:]] * v for k, v in ft.items() if k.startswith("lanes."))
    lane_ffs = sum(lm["ff_lane"][k[6:]] * v for k, v in ft.items() if k.startswith("lanes."))
    breakdown = {
        "lanes": round(lane_luts),
        "input": round(lm["input_bit"] * ft["input_bits"]),
        "head": round(lm["logit_bit"] * ft["logit_bits"]),
        "state in registers": round(lm["register_state_bit"] * ft["register_state_bits"]),
        "cell, control, scalers": round(lm["base"][cell]),
        "extra layers": round(lm["per_layer"] * ft["extra_layers"]),
        "RAM read multiplexers": round(lm["cascade_bit"] * ft["cascade_bits"]),
    }
    if ft["load_luts"]:
        breakdown["load port"] = ft["load_luts"]
    if ft["row_mult_bits"]:
        breakdown["row multiply"] = round(lm["row_mult_bit"] * ft["row_mult_bits"])
    if ft["sparse_select_bits"]:
        breakdown["zero-skip operand select"] = round(SPARSE_SELECT_LUT_PER_BIT[t.family]
                                                      * ft["sparse_select_bits"])
    luts = max(100, sum(breakdown.values()))
    ffs = max(100, round(lm["ff_base"][cell] + lane_ffs + lm["ff_input_bit"] * ft["input_bits"]
                         - ft["static_input_bits"]
                         + lm["ff_logit_bit"] * ft["logit_bits"]
                         + lm["ff_register_state_bit"] * ft["register_state_bits"]
                         + lm["ff_per_layer"] * ft["extra_layers"]
                         + lm["ff_cascade_bit"] * ft["cascade_bits"] + ft["outreg_bits"]
                         + ft["load_ffs"] + lm["ff_row_mult_bit"] * ft["row_mult_bits"]
                         + SPARSE_SELECT_FF_PER_BIT[t.family] * ft["sparse_select_bits"]))
    mult_lanes = ft.get("lanes.mult", 0)
    dsp = round(mult_lanes) * lm["dsp_per_mult_lane"] if mult_lanes else 0
    return breakdown, luts, ffs, dsp


def _zeros_and_notes(plan: Plan, t: Target, sprams: int) -> tuple[float, list[str]]:
    """(fraction of zero weights, the estimate's notes): zero skipping left on the table,
    unused SPRAM."""
    model, notes = plan.model, []
    codes = [np.asarray(mx.codes) for _, mx in model.matrices()]
    zeros = sum(int((c == 0).sum()) for c in codes) / max(1, sum(c.size for c in codes))
    packs = any(packable(mx) for _, mx in model.matrices())
    if not plan.sparse and packs and plan.lanes % 2 == 0:
        on = schedule(model, plan.lanes, True).cycles_per_timestep
        notes.append(f"zero skipping is off; the sparse core (--sparse on) would take {on} "
                     "cycles per timestep")
    elif not plan.sparse and not packs and zeros >= 0.3 and any(
            mx.encoding.has_zero for _, mx in model.matrices()):
        notes.append(f"{100 * zeros:.0f}% of the weights are zero but no matrix is 2:4 sparse: "
                     "train or import with --sparsity 2:4 and the sparse core skips them "
                     "(docs/architecture.md)")
    if t.spram_count and not sprams:
        notes.append(f"{t.spram_count} SPRAM blocks unused: they cannot hold ROM contents "
                     "(--weights spram keeps the weights there, loaded at run time)")
    return zeros, notes


#: LUTs and flip-flops per lane operand bit (P x operand width per MAC unit) that a sparse core
#: adds to the dense one: the 3:1 selection with its zero gate, the 2P-value operand word
#: (input chunk, operand multiplexer, MAC input registers) and the registered selection.
#: Fitted on GRU 16-64-10 2:4 (benchmarks/sparse_core.py, docs/synthesis.md): UP5K P = 8 +281
#: LUT / +414 FF over 64 bits; ECP5 P = 8 +244 / +413 LUT-eq / FF over 64, P = 16 +559 / +723
#: over 128 (the state store's wider RAM outputs are counted with the memories).
SPARSE_SELECT_LUT_PER_BIT = {Family.ICE40: 4.4, Family.ECP5: 4.1}
SPARSE_SELECT_FF_PER_BIT = {Family.ICE40: 5.5, Family.ECP5: 6.0}


#: iCE40 logic cells hold one LUT4 and one flip-flop; nextpnr pairs a LUT with the flip-flop it
#: drives for about 45-48% of min(LUTs, FFs) in the accelerator (sweep, docs/synthesis.md).
ICE40_PAIRING = 0.45


def logic_cells(luts: int, ffs: int, family: Family) -> int:
    """Logic cells the design occupies: iCE40 ``LUT + FF - pairing x min(LUT, FF)`` (an unpaired
    flip-flop takes a whole cell); ECP5 counts LUTs and flip-flops on separate sites, so LUTs."""
    if family is Family.ICE40:
        return round(luts + ffs - ICE40_PAIRING * min(luts, ffs))
    return luts


#: Block RAMs of the link's request and reply buffers (one each at the default steps per frame:
#: `hwgen.uart.engine.default_max_steps`).
LINK_BUFFER_BLOCKS = 2


def uart_link_cost(in_bytes: int, out_bytes: int, target: str | Target,
                   load: tuple[int, int] | None = None) -> tuple[int, int]:
    """(LUT-equivalents, flip-flops) of the link a board build adds (hwgen/uart/: the PHY and the
    frame engine; its two frame buffers take `LINK_BUFFER_BLOCKS` block RAMs besides), fitted
    to Yosys 0.69 runs of UartLink at 2+2, 17+18 and 40+40 payload bytes with protocol 2, the
    base re-measured at 17+18 bytes with protocol 3.
    ``load``: (memories, word bytes) of a loadable core: the load commands, CRC-32, word
    register and address checks (`LOAD_LINK_COST`)."""
    t = get_target(target)
    n = in_bytes + out_bytes
    # protocol 3 (frame engine, ping-pong buffers, CRC-16): the per-byte slopes of protocol 2's
    # fit, the bases re-measured at 17 + 18 bytes (UP5K 885 LUT4 / 704 FF, ECP5-25k 977
    # LUT-eq, docs/uart.md "Cost and timing")
    luts = 734.5 + 4.3 * n if t.family is Family.ICE40 else 812.5 + 4.7 * n
    ffs = 420.5 + 8.1 * n
    if load is not None:
        mems, word_bytes = load
        c = LOAD_LINK_COST[t.family]
        luts += c["lut"] + c["lut_mem"] * mems
        ffs += c["ff"] + c["ff_word_byte"] * word_bytes
    return round(luts), round(ffs)


#: What the load commands add to the UART link (`uart_link_cost`), from Yosys 0.69 runs of
#: `UartLink(17, 18)` with and without a `LoadSpec` of 3 memories and 4-byte words (iCE40: +371
#: LUT4, +158 FF; ECP5: +406 LUT-equivalents; 16-byte words: +96 FF, LUTs unchanged).
LOAD_LINK_COST = {
    Family.ICE40: {"lut": 335, "lut_mem": 12, "ff": 126, "ff_word_byte": 8},
    Family.ECP5: {"lut": 370, "lut_mem": 12, "ff": 126, "ff_word_byte": 8},
}


def format_estimate(e: Estimate, target: Target | None = None) -> str:
    """A plain-text table of an estimate (what ``hwgen estimate`` prints)."""
    t = target or get_target(e.target)

    def pct(n: int, avail: int) -> str:
        return f"{n} / {avail} ({100.0 * n / avail:.0f}%)" if avail else str(n)

    lines = [
        f"target      {t.describe()}",
        f"lanes       {e.lanes}",
        "memories    name              width x depth     bits  payload  placement",
    ]
    for m in e.memories:
        if m.placement == "bram":
            where = f"{m.blocks} x {t.bram.name} ({m.mode[0]}x{m.mode[1]})"
        elif m.placement == "spram":
            where = f"{m.blocks} x {t.spram.name} ({m.mode[0]}x{m.mode[1]}, loaded at run time)"
        else:
            where = "logic"
        lines.append(
            f"            {m.name:<17} {m.width:>5} x {m.depth:<6} {m.bits:>8} {m.payload_bits:>8}"
            f"  {where}"
        )
    lines += [
        f"weights     {e.weight_bits} bits of weight codes",
        f"block RAM   {pct(e.bram_blocks, t.bram_count)} {t.bram.name} "
        f"({e.bram_bits} of {t.bram_bits} bits)",
        *([f"SPRAM       {pct(e.spram_blocks, t.spram_count)} {t.spram.name}"]
          if e.spram_blocks else []),
        f"LUT4        ~{pct(e.luts, t.luts)}  ("
        + ", ".join(f"{k} {v}" for k, v in e.luts_breakdown.items() if v)
        + ")",
        f"flip-flops  ~{pct(e.ffs, t.ffs)}",
        f"logic cells ~{pct(e.logic_cells, t.luts)}"
        + ("  (LUT4 + unpaired flip-flops)" if t.family is Family.ICE40 else ""),
        f"DSP         {pct(e.dsp, t.dsp_count)}",
        f"MACs        {e.macs_per_timestep} per timestep",
        f"cycles      {e.cycles_per_timestep} per timestep",
    ]
    if e.zero_skipping:
        d, s = e.dense_cycles_per_timestep, e.cycles_per_timestep
        lines += [
            f"zeros       {100 * e.zeros:.1f}% of the weights; zero skipping on (2:4 packed: "
            f"{', '.join(e.packed) or 'none'})",
            f"            {s} cycles per timestep instead of {d} dense ({d / s:.2f}x), "
            f"weight memory {e.weight_memory_bits} bits instead of {e.dense_weight_memory_bits}",
        ]
    else:
        lines.append(f"zeros       {100 * e.zeros:.1f}% of the weights; zero skipping off")
    lines += [f"note        {n}" for n in e.notes]
    return "\n".join(lines)
