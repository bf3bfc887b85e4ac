"""Resource and speed estimates before synthesis: a pure function of (model, lanes, target).

What is estimated, and how (docs/synthesis.md compares every figure with Yosys + nextpnr):

**Memories** follow the accelerator's layout (hwgen/gateware, docs/architecture.md): one weight
ROM per layer whose word holds ``P`` weight codes (one chunk of a gate row; the input-matrix chunks
of a row, then its recurrent-matrix chunks: depth ``G*H*(ceil(I/P) + ceil(H/P))``), one head ROM
(depth ``O*ceil(H/P)``), the sigmoid and tanh tables, and for token models the embedding table (one
word per token). Each memory is tiled onto the target's RAM blocks in its best width/depth mode
(`RamBlock.blocks_for`): iCE40 EBR 4 kbit as 16x256, 8x512, 4x1024 or 2x2048; ECP5 DP16KD 18 kbit
as 36x512 .. 1x16384. Padding (a row shorter than a multiple of ``P``, unused word bits, unused
depth) is counted: block counts, not just bits, decide whether a model fits. iCE40 SPRAM has no
initial contents, so ROMs cannot live there; it is reported as free capacity only.

**Logic** is a linear model, calibrated on synthesis runs of the real accelerator (the constants
in `LOGIC_MODEL`, with the runs they came from in docs/synthesis.md)::

    LUT = base[family][cell] + lanes * lane_luts[family][datapath] + table/glue terms
    FF  = base_ff[cell] + lanes * lane_ffs[datapath]

where ``datapath`` is the kind of multiplier a lane needs: ``addsub`` (binary, ternary and
ternary-like pow2: add / subtract / skip), ``shift`` (exponential: sign + barrel shift) or
``mult`` (int-N and wider pow2: an N x input-width multiplier, scaled by N / 8).

**Cycles per timestep** come from the gateware's own schedule (`hwgen.gateware.schedule`), the
figure the hardware is tested against; without it, ``ceil(MACs / P)`` is returned and labelled as
a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .spec import EncodingKind, HwgenError, Model, TokenInput, WeightEncoding
from .targets import Family, Target, get_target

__all__ = [
    "MemoryEstimate",
    "Estimate",
    "LOGIC_MODEL",
    "datapath_kind",
    "memory_layout",
    "estimate",
    "format_estimate",
]


def datapath_kind(enc: WeightEncoding) -> str:
    """The lane hardware an encoding needs: ``addsub``, ``shift`` or ``mult``."""
    if enc.is_ternary_like:
        return "addsub"
    if enc.kind is EncodingKind.EXP:
        return "shift"
    return "mult"


#: Logic-model constants per family. ``lane_luts`` / ``lane_ffs``: per lane, by datapath kind
#: (``mult`` is for 8-bit weights and scales with bits / 8). ``base_luts`` / ``base_ffs``: control,
#: cell unit (activation lookups, gate products, state update), scale multipliers and stream
#: interface, per cell kind. ``per_layer_luts``: extra per stacked layer. Initial values come from
#: ../shared/DATAPATH.md (16-lane MAC units at 8-bit inputs); see docs/synthesis.md for the
#: calibration against the whole accelerator.
LOGIC_MODEL = {
    Family.ICE40: {
        "lane_luts": {"addsub": 24.0, "shift": 55.0, "mult": 180.0},
        "lane_ffs": {"addsub": 20.0, "shift": 24.0, "mult": 60.0},
        "base_luts": {"rnn": 350.0, "gru": 700.0, "lstm": 800.0},
        "base_ffs": {"rnn": 250.0, "gru": 450.0, "lstm": 500.0},
        "per_layer_luts": 150.0,
    },
    Family.ECP5: {
        "lane_luts": {"addsub": 21.0, "shift": 58.0, "mult": 124.0},
        "lane_ffs": {"addsub": 20.0, "shift": 24.0, "mult": 60.0},
        "base_luts": {"rnn": 350.0, "gru": 700.0, "lstm": 800.0},
        "base_ffs": {"rnn": 250.0, "gru": 450.0, "lstm": 500.0},
        "per_layer_luts": 150.0,
    },
}

#: Memories smaller than this many bits are assumed to become flip-flops / LUTs, not RAM blocks.
SMALL_MEMORY_BITS = 512


@dataclass(frozen=True)
class MemoryEstimate:
    """One memory of the accelerator and where it goes on the target."""

    name: str
    width: int
    depth: int
    payload_bits: int  # bits that carry information (weights, table entries); the rest is padding
    placement: str  # "bram" or "logic"
    blocks: int  # RAM blocks used (0 in logic)
    mode: tuple[int, int] | None  # block (width, depth) configuration

    @property
    def bits(self) -> int:
        return self.width * self.depth

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "width": self.width,
            "depth": self.depth,
            "bits": self.bits,
            "payload_bits": self.payload_bits,
            "placement": self.placement,
            "blocks": self.blocks,
            "mode": None if self.mode is None else list(self.mode),
        }


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
    macs_per_timestep: int
    cycles_per_timestep: int
    cycles_exact: bool  # True: from the gateware schedule; False: ceil(MACs / P) lower bound
    notes: tuple[str, ...] = field(default_factory=tuple)

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
            "luts": self.luts,
            "ffs": self.ffs,
            "dsp": self.dsp,
            "luts_breakdown": dict(self.luts_breakdown),
            "macs_per_timestep": self.macs_per_timestep,
            "cycles_per_timestep": self.cycles_per_timestep,
            "cycles_exact": self.cycles_exact,
            "notes": list(self.notes),
        }


def _check_lanes(model: Model, lanes) -> int:
    try:
        from .gateware.schedule import check_lanes
    except ImportError:  # pragma: no cover - the schedule ships with the gateware
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise HwgenError(f"Lane count must be a positive integer, not {lanes!r}") from None
        return lanes
    return check_lanes(model, lanes)


def memory_layout(model: Model, lanes: int) -> list[tuple[str, int, int, int]]:
    """(name, word width, depth, payload bits) of every memory of the accelerator."""
    P, G, H = lanes, model.cell.num_gates, model.hidden
    mems = []
    for i, layer in enumerate(model.layers):
        width_in = model.layer_input_width(i)
        bits = max(layer.wx.encoding.bits, layer.wh.encoding.bits)
        depth = G * H * (math.ceil(width_in / P) + math.ceil(H / P))
        payload = layer.wx.memory_bits + layer.wh.memory_bits
        mems.append((f"layer{i}.weights", P * bits, depth, payload))
    hw = model.head.w
    mems.append(("head.weights", P * hw.encoding.bits, model.outputs * math.ceil(H / P),
                 hw.memory_bits))
    f = model.formats
    n_sig, n_tanh = 1 << f.sigmoid_in_width, 1 << f.tanh_in_width
    mems.append(("sigmoid.table", f.sigmoid_frac + 1, n_sig, n_sig * (f.sigmoid_frac + 1)))
    mems.append(("tanh.table", f.state.width, n_tanh, n_tanh * f.state.width))
    if isinstance(model.input, TokenInput):
        w = model.input.dim * f.input.width
        mems.append(("embedding", w, model.input.vocab, w * model.input.vocab))
    return mems


def _cycles(model: Model, lanes: int) -> tuple[int, int, bool]:
    """(MACs per timestep, cycles per timestep, exact?)."""
    try:
        from .gateware.schedule import schedule
    except ImportError:  # pragma: no cover - the schedule ships with the gateware
        macs = sum(m.shape[0] * m.shape[1] for _, m in model.matrices())
        return macs, -(-macs // lanes), False
    s = schedule(model, lanes)
    return s.macs, s.cycles_per_timestep, True


def estimate(model: Model, lanes: int, target: str | Target) -> Estimate:
    """Estimated memories, RAM blocks, LUTs, flip-flops, DSPs and cycles per timestep.

    Pure: runs no tool and reads no file. See the module docstring for the model behind it.
    """
    t = get_target(target)
    lanes = _check_lanes(model, lanes)
    mems = []
    for name, width, depth, payload in memory_layout(model, lanes):
        if width * depth < SMALL_MEMORY_BITS:
            mems.append(MemoryEstimate(name, width, depth, payload, "logic", 0, None))
        else:
            n, mode = t.bram.blocks_for(width, depth)
            mems.append(MemoryEstimate(name, width, depth, payload, "bram", n, mode))
    blocks = sum(m.blocks for m in mems)

    lm = LOGIC_MODEL[t.family]
    encs = [layer.wx.encoding for layer in model.layers] + [
        layer.wh.encoding for layer in model.layers
    ]
    # Lanes are shared by every matrix: the most expensive encoding sets the lane hardware.
    costs = []
    for enc in encs + [model.head.w.encoding]:
        kind = datapath_kind(enc)
        scale = enc.bits / 8 if kind == "mult" else 1.0
        costs.append((lm["lane_luts"][kind] * scale, lm["lane_ffs"][kind] * scale))
    lane_luts, lane_ffs = max(c[0] for c in costs), max(c[1] for c in costs)
    cell = model.cell.value
    small_bits = sum(m.bits for m in mems if m.placement == "logic")
    breakdown = {
        "lanes": round(lanes * lane_luts),
        "cell, control, scales": round(lm["base_luts"][cell]),
        "extra layers": round(lm["per_layer_luts"] * (model.num_layers - 1)),
        "small memories in logic": round(small_bits / 16),  # a LUT4 holds 16 ROM bits
    }
    luts = sum(breakdown.values())
    ffs = round(lm["base_ffs"][cell] + lanes * lane_ffs)
    macs, cycles, exact = _cycles(model, lanes)
    notes = []
    if not exact:
        notes.append("cycles per timestep: lower bound ceil(MACs / lanes); no gateware schedule")
    if t.spram_count:
        notes.append(f"{t.spram_count} SPRAM blocks unused: they cannot hold ROM contents")
    return Estimate(
        target=t.name,
        lanes=lanes,
        memories=tuple(mems),
        weight_bits=model.weight_memory_bits,
        bram_blocks=blocks,
        bram_bits=blocks * t.bram.bits,
        luts=luts,
        ffs=ffs,
        dsp=0,
        luts_breakdown=breakdown,
        macs_per_timestep=macs,
        cycles_per_timestep=cycles,
        cycles_exact=exact,
        notes=tuple(notes),
    )


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
        where = (
            f"{m.blocks} x {t.bram.name} ({m.mode[0]}x{m.mode[1]})"
            if m.placement == "bram"
            else "logic"
        )
        lines.append(
            f"            {m.name:<17} {m.width:>5} x {m.depth:<6} {m.bits:>8} {m.payload_bits:>8}"
            f"  {where}"
        )
    lines += [
        f"weights     {e.weight_bits} bits of weight codes",
        f"block RAM   {pct(e.bram_blocks, t.bram_count)} {t.bram.name} "
        f"({e.bram_bits} of {t.bram_bits} bits)",
        f"LUT4        ~{pct(e.luts, t.luts)}  ("
        + ", ".join(f"{k} {v}" for k, v in e.luts_breakdown.items() if v)
        + ")",
        f"flip-flops  ~{pct(e.ffs, t.ffs)}",
        f"DSP         {pct(e.dsp, t.dsp_count)}",
        f"MACs        {e.macs_per_timestep} per timestep",
        f"cycles      {e.cycles_per_timestep} per timestep"
        + ("" if e.cycles_exact else " (lower bound: ceil(MACs / lanes))"),
    ]
    lines += [f"note        {n}" for n in e.notes]
    return "\n".join(lines)
