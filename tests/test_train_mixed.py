"""Mixed precision (issue 15): another quantizer for layer 0's input matrix and for the head
(``--input-quant`` / ``--head-quant``), and the ``--recipe lm`` preset that uses them."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.freeze import freeze, random_float_params
from hwgen.golden import GoldenModel
from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, EncodingKind, Formats, HwgenError, Sparsity

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from hwgen import api  # noqa: E402
from hwgen.train.datasets import load_dataset  # noqa: E402
from hwgen.train.qrnn import QRNN  # noqa: E402
from hwgen.train.trainer import TrainConfig, recipe_settings, set_threads, train  # noqa: E402

TERNARY, INT8, EXP = (QuantConfig.parse(n) for n in ("ternary", "int8", "exp"))


@pytest.fixture(scope="module")
def digits():
    set_threads(1)
    return load_dataset("digits")


def test_freeze_quantizes_the_input_matrix_and_head_apart():
    p = random_float_params(CellKind.GRU, 4, 6, 3, layers=2, seed=3)
    f = Formats.standard(8)
    m = freeze(p, TERNARY, f, input_quant=INT8, head_quant=EXP)
    kinds = {name: mat.encoding.kind for name, mat in m.matrices()}
    assert kinds == {"layer0.wx": EncodingKind.INT, "layer0.wh": EncodingKind.TERNARY,
                     "layer1.wx": EncodingKind.TERNARY, "layer1.wh": EncodingKind.TERNARY,
                     "head.w": EncodingKind.EXP}
    assert m.meta["quant"] == "ternary (input matrix int8, head exp)"
    np.testing.assert_array_equal(m.layers[0].wx.values,
                                  INT8.quantize(p.layers[0].w_ih, fan_in=4, fan_out=6).values)
    same = freeze(p, TERNARY, f)
    assert same.meta["quant"] == "ternary"
    assert same.layers[0].wh.equals(m.layers[0].wh)  # the recurrent matrices do not change
    GoldenModel(m).run(np.zeros((1, 3, 4), np.int64))  # the golden model runs it
    with pytest.raises(HwgenError, match="binary"):
        freeze(p, TERNARY, f, input_quant=QuantConfig.parse("binary"), sparsity=Sparsity(2, 4))


def test_forward_uses_each_matrix_quantizer_and_freezes_it():
    net = QRNN(CellKind.GRU, 8, 5, features=6, quant=TERNARY, formats=Formats.standard(8),
               seed=0, weight_scale="learned", input_quant=INT8, head_quant=EXP)
    assert set(net.learned_scales()) == {"weight_hh_l0"}  # a W0 only where weights are +-W0
    net.eval()
    frozen = net.freeze()
    for torch_name, mat in (("weight_ih_l0", frozen.layers[0].wx),
                            ("weight_hh_l0", frozen.layers[0].wh), ("head.weight", frozen.head.w)):
        q = net.quantized_weight(torch_name).detach().to(torch.float64).numpy()
        np.testing.assert_array_equal(q, mat.values, err_msg=torch_name)
    assert frozen.layers[0].wx.encoding.kind is EncodingKind.INT
    assert frozen.head.w.encoding.kind is EncodingKind.EXP
    # only the ternary matrix is clipped to +-W0 and gets a W0-scaled rate
    with torch.no_grad():
        net.weight_ih_l0.fill_(3.0)
        net.weight_hh_l0.fill_(3.0)
    net.clip_shadow()
    assert float(net.weight_ih_l0.detach().max()) == 3.0
    assert float(net.weight_hh_l0.detach().max()) == pytest.approx(
        net.learned_scales()["weight_hh_l0"], rel=1e-2)
    groups = net.param_groups(0.01, "1/w0")
    assert len(groups) == 2 and groups[1]["params"] == [net.weight_hh_l0]
    with pytest.raises(HwgenError, match="needs a weight quantizer"):
        QRNN(CellKind.GRU, 8, 5, features=6, quant=None, input_quant=INT8)


def test_recipe_settings():
    assert recipe_settings("reference", "ternary") == {}
    assert recipe_settings("lm", "ternary") == {
        "lr": 0.03, "lr_schedule": "cosine", "weight_scale": "learned",
        "input_quant": "int8", "head_quant": "int8"}
    assert recipe_settings("lm", "exp") == {"lr": 0.013, "lr_schedule": "cosine",
                                            "input_quant": "int8", "head_quant": "int8"}
    assert recipe_settings("lm", "float") == {"lr": 0.013, "lr_schedule": "cosine"}
    with pytest.raises(HwgenError, match="unknown recipe"):
        recipe_settings("best", "ternary")


def test_train_with_the_lm_recipe_and_explicit_options(digits):
    r = api.train(digits, hidden=8, epochs=1, recipe="lm")
    t = r.model.meta["train"]
    assert (t["lr"], t["lr_schedule"], t["weight_scale"], t["input_quant"], t["head_quant"]) \
        == (0.03, "cosine", "learned", "int8", "int8")
    assert r.model.layers[0].wx.encoding.kind is EncodingKind.INT
    assert r.model.layers[0].wh.encoding.kind is EncodingKind.TERNARY
    assert r.model.head.w.encoding.kind is EncodingKind.INT
    assert r.metrics.golden_value == pytest.approx(r.torch_test, abs=0.05)
    # an option given explicitly wins over the preset
    r2 = api.train(digits, hidden=8, epochs=1, recipe="lm", lr=0.01, head_quant="ternary")
    t2 = r2.model.meta["train"]
    assert (t2["lr"], t2["head_quant"], t2["input_quant"]) == (0.01, "ternary", "int8")
    assert r2.model.head.w.encoding.kind is EncodingKind.TERNARY
    plain = api.train(digits, hidden=8, epochs=1)
    tp = plain.model.meta["train"]
    assert (tp["lr"], tp["lr_schedule"], tp["weight_scale"], tp["input_quant"]) \
        == (0.002, "constant", "glorot", None)


def test_resume_refuses_another_input_quantizer(digits, tmp_path):
    ck = tmp_path / "m.ckpt"
    train(TrainConfig("digits", hidden=8, epochs=1, input_quant="int8"), digits, quiet=True,
          checkpoint=ck)
    with pytest.raises(HwgenError, match="input_quant"):
        train(TrainConfig("digits", hidden=8, epochs=2, input_quant="exp"), digits, quiet=True,
              checkpoint=ck, resume=True)


def test_cli_mixed_flags(tmp_path, capsys):
    base = ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "-q"]
    out = tmp_path / "m.hwgm"
    assert main([*base, "--input-quant", "int8", "--head-quant", "exp", "-o", str(out)]) == 0
    assert "weights ternary (layer0.wx int8, head.w exp" in capsys.readouterr().out
    cases = [
        (["--quant", "float", "--input-quant", "int8"], "--input-quant needs a weight quantizer"),
        (["--head-quant", "float"], "--head-quant float: every matrix of the hardware"),
        (["--input-quant", "int99x"], "unknown quantization 'int99x'"),
        (["--input-quant", "binary", "--sparsity", "2:4"], "binary"),
    ]
    for extra, msg in cases:
        assert main([*base, *extra, "-o", str(tmp_path / "x.hwgm")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("hwgen: error: ") and msg in err and "\n" not in err, err
    assert main([*base, "--recipe", "best", "-o", str(tmp_path / "x.hwgm")]) == 2
    assert "invalid choice" in capsys.readouterr().err
