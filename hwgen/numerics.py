"""Integer arithmetic primitives and derived widths shared by the golden model and the gateware.

Everything here is exact integer arithmetic on NumPy int64 arrays (or Python ints). The golden model
is written with these functions and the gateware derives its register widths from `derive_widths`,
so the two cannot disagree about a rounding rule or a width. docs/numerics.md is the prose version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import CellKind, FixedFormat, HwgenError, Model, QuantMatrix, Scale

__all__ = [
    "round_shift",
    "align",
    "term_shift",
    "scaled_term",
    "matrix_term",
    "term_bound",
    "product_bound",
    "saturate",
    "table_index",
    "signed_width",
    "LayerWidths",
    "ModelWidths",
    "derive_widths",
]


def round_shift(x, s: int):
    """Divide by 2**s rounding half up: floor((x + 2**(s-1)) / 2**s). ``s`` >= 0; exact for s =
    0."""
    if s < 0:
        raise ValueError(f"shift must be non-negative, not {s}")
    if s == 0:
        return x
    return (x + (1 << (s - 1))) >> s


def align(x, k: int):
    """Multiply by 2**k: a left shift for k >= 0 (exact), else `round_shift` by -k."""
    return x << k if k >= 0 else round_shift(x, -k)


def term_shift(scale: Scale, in_frac: int, out_frac: int) -> int:
    """Shift that takes ``acc * mantissa`` (inputs with ``in_frac`` bits) to ``out_frac`` bits."""
    return scale.exponent - in_frac + out_frac


def scaled_term(acc, scale: Scale, in_frac: int, out_frac: int, row_mult=None):
    """A dot product's exact integer ``acc`` as a value with ``out_frac`` fraction bits:
    align(acc * scale.mantissa, scale.exponent - in_frac + out_frac).

    ``row_mult`` (a matrix's per-row multipliers, `QuantMatrix.row_mult`; None: none) multiplies
    the last axis of ``acc`` (its rows) before the one rounding:
    align(acc[..., r] * row_mult[r] * scale.mantissa, ...). Exact integers (callers keep the
    product within int64: `derive_widths` refuses a model where it could exceed 2**62)."""
    if row_mult is not None:
        acc = acc * row_mult
    return align(acc * scale.mantissa, term_shift(scale, in_frac, out_frac))


def matrix_term(acc, m: QuantMatrix, in_frac: int, out_frac: int):
    """`scaled_term` of matrix ``m``'s dot products ``acc`` (rows on the last axis), with its
    scale and its row multipliers when it has them: the one statement of a matrix's term."""
    return scaled_term(acc, m.scale, in_frac, out_frac, m.row_mult)


def saturate(x, fmt: FixedFormat):
    """Clip to the format's code range (used only where docs/numerics.md says a value saturates)."""
    return np.clip(x, fmt.min_code, fmt.max_code)


def table_index(z, width: int):
    """Table index of pre-activation ``z``: saturate to a signed ``width``-bit value, offset by
    2**(width-1) (i.e. flip the sign bit)."""
    half = 1 << (width - 1)
    return np.clip(z, -half, half - 1) + half


def signed_width(bound: int) -> int:
    """Bits of a two's-complement register holding every value in [-bound, bound]."""
    bound = int(bound)
    if bound < 0:
        raise ValueError("bound must be non-negative")
    return bound.bit_length() + 1


def _max_abs_code(fmt: FixedFormat) -> int:
    return max(abs(fmt.min_code), abs(fmt.max_code))


def _acc_bound(m: QuantMatrix, input_bound: int) -> int:
    """Largest |dot product| of any row of ``m`` with inputs of magnitude <= input_bound."""
    if m.codes.size == 0:
        return 0
    return int(np.abs(m.levels).sum(axis=1).max()) * int(input_bound)


def product_bound(m: QuantMatrix, input_bound: int) -> int:
    """Largest |acc * row_mult[r]| over the rows r of ``m`` (inputs of magnitude <=
    input_bound): the dot product's bound after the row multiply, row by row (each row's own
    accumulator bound times its own multiplier). Without row multipliers: `_acc_bound`."""
    if m.row_mult is None or m.codes.size == 0:
        return _acc_bound(m, input_bound)
    rows = np.abs(m.levels).sum(axis=1).astype(object) * m.row_mult.astype(object)
    return int(max(rows)) * int(input_bound)  # Python ints: no overflow whatever the sizes


def term_bound(acc_bound: int, scale: Scale, in_frac: int, out_frac: int) -> int:
    """Largest |`scaled_term`| of a dot product with |acc| <= ``acc_bound`` (the rounding makes
    the two signs differ by one at most, so both ends are taken). With row multipliers pass
    `product_bound` (|acc * row_mult[r]|, row by row) as ``acc_bound``: align is monotonic."""
    k = term_shift(scale, in_frac, out_frac)
    hi = align(acc_bound * scale.mantissa, k)
    lo = align(-acc_bound * scale.mantissa, k)
    return max(abs(int(hi)), abs(int(lo)))


def _width_of(bound: str) -> property:
    """A read-only property: the signed width of the field ``bound`` (a largest magnitude)."""
    return property(lambda self: signed_width(getattr(self, bound)),
                    doc=f"Signed width of ``{bound}``.")


@dataclass(frozen=True)
class LayerWidths:
    """Bounds (largest magnitudes) and register widths of one layer; all exact, no overflow.

    ``acc_x`` / ``acc_h``: the raw dot products (levels x input codes) of the input / recurrent
    matrix; ``term_x`` / ``term_h``: those after scaling to ``gate_frac`` bits; ``gate``: a
    pre-activation before it saturates into a table index.
    """

    input_bound: int
    acc_x_bound: int
    acc_h_bound: int
    term_x_bound: int
    term_h_bound: int
    gate_bound: int

    acc_x_width = _width_of("acc_x_bound")
    acc_h_width = _width_of("acc_h_bound")
    gate_width = _width_of("gate_bound")


@dataclass(frozen=True)
class ModelWidths:
    layers: tuple[LayerWidths, ...]
    state_bound: int  # largest |h| code (the tanh table's largest magnitude)
    head_acc_bound: int
    logit_bound: int

    head_acc_width = _width_of("head_acc_bound")
    logit_width = _width_of("logit_bound")

    def to_json(self) -> dict:
        return {
            "layers": [
                {
                    "acc_x_width": w.acc_x_width,
                    "acc_h_width": w.acc_h_width,
                    "gate_width": w.gate_width,
                    "acc_x_bound": w.acc_x_bound,
                    "acc_h_bound": w.acc_h_bound,
                    "gate_bound": w.gate_bound,
                }
                for w in self.layers
            ],
            "head_acc_width": self.head_acc_width,
            "logit_width": self.logit_width,
        }


def derive_widths(model: Model) -> ModelWidths:
    """Worst-case magnitudes of every intermediate value, from the weights and formats.

    The bounds hold for any input sequence (inputs within their format, state starting at zero),
    so registers of these widths cannot overflow.
    """
    f = model.formats
    state_bound = int(np.abs(model.tanh_table).max())
    if model.embedding is not None:
        first_input = int(np.abs(model.embedding).max()) if model.embedding.size else 0
    else:
        first_input = _max_abs_code(f.input)
    layers, products = [], []
    for i, layer in enumerate(model.layers):
        in_bound = first_input if i == 0 else state_bound
        in_frac = model.layer_input_format(i).frac
        ax = _acc_bound(layer.wx, in_bound)
        ah = _acc_bound(layer.wh, state_bound)
        px, ph = product_bound(layer.wx, in_bound), product_bound(layer.wh, state_bound)
        products += [px * layer.wx.scale.mantissa, ph * layer.wh.scale.mantissa]
        tx = term_bound(px, layer.wx.scale, in_frac, f.gate_frac)
        th = term_bound(ph, layer.wh.scale, f.state.frac, f.gate_frac)
        b = int(np.abs(layer.bias).max()) if layer.bias.size else 0
        gate = tx + th + b
        if model.cell is CellKind.GRU:
            bhn = int(np.abs(layer.bias_hn).max()) if layer.bias_hn.size else 0
            gate += bhn + 1  # r * (term_h + b_hn), rounded: at most one more than term_h + b_hn
        layers.append(LayerWidths(in_bound, ax, ah, tx, th, gate))
    head_acc = _acc_bound(model.head.w, state_bound)
    head_product = product_bound(model.head.w, state_bound)
    products.append(head_product * model.head.w.scale.mantissa)
    logit = term_bound(head_product, model.head.w.scale, f.state.frac, f.output_frac)
    logit += int(np.abs(model.head.bias).max()) if model.head.bias.size else 0
    if max([head_acc, logit] + [w.gate_bound for w in layers]) >= 1 << 52:
        raise HwgenError("a dot product of this model needs more than 53 bits; reduce its scales")
    if max(products) >= 1 << 62:  # acc * row_mult * mantissa, before the term's shift (int64)
        raise HwgenError("a scaled dot product of this model (accumulator x row multiplier x "
                         "scale mantissa) needs more than 63 bits; reduce its multipliers")
    return ModelWidths(tuple(layers), state_bound, head_acc, logit)
