import math

import numpy as np
import pytest

from hwgen.quant import (
    QuantConfig,
    glorot_bound,
    quantize_binary,
    quantize_exp,
    quantize_int,
    quantize_pow2,
    quantize_ternary,
)
from hwgen.spec import EncodingKind, HwgenError, Scale, WeightEncoding, pack_codes, unpack_codes

W0 = Scale.normalised(3, -3)  # 0.375, exact


def test_glorot_bound():
    assert glorot_bound(10, 20) == pytest.approx(math.sqrt(6 / 30))


def test_binary_deterministic_edges():
    q = quantize_binary([[0.0, -1e-12, 5.0, -5.0]], scale=W0)
    np.testing.assert_array_equal(q.levels, [[1, -1, 1, -1]])
    np.testing.assert_array_equal(q.values, [[0.375, -0.375, 0.375, -0.375]])


def test_ternary_deterministic_edges_are_the_papers():
    h = W0.value / 2
    w = [[h, np.nextafter(h, 1), -h, np.nextafter(-h, 0), 0.0, 2.0, -2.0]]
    q = quantize_ternary(w, scale=W0)
    # +W0 iff w > W0/2; -W0 iff w <= -W0/2 (the paper's asymmetric edges), else 0
    np.testing.assert_array_equal(q.levels, [[0, 1, -1, 0, 0, 1, -1]])
    assert set(np.unique(q.values)) <= {-W0.value, 0.0, W0.value}


def test_ternary_default_scale_is_rounded_glorot():
    w = np.zeros((6, 10))
    q = quantize_ternary(w)
    assert q.scale == Scale.from_float(glorot_bound(10, 6), 8)
    assert q.scale.value == pytest.approx(glorot_bound(10, 6), rel=2**-8)
    assert quantize_ternary(w, mantissa_bits=1).scale.is_pow2


def test_pow2_rounding_and_saturation():
    w = [[0.25, np.nextafter(0.25, 0), -0.25, 0.74, 0.76, 3.0, -3.0]]
    q = quantize_pow2(w)  # int 0, frac 1: {-0.5, 0, 0.5}, half away from zero
    np.testing.assert_array_equal(q.values, [[0.5, 0.0, -0.5, 0.5, 0.5, 0.5, -0.5]])
    assert q.encoding.is_ternary_like
    q = quantize_pow2(w, int_bits=1, frac_bits=2)  # saturates at +-(2**3 - 1) / 4
    np.testing.assert_array_equal(q.values, [[0.25, 0.25, -0.25, 0.75, 0.75, 1.75, -1.75]])
    assert q.encoding.bits == 4


def test_exp_deterministic_edges():
    # 7 exponents, max_exponent 0: magnitudes 2**-6 .. 1
    k = -3
    w = [[1.5 * 2.0**k, np.nextafter(1.5 * 2.0**k, 1), 2.0**k, -1.5 * 2.0**k - 1e-9]]
    q = quantize_exp(w, exponents=7, max_exponent=0)
    np.testing.assert_array_equal(q.values, [[2.0**k, 2.0 ** (k + 1), 2.0**k, -(2.0 ** (k + 1))]])
    low = 2.0**-6
    w = [[low / 2, np.nextafter(low / 2, 1), 0.0, 4.0, -4.0, 1.4, 1.6]]
    q = quantize_exp(w, exponents=7, max_exponent=0)
    np.testing.assert_array_equal(q.values, [[0.0, low, 0.0, 1.0, -1.0, 1.0, 1.0]])
    assert q.scale == Scale(1, -6)
    assert q.encoding.bits == 4


def test_exp_default_range_follows_max_weight():
    q = quantize_exp([[0.3, -0.01]], exponents=4)
    # max |w| = 0.3 rounds to 2**-2 (0.3 > 1.5 * 2**-2 is false): range 2**-5 .. 2**-2
    assert q.scale == Scale(1, -5)
    np.testing.assert_array_equal(q.values, [[0.25, -(2.0**-5) * 0]])  # 0.01 < 2**-6 -> 0


def test_int8_uses_full_range_without_saturation():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (16, 16))
    q = quantize_int(w, bits=8)
    assert np.abs(q.levels).max() == 127
    assert q.scale.value >= np.abs(w).max() / 127
    assert np.abs(q.values - w).max() <= q.scale.value / 2 + 1e-12


