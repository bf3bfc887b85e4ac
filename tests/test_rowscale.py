"""Per-row scales (issue 26): `QuantMatrix.row_mult`, `spec.row_multipliers`, the golden model."""

import dataclasses

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.api import add_row_scales
from hwgen.floatref import float_forward
from hwgen.golden import GoldenModel
from hwgen.numerics import derive_widths, round_shift, table_index
from hwgen.spec import (
    ROW_MULT_LIMIT,
    HwgenError,
    QuantMatrix,
    Scale,
    WeightEncoding,
    row_multipliers,
)


def _term(acc, mult, s: Scale, in_frac, out_frac):
    """docs/numerics.md with Python ints: align(acc * row_mult * mantissa, shift), one rounding."""
    k = s.exponent - in_frac + out_frac
    v = acc * mult * s.mantissa
    return v << k if k >= 0 else round_shift(v, -k)


def _map_matrices(model, fn):
    """``model`` with every matrix q replaced by fn(q)."""
    return dataclasses.replace(
        model, layers=tuple(dataclasses.replace(ly, wx=fn(ly.wx), wh=fn(ly.wh))
                            for ly in model.layers),
        head=dataclasses.replace(model.head, w=fn(model.head.w)))


def _tanh(m, z):
    return int(m.tanh_table[table_index(z, m.formats.tanh_in_width)])


def test_rnn_with_row_scales_by_hand():
    """Two layers, every matrix with its own multipliers (one of them 0): the golden model's
    hidden states and logits restated one unit at a time with Python ints."""
    m = add_row_scales(make_model("rnn", "int8", inputs=3, hidden=3, outputs=2, layers=2), 6)
    wx0 = m.layers[0].wx
    f = m.formats
    x = [[5, -17, 40], [-128, 127, 0], [3, 3, 3], [127, 127, 127]]
    g = GoldenModel(m).run(np.array([x]), return_hidden=True)
    h = [[0] * 3, [0] * 3]
    for t in range(len(x)):
        v, in_frac = x[t], f.input.frac
        for i, ly in enumerate(m.layers):
            new = []
            for r in range(3):
                ax = sum(int(ly.wx.levels[r, j]) * v[j] for j in range(len(v)))
                ah = sum(int(ly.wh.levels[r, j]) * h[i][j] for j in range(3))
                z = (_term(ax, int(ly.wx.row_mult[r]), ly.wx.scale, in_frac, f.gate_frac)
                     + _term(ah, int(ly.wh.row_mult[r]), ly.wh.scale, f.state.frac, f.gate_frac)
                     + int(ly.bias[r]))
                new.append(_tanh(m, z))
            h[i], v, in_frac = new, new, f.state.frac
            assert g.hidden[i][0, t].tolist() == new
        hw = m.head.w
        logits = [_term(sum(int(hw.levels[o, j]) * v[j] for j in range(3)), int(hw.row_mult[o]),
                        hw.scale, f.state.frac, f.output_frac) + int(m.head.bias[o])
                  for o in range(2)]
        assert g.logits[0, t].tolist() == logits
    assert wx0.row_mult.dtype == np.int64 and not wx0.row_mult.flags.writeable


@pytest.mark.parametrize("cell,quant,tokens", [("gru", "ternary", None), ("lstm", "exp", 7),
                                               ("gru", "pow2", None)])
def test_row_mult_of_ones_is_the_plain_model(cell, quant, tokens):
    """Multipliers all 1 and the same scale: bit for bit the model without them; multipliers
    2**k with the exponent lowered by k: the same again (one rounding, exact products)."""
    base = make_model(cell, quant, tokens=tokens, layers=2)
    x = random_inputs(base, batch=4, time=6)
    want = GoldenModel(base).run(x).logits
    for k in (0, 3):
        m = _map_matrices(base, lambda q, k=k: QuantMatrix(
            q.codes, q.encoding, Scale(q.scale.mantissa, q.scale.exponent - k), q.nm,
            np.full(q.shape[0], 1 << k, np.uint16)))
        np.testing.assert_array_equal(GoldenModel(m).run(x).logits, want)


@pytest.mark.parametrize("cell,quant", [("rnn", "ternary"), ("gru", "int8"), ("lstm", "exp")])
def test_row_scaled_values_stay_within_derived_widths(cell, quant):
    m = add_row_scales(make_model(cell, quant, layers=2), 8, seed=1)
    w = derive_widths(m)
    x = random_inputs(m, batch=8, time=10, seed=5)
    fmt = m.formats.input
    x[:4] = np.where(np.random.default_rng(0).random(x[:4].shape) < 0.5, fmt.min_code,
                     fmt.max_code)
    r = GoldenModel(m).run(x, return_hidden=True)
    assert np.abs(r.logits).max() <= w.logit_bound
    plain = derive_widths(make_model(cell, quant, layers=2))
    assert w.logit_bound != plain.logit_bound  # the multipliers are in the bounds
    # the float model reads the same real weights: level * row_mult * scale
    gap = np.abs(float_forward(m, x * 2.0**-fmt.frac) - r.logits * 2.0**-m.formats.output_frac)
    assert gap.mean() < 0.1


