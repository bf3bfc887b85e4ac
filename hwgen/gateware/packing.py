"""Zero skipping: the 2:4 weight-word format of a *sparse core* (pure, no Amaranth).

A sparse core reads operand words of ``span = 2P`` values (two dense words' worth) and still
has P lanes. The span is cut into P/2 groups of `GROUP` = 4 columns, and each group gets two
lanes: lane ``k`` (group ``g = k // 2``, ``r = k % 2``) multiplies the operand at column
``4g + r + sel_k`` of the span, ``sel_k`` in 0..2, or a zero operand for ``sel_k`` =
`SEL_ZERO`. So lane 2g reaches columns 0..2 of its group and lane 2g + 1 columns 1..3: any two
non-zero weights of a group (at columns i < j) fit, one in each lane.

- A **packed** matrix (every group of 4 columns of every row holds at most 2 non-zero weights:
  `spec.Sparsity` 2:4, what ``hwgen train --sparsity 2:4`` produces, or any sparser pattern)
  takes ``ceil(C / 2P)`` words per row: half the cycles of the dense core.
- Any other matrix in a sparse core (the dense head, a matrix with a group of 3 or 4 non-zeros)
  takes two words per span, ``2 * ceil(C / 2P)``: lanes (2g, 2g + 1) take columns (0, 1) of the
  group in the first word and (2, 3) in the second. Such zeros compute correctly, at the dense
  rate.

A lane's field is ``sel`` (2 bits, low) then its weight code, ``lane_code_bits`` wide: for
ternary-like 2-bit codes (ternary, 2-bit pow2) only the sign bit (the zero is ``sel`` =
`SEL_ZERO`), so a packed ternary weight costs (2 + 1) / 2 = 1.5 bits instead of 2; other
encodings keep their whole code. The MAC unit (`mac.MacUnit` with ``sparse=True``) selects each
lane's operand through a 3:1 multiplexer and a zero gate, registered, before its product.
"""

from __future__ import annotations

import enum

import numpy as np

from ..spec import HwgenError, Model, QuantMatrix, Sparsity, WeightEncoding, pack_codes

__all__ = [
    "GROUP",
    "HARDWARE_SPARSITY",
    "SEL_ZERO",
    "SPARSE_MODES",
    "SparseMode",
    "lane_code_bits",
    "lane_bits",
    "lane_base",
    "packable",
    "word_repeats",
    "sparse_words",
]

#: Columns per group, lanes per group and the pattern a packed matrix satisfies.
GROUP = 4
HARDWARE_SPARSITY = Sparsity(2, GROUP)

#: ``sel`` value of a lane whose operand is zero (a zero weight, or a padded column).
SEL_ZERO = 3

class SparseMode(enum.StrEnum):
    """The ``sparse`` (zero skipping) option: ``auto`` builds the sparse core when it takes fewer
    cycles per timestep than the dense one (some matrices pack, the lane count is even), ``on``
    always (`schedule.choose_sparse` says why it cannot), ``off`` never. Equal to its string."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


#: Accepted values of the ``sparse`` option (the `SparseMode` values, as plain strings).
SPARSE_MODES = tuple(m.value for m in SparseMode)


def lane_code_bits(encoding: WeightEncoding) -> int:
    """Bits of one lane's weight code in a sparse word: the sign only for 2-bit ternary-like
    codes (their zero is ``sel = SEL_ZERO``), else the whole code."""
    if encoding.is_ternary_like and encoding.bits == 2:
        return 1
    return encoding.bits


def lane_bits(encoding: WeightEncoding) -> int:
    """Bits of one lane's field in a sparse word: ``sel`` (2) + `lane_code_bits`."""
    return 2 + lane_code_bits(encoding)


