"""Normalization in training, folded at freeze (issue 26): ``hwgen train --norm batch|weight``.

The fold: each matrix product's per-row affine map in evaluation (`QRNN.row_affine`) becomes
per-row multipliers (`hwgen.freeze.fold_rows`, `hwgen.spec.row_multipliers`) and bias shifts;
rounding the factors to the multipliers is the one inexact step, bounded here."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.freeze import ROW_BITS, fold_rows
from hwgen.modelfile import to_bytes
from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, Formats, HwgenError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from hwgen.floatref import float_forward  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.train.datasets import load_dataset  # noqa: E402
from hwgen.train.qrnn import BN_EPS, BN_MOMENTUM, QRNN  # noqa: E402
from hwgen.train.trainer import (  # noqa: E402
    TrainConfig,
    TrainPaused,
    recipe_settings,
    resolve_settings,
    set_threads,
    train,
)


@pytest.fixture(scope="module")
def digits():
    set_threads(1)
    return load_dataset("digits")


def _net(cell: CellKind, norm: str, quant="ternary", fake_quant=True, seed=3) -> QRNN:
    f = Formats.standard(12, lstm=cell is CellKind.LSTM)
    return QRNN(cell, 6, 3, features=4, layers=2, quant=QuantConfig.parse(quant), formats=f,
                norm=norm, seed=seed, fake_quant=fake_quant)


def _randomize_bn(net: QRNN, rng) -> None:
    """Statistics and gammas far from their starting values, some gammas negative."""
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.startswith("norm_mean"):
                buf.copy_(torch.from_numpy(rng.normal(0, 0.3, buf.shape)))
            elif name.startswith("norm_var"):
                buf.copy_(torch.from_numpy(rng.uniform(0.01, 2.0, buf.shape)))
        for name, p in net.named_parameters():
            if name.startswith("norm_gamma"):
                p.copy_(torch.from_numpy(rng.uniform(-1.0, 1.0, p.shape)))
            elif name.startswith("bias_"):
                p.copy_(torch.from_numpy(rng.normal(0, 0.2, p.shape)))


@pytest.mark.parametrize("cell", list(CellKind))
def test_batch_norm_statistics_fold_into_rows_and_biases(cell):
    rng = np.random.default_rng(1)
    net = _net(cell, "batch")
    _randomize_bn(net, rng)
    net.eval()
    frozen = net.freeze()
    H, gf = net.hidden, net.formats.gate_frac
    for k, layer in enumerate(frozen.layers):
        g = {a: net.get_parameter(f"norm_gamma_{a}_l{k}").detach().double().numpy()
             for a in ("ih", "hh")}
        mean = {a: net.get_buffer(f"norm_mean_{a}_l{k}").double().numpy() for a in ("ih", "hh")}
        var = {a: net.get_buffer(f"norm_var_{a}_l{k}").double().numpy() for a in ("ih", "hh")}
        fac = {a: (g[a] / np.sqrt(var[a] + BN_EPS)).astype(np.float32).astype(np.float64)
               for a in ("ih", "hh")}
        for a, m in (("ih", layer.wx), ("hh", layer.wh)):
            q = net.quantized_weight(f"weight_{a}_l{k}").detach().double().numpy()
            want = q * fac[a][:, None]
            # every row factor s0 * f is rounded on one grid, within max |s0 * f| / (2**8 - 1/2)
            s0 = np.abs(q[q != 0]).min()  # ternary: the values are 0 and +-s0
            err = np.abs(q / s0) * s0 * np.abs(fac[a]).max() / (2**ROW_BITS - 0.5)
            assert np.all(np.abs(m.values - want) <= err + 1e-12)
            assert m.row_mult is not None
        shift = {a: -fac[a] * mean[a] for a in ("ih", "hh")}
        b_ih = net.get_parameter(f"bias_ih_l{k}").detach().double().numpy() + shift["ih"]
        b_hh = net.get_parameter(f"bias_hh_l{k}").detach().double().numpy() + shift["hh"]
        if cell is CellKind.GRU:  # the n gate's recurrent shift stays inside the reset product
            want_b = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
            assert np.max(np.abs(layer.bias_hn * 2.0**-gf - b_hh[2 * H :])) <= 2.0**-gf / 2 + 1e-9
        else:
            want_b = b_ih + b_hh
            assert layer.bias_hn is None
        assert np.max(np.abs(layer.bias * 2.0**-gf - want_b)) <= 2.0**-gf / 2 + 1e-6


@pytest.mark.parametrize("cell", list(CellKind))
@pytest.mark.parametrize("norm", ["batch", "weight"])
def test_folded_model_follows_the_normalized_forward(cell, norm):
    """The eval forward (float activations) against the float forward of the frozen model
    (the folded rows) and the golden model: the multipliers' rounding is the only difference
    between the first two (measured here: within 2 % of the logit range)."""
    rng = np.random.default_rng(2)
    net = _net(cell, norm, fake_quant=False)
    if norm == "batch":
        _randomize_bn(net, rng)
        with torch.no_grad():
            for n, p in net.named_parameters():
                if n.startswith("norm_gamma"):
                    p.abs_().add_(0.2)
    else:
        with torch.no_grad():
            for n, p in net.named_parameters():
                if n.startswith("norm_gain"):
                    p.mul_(torch.from_numpy(rng.uniform(-1.5, 1.5, p.shape)).float())
    net.eval()
    frozen = net.freeze()
    x = rng.integers(-64, 64, (5, 7, 4)) * frozen.formats.input.lsb
    with torch.no_grad():
        z = net(torch.from_numpy(x).float()).double().numpy()
    zf = float_forward(frozen, x)
    codes = np.round(x / frozen.formats.input.lsb).astype(np.int64)
    zg = GoldenModel(frozen).run(codes).logits * 2.0**-frozen.formats.output_frac
    span = np.abs(z).max()
    assert span > 0.05
    assert np.abs(zf - z).max() <= 0.02 * span, (np.abs(zf - z).max(), span)
    assert np.abs(zg - zf).max() <= 0.02 * span, (np.abs(zg - zf).max(), span)


@pytest.mark.parametrize("quant", ["binary", "ternary", "pow2", "exp", "int8", "int4"])
def test_negative_factors_negate_the_rows(quant):
    rng = np.random.default_rng(4)
    m = QuantConfig.parse(quant).quantize(rng.normal(0, 0.3, (6, 9)), fan_in=9, fan_out=6)
    factor = np.array([1.0, -1.0, 0.5, -0.25, 0.0, -2.0])
    folded = fold_rows(m, factor)
    want = m.values * factor[:, None]
    err = np.abs(m.levels) * m.scale.value * 2.0 / (2**ROW_BITS - 0.5)  # 2: the largest |factor|
    assert np.all(np.abs(folded.values - want) <= err + 1e-12)
    assert np.array_equal(np.sign(folded.levels[factor < 0]), -np.sign(m.levels[factor < 0]))
    assert folded.row_mult[4] == 0 and folded.nm == m.nm
    with pytest.raises(HwgenError, match="6 finite numbers"):
        fold_rows(m, np.array([1.0, np.nan, 1, 1, 1, 1]))
    with pytest.raises(HwgenError, match="6 finite numbers"):
        fold_rows(m, np.ones(5))


def test_batch_norm_running_statistics():
    """Training updates the running averages: W_x x over batch and time, W_h h pooled over
    the steps after the first (the zero state's product is zero)."""
    net = _net(CellKind.GRU, "batch", fake_quant=False)
    net.train()
    x = torch.rand(8, 5, 4) * 2 - 1
    with torch.no_grad():
        wx = net.quantized_weight("weight_ih_l0").float()
        p = (x @ wx.t()).reshape(-1, wx.shape[0])
        net(x)
    m = net.get_buffer("norm_mean_ih_l0")
    v = net.get_buffer("norm_var_ih_l0")
    assert torch.allclose(m, BN_MOMENTUM * p.mean(0), atol=1e-6)
    assert torch.allclose(v, (1 - BN_MOMENTUM) + BN_MOMENTUM * p.var(0, unbiased=True), atol=1e-5)
    assert not torch.equal(net.get_buffer("norm_mean_hh_l0"), torch.zeros_like(m))
    # evaluation leaves them alone
    before = {n: b.clone() for n, b in net.named_buffers()}
    net.eval()
    with torch.no_grad():
        net(x)
    assert all(torch.equal(before[n], b) for n, b in net.named_buffers())


def test_weight_norm_starts_as_the_unnormalized_network():
    x = torch.rand(4, 5, 4) * 2 - 1
    plain, wn = (_net(CellKind.LSTM, n).eval() for n in ("none", "weight"))
    with torch.no_grad():
        assert torch.allclose(plain(x), wn(x), atol=1e-4)
    assert any(n.startswith("norm_gain") for n, _ in wn.named_parameters())


def test_train_with_norm_resumes_exactly_and_pauses(digits, tmp_path):
    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=3, seed=2, norm="batch")
    a = train(cfg, digits, quiet=True)
    assert a.model.layers[0].wh.row_mult is not None
    assert a.model.meta["train"]["norm"] == "batch"
    # the golden model of the folded network follows its training forward
    assert abs(a.metrics.golden_value - a.torch_test) <= 0.03
    ck = tmp_path / "run.ckpt"
    with pytest.raises(TrainPaused, match="--resume to continue"):
        train(cfg, digits, quiet=True, checkpoint=ck, time_limit=0.0)
    assert ck.exists()
    b = train(cfg, digits, quiet=True, checkpoint=ck, resume=True)
    assert to_bytes(b.model) == to_bytes(a.model)
    none = TrainConfig("digits", hidden=8, quant="ternary", epochs=3, seed=2)
    with pytest.raises(HwgenError, match="checkpoint was made with norm='batch', not 'none'"):
        train(none, digits, quiet=True, checkpoint=ck, resume=True)
    with pytest.raises(HwgenError, match="a time limit needs a checkpoint"):
        train(cfg, digits, quiet=True, time_limit=10.0)