def test_values_and_equals_include_the_multipliers():
    enc = WeightEncoding.ternary()
    codes = enc.encode(np.array([[1, -1, 0], [0, 1, 1]]))
    a = QuantMatrix(codes, enc, Scale(3, -2), row_mult=np.array([2, 5], np.uint16))
    np.testing.assert_array_equal(a.values, [[1.5, -1.5, 0], [0, 3.75, 3.75]])
    same = QuantMatrix(codes, enc, Scale(3, -2), row_mult=np.array([2, 5]))
    other = QuantMatrix(codes, enc, Scale(3, -2), row_mult=np.array([2, 4]))
    none = QuantMatrix(codes, enc, Scale(3, -2))
    assert a.equals(same) and not a.equals(other) and not a.equals(none) and not none.equals(a)
    np.testing.assert_array_equal(none.row_factors, [1, 1])


@pytest.mark.parametrize("bad,message", [
    ([1, 2], "1-D integer NumPy array"),
    (np.array([1]), r"one multiplier per row \(2,\)"),
    (np.array([[1, 2]]), "one multiplier per row"),
    (np.array([1.0, 2.0]), "must hold integers"),
    (np.array([True, False]), "must hold integers"),
    (np.array([1, -1]), r"row_mult\[1\] is -1"),
    (np.array([ROW_MULT_LIMIT, 0]), r"row_mult\[0\] is 65536; .* \[0, 65535\]"),
])
def test_bad_row_multipliers_are_refused(bad, message):
    enc = WeightEncoding.ternary()
    with pytest.raises(HwgenError, match=message):
        QuantMatrix(np.zeros((2, 3), np.uint16), enc, Scale(1, 0), row_mult=bad)


def test_row_multipliers_from_factors():
    mult, s = row_multipliers([0.5, 0.25, 0.1, 0.0])
    assert s == Scale(1, -7) and mult.tolist() == [64, 32, 13, 0]
    rng = np.random.default_rng(0)
    for bits in (1, 2, 4, 8, 12, 16):
        f = rng.random(50) * 10.0 ** rng.integers(-6, 6)
        mult, s = row_multipliers(f, bits)
        assert s.mantissa == 1 and mult.max() < 1 << bits and mult.max() < ROW_MULT_LIMIT
        err = np.abs(mult * s.value - f)
        assert err.max() <= f.max() / (2**bits - 0.5)  # the documented bound
        # nearest on the grid of 2**e, e = the exponent before common twos were moved out
        step = 2.0 ** (s.exponent - int(np.min([(int(m) & -int(m)).bit_length() - 1
                                               for m in mult if m] or [0])))
        assert err.max() <= step / 2
    # the largest factor rounding up to 2**bits moves one grid step coarser
    mult, s = row_multipliers([1.999, 0.3], bits=2)
    assert (mult * s.value).tolist() == [2.0, 0.0]
    assert row_multipliers([0.0, 0.0])[0].tolist() == [0, 0]
    assert row_multipliers([0.0, 0.0])[1] == Scale(1, 0)
    assert row_multipliers([3.0, 1.0])[1] == Scale(1, 0)


@pytest.mark.parametrize("bad,message", [
    ([-1.0, 1.0], "row factor 0 is -1.0"), ([1.0, np.nan], "row factor 1 is nan"),
    ([np.inf], "finite"), ([[1.0]], "1-D"), ("x", "real numbers"),
    ([1e-60], "exponent"), ([1e60], "exponent"),
])
def test_row_multipliers_refuse_bad_factors(bad, message):
    with pytest.raises(HwgenError, match=message):
        row_multipliers(bad)


def test_row_multipliers_bits_checked():
    with pytest.raises(HwgenError, match="at most 16"):
        row_multipliers([1.0], bits=17)


def test_overflowing_products_are_refused():
    """|acc| <= 300 * 127 * 127 (2**22.2) times a 16-bit multiplier and a 24-bit mantissa is
    past 2**62 while the term (shifted far right) is small: refused, never wrapped."""
    m = make_model("rnn", "int8", inputs=1, hidden=300, outputs=1)
    enc = m.head.w.encoding
    for mult, refused in ((ROW_MULT_LIMIT - 1, True), (1 << 10, False)):
        big = QuantMatrix(enc.encode(np.full((1, 300), 127)), enc, Scale((1 << 24) - 1, -60),
                          None, np.array([mult]))
        big_model = dataclasses.replace(m, head=dataclasses.replace(m.head, w=big))
        if refused:
            with pytest.raises(HwgenError, match="more than 63 bits"):
                derive_widths(big_model)
        else:
            derive_widths(big_model)
