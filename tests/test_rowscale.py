"""Per-row scales (issue 26): `QuantMatrix.row_mult`, `spec.row_multipliers`, the golden model."""

import dataclasses
import json

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.api import add_row_scales
from hwgen.floatref import float_forward
from hwgen.golden import GoldenModel
from hwgen.modelfile import (
    ROW_SCALE_FORMAT_VERSION,
    ModelFileError,
    load_model,
    save_model,
    to_bytes,
)
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
    """Two layers, every matrix with its own multipliers and a scale mantissa: the golden model's
    hidden states and logits restated one unit at a time with Python ints."""
    m = add_row_scales(make_model("rnn", "int8", inputs=3, hidden=3, outputs=2, layers=2), 6,
                       keep_mantissa=True)
    assert m.layers[0].wx.scale.mantissa != 1
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


# -- the model file -----------------------------------------------------------------------------
def _header(data: bytes) -> dict:
    import io
    import zipfile
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(np.load(io.BytesIO(zf.read("header.npy"))).tobytes().decode())


@pytest.mark.parametrize("kw", [dict(cell="gru", quant="ternary", layers=2, sparsity="2:4"),
                                dict(cell="lstm", quant="exp", tokens=7),
                                dict(cell="rnn", quant="int8")], ids=["gru", "lstm", "rnn"])
def test_model_file_round_trip_with_row_scales(tmp_path, kw):
    base = make_model(**kw)
    m = add_row_scales(base, 12, seed=3)
    p = tmp_path / "m.hwgm"
    save_model(m, p)
    m2 = load_model(p)
    assert to_bytes(m2) == p.read_bytes() == to_bytes(add_row_scales(base, 12, seed=3))
    for (n1, a), (n2, b) in zip(m.matrices(), m2.matrices(), strict=True):
        assert n1 == n2 and a.equals(b) and b.row_mult is not None
    h = _header(p.read_bytes())
    assert h["version"] == ROW_SCALE_FORMAT_VERSION == 3
    assert h["layers"][0]["wx"]["row_mult"] is True and h["head"]["row_mult"] is True
    x = random_inputs(m)
    np.testing.assert_array_equal(GoldenModel(m2).run(x).logits, GoldenModel(m).run(x).logits)
    # only the matrices that have them: one matrix, version 3; none, the old bytes and version
    one = _map_matrices(base, lambda q: q)
    one = dataclasses.replace(one, head=m.head)
    save_model(one, p)
    h = _header(p.read_bytes())
    assert h["version"] == 3 and "row_mult" not in h["layers"][0]["wx"]
    assert load_model(p).layers[0].wx.row_mult is None
    assert _header(to_bytes(base))["version"] == 1 and "row_mult" not in to_bytes(base).decode(
        "latin-1")


def test_delta_model_with_row_scales_is_version_3(tmp_path):
    from hwgen.delta import DeltaThresholds, with_thresholds
    m = with_thresholds(add_row_scales(make_model("gru", "ternary", layers=2), 8),
                        DeltaThresholds((9, 2), (2, 3)))
    p = tmp_path / "d.hwgm"
    save_model(m, p)
    assert _header(p.read_bytes())["version"] == 3
    m2 = load_model(p)
    assert m2.delta is not None and m2.layers[1].wh.equals(m.layers[1].wh)
    x = random_inputs(m, time=9)
    np.testing.assert_array_equal(GoldenModel(m2).run(x).logits, GoldenModel(m).run(x).logits)


def test_delta_golden_with_row_scales_at_theta_zero_is_the_dense_model():
    from hwgen.delta import DeltaThresholds, with_thresholds
    m = add_row_scales(make_model("lstm", "int8", layers=2), 10)
    x = random_inputs(m, time=8)
    d = with_thresholds(m, DeltaThresholds((0, 0), (0, 0)))
    np.testing.assert_array_equal(GoldenModel(d).run(x).logits, GoldenModel(m).run(x).logits)


