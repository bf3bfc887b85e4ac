"""N:M structured sparsity (issue 11): the format, magnitude pruning, freezing, the model file
and the command line. NumPy only (training with --sparsity: tests/test_train.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from test_modelfile import _parts, _write  # the model file's parts, rewritten unchecked

from conftest import make_model
from hwgen.cli import main
from hwgen.freeze import freeze, random_float_params
from hwgen.golden import GoldenModel
from hwgen.modelfile import ModelFileError, load_model, save_model, to_bytes
from hwgen.quant import QuantConfig
from hwgen.spec import (
    CellKind,
    Formats,
    HwgenError,
    QuantMatrix,
    Scale,
    Sparsity,
    WeightEncoding,
)

SEED = 20261204


# -- the format ------------------------------------------------------------------------------
def test_parse_describe_json():
    s = Sparsity.parse("2:4")
    assert s == Sparsity(2, 4) and s.describe() == str(s) == "2:4"
    assert Sparsity.parse(" 1 : 8 ") == Sparsity(1, 8)
    assert s.to_json() == {"n": 2, "m": 4}
    assert Sparsity.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert Sparsity(3, 8).groups(17) == 3 and Sparsity(2, 4).groups(8) == 2


@pytest.mark.parametrize("text", ["4:2", "5:4", "2:2", "0:4", "2", "", "a:b", "2:4:8", "-1:4",
                                  "2.0:4", "2/4"])
def test_parse_errors(text):
    with pytest.raises(HwgenError) as e:
        Sparsity.parse(text)
    assert str(e.value) == f"Sparsity must be N:M with 1 <= N < M, not {text!r}"


def test_construct_errors():
    for n, m in ((4, 2), (True, 4), (2.0, 4), (0, 1)):
        with pytest.raises(HwgenError, match=r"^Sparsity must be N:M with 1 <= N < M, not '"):
            Sparsity(n, m)
    with pytest.raises(HwgenError, match="^Sparsity group width M must be at most 4096, not 5000$"):
        Sparsity(1, 5000)
    for bad in ("2:4", {"n": 2}, {"n": 2, "m": 4, "k": 1}, [2, 4]):
        with pytest.raises(HwgenError, match="a sparsity is stored as"):
            Sparsity.from_json(bad)
    with pytest.raises(HwgenError, match="'n' must be an integer, not 2.0"):
        Sparsity.from_json({"n": 2.0, "m": 4})


def test_violation_names_row_and_group():
    s = Sparsity(2, 4)
    w = np.array([[1, 0, 1, 0, 1, 1, 0, 0, 1, 1],
                  [0, 0, 0, 0, 1, 1, 1, 0, 1, 1]])
    assert s.violation(w) == (1, 1, 3)
    with pytest.raises(HwgenError) as e:
        s.check(w, "array 'x'")
    assert str(e.value) == ("array 'x' violates its 2:4 sparsity: row 1, group 1 (columns 4..7) "
                            "holds 3 non-zero weights; at most 2 are allowed")
    w[1, 6] = 0
    assert s.violation(w) is None  # the short last group (2 columns) always satisfies 2:4
    w[0, 9] = 0
    assert Sparsity(1, 4).violation(w) == (0, 0, 2)
    short = np.array([[1, 0, 0, 0, 1, 0, 1]])  # last group: columns 4..6
    with pytest.raises(HwgenError, match=r"row 0, group 1 \(columns 4..6\) holds 2 non-zero"):
        Sparsity(1, 4).check(short, "m")
    np.testing.assert_array_equal(s.counts(w), [[2, 2, 1], [0, 2, 2]])
    assert s.violation(np.zeros((0, 4))) is None and s.counts(np.zeros((3, 0))).shape == (3, 0)
    assert s.mask(np.zeros((0, 5))).shape == (0, 5)
    with pytest.raises(HwgenError, match="applies to a 2-D matrix"):
        s.violation(np.zeros(4))


def _reference_mask(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Pure Python: in each group, the n largest |w|, ties broken by the lower column."""
    keep = np.zeros(w.shape, bool)
    for r in range(w.shape[0]):
        for g0 in range(0, w.shape[1], m):
            cols = range(g0, min(g0 + m, w.shape[1]))
            for c in sorted(cols, key=lambda c: (-abs(w[r, c]), c))[:n]:
                keep[r, c] = True
    return keep


