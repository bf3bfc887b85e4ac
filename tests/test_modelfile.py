import io
import json
import zipfile

import numpy as np
import pytest

from conftest import make_model
from hwgen.modelfile import ModelFileError, load_model, save_model, to_bytes


@pytest.mark.parametrize(
    "kw",
    [
        dict(cell="rnn", quant="binary"),
        dict(cell="gru", quant="ternary", layers=2),
        dict(cell="lstm", quant="exp", tokens=11),
        dict(cell="gru", quant="pow2", argmax=True),
        dict(cell="lstm", quant="int8", layers=2),
    ],
    ids=lambda kw: "-".join(str(v) for v in kw.values()),
)
def test_round_trip_is_exact_and_deterministic(tmp_path, kw):
    m = make_model(**kw)
    p = tmp_path / "m.hwgm"
    save_model(m, p)
    m2 = load_model(p)
    assert to_bytes(m2) == p.read_bytes() == to_bytes(make_model(**kw))
    for (n1, a), (n2, b) in zip(m.matrices(), m2.matrices(), strict=True):
        assert n1 == n2 and a.equals(b)
    assert m2.cell is m.cell and m2.formats == m.formats and m2.head.argmax == m.head.argmax
    np.testing.assert_array_equal(m2.tanh_table, m.tanh_table)


# -- malformed files: each names the field, what was found and what was expected ---------------
def _parts(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    return header, arrays


def _write(path, header, arrays):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, a in {
            "header": np.frombuffer(json.dumps(header).encode(), np.uint8),
            **arrays,
        }.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asarray(a), allow_pickle=False)
            zf.writestr(name + ".npy", data.getvalue())
    path.write_bytes(buf.getvalue())


@pytest.fixture
def saved(tmp_path):
    p = tmp_path / "m.hwgm"
    save_model(make_model("gru", "ternary", layers=2), p)
    return p


def _mutate(path, fn):
    header, arrays = _parts(path)
    fn(header, arrays)
    _write(path, header, arrays)
    return path


CASES = {
    "wrong shape": (
        lambda h, a: a.__setitem__("layer0.wx", a["layer0.wx"][:, :3]),
        r"array 'layer0.wx' has shape \(24, 3\); expected \(24, 5\) "
        r"\(3 gates x 8 hidden, 5 inputs\)",
    ),
    "code outside encoding": (
        lambda h, a: a["layer1.wh"].__setitem__((2, 3), 2),
        r"array 'layer1.wh' holds code 2 at \[2, 3\], which is not a valid ternary code",
    ),
    "unknown version": (
        lambda h, a: h.__setitem__("version", 99),
        r"unsupported model file version 99; this hwgen reads versions 1, 2, 3",
    ),
    "missing array": (
        lambda h, a: a.pop("layer1.bias_hn"),
        r"missing array 'layer1.bias_hn'",
    ),
    "extra array": (
        lambda h, a: a.__setitem__("layer2.wx", np.zeros((1, 1), np.uint16)),
        r"unexpected array 'layer2.wx'",
    ),
    "inconsistent formats: cell format on a GRU": (
        lambda h, a: h["formats"].__setitem__("cell", {"width": 12, "frac": 7, "signed": True}),
        r"field 'formats.cell' .* a gru has none",
    ),
    "inconsistent formats: state with integer bits": (
        lambda h, a: h["formats"].__setitem__("state", {"width": 8, "frac": 5, "signed": True}),
        r"field 'formats': the state format must be signed with no integer bits",
    ),
    "table of the wrong size": (
        lambda h, a: a.__setitem__("table.tanh", a["table.tanh"][:-1]),
        r"array 'table.tanh' has shape \(511,\); expected \(512,\)",
    ),
    "table value out of range": (
        lambda h, a: a["table.sigmoid"].__setitem__(5, 300),
        r"array 'table.sigmoid' holds 300 at \[5\]; expected values in \[0, 256\]",
    ),
    "unknown encoding": (
        lambda h, a: h["layers"][0]["wx"]["encoding"].__setitem__("kind", "quaternary"),
        r"field 'layers\[0\].wx.encoding': unknown weight encoding 'quaternary'",
    ),
    "bad scale": (
        lambda h, a: h["head"].__setitem__("scale", [4, 1]),
        r"field 'head.scale': Scale mantissa must be odd",
    ),
    "unknown cell": (
        lambda h, a: h.__setitem__("cell", "transformer"),
        r"field 'cell' is 'transformer'; expected rnn, gru or lstm",
    ),
    "missing field": (
        lambda h, a: h.pop("hidden"),
        r"field 'hidden' is missing",
    ),
    "float codes": (
        lambda h, a: a.__setitem__("head.bias", a["head.bias"].astype(np.float64)),
        r"array 'head.bias' has dtype float64; expected integers",
    ),
    "not a model file": (
        lambda h, a: h.__setitem__("format", "something-else"),
        r"field 'format' is 'something-else'; expected 'hwgen-model'",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_malformed_file_gets_a_clear_error(saved, case):
    fn, message = CASES[case]
    _mutate(saved, fn)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved)


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable hwgen model file"):
        load_model(saved)


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.hwgm"
    p.write_text("hello")
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(p)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.hwgm")


def test_pickled_array_is_refused(saved):
    header, arrays = _parts(saved)
    arrays["head.bias"] = np.array([object()] * 4, dtype=object)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, a in {
            "header": np.frombuffer(json.dumps(header).encode(), np.uint8),
            **arrays,
        }.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, a, allow_pickle=True)
            zf.writestr(name + ".npy", data.getvalue())
    saved.write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match="not a readable hwgen model file"):
        load_model(saved)
