"""The notebook API of issue 25: `api.from_torch` (PyTorch modules or state dicts to a model, no
file, the checks of ``hwgen import``), readable reprs, and the estimate table from Python."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen import api
from hwgen.cli import main
from hwgen.modelfile import to_bytes
from hwgen.spec import HwgenError
from hwgen.train.from_torch import from_torch


def _numpy_gru(rng, inputs=3, hidden=4, outputs=2):
    """A GRU + linear head state dict as NumPy arrays, PyTorch's layout and key names."""
    return {
        "rnn.weight_ih_l0": rng.normal(0, 0.5, (3 * hidden, inputs)),
        "rnn.weight_hh_l0": rng.normal(0, 0.5, (3 * hidden, hidden)),
        "rnn.bias_ih_l0": rng.normal(0, 0.1, 3 * hidden),
        "rnn.bias_hh_l0": rng.normal(0, 0.1, 3 * hidden),
        "fc.weight": rng.normal(0, 0.5, (outputs, hidden)),
        "fc.bias": rng.normal(0, 0.1, outputs),
    }


def _same_weights(a, b):
    for (na, qa), (nb, qb) in zip(a.matrices(), b.matrices(), strict=True):
        assert na == nb and qa.equals(qb), na
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.bias, lb.bias)
    assert np.array_equal(a.head.bias, b.head.bias)


# -- without PyTorch: a state dict of NumPy arrays -------------------------------------------------
def test_a_numpy_state_dict_becomes_a_model():
    sd = _numpy_gru(np.random.default_rng(0))
    m = api.from_torch(sd, cell="gru", quant="int4")
    assert (m.cell.value, m.input.features, m.hidden, m.outputs) == ("gru", 3, 4, 2)
    assert m.layers[0].wx.encoding.describe().startswith("int4")
    assert m.meta["imported_from"] == "a state dict"
    x = np.random.default_rng(1).normal(0, 1, (2, 5, 3))
    assert api.golden(m, features=x).logits.shape == (2, 5, 2)


@pytest.mark.parametrize("kwargs,message", [
    (dict(), "give cell='rnn', 'gru' or 'lstm'"),
    (dict(cell="lstm"), "a lstm with H hidden units has \\(4\\*H, H\\): is --cell right"),
    (dict(cell="gru", quant="float"), "import quantizes weights"),
    (dict(cell="gru", sparse_head=True), "--sparse-head needs --sparsity"),
    (dict(cell="cnn"), "cell must be rnn, gru or lstm"),
])
def test_the_checks_of_hwgen_import(kwargs, message):
    with pytest.raises(HwgenError, match=message):
        from_torch(_numpy_gru(np.random.default_rng(0)), **kwargs)


def test_not_a_state_dict_is_refused():
    with pytest.raises(HwgenError, match="expected a module or a state dict"):
        api.from_torch([1, 2, 3], cell="gru")


# -- PyTorch modules -------------------------------------------------------------------------------
@pytest.mark.train
def test_modules_give_the_model_hwgen_import_gives(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 6, num_layers=2, batch_first=True)
            self.fc = nn.Linear(6, 4)

    net = Net()
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    assert main(["import", str(tmp_path / "sd.pt"), "--cell", "lstm", "--quant", "exp",
                 "-o", str(tmp_path / "m.hwgm")]) == 0
    via_file = api.load_model(tmp_path / "m.hwgm")
    in_memory = api.from_torch(net, quant="exp")  # the cell from the module
    _same_weights(in_memory, via_file)
    assert in_memory.cell.value == "lstm" and in_memory.num_layers == 2
    # a bare nn.LSTM with its head given apart: the same model
    _same_weights(api.from_torch(net.rnn, head=net.fc, quant="exp"), via_file)
    assert to_bytes(in_memory) != b""


@pytest.mark.train
@pytest.mark.parametrize("make,message", [
    (lambda nn: nn.GRU(3, 4, bidirectional=True), "bidirectional GRU is not supported"),
    (lambda nn: nn.RNN(3, 4, nonlinearity="relu"), "nonlinearity='relu' is not supported"),
    (lambda nn: nn.LSTM(3, 4, proj_size=2), "projections"),
    (lambda nn: nn.GRU(3, 4), "alone has no output layer: pass head="),
    (lambda nn: nn.Linear(3, 4), "holds no nn.RNN / nn.GRU / nn.LSTM"),
])
def test_unsupported_modules_are_refused(make, message):
    pytest.importorskip("torch")
    from torch import nn

    m = make(nn)
    head = nn.Linear(4, 2) if "no output layer" not in message and isinstance(
        m, (nn.GRU, nn.RNN, nn.LSTM)) else None
    with pytest.raises(HwgenError, match=message):
        api.from_torch(m, head=head)