def lane_base(k: int) -> int:
    """The first span column lane ``k`` can reach (``4 * (k // 2) + k % 2``); it reaches this
    column and the next two."""
    return GROUP * (k // 2) + k % 2


def packable(matrix: QuantMatrix) -> bool:
    """Every group of 4 columns of every row of ``matrix`` holds at most 2 non-zero codes."""
    if not matrix.encoding.has_zero:
        return False
    return HARDWARE_SPARSITY.violation(np.asarray(matrix.codes)) is None


def word_repeats(model: Model) -> dict[int, int]:
    """Words per span of every matrix of ``model`` in a sparse core (matrix ids as in
    `plan.MatrixPlan`): 1 for packed matrices, 2 for the others.

    Three groups share one figure so that the sequencer's segment lengths stay three constants:
    layer 0's input matrix, the head, and every other layer matrix (layer l > 0's input matrices
    and all recurrent matrices read the same state words: they are packed only when all of them
    are)."""
    L = model.num_layers
    mats = {2 * i: layer.wx for i, layer in enumerate(model.layers)}
    mats.update({2 * i + 1: layer.wh for i, layer in enumerate(model.layers)})
    rest = [i for i in mats if i != 0]
    rest_rep = 1 if all(packable(mats[i]) for i in rest) else 2
    out = {i: rest_rep for i in rest}
    out[0] = 1 if packable(mats[0]) else 2
    out[2 * L + 1] = 1 if packable(model.head.w) else 2
    return out


def _fields(encoding: WeightEncoding, sel, codes):
    """Lane fields ``sel | code << 2`` (arrays); a lane with ``sel = SEL_ZERO`` is all zero
    but its selector; 2-bit ternary-like codes keep their sign bit only."""
    if lane_code_bits(encoding) == 1 and encoding.bits == 2:
        codes = (codes >> 1) & 1  # the sign bit of 01 (+1) / 11 (-1)
    return np.where(sel == SEL_ZERO, SEL_ZERO, sel | (codes << 2))


def sparse_words(matrix: QuantMatrix, lanes: int, row_order, repeat: int) -> list[int]:
    """The sparse-core ROM image of ``matrix`` (rows in ``row_order``): per row, per span of
    2P columns, one word (``repeat`` 1: the matrix must be `packable`) or two (``repeat`` 2:
    columns 0, 1 then 2, 3 of every group). Lane fields as in the module docstring."""
    if lanes % 2:
        raise HwgenError(f"a sparse core needs an even lane count, not {lanes}")
    if repeat == 1 and not packable(matrix):
        raise HwgenError(f"{matrix.shape} matrix is not 2:4 sparse; it cannot be packed")
    enc = matrix.encoding
    codes = np.asarray(matrix.codes, dtype=np.int64)[np.asarray(row_order, dtype=np.int64)]
    rows, cols = codes.shape
    span = 2 * lanes
    spans = -(-cols // span)
    padded = np.zeros((rows, spans * span), dtype=np.int64)
    padded[:, :cols] = codes
    g = padded.reshape(rows, spans, lanes // 2, GROUP)  # (row, span, group, column)
    if repeat == 2:
        # word w: lane 2g takes column 2w (sel 2w), lane 2g + 1 column 2w + 1 (sel 2w)
        per_word = []
        for w in range(2):
            pair = g[..., 2 * w : 2 * w + 2]
            sel = np.where(pair != 0, 2 * w, SEL_ZERO)
            per_word.append(_fields(enc, sel, pair))
        fields = np.stack(per_word, axis=2)  # (row, span, word, group, lane of the group)
    else:
        nz = g != 0
        count = nz.sum(axis=-1)
        first = np.argmax(nz, axis=-1)  # lowest non-zero column
        last = GROUP - 1 - np.argmax(nz[..., ::-1], axis=-1)  # highest
        # lane 2g: the lowest non-zero unless the only one is column 3; lane 2g + 1: the
        # highest when there are two (or the only one at column 3)
        lane0 = (count == 2) | ((count == 1) & (first <= 2))
        lane1 = (count == 2) | ((count == 1) & (last == 3))
        sel0 = np.where(lane0, first, SEL_ZERO)
        sel1 = np.where(lane1, last - 1, SEL_ZERO)
        code0 = np.take_along_axis(g, first[..., None], axis=-1)[..., 0]
        code1 = np.take_along_axis(g, last[..., None], axis=-1)[..., 0]
        fields = np.stack([_fields(enc, sel0, code0), _fields(enc, sel1, code1)],
                          axis=-1)[:, :, None]
    words = pack_codes(fields.reshape(rows * spans * repeat, lanes), lane_bits(enc), lanes)
    return [int(w) for w in np.asarray(words).reshape(-1)]