ROW_FILE_CASES = {
    "flag false": (lambda h, a: h["layers"][0]["wx"].__setitem__("row_mult", False),
                   r"field 'layers\[0\].wx.row_mult' must be true \(omit it .*\), not false"),
    "flag a number": (lambda h, a: h["head"].__setitem__("row_mult", 1),
                      r"field 'head.row_mult' must be true .*, not 1"),
    "flag without its array": (lambda h, a: a.pop("layer1.wh.row_mult"),
                               r"missing array 'layer1.wh.row_mult'"),
    "array without its flag": (lambda h, a: h["layers"][1]["wh"].pop("row_mult"),
                               r"unexpected array 'layer1.wh.row_mult' .* \"row_mult\": true"),
    "version 1 with row multipliers": (lambda h, a: h.update(version=1),
                                       r"per-row multipliers .* come with version 3 and only"),
    "version 3 without any": (
        lambda h, a: [d.pop("row_mult") for ly in h["layers"] for d in ly.values()]
        + [h["head"].pop("row_mult")] + [a.pop(n) for n in list(a) if n.endswith(".row_mult")],
        r"version 3 does not match the file: per-row multipliers .* this file has 0"),
    "wrong length": (lambda h, a: a.__setitem__("head.w.row_mult", a["head.w.row_mult"][:-1]),
                     r"array 'head.w.row_mult' has shape \(3,\); expected \(4,\) \(one multiplier "
                     r"per row of 'head.w'\)"),
    "2-D": (lambda h, a: a.__setitem__("head.w.row_mult", a["head.w.row_mult"][None]),
            r"array 'head.w.row_mult' has shape \(1, 4\); expected \(4,\)"),
    "out of range": (lambda h, a: a.__setitem__(
        "layer0.wx.row_mult", a["layer0.wx.row_mult"].astype(np.int64) + np.r_[70000, [0] * 23]),
        r"array 'layer0.wx.row_mult' holds 7\d{4} at \[0\]; expected values in \[0, 65535\]"),
    "negative": (lambda h, a: a.__setitem__(
        "layer0.wh.row_mult", -a["layer0.wh.row_mult"].astype(np.int32)),
        r"array 'layer0.wh.row_mult' holds -\d+ at \[0\]; expected values in \[0, 65535\]"),
    "floats": (lambda h, a: a.__setitem__("head.w.row_mult", a["head.w.row_mult"] * 1.0),
               r"array 'head.w.row_mult' has dtype float64; expected integers"),
}


@pytest.mark.parametrize("case", ROW_FILE_CASES, ids=list(ROW_FILE_CASES))
def test_bad_row_multipliers_in_a_file_are_refused(tmp_path, case):
    from test_modelfile import _mutate
    p = tmp_path / "m.hwgm"
    save_model(add_row_scales(make_model("gru", "ternary", layers=2), 8), p)
    fn, message = ROW_FILE_CASES[case]
    _mutate(p, fn)
    with pytest.raises(ModelFileError, match=message):
        load_model(p)


def test_an_older_reader_refuses_version_3(tmp_path, monkeypatch):
    """What a reader of versions 1-2 does with the file: refuse it by its version."""
    import hwgen.modelfile as mf
    p = tmp_path / "m.hwgm"
    save_model(add_row_scales(make_model("rnn", "ternary"), 4), p)
    monkeypatch.setattr(mf, "READ_VERSIONS", (1, 2))
    with pytest.raises(ModelFileError, match="unsupported model file version 3; this hwgen reads "
                                             "versions 1, 2"):
        load_model(p)


@pytest.mark.parametrize("quant", ["ternary", "int8", "exp"])
def test_import_with_row_scales_fits_each_row_better(quant):
    """Post-training quantization with a least-squares scale per row: every row's error is no
    worse than with the matrix's one scale (up to the multipliers' rounding), the model runs."""
    from hwgen.freeze import random_float_params
    from hwgen.spec import CellKind, fit_row_scales
    from hwgen.train.from_torch import quantize_imported

    params = random_float_params(CellKind.GRU, 5, 8, 3, seed=2)
    plain = quantize_imported(params, quant)
    rows = quantize_imported(params, quant, row_scales=10)
    assert rows.meta["row_scales"] == 10
    floats = [params.layers[0].w_ih, params.layers[0].w_hh, params.head_w]
    for w, (_, a), (_, b) in zip(floats, plain.matrices(), rows.matrices(), strict=True):
        np.testing.assert_array_equal(a.codes, b.codes)
        err_a = ((a.values - w) ** 2).sum(axis=1)
        err_b = ((b.values - w) ** 2).sum(axis=1)
        assert np.all(err_b <= err_a * (1 + 1e-3) + 1e-9) and err_b.sum() < err_a.sum()
    GoldenModel(rows).run(random_inputs(rows))
    with pytest.raises(HwgenError, match="do not match the matrix"):
        fit_row_scales(plain.head.w, floats[0])
    with pytest.raises(HwgenError, match="at most 16"):
        quantize_imported(params, quant, row_scales=17)


def test_hwgen_import_row_scales(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from hwgen.cli import main

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(4, 8, batch_first=True)
            self.fc = torch.nn.Linear(8, 3)

    torch.manual_seed(0)
    sd = tmp_path / "net.pt"
    torch.save(Net().state_dict(), sd)
    out = tmp_path / "m.hwgm"
    assert main(["import", str(sd), "--cell", "gru", "--quant", "ternary", "--row-scales",
                 "-o", str(out)]) == 0
    m = load_model(out)
    assert all(q.row_mult is not None and q.row_mult.max() < 256 for _, q in m.matrices())
    assert main(["import", str(sd), "--cell", "gru", "--quant", "ternary", "--row-scales", "4",
                 "--dataset", "digits", "--epochs", "1", "-o", str(out)]) == 1
    assert "does not combine with fine-tuning" in capsys.readouterr().err