@pytest.mark.parametrize("n, m", [(1, 2), (2, 4), (1, 4), (3, 8), (2, 3)])
def test_prune_keeps_the_largest_magnitudes(n, m):
    rng = np.random.default_rng(SEED + 10 * n + m)
    s = Sparsity(n, m)
    for trial in range(20):
        rows, cols = rng.integers(1, 9), rng.integers(1, 3 * m + 3)
        if trial % 2:  # few distinct magnitudes: many ties, signs differ
            w = rng.integers(-2, 3, (rows, cols)).astype(np.float64)
        else:
            w = rng.normal(size=(rows, cols))
        keep = s.mask(w)
        np.testing.assert_array_equal(keep, _reference_mask(w, n, m))
        p = s.prune(w)
        assert s.violation(p) is None
        np.testing.assert_array_equal(p, np.where(keep, w, 0.0))
        np.testing.assert_array_equal(s.prune(p), p)  # idempotent
        for g0 in range(0, cols, m):
            k, a = keep[:, g0 : g0 + m], np.abs(w[:, g0 : g0 + m])
            assert np.all(k.sum(axis=1) == min(n, a.shape[1]))
            kept = np.where(k, a, np.inf).min(axis=1)
            dropped = np.where(k, -np.inf, a).max(axis=1)
            assert np.all(kept >= dropped)