@pytest.mark.parametrize(
    "fn",
    [
        lambda w, rng: quantize_ternary(w, stochastic=True, rng=rng, scale=W0),
        lambda w, rng: quantize_binary(w, stochastic=True, rng=rng, scale=W0),
        lambda w, rng: quantize_exp(w, stochastic=True, rng=rng, exponents=7, max_exponent=0),
    ],
    ids=["ternary", "binary", "exp"],
)
def test_stochastic_quantizers_are_unbiased_and_reproducible(fn):
    w = np.array([0.3, -0.1, 0.05, 0.2, 0.0, -0.37, 0.011])  # all within each range
    n = 20000
    draws = fn(np.tile(w, (n, 1)), np.random.default_rng(1)).values
    mean, std = draws.mean(axis=0), draws.std(axis=0)
    # each mean is within 5 standard errors of the weight
    assert np.all(np.abs(mean - w) <= 5 * std / math.sqrt(n) + 1e-12), (mean, w)
    a = fn(np.tile(w, (50, 1)), 7).codes
    b = fn(np.tile(w, (50, 1)), 7).codes
    c = fn(np.tile(w, (50, 1)), 8).codes
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_stochastic_needs_a_seed():
    with pytest.raises(HwgenError, match="needs rng"):
        quantize_ternary([[0.1]], stochastic=True, scale=W0)


@pytest.mark.parametrize(
    "enc",
    [
        WeightEncoding.binary(),
        WeightEncoding.ternary(),
        WeightEncoding.pow2(),
        WeightEncoding.pow2(2, 3),
        WeightEncoding.exp(7),
        WeightEncoding.exp(3),
        WeightEncoding.int_n(8),
        WeightEncoding.int_n(4),
    ],
    ids=lambda e: e.describe(),
)
def test_code_tables_round_trip_and_reject_invalid_codes(enc):
    codes = np.arange(1 << enc.bits)
    valid = enc.valid_codes(codes)
    levels = enc.decode(codes[valid])
    np.testing.assert_array_equal(enc.encode(levels), codes[valid])
    assert len(set(levels.tolist())) == len(levels)  # no two codes mean the same level
    assert np.abs(levels).max() == enc.max_level
    for bad in codes[~valid]:
        with pytest.raises(HwgenError, match="not a valid"):
            enc.decode([bad])


def test_invalid_codes_are_the_documented_ones():
    assert not WeightEncoding.ternary().valid_codes([2])[0]
    assert not WeightEncoding.int_n(8).valid_codes([128])[0]
    e = WeightEncoding.exp(7)  # 4 bits: sign + 3-bit field
    assert e.bits == 4
    assert not e.valid_codes([8])[0]  # negative zero
    assert WeightEncoding.exp(6).valid_codes([7]).tolist() == [False]  # field 7 > 6 exponents


@pytest.mark.parametrize("bits,per_word", [(2, 4), (4, 16), (8, 8), (1, 7), (8, 9)])
def test_pack_unpack_round_trip(bits, per_word):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1 << bits, (3, per_word * 5))
    words = pack_codes(codes, bits, per_word)
    assert words.shape == (3, 5)
    np.testing.assert_array_equal(unpack_codes(words, bits, per_word), codes)
    # code k of a word sits at bits [k*bits, (k+1)*bits)
    assert int(words[0, 0]) & ((1 << bits) - 1) == codes[0, 0]


def test_quant_config_parse():
    assert QuantConfig.parse("int8").kind is EncodingKind.INT
    assert QuantConfig.parse("exp5").exponents == 5
    assert QuantConfig.parse("ternary", True).stochastic
    with pytest.raises(HwgenError, match="unknown quantization 'int'"):
        QuantConfig.parse("int")
    with pytest.raises(HwgenError, match="deterministic only"):
        QuantConfig.parse("pow2", True)


def test_scale_from_float():
    s = Scale.from_float(0.1767767, 8)
    assert s.mantissa % 2 == 1 and s.mantissa < 256
    assert abs(s.value - 0.1767767) <= 2.0 ** (math.floor(math.log2(0.1767767)) - 8)
    with pytest.raises(HwgenError, match="positive and finite"):
        Scale.from_float(0.0)
