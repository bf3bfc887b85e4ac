"""Import of PyTorch nn.RNN / nn.GRU / nn.LSTM state dicts: the golden model follows torch."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.floatref import float_forward
from hwgen.golden import GoldenModel, quantize_inputs
from hwgen.modelfile import load_model
from hwgen.spec import CellKind, EncodingKind, HwgenError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from torch import nn  # noqa: E402

from hwgen.train.datasets import load_dataset  # noqa: E402
from hwgen.train.importer import load_state_dict, params_from_state_dict  # noqa: E402

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class Net(nn.Module):
    def __init__(self, cell, inputs=8, hidden=32, outputs=10, layers=1, vocab=None):
        super().__init__()
        self.emb = nn.Embedding(vocab, inputs) if vocab else None
        self.rnn = CELLS[cell](inputs, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, outputs)

    def forward(self, x):
        if self.emb is not None:
            x = self.emb(x)
        y, _ = self.rnn(x)
        return self.fc(y)


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits")


def _trained(cell, digits, layers=1, epochs=6):
    torch.manual_seed(0)
    net = Net(cell, layers=layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    X, y = torch.from_numpy(digits.train.X), torch.from_numpy(digits.train.y)
    for _ in range(epochs):
        for s in range(0, len(y), 64):
            loss = nn.functional.cross_entropy(net(X[s : s + 64])[:, -1], y[s : s + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.mark.parametrize("cell, layers", [("gru", 1), ("lstm", 1), ("rnn", 2)])
def test_golden_follows_torch_at_high_precision(cell, layers, digits, tmp_path, capsys):
    net = _trained(cell, digits, layers)
    sd = tmp_path / "net.pt"
    torch.save(net.state_dict(), sd)
    out = tmp_path / "net.hwgm"
    assert main(["import", str(sd), "--cell", cell, "--quant", "int16", "--bits", "14",
                 "--head-key", "fc", "--dataset", "digits", "-o", str(out)]) == 0
    assert "golden (integer) accuracy" in capsys.readouterr().out
    model = load_model(out)
    assert model.cell is CellKind(cell) and model.num_layers == layers
    assert model.layers[0].wx.encoding.kind is EncodingKind.INT
    X = digits.test.X  # pixel / 16: exact in the s8.5 input format
    with torch.no_grad():
        ref = net(torch.from_numpy(X)).double().numpy()
    codes, saturated = quantize_inputs(model, X)
    assert saturated == 0
    gold = GoldenModel(model).run(codes).logits * 2.0**-model.formats.output_frac
    flt = float_forward(model, X)
    scale = np.abs(ref).max()
    gap_golden = np.abs(gold - ref).max() / scale
    gap_float = np.abs(flt - ref).max() / scale
    print(f"{cell}: max |golden - torch| / max |torch| = {gap_golden:.2e}, "
          f"float forward {gap_float:.2e}")
    # Measured (digits test, 359 x 8 steps, torch 2.13): golden 3.7e-4 (gru), 5.0e-4 (lstm),
    # 3.6e-4 (rnn, 2 layers) of the logits' range; the float forward (int16 weights, biases
    # rounded to 12 fraction bits, float activations) 1.4e-4 .. 2.9e-4.
    assert gap_float < 1e-3
    assert gap_golden < 2e-3
    agree = np.mean(gold[:, -1].argmax(-1) == ref[:, -1].argmax(-1))
    print(f"{cell}: argmax agreement {agree:.4f}")
    assert agree >= 0.99


def test_token_model_import(tmp_path):
    torch.manual_seed(1)
    net = Net("lstm", inputs=6, hidden=16, outputs=5, vocab=5)
    with torch.no_grad():  # embedding on the s8.5 grid, so only the recurrence is compared
        net.emb.weight.copy_(torch.round(net.emb.weight * 32) / 32)
    sd = tmp_path / "tok.pt"
    torch.save({"state_dict": net.state_dict()}, sd)
    out = tmp_path / "tok.hwgm"
    assert main(["import", str(sd), "--cell", "lstm", "--quant", "int16", "--bits", "14",
                 "-o", str(out)]) == 0
    model = load_model(out)
    assert model.input.vocab == 5 and model.input.dim == 6
    x = np.random.default_rng(0).integers(0, 5, (4, 30))
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x)).double().numpy()
    gold = GoldenModel(model).run(x).logits * 2.0**-model.formats.output_frac
    assert np.abs(gold - ref).max() < 1e-2 * max(1.0, np.abs(ref).max())


def test_fine_tune_ternary(digits, tmp_path, capsys):
    net = _trained("gru", digits, epochs=3)
    sd = tmp_path / "net.pt"
    torch.save(net.state_dict(), sd)
    out = tmp_path / "ft.hwgm"
    assert main(["import", str(sd), "--cell", "gru", "--quant", "ternary", "--dataset",
                 "digits", "--epochs", "3", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "golden (integer) accuracy" in text
    model = load_model(out)
    assert model.layers[0].wx.encoding.kind is EncodingKind.TERNARY
    assert model.meta["test"]["golden"] > 0.5
    assert model.meta["imported_from"] == str(sd)


def test_import_with_sparsity(digits, tmp_path, capsys):
    from hwgen.spec import Sparsity

    net = _trained("gru", digits, epochs=2)
    sd = tmp_path / "net.pt"
    torch.save(net.state_dict(), sd)
    params = params_from_state_dict(load_state_dict(sd), CellKind.GRU)
    out = tmp_path / "ptq.hwgm"
    assert main(["import", str(sd), "--cell", "gru", "--quant", "int8", "--sparsity", "2:4",
                 "--dataset", "digits", "-o", str(out)]) == 0
    assert "int8, 2:4 sparse" in capsys.readouterr().out
    model = load_model(out)
    s = Sparsity(2, 4)
    for fl, layer in zip(params.layers, model.layers, strict=True):
        for w, m in ((fl.w_ih, layer.wx), (fl.w_hh, layer.wh)):
            assert m.nm == s and s.violation(m.codes) is None
            # int8 keeps (nearly) every weight the magnitude mask keeps, and nothing else
            assert np.all(m.levels[~s.mask(w)] == 0)
            assert np.mean(m.levels[s.mask(w)] != 0) > 0.95
    assert model.head.w.nm is None
    # fine-tuning keeps the mask in training: the result satisfies 2:4 (head too)
    out = tmp_path / "ft.hwgm"
    assert main(["import", str(sd), "--cell", "gru", "--quant", "ternary", "--sparsity", "2:4",
                 "--sparse-head", "--dataset", "digits", "--epochs", "1", "-q",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    for _, m in load_model(out).matrices():
        assert m.nm == s and s.violation(m.codes) is None
    assert main(["import", str(sd), "--cell", "gru", "--quant", "binary", "--sparsity", "2:4",
                 "-o", str(tmp_path / "b.hwgm")]) == 1
    assert capsys.readouterr().err.startswith(
        "hwgen: error: 2:4 sparsity needs weights with a zero level; binary weights have none")


def test_errors(tmp_path, capsys):
    sd = tmp_path / "bi.pt"
    torch.save(nn.GRU(4, 8, bidirectional=True).state_dict(), sd)
    with pytest.raises(HwgenError, match="bidirectional"):
        params_from_state_dict(load_state_dict(sd), CellKind.GRU)
    sd = tmp_path / "gru.pt"
    torch.save(Net("gru", 4, 8, 3).state_dict(), sd)
    with pytest.raises(HwgenError, match="is --cell right"):
        params_from_state_dict(load_state_dict(sd), CellKind.LSTM)
    torch.save(nn.GRU(4, 8).state_dict(), sd)
    with pytest.raises(HwgenError, match="cannot tell the head"):
        params_from_state_dict(load_state_dict(sd), CellKind.GRU)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello")
    out = str(tmp_path / "o.hwgm")
    assert main(["import", str(junk), "--cell", "gru", "-o", out]) == 1
    assert "not a readable PyTorch state dict" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "none.pt"), "--cell", "gru", "-o", out]) == 1
    assert "no such file" in capsys.readouterr().err


def test_import_mixed_precision(digits, tmp_path, capsys):
    """--input-quant / --head-quant: post-training and fine-tuned, each matrix in its encoding."""
    net = _trained("gru", digits, epochs=1)
    sd = tmp_path / "net.pt"
    torch.save(net.state_dict(), sd)
    for extra in ([], ["--dataset", "digits", "--epochs", "1", "-q"]):
        out = tmp_path / f"m{len(extra)}.hwgm"
        assert main(["import", str(sd), "--cell", "gru", "--quant", "ternary", "--input-quant",
                     "int8", "--head-quant", "exp", *extra, "-o", str(out)]) == 0
        assert "weights ternary (layer0.wx int8, head.w exp" in capsys.readouterr().out
        m = load_model(out)
        kinds = [x.encoding.kind for _, x in m.matrices()]
        assert kinds == [EncodingKind.INT, EncodingKind.TERNARY, EncodingKind.EXP]
    assert main(["import", str(sd), "--cell", "gru", "--input-quant", "float",
                 "-o", str(tmp_path / "x.hwgm")]) == 1
    assert "unknown quantization 'float'" in capsys.readouterr().err


def test_import_with_delta_thresholds(digits, tmp_path, capsys):
    """``hwgen import --delta THX,THH`` (issue 23): post-training quantization and fine-tuning
    write the thresholds; theta 0 is the dense network, bit for bit; bad thresholds are refused
    naming the value."""
    from hwgen.delta import DeltaThresholds

    net = _trained("gru", digits, epochs=2)
    sd = tmp_path / "net.pt"
    torch.save(net.state_dict(), sd)
    dense, zero, delta = (tmp_path / f"{n}.hwgm" for n in ("dense", "zero", "delta"))
    base = ["import", str(sd), "--cell", "gru", "--quant", "ternary"]
    assert main(base + ["-o", str(dense)]) == 0
    assert main(base + ["--delta", "0,0", "-o", str(zero)]) == 0
    assert main(base + ["--delta", "24,12", "--dataset", "digits", "-o", str(delta)]) == 0
    text = capsys.readouterr().out
    assert "delta thresholds theta_x 24, theta_h 12 (codes)" in text
    frac = float(text.split("delta network: ")[1].split("%")[0]) / 100
    assert 0.0 < frac < 0.9  # the thresholds skip columns on real digits
    d, z, m = (load_model(p) for p in (dense, zero, delta))
    assert d.delta is None
    assert z.delta == DeltaThresholds.uniform(0, 0, 1)
    assert m.delta == DeltaThresholds.uniform(24, 12, 1)
    for (_, a), (_, b) in zip(d.matrices(), m.matrices(), strict=True):
        assert np.array_equal(a.codes, b.codes)  # the thresholds change nothing else
    codes, _ = quantize_inputs(d, digits.test.X[:40])
    assert np.array_equal(GoldenModel(z).run(codes).logits, GoldenModel(d).run(codes).logits)
    assert not np.array_equal(GoldenModel(m).run(codes).logits,
                              GoldenModel(d).run(codes).logits)
    # fine-tuning trains the delta forward and keeps the thresholds
    ft = tmp_path / "ft.hwgm"
    assert main(base + ["--delta", "24,12", "--dataset", "digits", "--epochs", "1", "-q",
                        "-o", str(ft)]) == 0
    assert "columns processed" in capsys.readouterr().out
    assert load_model(ft).delta == DeltaThresholds.uniform(24, 12, 1)
    # bad thresholds: one line naming the value, no file written
    bad = tmp_path / "bad.hwgm"
    assert main(base + ["--delta", "99999,0", "-o", str(bad)]) == 1
    assert "delta theta_x[0] is 99999" in capsys.readouterr().err
    assert main(base + ["--delta", "4", "-o", str(bad)]) == 1
    assert "--delta takes two integer codes THX,THH" in capsys.readouterr().err
    assert not bad.exists()
