"""The plan of one accelerator: every structural fact of the hardware, as plain data.

Pure Python and NumPy (no Amaranth): the gateware (`core.Accelerator`) builds exactly what the
plan says, and the estimate (`hwgen.estimate`), the manifest (`hwgen.export`) and the timing
(`schedule`) read the same plan, so they agree with the hardware by construction.

What the plan fixes (docs/architecture.md):

- **Matrices**: id 2l is layer l's input matrix, 2l+1 its recurrent matrix, 2L+1 the head. Each
  has its accumulator bound, its input / output fraction bits and its row order (layers:
  unit-major, row ``g*H + j`` issued as the ``j*G + g``-th row; head: natural order).
- **Paired input segments** (`schedule.pairs_input_rows`): layer 0's input matrix stores two
  consecutive rows per word (`paired_words`), issued once before the two rows' recurrent
  segments.
- **Weight ROMs**: one per weight encoding in the model, ``P`` codes per word (`spec.pack_codes`
  layout), words in exactly the order the sequencer issues them, so the address is a counter.
- **Biases**: one ROM in consumption order (each row's gate bias on its input segment, the GRU's
  b_hn on the n row's recurrent segment, then the head's biases).
- **State stores** (`StoreLayout`): h of every layer in two banks (the previous timestep's h
  stays readable while the new one is written), ``P`` values per word so that one read gives
  the ``P`` operands of one cycle; for GRU a narrow copy of h (one value per word) for the cell's
  ``h - n``; for LSTM the cell state c. Every store has a *zero region* (its top address bit):
  never written, so reading it yields zeros; reads of old state after a start of sequence (or
  after reset) go there instead of clearing memory. Stores live in block RAM or in registers
  (``state``: ``auto`` picks registers only when the store is tiny, see `choose_state_mode`).
- **Weight storage** (``weights``): ``rom`` (weights, biases and embedding are ROMs whose contents
  the bitstream holds) or *loadable*: the same words in RAMs written at run time through the
  core's load port (`LoadImage`, `Plan.load_images`), ``ram`` (block RAM) or ``spram`` (the weight
  memories single-ported, so that iCE40 UP5K SPRAM can hold them). A loadable bitstream runs any
  model of its shape (`hwgen.shape`).
- **Zero skipping** (``sparse``, `packing`): a *sparse core* reads operand words of 2P values
  (the state store and the input chunks are 2P values wide) and stores 2:4 sparse matrices as
  one word of P (selector, sign) lanes per 2P columns: half the words and cycles of the dense
  core; other matrices take two words per 2P columns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..numerics import derive_widths, product_bound, signed_width, term_bound, term_shift
from ..spec import (
    CellKind,
    HwgenError,
    Model,
    QuantMatrix,
    WeightEncoding,
    forwarded,
    json_fields,
    pack_codes,
)
from .packing import SPARSE_MODES, SparseMode, lane_bits, sparse_words
from .schedule import (
    Schedule,
    check_lanes,
    choose_sparse,
    row_mult_width,
    schedule,
    tree_split,
)

__all__ = [
    "STATE_MODES",
    "WEIGHT_MODES",
    "SPARSE_MODES",
    "StateMode",
    "WeightMode",
    "SparseMode",
    "LoadImage",
    "REGISTER_STATE_MAX_BITS",
    "REGISTER_STATE_MAX_WORDS",
    "MatrixPlan",
    "WeightRomPlan",
    "StoreLayout",
    "MemoryPlan",
    "Plan",
    "make_plan",
    "plan_like",
    "check_options",
    "matrix_ids",
    "weight_memory_bits",
    "weight_words",
    "paired_words",
    "signed_words",
    "uint_bits",
    "choose_state_mode",
    "row_events",
]

class StateMode(enum.StrEnum):
    """The ``state`` option: where h (and c) live. ``auto``: `choose_state_mode` (registers
    only for a tiny store). Equal to its string."""

    AUTO = "auto"
    REGISTERS = "registers"
    RAM = "ram"


class WeightMode(enum.StrEnum):
    """The ``weights`` option: ``rom`` (the bitstream holds weights, biases and embedding) or
    loadable memories written at run time, ``ram`` (block RAM) or ``spram`` (single-port weight
    memories, for iCE40 SPRAM). Equal to its string."""

    ROM = "rom"
    RAM = "ram"
    SPRAM = "spram"


#: Accepted values of the ``state`` option (the `StateMode` values, as plain strings).
STATE_MODES = tuple(m.value for m in StateMode)

#: Accepted values of the ``weights`` option (the `WeightMode` values, as plain strings).
WEIGHT_MODES = tuple(m.value for m in WeightMode)

#: ``auto`` keeps a state store in registers when it holds at most this many bits in at most
#: `REGISTER_STATE_MAX_WORDS` words: then a whole RAM block (4 kbit on iCE40, 18 kbit on ECP5)
#: would hold a few hundred bits, while a register file costs about as many flip-flops and a
#: read multiplexer of a few LUTs per bit (measured: a 32-word narrow store in registers cost
#: more LUTs than the rest of the state logic, docs/synthesis.md).
REGISTER_STATE_MAX_BITS = 256
REGISTER_STATE_MAX_WORDS = 8


def uint_bits(n: int) -> int:
    """Bits of an unsigned index 0 .. n-1 (at least 1)."""
    return max(1, (int(n) - 1).bit_length())


def weight_words(matrix: QuantMatrix, lanes: int, row_order=None) -> list[int]:
    """The ROM image of ``matrix`` for ``lanes`` lanes: rows in ``row_order`` (default 0..R-1),
    each row as ceil(C / lanes) words; columns beyond C are padded with code 0 (the core feeds a
    padded lane a zero operand, so the pad code's level does not matter: binary has no zero)."""
    codes = np.asarray(matrix.codes, dtype=np.int64)
    rows, cols = codes.shape
    n = -(-cols // lanes)
    order = np.arange(rows) if row_order is None else np.asarray(row_order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(rows)):
        raise HwgenError("a weight ROM's row order must be a permutation of its rows")
    padded = np.zeros((rows, n * lanes), dtype=np.int64)
    padded[:, :cols] = codes[order]
    words = pack_codes(padded, matrix.encoding.bits, lanes)
    return [int(w) for w in np.asarray(words).reshape(-1)]


def signed_words(values, width: int, per_word: int = 1) -> list[int]:
    """Two's-complement ``width``-bit fields, ``per_word`` to a word (pack_codes layout)."""
    v = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise HwgenError(f"values {v.min()}..{v.max()} do not fit {width} signed bits")
    u = v & ((1 << width) - 1)
    if per_word == 1:
        return [int(x) for x in u.reshape(-1)]
    return [int(x) for x in np.asarray(pack_codes(u, width, per_word)).reshape(-1)]


@dataclass(frozen=True)
class MatrixPlan:
    """One weight matrix as the hardware uses it."""

    id: int
    name: str
    matrix: QuantMatrix
    acc_bound: int  # largest |dot product| of a row with any allowed inputs
    in_frac: int  # fraction bits of its inputs
    out_frac: int  # fraction bits of its scaled term
    row_order: tuple[int, ...]  # issue order of its rows
    #: largest |acc * row_mult[r]| (per-row scales, issue 26); None: no row multipliers
    product_bound: int | None = None

    @property
    def shift(self) -> int:
        """numerics.term_shift of the matrix (left for >= 0, rounding right for < 0)."""
        return term_shift(self.matrix.scale, self.in_frac, self.out_frac)

    @property
    def term_width(self) -> int:
        """Signed width of the scaled term align(acc * row_mult * mantissa, shift) (cannot
        overflow; ``row_mult`` 1 without row multipliers)."""
        bound = self.acc_bound if self.product_bound is None else self.product_bound
        return signed_width(term_bound(bound, self.matrix.scale, self.in_frac, self.out_frac))

    @property
    def product_width(self) -> int:
        """Signed width of ``acc * row_mult[r]`` over the matrix's rows (the row multiply's
        result for this matrix's events; the accumulator's width without row multipliers)."""
        return signed_width(self.acc_bound if self.product_bound is None
                            else self.product_bound)


@dataclass(frozen=True)
class WeightRomPlan:
    """The weight ROM of one encoding: its matrices and its words in issue order."""

    name: str
    encoding: WeightEncoding
    matrix_ids: tuple[int, ...]
    words: tuple[int, ...]
    word_bits: int

    @property
    def depth(self) -> int:
        return len(self.words)

    @property
    def bits(self) -> int:
        return self.depth * self.word_bits


@dataclass(frozen=True)
class StoreLayout:
    """A state store: ``values`` values of ``value_bits`` per word, ``words`` real words, an
    address of ``addr_bits`` bits whose top bit selects the (never written, all-zero) zero region.
    ``mode`` is ``ram`` (block RAM, one synchronous read port + a registered output) or
    ``registers``; both read with a latency of 2 cycles."""

    name: str
    values: int
    value_bits: int
    words: int  # addressable words below the zero region (a power of two)
    mode: str

    @property
    def word_bits(self) -> int:
        return self.values * self.value_bits

    @property
    def addr_bits(self) -> int:
        return uint_bits(self.words) + 1

    @property
    def bits(self) -> int:
        """Bits that hold state (the zero region and unused words excluded)."""
        return self.words * self.word_bits


@dataclass(frozen=True)
class LoadImage:
    """One memory written at run time: its index on the load port, name, word width and words
    (the same words a ROM would hold)."""

    index: int
    name: str
    width: int
    words: tuple[int, ...]
    single_port: bool

    @property
    def depth(self) -> int:
        return len(self.words)


@dataclass(frozen=True)
class MemoryPlan:
    """One memory of the accelerator, for the estimate and the manifest."""

    name: str
    kind: str  # "rom" (initialised, read only), "ram" (written at run time) or "spram" (same,
    # single-ported: iCE40 SPRAM where synthesis finds it cheaper)
    width: int
    depth: int  # words as the hardware declares them (RAMs include the zero region)
    payload_bits: int  # bits that carry information
    read_ports: int = 1

    @property
    def bits(self) -> int:
        return self.width * self.depth

    def to_json(self) -> dict:
        return json_fields(self, "name", "kind", "width", "depth", "bits", "payload_bits",
                           "read_ports")


def choose_state_mode(bits: int, words: int, state: str) -> str:
    """The storage of a state store of ``bits`` bits in ``words`` words for the ``state``
    option."""
    if state not in STATE_MODES:
        raise HwgenError(f"State storage must be one of {', '.join(STATE_MODES)}, not {state!r}")
    if state != "auto":
        return str(state)
    small = bits <= REGISTER_STATE_MAX_BITS and words <= REGISTER_STATE_MAX_WORDS
    return "registers" if small else "ram"


@dataclass(frozen=True)
class Plan:
    """Everything the gateware builds for (model, lanes, state); see the module docstring."""

    model: Model
    lanes: int
    state_option: StateMode
    matrices: dict  # id -> MatrixPlan
    weight_roms: tuple[WeightRomPlan, ...]
    biases: tuple[int, ...]
    bias_width: int
    acc_widths: dict  # WeightEncoding -> accumulator width of its MAC unit
    state: StoreLayout  # h of every layer, two banks, P values per word
    hprev: StoreLayout | None  # GRU: h, one value per word, for h - n
    cstore: StoreLayout | None  # LSTM: c, one value per word
    timing: Schedule
    weights: WeightMode = WeightMode.ROM
    #: per-row scales (issue 26): every event's row multiplier in event order (`row_events`;
    #: 1 for a matrix without multipliers); None when no matrix of the model has them
    row_mults: tuple[int, ...] | None = None
    #: the plan of a delta core's weights (issue 23, `hwgen.delta.design.delta_plan`): its
    #: `load_images` are the delta core's (`hwgen.delta.loadable.delta_load_images`)
    delta: bool = False

    # -- derived figures --------------------------------------------------------------------
    @property
    def head_id(self) -> int:
        return 2 * self.model.num_layers + 1

    sparse = forwarded("timing.sparse", "A sparse core (zero skipping, `packing`).")
    span = forwarded("timing.span", "Operand values per word (state store words, input "
                     "chunks): P, or 2P sparse.")

    def repeat(self, mid: int) -> int:
        """Words per span of matrix ``mid`` (`Schedule.repeat`)."""
        return self.timing.repeat(mid)

    @property
    def halved(self) -> tuple[int, ...]:
        """Ids of the matrices that take two words a span (a sparse core's unpacked ones)."""
        return tuple(i for i in self.matrices if self.repeat(i) == 2)

    paired = forwarded("timing.paired",
                       "Layer 0 issues paired input segments (`schedule.pairs_input_rows`).")

    @property
    def pair_split(self) -> int:
        """First lane of a paired word's second row (`schedule.tree_split`)."""
        return tree_split(self.lanes)

    @property
    def operand_width(self) -> int:
        f = self.model.formats
        return max(f.input.width, f.state.width)

    def chunks(self, mid: int) -> int:
        """Issue cycles of one row of matrix ``mid``: ceil(columns / span) words per span
        (`repeat`)."""
        return self.timing.words_per_row(self.matrices[mid].matrix.shape[1], mid)

    @property
    def state_chunks(self) -> int:
        """Words of one layer's h in one bank: ceil(H / span)."""
        return -(-self.model.hidden // self.span)

    @property
    def chunk_bits(self) -> int:
        """Bits of a word index within one bank (at least 1)."""
        return uint_bits(self.state_chunks)

    @property
    def unit_bits(self) -> int:
        """Bits of a unit index 0 .. H-1 in the narrow stores."""
        return uint_bits(self.model.hidden)

    @property
    def layer_bits(self) -> int:
        return uint_bits(self.model.num_layers)

    @property
    def term_width(self) -> int:
        return max(p.term_width for p in self.matrices.values())

    @property
    def loadable(self) -> bool:
        """Weights, biases and embedding are written at run time (``weights`` is not ``rom``)."""
        return self.weights is not WeightMode.ROM

    @property
    def row_mult_width(self) -> int:
        """Bits of the row multiplier (unsigned; 0 without row multipliers)."""
        return row_mult_width(self.model)

    def row_mult_words(self) -> list[int] | None:
        """The row-multiplier memory's words (one multiplier per event, event order), or None."""
        return None if self.row_mults is None else list(self.row_mults)

    def bias_words(self) -> list[int]:
        """The bias memory's words: the biases in consumption order, then one zero word."""
        return signed_words(list(self.biases) + [0], self.bias_width)

    def embedding_words(self) -> list[int] | None:
        """The embedding memory's words (one token's vector a word), or None."""
        m = self.model
        if m.embedding is None:
            return None
        return signed_words(m.embedding, m.formats.input.width, per_word=m.input.dim)

    def load_images(self) -> list[LoadImage]:
        """The memories a loadable core writes at run time, in load-port index order: the weight
        memories (one per encoding), the biases, then the embedding (token models); a delta
        core's (``delta``): `hwgen.delta.loadable.delta_load_images`."""
        if self.delta:  # issue 23: the delta core's memories
            from ..delta.loadable import delta_load_images

            return delta_load_images(self)
        single = self.weights is WeightMode.SPRAM
        out = [LoadImage(k, r.name, r.word_bits, r.words, single)
               for k, r in enumerate(self.weight_roms)]
        out.append(LoadImage(len(out), "biases", self.bias_width, tuple(self.bias_words()),
                             False))
        emb = self.embedding_words()
        if emb is not None:
            out.append(LoadImage(len(out), "embedding", self.model.formats.input.width
                                 * self.model.input.dim, tuple(emb), False))
        if self.row_mults is not None:  # issue 26: last, so the other indices do not move
            out.append(LoadImage(len(out), "row_mult", self.row_mult_width,
                                 tuple(self.row_mults), False))
        return out

    def memories(self) -> list[MemoryPlan]:
        """Every memory of the accelerator (weights, biases, tables, embedding, state)."""
        m, f = self.model, self.model.formats
        other = "ram" if self.loadable else "rom"  # biases, embedding
        out = [
            MemoryPlan(r.name, self.weights, r.word_bits, r.depth,
                       r.bits if self.sparse else
                       sum(self.matrices[i].matrix.memory_bits for i in r.matrix_ids))
            for r in self.weight_roms
        ]
        out.append(MemoryPlan("biases", other, self.bias_width, len(self.biases) + 1,
                              len(self.biases) * self.bias_width))
        sig_w = max(1, int(m.sigmoid_table.max()).bit_length())
        tanh_w = signed_width(int(np.abs(m.tanh_table).max()))
        if m.cell is not CellKind.RNN:
            n = 1 << f.sigmoid_in_width
            out.append(MemoryPlan("sigmoid.table", "rom", sig_w, n, n * sig_w))
        n = 1 << f.tanh_in_width
        out.append(MemoryPlan("tanh.table", "rom", tanh_w, n, n * tanh_w,
                              read_ports=2 if m.cell is CellKind.LSTM else 1))
        if m.embedding is not None:
            w = m.input.dim * f.input.width
            out.append(MemoryPlan("embedding", other, w, m.input.vocab, w * m.input.vocab))
        if self.row_mults is not None:
            n, w = len(self.row_mults), self.row_mult_width
            out.append(MemoryPlan("row_mult", other, w, n, n * w))
        H, L = m.hidden, m.num_layers
        for store, payload in ((self.state, 2 * L * H * f.state.width),
                               (self.hprev, L * H * f.state.width),
                               (self.cstore, L * H * (f.cell.width if f.cell else 0))):
            if store is not None and store.mode == "ram":
                out.append(MemoryPlan(store.name, "ram", store.word_bits, 2 * store.words,
                                      payload))
        return out

    def register_state_bits(self) -> int:
        """Bits of state kept in flip-flops (stores in ``registers`` mode)."""
        return sum(s.bits for s in (self.state, self.hprev, self.cstore)
                   if s is not None and s.mode == "registers")

    def to_json(self) -> dict:
        """The plan's structural figures for the manifest."""

        def store(s):
            if s is None:
                return None
            return {"name": s.name, "mode": s.mode, "values_per_word": s.values,
                    "value_bits": s.value_bits, "words": s.words, "addr_bits": s.addr_bits}

        return {
            "lanes": self.lanes,
            "state_option": self.state_option,
            "weights": self.weights,
            "zero_skipping": self.sparse,
            "operand_values_per_word": self.span,
            "stores": [store(s) for s in (self.state, self.hprev, self.cstore) if s],
            "operand_width": self.operand_width,
            "bias_width": self.bias_width,
        }


def _matrices(model: Model) -> dict:
    w, f = derive_widths(model), model.formats
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    unit_major = tuple(g * H + j for j in range(H) for g in range(G))
    out = {}
    rows = any(m.row_mult is not None for _, m in model.matrices())

    def products(m: QuantMatrix, input_bound: int) -> int | None:
        return product_bound(m, input_bound) if rows else None

    for i, layer in enumerate(model.layers):
        in_frac = model.layer_input_format(i).frac
        lw = w.layers[i]
        out[2 * i] = MatrixPlan(2 * i, f"layer{i}.wx", layer.wx, lw.acc_x_bound,
                                in_frac, f.gate_frac, unit_major,
                                products(layer.wx, lw.input_bound))
        out[2 * i + 1] = MatrixPlan(2 * i + 1, f"layer{i}.wh", layer.wh, lw.acc_h_bound,
                                    f.state.frac, f.gate_frac, unit_major,
                                    products(layer.wh, w.state_bound))
    out[2 * L + 1] = MatrixPlan(2 * L + 1, "head.w", model.head.w, w.head_acc_bound,
                                f.state.frac, f.output_frac, tuple(range(model.outputs)),
                                products(model.head.w, w.state_bound))
    return out


def row_events(model: Model) -> list[tuple[int, int]]:
    """(matrix id, row) of every event of a timestep in the order the core's events come: per
    layer, per issued row (unit-major), the input part then the recurrent part; then the head's
    rows. Paired input segments keep this order (row r + 1's input event, deferred, comes at
    the first chunk of its recurrent segment, after row r's recurrent event)."""
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    out = []
    for layer in range(L):
        for j in range(H):
            for g in range(G):
                out += [(2 * layer, g * H + j), (2 * layer + 1, g * H + j)]
    return out + [(2 * L + 1, o) for o in range(model.outputs)]


def _row_mults(model: Model) -> tuple[int, ...] | None:
    """Every event's row multiplier (`row_events` order), or None without row multipliers."""
    if row_mult_width(model) == 0:
        return None
    factors = {mid: m.row_factors for mid, _, m in matrix_ids(model)}
    return tuple(int(factors[mid][r]) for mid, r in row_events(model))


def _issue_sequence(model: Model, paired: bool) -> list[tuple[int, tuple[int, ...]]]:
    """(matrix id, rows of one issued segment) in issue order: per layer, per row, input then
    recurrent segment; then the head's rows. With paired input segments (layer 0), one input
    segment serves rows (r, r + 1), issued before row r's and row r + 1's recurrent segments
    (an odd last row has its own)."""
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    R = G * H
    seq = []
    for layer in range(L):
        if layer == 0 and paired:
            for r in range(0, R, 2):
                pair = (r, r + 1) if r + 1 < R else (r,)
                seq.append((0, pair))
                seq += [(1, (q,)) for q in pair]
            continue
        for r in range(R):
            seq += [(2 * layer, (r,)), (2 * layer + 1, (r,))]
    seq += [(2 * L + 1, (o,)) for o in range(model.outputs)]
    return seq


def paired_words(matrix: QuantMatrix, lanes: int, row_order, sparse: bool = False) -> list[int]:
    """The ROM image of a layer-0 input matrix with paired input segments: one word per pair of
    rows in ``row_order``, the first row's codes in lanes ``[0, C)``, the second's in lanes
    ``[split, split + C)`` (`schedule.tree_split`); an odd last row alone in the low lanes. Other
    lanes hold code 0 (their operands are zero, or their half is kept out of the sum)."""
    codes = np.asarray(matrix.codes, dtype=np.int64)[np.asarray(row_order, dtype=np.int64)]
    rows, cols = codes.shape
    split = tree_split(lanes)
    # sparse core: a lane covers two span columns, so the halves are [0, 2s) and [2s, 2P)
    per_lane = 2 if sparse else 1
    if cols > per_lane * (lanes - split):
        raise HwgenError(f"{cols} columns do not fit the {lanes - split} lanes of a paired half")
    half = per_lane * split
    padded = np.zeros((-(-rows // 2), per_lane * lanes), dtype=np.int64)
    padded[:, :cols] = codes[0::2]
    padded[: rows // 2, half : half + cols] = codes[1::2]
    if sparse:  # groups of 4 stay aligned (2s is a multiple of 4), so the pairs still pack
        pairs = QuantMatrix(padded.astype(np.uint16), matrix.encoding, matrix.scale)
        return sparse_words(pairs, lanes, np.arange(len(padded)), 1)
    words = pack_codes(padded, matrix.encoding.bits, lanes)
    return [int(w) for w in np.asarray(words).reshape(-1)]


def _weight_roms(model: Model, lanes: int, mats: dict,
                 timing: Schedule) -> tuple[WeightRomPlan, ...]:
    paired = timing.paired
    if timing.sparse:
        images = {i: sparse_words(p.matrix, lanes, p.row_order, timing.repeat(i))
                  for i, p in mats.items()}
    else:
        images = {i: weight_words(p.matrix, lanes, p.row_order) for i, p in mats.items()}
    per_row = {i: timing.words_per_row(p.matrix.shape[1], i) for i, p in mats.items()}
    if paired:
        images[0] = paired_words(mats[0].matrix, lanes, mats[0].row_order, timing.sparse)
    groups: dict = {}
    for i, rows in _issue_sequence(model, paired):
        enc = mats[i].matrix.encoding
        ids, words = groups.setdefault(enc, ([], []))
        if i not in ids:
            ids.append(i)
        if paired and i == 0:
            words.append(images[0][rows[0] // 2])
            continue
        n = per_row[i]
        words.extend(images[i][rows[0] * n : (rows[0] + 1) * n])
    return tuple(
        WeightRomPlan(f"weights{k}", enc, tuple(ids), tuple(words),
                      lanes * (lane_bits(enc) if timing.sparse else enc.bits))
        for k, (enc, (ids, words)) in enumerate(groups.items())
    )


def _biases(model: Model) -> list[int]:
    G, H = model.cell.num_gates, model.hidden
    seq = []
    for layer in model.layers:
        for j in range(H):
            for g in range(G):
                seq.append(int(layer.bias[g * H + j]))
                if model.cell is CellKind.GRU and g == 2:
                    seq.append(int(layer.bias_hn[j]))
    seq += [int(b) for b in model.head.bias]
    return seq


def matrix_ids(model: Model) -> list[tuple[int, str, QuantMatrix]]:
    """(matrix id, name, matrix): 2l layer l's input matrix, 2l + 1 its recurrent one, 2L + 1
    the head (the ids of `MatrixPlan`, the names of `Model.matrices`)."""
    L = model.num_layers
    ids = [2 * (i // 2) + i % 2 for i in range(2 * L)] + [2 * L + 1]
    return [(mid, name, m) for mid, (name, m) in zip(ids, model.matrices(), strict=True)]


def weight_memory_bits(model: Model, timing: Schedule) -> int:
    """Bits of the weight memories of ``model``'s core with ``timing`` (what `Plan.weight_roms`
    hold, without laying out a word): every row's issue words (a paired layer-0 input matrix:
    one word per pair of rows) at P lanes of the encoding's bits (a sparse core: `lane_bits`).
    For what-if figures (the dense core beside a sparse one) without a second plan."""
    total = 0
    for mid, _, m in matrix_ids(model):
        rows, cols = m.shape
        if mid == 0 and timing.paired:
            words = -(-rows // 2)
        else:
            words = rows * timing.words_per_row(cols, mid)
        total += words * timing.lanes * (lane_bits(m.encoding) if timing.sparse
                                         else m.encoding.bits)
    return total


def make_plan(model: Model, lanes: int, state: str = "auto", weights: str = "rom",
              sparse: str = "auto") -> Plan:
    """The plan of ``model`` on ``lanes`` lanes with the ``state`` storage option
    (``auto``, ``registers`` or ``ram``), the ``weights`` storage (``rom``, ``ram`` or
    ``spram``, `WEIGHT_MODES`) and the zero-skipping option (``auto``, ``on``, ``off``,
    `packing.SPARSE_MODES`, resolved by `schedule.choose_sparse`). Every option is validated
    and resolved here; callers with a request resolve it once through `hwgen.design.resolve`
    and pass the plan on. Raises `HwgenError` for bad arguments."""
    lanes, state, weights = check_options(model, lanes, state, weights)
    return _build(model, lanes, state, weights,
                  schedule(model, lanes, choose_sparse(model, lanes, sparse)))


def plan_like(model: Model, like: Plan) -> Plan:
    """The words of ``model`` laid out as ``like``'s core reads them (its lanes, storage, zero
    skipping and words per span): what a loadable core built for another model of the shape
    loads (`hwgen.shape.load_images`). Resolves nothing: every option is ``like``'s. Raises
    `HwgenError` when ``like`` packs a matrix this model's codes do not fit."""
    lanes, state, weights = check_options(model, like.lanes, like.state_option, like.weights)
    return _build(model, lanes, state, weights,
                  schedule(model, lanes, like.sparse, dict(like.timing.repeats)))


def check_options(model: Model, lanes, state, weights) -> tuple[int, StateMode, WeightMode]:
    """(lanes, state, weights) of a request, validated for ``model``; raises `HwgenError`."""
    if not isinstance(model, Model):
        raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
    if model.delta is not None:  # delta networks (issue 23): the dense core cannot run them
        from ..delta.golden import refuse_dense_core

        refuse_dense_core(model)
    lanes = check_lanes(model, lanes)
    if model.outputs < 1:
        raise HwgenError("the model's head has no outputs; the accelerator needs at least one")
    if not isinstance(state, str) or state not in STATE_MODES:
        raise HwgenError(f"State storage must be one of {', '.join(STATE_MODES)}, not {state!r}")
    if not isinstance(weights, str) or weights not in WEIGHT_MODES:
        raise HwgenError(
            f"Weight storage must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    return lanes, StateMode(state), WeightMode(weights)


def _build(model: Model, lanes: int, state: StateMode, weights: WeightMode,
           timing: Schedule) -> Plan:
    mats = _matrices(model)
    roms = _weight_roms(model, lanes, mats, timing)
    acc = {}
    for p in mats.values():
        acc[p.matrix.encoding] = max(acc.get(p.matrix.encoding, 2), signed_width(p.acc_bound))
    biases = _biases(model)
    bw = max(2, max(signed_width(abs(b)) for b in biases))
    f, H, L = model.formats, model.hidden, model.num_layers
    chunks = -(-H // timing.span)
    sw = f.state.width

    def store(name, values, value_bits, words):
        bits = words * values * value_bits
        return StoreLayout(name, values, value_bits, words, choose_state_mode(bits, words, state))

    # Main store address: Cat(chunk, bank, layer) below the zero bit (no layer field for one
    # layer); narrow stores: Cat(unit, layer).
    layer_words = 1 << uint_bits(L) if L > 1 else 1
    hstore = store("state", timing.span, sw, (1 << uint_bits(chunks)) * 2 * layer_words)
    narrow_words = (1 << uint_bits(H)) * layer_words
    hprev = store("hprev", 1, sw, narrow_words) if model.cell is CellKind.GRU else None
    cstore = (store("cstate", 1, f.cell.width, narrow_words)
              if model.cell is CellKind.LSTM else None)
    return Plan(model, lanes, state, mats, roms, tuple(biases), bw, acc, hstore, hprev, cstore,
                timing, weights, _row_mults(model))
