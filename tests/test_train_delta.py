"""Delta networks in quantization-aware training (hwgen train --delta; issue 23)."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.delta import DeltaGolden, DeltaThresholds
from hwgen.modelfile import load_model, to_bytes
from hwgen.spec import CellKind, Formats, HwgenError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from test_train import digits  # noqa: E402, F401 - the shared digits fixture

from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.train.evaluate import evaluate  # noqa: E402
from hwgen.train.qrnn import QRNN  # noqa: E402
from hwgen.train.trainer import TrainConfig, train  # noqa: E402


def qrnn(cell="gru", delta=None, layers=2):
    cell = CellKind(cell)
    return QRNN(cell, 8, 3, layers=layers, features=5, quant=QuantConfig.parse("ternary"),
                formats=Formats.standard(8, lstm=cell is CellKind.LSTM), seed=1, delta=delta)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_theta_0_is_the_dense_forward_and_gradient(cell):
    x = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(0))
    dense, delta = qrnn(cell), qrnn(cell, DeltaThresholds.uniform(0, 0, 2))
    for m in (dense, delta):
        m.eval()
    a, b = dense(x), delta(x)
    assert torch.equal(a, b)
    a.sum().backward()
    b.sum().backward()
    for (n, p), (_, q) in zip(dense.named_parameters(), delta.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), n


def test_held_inputs_are_the_golden_encoders():
    """On code-valued inputs the training forward holds exactly the golden model's x_hat."""
    fmt = Formats.standard(8).input
    rng = np.random.default_rng(3)
    codes = np.clip(np.cumsum(rng.integers(-9, 10, (3, 12, 5)), axis=1), -128, 127)
    for theta in (0, 1, 4, 9):
        held = QRNN._held(torch.from_numpy(codes * fmt.lsb), theta, fmt).numpy() / fmt.lsb
        hat, want = np.zeros((3, 5), np.int64), []
        for t in range(codes.shape[1]):
            DeltaGolden._encode(codes[:, t], hat, theta)
            want.append(hat.copy())
        np.testing.assert_array_equal(held, np.stack(want, axis=1))


def test_delta_training_writes_thresholds(digits, tmp_path):  # noqa: F811
    cfg = TrainConfig("digits", hidden=16, quant="ternary", epochs=4, lr=5e-3, delta="3,6")
    out = tmp_path / "d.hwgm"
    r = train(cfg, digits, quiet=True, output=out)
    assert r.model.delta == DeltaThresholds((3,), (6,))
    assert r.model.meta["train"]["delta"] == "3,6"
    m = r.metrics
    assert m.golden_value > 0.5 and 0.0 < m.columns < 1.0, m.describe()
    assert "of the columns processed" in m.describe()
    back = load_model(out)
    assert back.delta == r.model.delta and to_bytes(back) == out.read_bytes()
    again = evaluate(back, digits)
    assert again.golden_value == m.golden_value and again.columns == m.columns
    # the training forward learned with the thresholds: it agrees with the golden model closely
    assert abs(r.torch_test - m.golden_value) < 0.05


def test_dense_training_is_unchanged_by_the_option(digits):  # noqa: F811
    a = train(TrainConfig("digits", hidden=8, epochs=1), digits, quiet=True)
    b = train(TrainConfig("digits", hidden=8, epochs=1, delta="0,0"), digits, quiet=True)
    np.testing.assert_array_equal(a.model.layers[0].wh.codes, b.model.layers[0].wh.codes)
    assert a.model.delta is None and a.metrics.columns is None
    assert b.metrics.golden_value == a.metrics.golden_value


def test_bad_thresholds():
    for delta, msg in [("8", "--delta takes two integer codes THX,THH"),
                       ("300,1", r"delta theta_x\[0\] is 300; a s8\.5 code changes by at most"),
                       ("1,-2", r"delta theta_h\[0\] must be a non-negative integer")]:
        with pytest.raises(HwgenError, match=msg):
            TrainConfig("digits", hidden=8, epochs=1, delta=delta).check()


def test_cli_train_delta_and_inspect(tmp_path, capsys):
    out = tmp_path / "d.hwgm"
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "-q",
                 "--delta", "4,4", "-o", str(out)]) == 0
    assert "of the columns processed" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    assert "delta network: theta_x 4, theta_h 4 (codes)" in capsys.readouterr().out
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "-q",
                 "--delta", "4", "-o", str(tmp_path / "x.hwgm")]) == 1
    assert "hwgen: error: --delta takes two integer codes" in capsys.readouterr().err