def test_prune_ties_go_to_the_lowest_column():
    s = Sparsity(2, 4)
    w = np.array([[0.5, -0.5, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(s.prune(w), [[0.5, -0.5, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(s.mask(w)[0, 4:], [True, True, False, False])


def test_mask_refuses_bad_weights():
    with pytest.raises(HwgenError, match="NaN or infinity"):
        Sparsity(2, 4).mask(np.array([[1.0, np.nan]]))
    with pytest.raises(HwgenError, match="applies to a 2-D matrix"):
        Sparsity(2, 4).mask(np.ones((2, 2, 2)))


def test_quant_matrix_checks_its_declared_sparsity():
    ok = np.array([[1, 3, 0, 0, 0]], np.uint16)  # ternary codes: +1, -1, 0, 0, 0
    q = QuantMatrix(ok, WeightEncoding.ternary(), Scale(1, 0), Sparsity(2, 4))
    assert q.nm == Sparsity(2, 4) and not q.equals(replace(q, nm=None))
    with pytest.raises(HwgenError, match=r"the matrix violates its 1:4 sparsity: row 0, group 0"):
        QuantMatrix(ok, WeightEncoding.ternary(), Scale(1, 0), Sparsity(1, 4))
    with pytest.raises(HwgenError) as e:
        QuantMatrix(np.ones((1, 4), np.uint16), WeightEncoding.binary(), Scale(1, 0),
                    Sparsity(2, 4))
    assert str(e.value) == ("2:4 sparsity needs weights with a zero level; binary weights have "
                            "none (use ternary, pow2, exp or int-N)")
    with pytest.raises(HwgenError, match="nm must be a Sparsity or None, not '2:4'"):
        QuantMatrix(ok, WeightEncoding.ternary(), Scale(1, 0), "2:4")


# -- freezing --------------------------------------------------------------------------------
def _params(cell="gru", layers=2, inputs=10):
    return random_float_params(CellKind(cell), inputs, 16, 5, layers=layers, seed=3)


@pytest.mark.parametrize("quant, stochastic", [("ternary", False), ("ternary", True),
                                               ("pow2", False), ("exp", False), ("exp", True),
                                               ("int8", False), ("int4", False)])
@pytest.mark.parametrize("nm", ["2:4", "1:4", "3:8"])
def test_freeze_prunes_recurrent_matrices(quant, stochastic, nm):
    s = Sparsity.parse(nm)
    params = _params("lstm")
    fmt = Formats.standard(8, lstm=True)
    q = QuantConfig.parse(quant, stochastic)
    model = freeze(params, q, fmt, rng=7, sparsity=s)
    for name, m in model.matrices():
        if name == "head.w":
            assert m.nm is None
        else:
            assert m.nm == s and s.violation(m.codes) is None
    # every weight outside the magnitude mask of the float weights is a zero
    for fl, layer in zip(params.layers, model.layers, strict=True):
        for w, m in ((fl.w_ih, layer.wx), (fl.w_hh, layer.wh)):
            assert np.all(m.levels[~s.mask(w)] == 0)
    dense = freeze(params, q, fmt, rng=7)
    if not stochastic:  # the kept weights quantize as they would in the dense model
        for (_, a), (_, b) in zip(model.matrices(), dense.matrices(), strict=True):
            if a.nm is not None:
                assert a.scale == b.scale
                np.testing.assert_array_equal(a.levels[a.levels != 0], b.levels[a.levels != 0])
    head = freeze(params, q, fmt, rng=7, sparsity=s, sparse_head=True).head.w
    assert head.nm == s and s.violation(head.codes) is None


def test_freeze_errors():
    params = _params()
    with pytest.raises(HwgenError, match="^2:4 sparsity needs weights with a zero level; binary"):
        freeze(params, QuantConfig.parse("binary"), Formats.standard(8), sparsity=Sparsity(2, 4))
    with pytest.raises(HwgenError, match="^a sparse head needs a sparsity"):
        freeze(params, QuantConfig.parse("ternary"), Formats.standard(8), sparse_head=True)
    # binary head refused only when the head is sparse
    m = freeze(params, QuantConfig.parse("ternary"), Formats.standard(8),
               head_quant=QuantConfig.parse("binary"), sparsity=Sparsity(2, 4))
    assert m.head.w.nm is None


def test_golden_arithmetic_does_not_depend_on_the_declaration():
    s = Sparsity(2, 4)
    model = freeze(_params("gru", 1), QuantConfig.parse("ternary"), Formats.standard(8),
                   sparsity=s)
    layers = tuple(replace(ly, wx=replace(ly.wx, nm=None), wh=replace(ly.wh, nm=None))
                   for ly in model.layers)
    dense = replace(model, layers=layers)
    x = np.random.default_rng(SEED).integers(-128, 128, (3, 6, 10))
    np.testing.assert_array_equal(GoldenModel(model).run(x).logits,
                                  GoldenModel(dense).run(x).logits)


# -- the model file --------------------------------------------------------------------------
@pytest.fixture
def sparse_file(tmp_path):
    p = tmp_path / "s.hwgm"
    model = freeze(_params("gru", 2), QuantConfig.parse("ternary"), Formats.standard(8),
                   sparsity=Sparsity(2, 4), sparse_head=True)
    save_model(model, p)
    return p, model


def test_model_file_round_trip(sparse_file):
    p, model = sparse_file
    again = load_model(p)
    for (n1, a), (n2, b) in zip(model.matrices(), again.matrices(), strict=True):
        assert n1 == n2 and a.equals(b) and b.nm == Sparsity(2, 4)
    assert to_bytes(again) == p.read_bytes() == to_bytes(model)
    header, _ = _parts(p)
    assert header["layers"][1]["wh"]["nm"] == {"n": 2, "m": 4}
    assert header["head"]["nm"] == {"n": 2, "m": 4}


def test_dense_file_has_no_nm_field(tmp_path):
    p = tmp_path / "d.hwgm"
    save_model(make_model("gru", "ternary", layers=2), p)
    header, _ = _parts(p)
    assert all("nm" not in ly[k] for ly in header["layers"] for k in ("wx", "wh"))
    assert "nm" not in header["head"]
    assert all(m.nm is None for _, m in load_model(p).matrices())


def test_file_whose_codes_violate_its_sparsity_is_refused(sparse_file):
    p, _ = sparse_file
    header, arrays = _parts(p)
    codes = arrays["layer1.wh"].copy()
    codes[5, 4:8] = 1  # four +1 weights in row 5, group 1
    arrays["layer1.wh"] = codes
    _write(p, header, arrays)
    with pytest.raises(ModelFileError) as e:
        load_model(p)
    assert str(e.value) == (
        "array 'layer1.wh' violates its 2:4 sparsity: row 5, group 1 (columns 4..7) holds 4 "
        "non-zero weights; at most 2 are allowed (declared in field 'layers[1].wh.nm')")


@pytest.mark.parametrize("value, message", [
    ({"n": 4, "m": 2}, "field 'layers[0].wx.nm': Sparsity must be N:M with 1 <= N < M, not '4:2'"),
    ("2:4", "field 'layers[0].wx.nm': a sparsity is stored as"),
    ({"n": 2}, "field 'layers[0].wx.nm': a sparsity is stored as"),
    ({"n": "2", "m": 4}, "field 'layers[0].wx.nm': 'n' must be an integer, not '2'"),
])
def test_malformed_nm_field(sparse_file, value, message):
    p, _ = sparse_file
    header, arrays = _parts(p)
    header["layers"][0]["wx"]["nm"] = value
    _write(p, header, arrays)
    with pytest.raises(ModelFileError) as e:
        load_model(p)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_nm_on_binary_matrix_is_refused(tmp_path):
    p = tmp_path / "b.hwgm"
    save_model(make_model("gru", "binary"), p)
    header, arrays = _parts(p)
    header["head"]["nm"] = {"n": 2, "m": 4}
    _write(p, header, arrays)
    with pytest.raises(ModelFileError) as e:
        load_model(p)
    assert str(e.value) == ("field 'head.nm': 2:4 sparsity needs weights with a zero level; "
                            "binary weights have none (use ternary, pow2, exp or int-N)")


# -- command line ----------------------------------------------------------------------------
def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_random_model_and_inspect(tmp_path, capsys):
    out = str(tmp_path / "r.hwgm")
    rc, text, _ = _cli(capsys, "random-model", "--cell", "lstm", "--inputs", "12", "--hidden",
                       "16", "--outputs", "4", "--quant", "ternary", "--sparsity", "2:4", "-o", out)
    assert rc == 0 and "2:4 sparse" in text
    rc, text, _ = _cli(capsys, "inspect", out)
    assert rc == 0
    rows = [ln.split() for ln in text.splitlines() if ln.strip().startswith(("layer0.", "head."))]
    assert [r[0] for r in rows] == ["layer0.wx", "layer0.wh", "head.w"]
    assert [r[4] for r in rows] == ["2:4", "2:4", "dense"]
    assert all(float(r[5].rstrip("%")) >= 50.0 for r in rows[:2])
    rc, text, _ = _cli(capsys, "inspect", out, "--json")
    info = json.loads(text)
    assert [m["nm"] for m in info["matrices"]] == ["2:4", "2:4", None]
    assert info["matrices"][0]["sparsity"] >= 0.5 and 0.5 <= info["zero_fraction"] < 1


@pytest.mark.parametrize("value", ["4:2", "2", "x:4"])
def test_cli_bad_sparsity(tmp_path, capsys, value):
    rc, _, err = _cli(capsys, "random-model", "--cell", "gru", "--inputs", "4", "--hidden", "4",
                      "--outputs", "2", "--quant", "ternary", "--sparsity", value,
                      "-o", str(tmp_path / "x.hwgm"))
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("hwgen: error: random-model: argument --sparsity: Sparsity must be "
                          f"N:M with 1 <= N < M, not {value!r}")
    assert not (tmp_path / "x.hwgm").exists()


def test_cli_binary_sparsity_refused(tmp_path, capsys):
    rc, _, err = _cli(capsys, "random-model", "--cell", "gru", "--inputs", "4", "--hidden", "4",
                      "--outputs", "2", "--quant", "binary", "--sparsity", "2:4",
                      "-o", str(tmp_path / "x.hwgm"))
    assert rc == 1 and err == ("hwgen: error: 2:4 sparsity needs weights with a zero level; "
                               "binary weights have none (use ternary, pow2, exp or int-N)\n")