@pytest.mark.parametrize("norm", ["batch", "weight"])
def test_normalized_products_leave_w0_without_gradient(norm):
    """A normalized product does not depend on its matrix's W0 (each row is divided by its own
    spread), so a learned W0 of a normalized matrix gets all but no gradient (what the epsilon
    leaves), which Adam turns into steps of the order of the rate (the GRU-256 lm-bn
    divergence): lm-bn keeps the Glorot W0. The head is not normalized; its W0 keeps a real
    gradient."""
    grads = {}
    for n in ("none", norm):
        net = QRNN(CellKind.GRU, 16, 3, features=4, quant=QuantConfig.parse("ternary"),
                   formats=Formats.standard(12), norm=n, weight_scale="learned", seed=1)
        net.train()
        gen = torch.Generator().manual_seed(5)
        x, y = torch.randn(32, 10, 4, generator=gen), torch.randint(0, 3, (32, 10), generator=gen)
        z = net(x)
        torch.nn.functional.cross_entropy(z.reshape(-1, 3), y.reshape(-1)).backward()
        grads[n] = {name: abs(float(p.grad)) for name, p in net.named_parameters()
                    if name.startswith("scale_")}
    for name in ("scale_weight_ih_l0", "scale_weight_hh_l0"):
        assert grads["none"][name] > 1e-3
        assert grads[norm][name] < 1e-3 * grads["none"][name], name
    assert grads[norm]["scale_head_weight"] > 1e-3


