"""Resource and speed estimates before synthesis: a pure function of (model, lanes, target).

What is estimated, and how (docs/synthesis.md compares every figure with Yosys + nextpnr):

**Memories** follow the accelerator's layout (hwgen/gateware/core.py, docs/manifest.md): one
weight ROM per weight encoding whose word holds ``P`` weight codes (each row of each matrix as
``ceil(cols/P)`` words, so depth ``sum of rows*ceil(cols/P)``), the bias ROM (one entry per
consumed bias), the sigmoid and tanh tables (one copy per read port on iCE40), and for token
models the embedding table (one word per token). Each memory is tiled onto the target's RAM
blocks in its best width/depth mode (`RamBlock.blocks_for`): iCE40 EBR 4 kbit as 16x256, 8x512,
4x1024 or 2x2048; ECP5 DP16KD 18 kbit as 36x512 .. 1x16384. Padding (a row shorter than a
multiple of ``P``, unused word bits, unused depth) is counted: block counts, not just bits,
decide whether a model fits. iCE40 SPRAM has no initial contents, so ROMs cannot live there; it
is reported as free capacity only.

**Logic** is a linear model, calibrated on synthesis runs of the real accelerator (the constants
in `LOGIC_MODEL`, with the runs they came from in docs/synthesis.md)::

    LUT = base[cell] + lanes * lane[datapath] + state_bit * S + state_bit2 * S**2 / 1000
          + input_bit * I*input_width + per_layer * (L - 1) + (ROM bits kept in logic) / 16
          with S = L*H*state_width
    FF  = the same form with the ff_* constants

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

import numpy as np

from .numerics import signed_width
from .spec import CellKind, EncodingKind, HwgenError, Model, TokenInput, WeightEncoding
from .targets import Family, Target, get_target

__all__ = [
    "MemoryEstimate",
    "Estimate",
    "LOGIC_MODEL",
    "datapath_kind",
    "memory_layout",
    "estimate",
    "format_estimate",
    "uart_link_cost",
    "logic_cells",
    "ICE40_PAIRING",
]


def datapath_kind(enc: WeightEncoding) -> str:
    """The lane hardware an encoding needs: ``addsub``, ``shift`` or ``mult``."""
    if enc.is_ternary_like:
        return "addsub"
    if enc.kind is EncodingKind.EXP:
        return "shift"
    return "mult"


#: Logic-model constants per family, fitted (least squares) to Yosys 0.69 runs of the whole
#: accelerator (gateware of 17:47 UTC on 27 Nov, commit 8c80098): GRU 64 units x lanes 4/8/16 x
#: ternary/pow2/exp/int8, GRU 32 and 128 units, LSTM 32, RNN 64, all with 16 inputs
#: (benchmarks/synth_sweep.py calibrate; docs/synthesis.md).
#:
#: - ``lane``: LUT-equivalents per lane by datapath kind (``mult`` for 8-bit weights, scaled by
#:   bits / 8; on ECP5 the product goes to one MULT18X18D per lane, see ``dsp_per_mult_lane``);
#: - ``state_bit`` / ``state_bit2``: per bit of hidden state S = L x H x state width, linear and
#:   per S**2 / 1000 (the operand multiplexers grow faster than the state: GRU 32 -> 64 -> 128
#:   units cost +409 -> +1355 LUTs on iCE40);
#: - ``input_bit``: per input-vector bit (the input buffer and its multiplexer share; not fitted:
#:   every calibration model had 16 x 8 input bits);
#: - ``base``: control, scalers, cell unit and head, per cell kind (LSTM and RNN fitted at one
#:   size each); ``per_layer``: a guess for each further stacked layer (not calibrated).
#: The ``ff_*`` entries are the same for flip-flops. In-sample error: LUT <= 1.1% (iCE40) /
#: 4.1% (ECP5), FF <= 3.2%. The quadratic term extrapolates high for large models (safe side).
LOGIC_MODEL = {
    Family.ICE40: {
        "lane": {"addsub": 8.1, "shift": 33.2, "mult": 180.8},
        "base": {"rnn": 822.2, "gru": 1508.6, "lstm": 2329.6},
        "state_bit": 0.31,
        "state_bit2": 1.55,
        "input_bit": 1.2,
        "per_layer": 100.0,
        "ff_lane": {"addsub": 31.1, "shift": 24.4, "mult": 32.6},
        "ff_base": {"rnn": 695.9, "gru": 1359.0, "lstm": 1812.0},
        "ff_state_bit": 1.5,
        "ff_state_bit2": 0.53,
        "ff_input_bit": 1.0,
        "ff_per_layer": 50.0,
        "dsp_per_mult_lane": 0,  # synth_ice40 runs without -dsp (Yosys 0.69 miscompiles it)
    },
    Family.ECP5: {
        "lane": {"addsub": 15.5, "shift": 31.1, "mult": 5.6},
        "base": {"rnn": 1320.4, "gru": 1534.7, "lstm": 2336.7},
        "state_bit": -1.39,
        "state_bit2": 4.56,
        "input_bit": 2.4,
        "per_layer": 100.0,
        "ff_lane": {"addsub": 31.2, "shift": 24.5, "mult": 32.7},
        "ff_base": {"rnn": 673.3, "gru": 1343.1, "lstm": 1798.1},
        "ff_state_bit": 1.57,
        "ff_state_bit2": 0.48,
        "ff_input_bit": 1.0,
        "ff_per_layer": 50.0,
        "dsp_per_mult_lane": 1,
    },
}

#: Yosys' memory_libmap keeps a ROM in logic when that is cheaper than its RAM blocks. Observed with
#: Yosys 0.69 on the accelerator's ROMs (docs/synthesis.md), in bits per block the ROM would need:
#: iCE40 EBR: 640 and 695 stay in logic, 1280 and 1335 go to EBR; ECP5 DP16KD: 1280, 1335 and 2048
#: stay in logic, 2560 and 2615 go to block RAM.
LOGIC_ROM_BITS_PER_BLOCK = {Family.ICE40: 1000, Family.ECP5: 2300}


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
    logic_cells: int  # see `logic_cells`: what the device's LUT count limits
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
            "logic_cells": self.logic_cells,
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


def memory_layout(model: Model, lanes: int, family: Family | None = None
                  ) -> list[tuple[str, int, int, int]]:
    """(name, word width, depth, payload bits) of every ROM of the accelerator
    (hwgen/gateware/core.py): one weight ROM per encoding (all matrices of that encoding, in
    issue order), the bias ROM, the activation tables
    (one copy per read port on iCE40, whose EBR has one read port; ECP5's DP16KD has two) and
    the embedding of token models."""
    P = lanes
    mems = []
    groups: dict = {}  # one weight ROM per encoding, every matrix of that encoding in it
    for _, q in model.matrices():
        rows, cols = q.shape
        depth, payload = groups.get(q.encoding, (0, 0))
        groups[q.encoding] = (depth + rows * math.ceil(cols / P), payload + q.memory_bits)
    for enc, (depth, payload) in groups.items():
        mems.append((f"weights.{enc.describe().split(' ')[0]}", P * enc.bits, depth, payload))
    biases = [int(b) for layer in model.layers for b in layer.bias]
    for layer in model.layers:
        if layer.bias_hn is not None:
            biases += [int(b) for b in layer.bias_hn]
    biases += [int(b) for b in model.head.bias]
    bw = max(2, max(signed_width(abs(int(b))) for b in biases))
    mems.append(("biases", bw, len(biases) + 1, len(biases) * bw))
    f = model.formats
    n_sig, n_tanh = 1 << f.sigmoid_in_width, 1 << f.tanh_in_width
    sig_w = max(1, int(model.sigmoid_table.max()).bit_length())
    tanh_w = signed_width(int(np.abs(model.tanh_table).max()))
    tanh_ports = 2 if model.cell is CellKind.LSTM else 1
    copies = tanh_ports if family is Family.ICE40 else 1
    if model.cell is not CellKind.RNN:
        mems.append(("sigmoid.table", sig_w, n_sig, n_sig * sig_w))
    for k in range(copies):
        suffix = f".copy{k}" if copies > 1 else ""
        mems.append((f"tanh.table{suffix}", tanh_w, n_tanh, n_tanh * tanh_w))
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
    for name, width, depth, payload in memory_layout(model, lanes, t.family):
        n, mode = t.bram.blocks_for(width, depth)
        if width * depth < LOGIC_ROM_BITS_PER_BLOCK[t.family] * n:
            mems.append(MemoryEstimate(name, width, depth, payload, "logic", 0, None))
        else:
            mems.append(MemoryEstimate(name, width, depth, payload, "bram", n, mode))
    blocks = sum(m.blocks for m in mems)

    lm = LOGIC_MODEL[t.family]
    # Lanes are shared by every matrix: the most expensive encoding sets the lane hardware.
    kinds = []
    for _, q in model.matrices():
        kind = datapath_kind(q.encoding)
        scale = q.encoding.bits / 8 if kind == "mult" else 1.0
        kinds.append((lm["lane"][kind] * scale, lm["ff_lane"][kind] * scale, kind))
    lane_luts, lane_ffs, _ = max(kinds)
    mult = any(k == "mult" for *_, k in kinds)
    cell = model.cell.value
    f = model.formats
    state_bits = model.num_layers * model.hidden * f.state.width
    input_bits = model.input.width * f.input.width
    small_bits = sum(m.bits for m in mems if m.placement == "logic")
    breakdown = {
        "lanes": round(lanes * lane_luts),
        "state": round(lm["state_bit"] * state_bits + lm["state_bit2"] * state_bits**2 / 1000),
        "input": round(lm["input_bit"] * input_bits),
        "cell, control, head": round(lm["base"][cell]),
        "extra layers": round(lm["per_layer"] * (model.num_layers - 1)),
        "ROMs in logic": round(small_bits / 16),  # a LUT4 holds 16 ROM bits
    }
    luts = max(100, sum(breakdown.values()))
    ffs = max(100, round(lm["ff_base"][cell] + lanes * lane_ffs + lm["ff_state_bit"] * state_bits
                         + lm["ff_state_bit2"] * state_bits**2 / 1000
                         + lm["ff_input_bit"] * input_bits
                         + lm["ff_per_layer"] * (model.num_layers - 1)))
    dsp = lanes * lm["dsp_per_mult_lane"] if mult else 0
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
        dsp=dsp,
        luts_breakdown=breakdown,
        logic_cells=logic_cells(luts, ffs, t.family),
        macs_per_timestep=macs,
        cycles_per_timestep=cycles,
        cycles_exact=exact,
        notes=tuple(notes),
    )


#: iCE40 logic cells hold one LUT4 and one flip-flop; nextpnr pairs a LUT with the flip-flop it
#: drives for about 45-48% of min(LUTs, FFs) in the accelerator (sweep, docs/synthesis.md).
ICE40_PAIRING = 0.45


def logic_cells(luts: int, ffs: int, family: Family) -> int:
    """Logic cells the design occupies: iCE40 ``LUT + FF - pairing x min(LUT, FF)`` (an unpaired
    flip-flop takes a whole cell); ECP5 counts LUTs and flip-flops on separate sites, so LUTs."""
    if family is Family.ICE40:
        return round(luts + ffs - ICE40_PAIRING * min(luts, ffs))
    return luts


def uart_link_cost(in_bytes: int, out_bytes: int, target: str | Target) -> tuple[int, int]:
    """(LUT-equivalents, flip-flops) of the UART link a board build adds (hwgen/uart/link.py),
    fitted to Yosys 0.69 runs of UartLink at 2+2, 17+18 and 40+40 payload bytes (within 2%)."""
    t = get_target(target)
    n = in_bytes + out_bytes
    luts = 400 + 4.3 * n if t.family is Family.ICE40 else 455 + 4.7 * n
    return round(luts), round(150 + 8.1 * n)


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
        f"logic cells ~{pct(e.logic_cells, t.luts)}"
        + ("  (LUT4 + unpaired flip-flops)" if t.family is Family.ICE40 else ""),
        f"DSP         {pct(e.dsp, t.dsp_count)}",
        f"MACs        {e.macs_per_timestep} per timestep",
        f"cycles      {e.cycles_per_timestep} per timestep"
        + ("" if e.cycles_exact else " (lower bound: ceil(MACs / lanes))"),
    ]
    lines += [f"note        {n}" for n in e.notes]
    return "\n".join(lines)