@pytest.mark.train
def test_a_cell_that_contradicts_the_module_is_refused():
    pytest.importorskip("torch")
    from torch import nn

    with pytest.raises(HwgenError, match="cell='lstm', but the module is an nn.GRU"):
        api.from_torch(nn.GRU(3, 4), head=nn.Linear(4, 2), cell="lstm")


# -- readable results ------------------------------------------------------------------------------
def test_reprs_are_one_readable_line(tmp_path):
    m = api.random_model("gru", 16, 64, 10, quant="ternary", seed=0)
    x = np.zeros((2, 3, 16))
    reprs = {
        "model": repr(m),
        "board": repr(api.estimate(m, board="icebreaker")),
        "fit": repr(api.estimate(m, 8, target="ice40-up5k")),
        "quantized": repr(api.quantize(m, x)),
        "golden": repr(api.golden(m, features=x)),
    }
    for name, r in reprs.items():
        assert "\n" not in r and len(r) < 400, (name, r)
    assert reprs["model"].startswith("Model(gru: 16 inputs -> 1 x 64 hidden -> 10 outputs; "
                                     "weights ternary, 32000 bits")
    assert reprs["board"].startswith("BoardFit(icebreaker (ice40-up5k), 16 lanes at")
    assert reprs["fit"].startswith("FitResult(ice40-up5k, 8 lanes: fits;")
    assert reprs["quantized"] == ("QuantizedInputs(codes int64 (2, 3, 16), saturated 0, "
                                  "normalized False)")
    assert reprs["golden"].startswith("GoldenResult(logits int64 (2, 3, 10)")


def test_a_fit_that_fails_says_why_in_its_repr():
    m = api.random_model("gru", 16, 512, 10, quant="int8")
    assert "does not fit: weights and tables need" in repr(api.estimate(m, 1, target="ice40-up5k"))


@pytest.mark.sim
def test_cosim_report_repr_is_its_summary(tmp_path):
    m = api.random_model("rnn", 3, 4, 2, quant="ternary")
    api.generate(m, tmp_path / "rtl", lanes=2)
    report = api.simulate(tmp_path / "rtl", sequences=2, length=3)
    assert repr(report) == f"CosimReport({report.summary()})"


@pytest.mark.parametrize("where", [["--board", "icebreaker"], ["--target", "ice40-up5k"]])
def test_the_estimate_table_from_python_is_the_cli_text(tmp_path, capsys, where):
    m = api.random_model("gru", 16, 64, 10, quant="ternary")
    api.save_model(m, tmp_path / "m.hwgm")
    assert main(["estimate", str(tmp_path / "m.hwgm"), *where]) == 0
    cli = capsys.readouterr().out.rstrip("\n")
    kw = {where[0][2:]: where[1]}
    assert api.estimate_table(m, **kw) == cli


def test_the_estimate_table_of_a_model_that_does_not_fit_says_what_would():
    m = api.random_model("gru", 16, 512, 10, quant="int8")
    assert "fit         NO: this model does not fit ice40-up5k with 1 lanes" in \
        api.estimate_table(m, 1, target="ice40-up5k")


@pytest.mark.train
def test_train_result_repr():
    pytest.importorskip("torch")
    from hwgen.train.evaluate import Metrics
    from hwgen.train.trainer import TrainResult

    m = api.random_model("gru", 8, 16, 10, quant="ternary")
    r = TrainResult(m, Metrics("accuracy", 0.91, 0.9, 359), 0.905, 0.93, 12.34,
                    history=[{}] * 40)
    text = repr(r)
    assert text.startswith("TrainResult(float forward accuracy 0.9100, golden (integer) accuracy "
                           "0.9000 on 359 sequences; training forward 0.9050, best valid 0.9300, "
                           "40 epochs in 12.3 s; model=Model(gru: 8 inputs")
    assert len(text) < 500