def test_fit_w0_is_scale_covariant():
    from hwgen.spec import EncodingKind
    from hwgen.train.qrnn import fit_w0

    w = np.random.default_rng(0).normal(0, 0.1, (48, 16))
    for kind in (EncodingKind.TERNARY, EncodingKind.BINARY):
        assert fit_w0(kind, 3.0 * w) == pytest.approx(3.0 * fit_w0(kind, w), rel=1e-12)
    assert fit_w0(EncodingKind.BINARY, w) == pytest.approx(float(np.abs(w).mean()))


@pytest.mark.parametrize("quant", ["ternary", "binary"])
def test_fitted_w0_makes_the_normalized_forward_scale_invariant(quant):
    """With ``weight_scale`` "fitted" the quantized matrix depends only on the direction of the
    shadow weights, so batch normalization's training forward is the same for W_h and 3 W_h
    (the norm of the shadow weights is free to grow, as float's does); with the Glorot W0 a
    ternary one is not (3 W_h crosses the fixed thresholds: other codes), and the Glorot W0
    clips the shadow weights back. Fitted matrices are not clipped."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 8, 4, generator=gen)
    outs = {}
    for ws in ("fitted", "glorot"):
        net = QRNN(CellKind.GRU, 12, 3, features=4, quant=QuantConfig.parse(quant),
                   formats=Formats.standard(12), norm="batch", weight_scale=ws, seed=2)
        net.train()
        a, qa = net(x).detach(), net.quantized_weight("weight_hh_l0").detach()
        with torch.no_grad():
            net.weight_hh_l0.mul_(3.0)
        b, qb = net(x).detach(), net.quantized_weight("weight_hh_l0").detach()
        outs[ws] = float((a - b).abs().max())  # fitted: only batch norm's epsilon differs
        # binary codes are signs: the Glorot W0 keeps them too, only its clip differs
        assert torch.equal(torch.sign(qa), torch.sign(qb)) == (ws == "fitted" or quant == "binary")
        w = net.weight_hh_l0.detach().clone()
        net.clip_shadow()
        assert torch.equal(net.weight_hh_l0.detach(), w) == (ws == "fitted")
    assert outs["fitted"] < 1e-2, outs
    assert (outs["glorot"] > 5e-2) == (quant == "ternary"), outs


def test_fitted_w0_freezes_the_fit_of_the_best_weights(digits):
    from hwgen.spec import EncodingKind
    from hwgen.train.qrnn import fit_w0

    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=2, norm="batch",
                      weight_scale="fitted")
    r = train(cfg, digits, quiet=True)  # check_layout_matches: the eval forward's codes
    best = r.model.meta["learned_scales"]
    assert set(best) == {"weight_ih_l0", "weight_hh_l0", "head.weight"}
    from hwgen.quant import fit_ternary_scale

    assert fit_w0(EncodingKind.TERNARY, np.ones(3)) == fit_ternary_scale(np.ones(3))
    with pytest.raises(HwgenError, match="--weight-scale fitted is for binary or ternary"):
        TrainConfig("digits", hidden=8, quant="exp", epochs=1, weight_scale="fitted").check()
    with pytest.raises(HwgenError, match="a fitted weight scale is for binary or ternary"):
        QRNN(CellKind.GRU, 4, 3, features=4, quant=QuantConfig.parse("int8"),
             formats=Formats.standard(8), weight_scale="fitted")


def test_lm_bn_trains_with_the_glorot_w0(digits):
    settings = resolve_settings("lm-bn", "ternary", lr=None, lr_schedule=None,
                                weight_scale=None, norm=None, input_quant=None, head_quant=None)
    assert settings["weight_scale"] == "glorot" and settings["norm"] == "batch"
    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=1, seed=0, **settings)
    r = train(cfg, digits, quiet=True)
    assert "learned_scales" not in r.model.meta
    assert r.model.meta["train"]["weight_scale"] == "glorot"
    # an explicit --weight-scale learned still wins over the recipe
    assert resolve_settings("lm-bn", "ternary", weight_scale="learned")["weight_scale"] \
        == "learned"


def test_recipes():
    assert recipe_settings("lm-bn", "ternary") == {
        "lr": 0.03, "lr_schedule": "cosine", "norm": "batch",
        "input_quant": "int8", "head_quant": "int8"}
    assert recipe_settings("lm", "ternary")["weight_scale"] == "learned"
    assert recipe_settings("hou", "ternary")["weight_scale"] == "learned"
    assert recipe_settings("lm-bn", "float") == {"lr": 0.013, "lr_schedule": "cosine",
                                                 "norm": "batch"}
    assert recipe_settings("ardakani", "ternary")["stochastic"] is True
    assert "stochastic" not in recipe_settings("ardakani", "float")
    assert recipe_settings("hou", "exp") == {"lr": 0.013, "lr_schedule": "cosine",
                                             "norm": "weight"}


def test_cli_norm(tmp_path, capsys):
    base = ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "2", "-q"]
    out = tmp_path / "n.hwgm"
    assert main([*base, "--norm", "weight", "-o", str(out)]) == 0
    from hwgen.modelfile import load_model

    m = load_model(out)
    assert m.meta["train"]["norm"] == "weight" and m.layers[0].wx.row_mult is not None
    capsys.readouterr()
    assert main([*base, "--norm", "weight", "--warm-start", f"{out}.ckpt", "-o",
                 str(tmp_path / "w.hwgm")]) == 1
    assert "--norm weight with --warm-start" in capsys.readouterr().err
    assert main([*base, "--warm-start", f"{out}.ckpt", "-o", str(tmp_path / "w.hwgm")]) == 1
    assert "a checkpoint trained with --norm weight" in capsys.readouterr().err
    assert main([*base, "--recipe", "ardakani", "--norm", "none", "-o", str(out)]) == 0
    t = load_model(out).meta["train"]
    assert t["norm"] == "none" and t["stochastic"] is True  # the explicit option wins
    capsys.readouterr()
    assert main([*base, "--norm", "layer", "-o", str(out)]) == 2
    assert "invalid choice: 'layer'" in capsys.readouterr().err
    assert main([*base, "--norm", "batch", "--delta", "1,1", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwgen: error: --norm batch with --delta") and "\n" not in err
    # a time limit pauses with status 3 and says how to continue; --resume finishes
    assert main([*base, "--norm", "batch", "--time-limit", "0.001", "-o", str(out)]) == 3
    assert "--resume to continue" in capsys.readouterr().err
    assert main([*base, "--norm", "batch", "--resume", "-o", str(out)]) == 0
