"""The torch quantizers match hwgen.quant exactly; STE and stochastic-draw mechanics."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, Formats

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from hwgen.train.qrnn import QRNN  # noqa: E402
from hwgen.train.tquant import fake_fixed, quantize_tensor, ste  # noqa: E402

DET = ["binary", "ternary", "pow2", "exp", "exp3", "int8", "int4", "int16"]


def _matrix(seed, shape=(24, 10), scale=0.4):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, scale, shape)
    # the quantizers' edges, exactly: W0/2 multiples, pow2 halves, exp 1.5 * 2**k, zero
    edges = np.array([0.0, 0.25, -0.25, 0.5, -0.5, 0.75, 1.5 * 2**-3, -1.5 * 2**-4, 2**-9,
                      0.49999997, 0.2236068])
    w.flat[: len(edges)] = edges
    return w.astype(np.float32).astype(np.float64)  # shadow weights are float32


@pytest.mark.parametrize("name", DET)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deterministic_levels_match_numpy(name, seed):
    cfg = QuantConfig.parse(name)
    w = _matrix(seed)
    fan_in, fan_out = 10, 8
    ref = cfg.quantize(w, fan_in=fan_in, fan_out=fan_out).values
    got = quantize_tensor(torch.from_numpy(w), cfg, fan_in=fan_in, fan_out=fan_out).numpy()
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["ternary", "binary", "exp"])
def test_ternary_edges_with_exact_scale(name):
    # weights exactly at +-W0/2 (the scale as the quantizer rounds it)
    cfg = QuantConfig.parse(name)
    from hwgen.quant import glorot_bound
    from hwgen.spec import Scale

    s = Scale.from_float(glorot_bound(10, 8), 8).value
    w = np.array([[s / 2, -s / 2, s / 2 + 1e-9, -s / 2 - 1e-9, 0.0, s, -s, 2 * s]])
    ref = cfg.quantize(w, fan_in=10, fan_out=8).values
    got = quantize_tensor(torch.from_numpy(w), cfg, fan_in=10, fan_out=8).numpy()
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["binary", "ternary", "exp"])
def test_stochastic_levels_are_legal_and_unbiased(name):
    cfg = QuantConfig.parse(name, stochastic=True)
    w = torch.from_numpy(_matrix(3, (64, 64), 0.05))
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([quantize_tensor(w, cfg, fan_in=64, fan_out=64, generator=g)
                         for _ in range(2000)])
    # every draw is one of the deterministic encoding's values (level * scale)
    det = cfg.quantize(w.numpy(), fan_in=64, fan_out=64, rng=0)
    allowed = np.unique(np.concatenate([det.values.ravel(), [0.0, det.scale.value,
                                                             -det.scale.value]]))
    if name == "exp":
        allowed = None
    if allowed is not None:
        assert np.isin(draws.numpy(), allowed).all()
    # the mean of the draws approaches w where the quantizer is unbiased (|w| < W0)
    mean = draws.mean(0).numpy()
    inside = np.abs(w.numpy()) < det.scale.value * 0.9
    if name == "exp":
        inside = np.abs(w.numpy()) > 2.0**-10
    err = np.abs(mean - w.numpy())[inside].mean()
    assert err < 0.2 * np.abs(w.numpy())[inside].mean()


def test_ste_passes_gradient_unchanged():
    w = torch.tensor([0.3, -0.01, 2.0], requires_grad=True)
    q = quantize_tensor(w, QuantConfig.parse("ternary"), fan_in=4, fan_out=4)
    y = (ste(w, q) * torch.tensor([1.0, 2.0, 3.0])).sum()
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
    x = torch.tensor([0.123, 5.0, -5.0], requires_grad=True)
    from hwgen.spec import FixedFormat

    v = fake_fixed(x, FixedFormat(8, 5))
    np.testing.assert_allclose(v.detach().numpy(), [4 / 32, 127 / 32, -4.0])
    v.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])


def _net(quant="ternary", stochastic=True):
    return QRNN(CellKind.GRU, 8, 3, features=4, quant=QuantConfig.parse(quant, stochastic),
                formats=Formats.standard(8), seed=0)


def test_fresh_draw_per_forward_and_deterministic_eval():
    net = _net()
    x = torch.rand(5, 6, 4)
    net.train()
    w1 = net.quantized_weight("weight_hh_l0").detach().clone()
    w2 = net.quantized_weight("weight_hh_l0").detach().clone()
    assert not torch.equal(w1, w2)  # a new draw on every pass
    y1, y2 = net(x), net(x)
    assert not torch.equal(y1, y2)
    net.eval()
    e1, e2 = net(x), net(x)
    assert torch.equal(e1, e2)
    # eval uses the deterministic rule, the values freeze() writes
    frozen = net.freeze()
    np.testing.assert_array_equal(
        net.quantized_weight("weight_hh_l0").detach().double().numpy(),
        frozen.layers[0].wh.values,
    )


def test_gradient_reaches_shadow_weights():
    net = _net("exp", False)
    net.train()
    loss = net(torch.rand(2, 3, 4)).sum()
    loss.backward()
    assert net.get_parameter("weight_ih_l0").grad.abs().sum() > 0
    assert net.get_parameter("weight_hh_l0").grad.abs().sum() > 0


def test_clip_shadow():
    net = _net("ternary", False)
    with torch.no_grad():
        net.get_parameter("weight_hh_l0").fill_(10.0)
    net.clip_shadow()
    top = float(net.get_parameter("weight_hh_l0").detach().max())
    assert top < 1.0


@pytest.mark.parametrize("name", ["datasets", "evaluate", "tquant", "qrnn", "trainer",
                                  "importer"])
def test_all_names_resolve(name):
    import importlib

    mod = importlib.import_module(f"hwgen.train.{name}")
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r}"
