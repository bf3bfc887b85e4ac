"""The accelerator's timing contract: a pure function of the model and the lane count.

The gateware takes every latency and wait from this module, and the simulation tests measure the
cycles it predicts, so the manifest's figures are exact (docs/architecture.md, docs/cycles.md).

One timestep, with both streams never stalling (P lanes; chunks = ceil(columns / P)):

1. ``accept`` cycles: the input transfer, then one cycle starting the sequencer from a register
   (token models: two cycles reading the embedding ROM instead);
2. for every layer l: ``G*H*(ceil(I_l/P) + ceil(H/P))`` issue cycles (unit-major: for each unit,
   each gate row: the input segment, then the recurrent segment; with *paired input segments*,
   `pairs_input_rows`, layer 0 issues ``G*H*ceil(H/P) + ceil(G*H/2)``: one word carries the
   input parts of two consecutive rows), then a *gap* of
   ``mac_latency + scale_latency + cell_path`` idle cycles (`cell_path`: the register into the
   cell unit, the unit's own latency, the register into the store), until the layer's last new h is
   written (the next layer and the head read it);
3. the head: ``O*ceil(H/P)`` issue cycles. The next input is accepted right after the head's last
   issue: the head's drain (``mac_latency + scale_latency + head_latency`` cycles, until its
   output is loaded) overlaps the next timestep.

So ``cycles_per_timestep`` (input to input) = accept + sum(issue + gap) + head issue, and the
``latency`` (input transfer to output transfer, consumer always ready) = cycles_per_timestep +
ISSUE_DELAY + head drain (the datapath issues each word one cycle after the sequencer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..spec import CellKind, HwgenError, Model, TokenInput, check_positive_int, json_fields
from .packing import SPARSE_MODES, SparseMode, packable, word_repeats

__all__ = [
    "check_lanes",
    "max_lanes",
    "tree_depth",
    "tree_split",
    "pairs_input_rows",
    "shift_add_depth",
    "row_scale_latency",
    "row_mult_width",
    "Schedule",
    "schedule",
    "choose_sparse",
    "cycles_per_timestep",
    "mul_latency",
    "mac_unit_latency",
    "product_latency",
    "SPARSE_MAC_STAGES",
    "cell_latency",
    "cell_path",
    "head_latency",
    "READ_LATENCY",
    "TABLE_LATENCY",
    "ISSUE_DELAY",
    "CELL_INPUT_DELAY",
    "WRITE_DELAY",
]

#: Cycles from an address presented to a memory (ROM or state store) to its data in a register:
#: the synchronous read, then an output register (absorbed into the RAM block where it has one).
READ_LATENCY = 2

#: Cycles from the sequencer deciding a word to the datapath issuing it (its outputs are registered
#: once more so that their fan-out stays out of the sequencer's own loop).
ISSUE_DELAY = 1

#: Registers between a scaled term (with its event) and the cell unit: the term fans out to the
#: cell and to the head, and on iCE40 that route alone took a third of a cycle.
CELL_INPUT_DELAY = 1

#: Registers between the cell unit's write and the state stores: write enables, address and data
#: reach the RAM blocks from flip-flops (on iCE40 the enable decode plus its route was a critical
#: path).
WRITE_DELAY = 1

#: Cycles from a pre-activation to its sigmoid / tanh table entry: the saturated index is
#: registered, then the table is read like any memory.
TABLE_LATENCY = 1 + READ_LATENCY



#: Stages a sparse MAC unit adds before its products: its input registers, then the operand
#: selection (`mac.MacUnit`).
SPARSE_MAC_STAGES = 2


def mac_unit_latency(lanes: int, sparse: bool = False) -> int:
    """Cycles from a word on a MAC unit's inputs to its accumulator including it (`mac.MacUnit`):
    the products' register, one register per adder-tree level, the accumulator, and in a sparse
    unit `SPARSE_MAC_STAGES` before the products."""
    return 2 + tree_depth(lanes) + (SPARSE_MAC_STAGES if sparse else 0)


def product_latency(a_width: int) -> int:
    """Cycles of a gate-product multiplier with an ``a_width``-bit unsigned operand
    (`mult.PipelinedMul`): registered gated partial products, then a registered adder tree."""
    return 1 + tree_depth(a_width)


def mul_latency(model: Model) -> int:
    """Latency of the cells' gate-product multipliers (`product_latency` of the sigmoid code's
    width)."""
    return product_latency(max(int(model.sigmoid_table.max()), 1).bit_length())


def cell_latency(model: Model) -> int:
    """Cycles from a unit's last recurrent term reaching the cell unit (its event) to the cycle
    its new h is written (T = TABLE_LATENCY, M = mul_latency; see the cell units): RNN 1 + T,
    GRU 7 + T + 2M, LSTM 5 + 2T + 2M."""
    T, M = TABLE_LATENCY, mul_latency(model)
    if model.cell is CellKind.RNN:
        return 1 + T
    if model.cell is CellKind.GRU:
        return 7 + T + 2 * M
    return 5 + 2 * T + 2 * M


def cell_path(model: Model) -> int:
    """Cycles from a scaled term's event to the cycle the state store takes the new h:
    CELL_INPUT_DELAY + `cell_latency` + WRITE_DELAY (the layer gap's share after the scaler)."""
    return CELL_INPUT_DELAY + cell_latency(model) + WRITE_DELAY


def head_latency(model: Model) -> int:
    """Cycles from the last head row's term to the cycle the output register loads: the sum
    with the bias and the logit register (2) and, with argmax, the registered comparison tree
    (2 per level: compare, then select)."""
    return 2 + (2 * tree_depth(model.outputs) if model.head.argmax else 0)


def max_lanes(model: Model) -> int:
    """The most lanes any dot product can use: the widest matrix row (max of inputs, hidden)."""
    return max(model.input.width, model.hidden)


def check_lanes(model: Model, lanes) -> int:
    """Validate a lane count for ``model``; returns it as an int or raises `HwgenError`."""
    lanes = check_positive_int("Lane count", lanes)
    most = max_lanes(model)
    if lanes > most:
        raise HwgenError(
            f"Lane count {lanes} exceeds the widest matrix row of this model ({most} weights); "
            f"use at most {most} lanes"
        )
    return lanes


def tree_depth(lanes: int) -> int:
    """Registered adder-tree levels for ``lanes`` products (0 for one lane)."""
    return max(0, math.ceil(math.log2(lanes))) if lanes > 1 else 0


def tree_split(lanes: int) -> int:
    """Lanes under the left child of the adder tree's root (``2**(D-1)``, D = `tree_depth`): the
    tree pairs neighbours level by level, so the root adds lanes ``[0, split)`` to
    ``[split, lanes)`` (needs D >= 1)."""
    return 1 << (tree_depth(lanes) - 1)


def pairs_input_rows(model: Model, lanes: int, sparse: bool = False,
                     repeats: dict[int, int] | None = None) -> bool:
    """Whether layer 0 uses *paired input segments* (docs/architecture.md): one word carries the
    input parts of two consecutive rows, row r in lanes ``[0, I)`` and row r + 1 in lanes
    ``[split, split + I)`` (`tree_split`), the MAC's root keeps the right half apart and that sum
    becomes row r + 1's input event at the first chunk of its recurrent segment.

    Holds when the input fits the right subtree (I_0 <= P - split, so both halves read the same
    input chunk), the tree has a level below the root to split (D >= 2) and a recurrent segment
    takes at least two words (ceil(H/P) >= 2: its first chunk has no event of its own).

    In a sparse core (``sparse``, ``repeats``: its words per span) a lane covers two columns:
    the halves are span columns ``[0, 2 split)`` and ``[2 split, 2P)``, so the input must fit
    ``2 (P - split)`` columns, H > 2P, and layer 0's input matrix must be packed (one word)."""
    depth = tree_depth(lanes)
    if depth < 2:
        return False
    width = model.layer_input_width(0)
    if sparse:
        rep = repeats if repeats is not None else word_repeats(model)
        return (rep[0] == 1 and width <= 2 * (lanes - tree_split(lanes))
                and model.hidden > 2 * lanes)
    return width <= lanes - tree_split(lanes) and model.hidden > lanes


def row_mult_width(model: Model) -> int:
    """Bits of the core's row multiplier (issue 26): the widest multiplier of any matrix (at
    least 1); 0 when no matrix has row multipliers (the core has no row multiply)."""
    mults = [m.row_mult for _, m in model.matrices() if m.row_mult is not None]
    if not mults:
        return 0
    return max(1, max(int(r.max()).bit_length() if r.size else 1 for r in mults))


def row_scale_latency(model: Model) -> int:
    """Cycles the per-row multiply adds to ``scale_latency`` (issue 26): `product_latency` of
    `row_mult_width` (a `mult.PipelinedMul` on the event's accumulator), 0 for a model without
    row multipliers. So a model with row scales takes ``num_layers`` times this many more
    cycles per timestep (each layer's gap) and this many more of latency (the head's drain)."""
    width = row_mult_width(model)
    return product_latency(width) if width else 0


def shift_add_depth(mantissa: int) -> int:
    """Registered adder levels of the constant multiplier by ``mantissa`` (one term per set bit)."""
    n = bin(mantissa).count("1")
    return tree_depth(n)


@dataclass(frozen=True)
class Schedule:
    """Every timing figure of one accelerator (see the module docstring)."""

    lanes: int
    accept_cycles: int  # input transfer + sequencer start (tokens: + embedding read)
    mac_latency: int  # issue -> accumulator readable
    scale_latency: int  # accumulator -> scaled term (of the event's matrix) readable
    cell_latency: int  # term -> the cycle the new h is written into its store (cell_path)
    head_latency: int  # term -> the cycle the output register loads
    layer_issue: tuple[int, ...]  # issue cycles per layer
    head_issue: int
    macs: int  # weights per timestep (multiply-accumulates)
    paired: bool = False  # layer 0 issues paired input segments (`pairs_input_rows`)
    sparse: bool = False  # a sparse core (zero skipping, `packing`): 2P-value operand words
    repeats: tuple[tuple[int, int], ...] = ()  # sparse: (matrix id, words per span)

    @property
    def span(self) -> int:
        """Operand values per word: P, or 2P in a sparse core."""
        return 2 * self.lanes if self.sparse else self.lanes

    def repeat(self, mid: int) -> int:
        """Words per span of matrix ``mid``: 1, or 2 for a matrix a sparse core cannot pack."""
        return dict(self.repeats).get(mid, 1)

    def words_per_row(self, columns: int, mid: int) -> int:
        """Issue words of one row of ``columns`` columns of matrix ``mid``."""
        return -(-columns // self.span) * self.repeat(mid)

    @property
    def layer_gap(self) -> int:
        """Idle cycles between a layer's last issue and the next issue (of the next layer or the
        head): the next reads of its h come after its last write."""
        return self.mac_latency + self.scale_latency + self.cell_latency

    @property
    def head_drain(self) -> int:
        return self.mac_latency + self.scale_latency + self.head_latency

    @property
    def issue_cycles(self) -> int:
        return sum(self.layer_issue) + self.head_issue

    @property
    def overhead(self) -> int:
        return self.accept_cycles + len(self.layer_issue) * self.layer_gap

    @property
    def cycles_per_timestep(self) -> int:
        """Cycles between two accepted inputs when neither stream stalls."""
        return self.issue_cycles + self.overhead

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output transfer with an always-ready consumer."""
        return self.cycles_per_timestep + ISSUE_DELAY + self.head_drain

    @property
    def ideal_cycles(self) -> int:
        """ceil(MACs / P): every lane busy every cycle, no overhead."""
        return -(-self.macs // self.lanes)

    def to_json(self) -> dict:
        """The manifest's ``timing`` (docs/manifest.md)."""
        out = json_fields(self, "lanes", "cycles_per_timestep", "ideal_cycles", "issue_cycles",
                          "accept_cycles", "mac_latency", "scale_latency", "cell_latency",
                          "head_latency")
        out.update({f"{key}_cycles": getattr(self, key)
                    for key in ("overhead", "layer_gap", "latency", "head_issue", "head_drain")})
        out.update(macs_per_timestep=self.macs, layer_issue_cycles=list(self.layer_issue),
                   paired_input_segments=self.paired, zero_skipping=self.sparse,
                   packed_matrices=[i for i, r in self.repeats if r == 1])
        return out


def schedule(model: Model, lanes: int, sparse: bool = False,
             repeats: dict[int, int] | None = None) -> Schedule:
    """The timing of ``model`` on ``lanes`` lanes (validated); ``sparse``: the sparse core
    (`packing`: 2P-value operand words, one word per span for packed matrices, two for the
    others, two more MAC stages: its input registers and the operand selection).
    ``repeats`` (sparse only): words per span by matrix id instead of the model's own
    (`packing.word_repeats`), for a loadable core built for another model of the shape."""
    lanes = check_lanes(model, lanes)
    G, H = model.cell.num_gates, model.hidden
    if sparse and lanes % 2:
        raise HwgenError(f"zero skipping needs an even lane count, not {lanes}")
    if sparse:
        repeats = tuple(sorted((repeats if repeats is not None else word_repeats(model)).items()))
    else:
        repeats = ()
    rep = dict(repeats)
    span = 2 * lanes if sparse else lanes

    def words(n: int, mid: int) -> int:
        return -(-n // span) * rep.get(mid, 1)

    paired = pairs_input_rows(model, lanes, sparse, rep)
    layer_issue, macs = [], 0
    for i in range(model.num_layers):
        width = model.layer_input_width(i)
        rows = G * H
        if i == 0 and paired:
            layer_issue.append(rows * words(H, 1) + -(-rows // 2))
        else:
            layer_issue.append(rows * (words(width, 2 * i) + words(H, 2 * i + 1)))
        macs += rows * (width + H)
    macs += model.outputs * H
    head_id = 2 * model.num_layers + 1
    scale_depth = max(shift_add_depth(m.scale.mantissa) for _, m in model.matrices())
    return Schedule(
        lanes=lanes,
        accept_cycles=1 + READ_LATENCY if isinstance(model.input, TokenInput) else 2,
        mac_latency=READ_LATENCY + mac_unit_latency(lanes, sparse),
        scale_latency=2 + scale_depth + row_scale_latency(model),
        cell_latency=cell_path(model),
        head_latency=head_latency(model),
        layer_issue=tuple(layer_issue),
        head_issue=model.outputs * words(H, head_id),
        macs=macs,
        paired=paired,
        sparse=sparse,
        repeats=repeats,
    )


def choose_sparse(model: Model, lanes: int, option: str = "auto") -> bool:
    """Whether to build the sparse core for the ``sparse`` option (`packing.SPARSE_MODES`):
    ``off`` never, ``on`` always (an even lane count and at least one packable matrix needed,
    else `HwgenError`), ``auto`` when it takes fewer cycles per timestep than the dense core."""
    if not isinstance(option, str) or option not in SPARSE_MODES:
        raise HwgenError(
            f"Zero skipping must be one of {', '.join(SPARSE_MODES)}, not {option!r}")
    option = SparseMode(option)
    if option is SparseMode.OFF:
        return False
    lanes = check_lanes(model, lanes)
    if option is SparseMode.ON:
        if lanes % 2:
            near = f"{lanes - 1} or {lanes + 1}" if lanes > 1 else "2"
            raise HwgenError(f"zero skipping needs an even lane count, not {lanes}; use {near}")
        if not any(packable(m) for _, m in model.matrices()):
            raise HwgenError(
                "zero skipping needs 2:4 sparse matrices (at most 2 non-zero weights in every "
                "group of 4 columns), and this model has none: train or import it with "
                "--sparsity 2:4")
        return True
    if lanes % 2:
        return False
    return (schedule(model, lanes, True).cycles_per_timestep
            < schedule(model, lanes, False).cycles_per_timestep)


def cycles_per_timestep(model: Model, lanes: int) -> int:
    """Clock cycles from one accepted input transfer to the next when neither stream stalls."""
    return schedule(model, lanes).cycles_per_timestep
