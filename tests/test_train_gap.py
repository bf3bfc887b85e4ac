"""Options for closing the ternary gap (issue 15): learned per-matrix scales, shadow clipping,
learning-rate scaling by W0, the cosine learning-rate schedule, warm start from a float
checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.freeze import freeze, random_float_params
from hwgen.quant import QuantConfig, fit_ternary_scale, glorot_bound
from hwgen.spec import CellKind, Formats, HwgenError, Scale

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train

from hwgen.train.datasets import load_dataset  # noqa: E402
from hwgen.train.importer import warm_start_params  # noqa: E402
from hwgen.train.qrnn import QRNN  # noqa: E402
from hwgen.train.tquant import quantize_tensor  # noqa: E402
from hwgen.train.trainer import TrainConfig, set_threads, train  # noqa: E402

TERNARY = QuantConfig.parse("ternary")


@pytest.fixture(scope="module")
def digits():
    set_threads(1)
    return load_dataset("digits")


def _tiny(**kw) -> QRNN:
    return QRNN(CellKind.GRU, 8, 10, features=8, quant=TERNARY, formats=Formats.standard(8),
                seed=0, **kw)


# -- the fitted scale ------------------------------------------------------------------------------
def test_fit_ternary_scale_is_lloyds_fixed_point():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (64, 32))
    s = fit_ternary_scale(w)
    a = np.abs(w)
    assert s == pytest.approx(a[a > s / 2].mean(), rel=1e-9)  # the fixed point

    def err(scale):
        q = TERNARY.quantize(w, fan_in=32, fan_out=64, scale=scale).values
        return float(((w - q) ** 2).sum())

    assert err(s) < err(glorot_bound(32, 64))  # fits better than the Glorot W0
    assert err(s) <= min(err(s * 0.8), err(s * 1.25))
    assert fit_ternary_scale(np.array([[1.0, -1.0, 0.0, 0.1]])) == pytest.approx(1.0)
    assert fit_ternary_scale(np.zeros((2, 2))) == 1.0


# -- a given scale freezes into the matrix's one Scale ---------------------------------------------
def test_freeze_with_given_scales():
    p = random_float_params(CellKind.GRU, 4, 6, 3, seed=1)
    f = Formats.standard(8)
    m = freeze(p, TERNARY, f, scales={"weight_hh_l0": 0.3, "head.weight": 0.01})
    assert m.layers[0].wh.scale == Scale.from_float(0.3, 8)
    assert m.head.w.scale == Scale.from_float(0.01, 8)
    assert m.layers[0].wx.scale == Scale.from_float(glorot_bound(4, 6), 8)  # not given: Glorot
    default = freeze(p, TERNARY, f)
    assert default.layers[0].wh.scale != m.layers[0].wh.scale
    with pytest.raises(HwgenError, match="unknown matrices"):
        freeze(p, TERNARY, f, scales={"weight_hh_l1": 0.3})
    with pytest.raises(HwgenError, match="binary or ternary"):
        QuantConfig.parse("exp").quantize(p.head_w, fan_in=6, fan_out=3, scale=0.5)


def test_learned_scale_forward_is_exact_and_gets_a_gradient():
    net = _tiny(weight_scale="learned")
    w0 = net.learned_scales()
    assert w0["weight_hh_l0"] == pytest.approx(glorot_bound(8, 8), rel=1e-6)  # starts at Glorot
    with torch.no_grad():
        net.scale_weight_hh_l0.fill_(math.log(0.05))
    q = net.quantized_weight("weight_hh_l0")
    s = Scale.from_float(net.learned_scales()["weight_hh_l0"], 8).value
    ref = quantize_tensor(net.weight_hh_l0, TERNARY, fan_in=8, fan_out=8, scale=s)
    assert torch.equal(q.detach().to(torch.float64), ref)
    assert set(np.unique(np.round(ref.numpy() / s))) <= {-1.0, 0.0, 1.0}
    x = torch.rand(2, 3, 8)
    net(x).sum().backward()
    assert float(net.scale_weight_hh_l0.grad.abs()) > 0
    assert float(net.scale_head_weight.grad.abs()) > 0
    with pytest.raises(HwgenError, match="binary or ternary"):
        QRNN(CellKind.GRU, 8, 10, features=8, quant=QuantConfig.parse("exp"),
             formats=Formats.standard(8), weight_scale="learned")


def test_learned_scale_training_freezes_its_scales(digits):
    cfg = TrainConfig("digits", hidden=16, quant="ternary", epochs=4, lr=5e-3,
                      weight_scale="learned")
    r = train(cfg, digits, quiet=True)  # train() checks the frozen model is the eval forward's
    learned = r.model.meta["learned_scales"]
    for (name, mat), torch_name in zip(r.model.matrices(),
                                       ("weight_ih_l0", "weight_hh_l0", "head.weight"),
                                       strict=True):
        assert mat.scale == Scale.from_float(learned[torch_name], 8), name
    glorot = glorot_bound(16, 16)
    assert abs(learned["weight_hh_l0"] - glorot) > 1e-3 * glorot  # it moved
    assert r.metrics.golden_value > 0.5


# -- shadow clipping, learning-rate groups ---------------------------------------------------------
def test_no_shadow_clip(digits):
    for clip in (True, False):
        net = _tiny(shadow_clip=clip)
        with torch.no_grad():
            net.weight_hh_l0.fill_(1.0)
        net.clip_shadow()
        top = Scale.from_float(glorot_bound(8, 8), 8).value if clip else 1.0
        assert float(net.weight_hh_l0.detach().max()) == pytest.approx(top)
    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=1, shadow_clip=False)
    r = train(cfg, digits, quiet=True)
    assert r.model.meta["train"]["shadow_clip"] is False


def test_lr_scale_groups():
    net = _tiny()
    (g,) = net.param_groups(1e-3)
    assert len(g["params"]) == len(list(net.parameters()))
    for mode, f in (("w0", lambda b: 1e-3 * b), ("1/w0", lambda b: 1e-3 / b)):
        groups = net.param_groups(1e-3, mode)
        assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
        by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
        assert by_param[id(net.weight_hh_l0)] == pytest.approx(f(glorot_bound(8, 8)))
        assert by_param[id(net.head.weight)] == pytest.approx(f(glorot_bound(8, 10)))
        assert by_param[id(net.bias_hh_l0)] == 1e-3
    with pytest.raises(HwgenError, match="learning-rate scaling"):
        net.param_groups(1e-3, "sqrt")
    with pytest.raises(HwgenError, match="lr-scale"):
        TrainConfig("digits", hidden=8, quant="exp", epochs=1, lr_scale="w0").check()


def test_lr_scale_changes_training(digits):
    out = {}
    for mode in ("none", "1/w0"):
        cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=2, lr_scale=mode)
        out[mode] = train(cfg, digits, quiet=True).model
    a, b = out["none"].layers[0].wh.codes, out["1/w0"].layers[0].wh.codes
    assert not np.array_equal(a, b)


def test_recurrent_lr_groups():
    net = _tiny()
    n_params = len(list(net.parameters()))
    for mode, f in (("none", lambda lr, b: lr), ("1/w0", lambda lr, b: lr / b)):
        groups = net.param_groups(1e-3, mode, 0.25)
        assert sum(len(g["params"]) for g in groups) == n_params
        by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
        assert by_param[id(net.weight_hh_l0)] == pytest.approx(0.25 * f(1e-3, glorot_bound(8, 8)))
        assert by_param[id(net.weight_ih_l0)] == pytest.approx(f(1e-3, glorot_bound(8, 8)))
        assert by_param[id(net.head.weight)] == pytest.approx(f(1e-3, glorot_bound(8, 10)))
        assert by_param[id(net.bias_hh_l0)] == 1e-3
    # a multiplier of 1 leaves the groups as they were (earlier checkpoints' optimizer states)
    assert len(net.param_groups(1e-3, "none", 1.0)) == 1
    assert [len(g["params"]) for g in net.param_groups(1e-3, "1/w0", 1.0)] == \
        [len(g["params"]) for g in net.param_groups(1e-3, "1/w0")]
    for bad in (0.0, -0.5, float("nan")):
        with pytest.raises(HwgenError, match="rate multiplier"):
            net.param_groups(1e-3, "none", bad)
        with pytest.raises(HwgenError, match="--recurrent-lr"):
            TrainConfig("digits", hidden=8, epochs=1, recurrent_lr=bad).check()


def test_recurrent_lr_scales_the_recurrent_step(digits):
    from hwgen.train.trainer import _Run

    cfg = TrainConfig("digits", hidden=8, quant="float", epochs=1, lr=1e-2, recurrent_lr=0.25)
    run = _Run(cfg, digits, None, None, None)
    net = run.model
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    run.step(net.weight_hh_l0.sum() + net.weight_ih_l0.sum(), 0, 10)
    # Adam's first step is the rate times the gradient's sign (the gradient is 1 everywhere)
    for name, rate in (("weight_hh_l0", 2.5e-3), ("weight_ih_l0", 1e-2)):
        step = (before[name] - net.get_parameter(name).detach()).abs()
        assert float(step.min()) == pytest.approx(rate, rel=1e-4)
        assert float(step.max()) == pytest.approx(rate, rel=1e-4)


# -- quantization delay (issue 26) ----------------------------------------------------------------
def test_float_weights_pass_the_shadow_weights_unquantized():
    net = _tiny()
    w = net.weight_hh_l0
    q = net.quantized_weight("weight_hh_l0")
    assert len(torch.unique(q.detach())) <= 3 and not torch.equal(q, w)
    net.float_weights = True
    assert torch.equal(net.quantized_weight("weight_hh_l0"), w)
    # the shadow weights are still clipped to the quantizer's range in the float phase
    with torch.no_grad():
        w.mul_(10.0)
    net.clip_shadow()
    assert float(w.detach().abs().max()) <= glorot_bound(8, 8) * 1.01  # W0, rounded


def test_quant_delay_phases_and_best(digits):
    from hwgen.train.trainer import _Run

    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=4, quant_delay=0.5)
    run = _Run(cfg, digits, None, None, None)
    phases = []
    for i in range(10):
        run.begin_step(i, 10)
        phases.append(run.model.float_weights)
    assert phases == [True] * 5 + [False] * 5
    cfg.quant_delay = 0.99  # never the last step
    run.begin_step(9, 10)
    assert not run.model.float_weights
    r = train(TrainConfig("digits", hidden=8, quant="ternary", epochs=4, quant_delay=0.5),
              digits, quiet=True)
    flags = [h.get("float_weights", False) for h in r.history]
    assert flags == [True, True, False, False]
    # the best model is a quantized validation's, even where a float one scored higher
    assert r.best_valid == max(h["valid"] for h in r.history[2:])
    assert r.model.meta["train"]["quant_delay"] == 0.5
    assert r.metrics.golden_value == pytest.approx(r.torch_test, abs=0.02)


def test_quant_delay_is_checked_and_matched(digits, tmp_path):
    for bad, msg in ((1.0, "below 1"), (-0.1, "--quant-delay"), (float("nan"), "--quant-delay")):
        with pytest.raises(HwgenError, match=msg):
            TrainConfig("digits", hidden=8, epochs=1, quant_delay=bad).check()
    with pytest.raises(HwgenError, match="needs a weight quantizer"):
        TrainConfig("digits", hidden=8, epochs=1, quant="float", quant_delay=0.5).check()
    ck = tmp_path / "t.ckpt"
    train(TrainConfig("digits", hidden=8, epochs=1, quant_delay=0.5), digits, quiet=True,
          checkpoint=ck)
    with pytest.raises(HwgenError, match="quant_delay=0.5"):
        train(TrainConfig("digits", hidden=8, epochs=2), digits, quiet=True, checkpoint=ck,
              resume=True)


# -- warm start ------------------------------------------------------------------------------------
def test_warm_start_from_float_checkpoint(digits, tmp_path):
    ck = tmp_path / "f.ckpt"
    cfg = TrainConfig("digits", hidden=16, quant="float", epochs=4, lr=5e-3)
    fl = train(cfg, digits, quiet=True, checkpoint=ck)
    p = warm_start_params(ck, CellKind.GRU)
    best = torch.load(ck, weights_only=True)["best_state"]
    assert np.array_equal(p.layers[0].w_hh, best["weight_hh_l0"].double().numpy())
    assert np.array_equal(p.head_w, best["head.weight"].double().numpy())
    # the learned scale starts at the fit of the loaded weights
    net = QRNN(CellKind.GRU, 16, 10, features=8, quant=TERNARY, formats=Formats.standard(8),
               weight_scale="learned")
    net.load_float_params(p)
    assert net.learned_scales()["weight_hh_l0"] == pytest.approx(
        fit_ternary_scale(p.layers[0].w_hh), rel=1e-6)
    # fine-tuning from it: one epoch is enough to be far above a cold start of one epoch
    warm = TrainConfig("digits", hidden=16, quant="ternary", epochs=1, lr=5e-3,
                       weight_scale="learned", warm_start=str(ck))
    cold = TrainConfig("digits", hidden=16, quant="ternary", epochs=1, lr=5e-3,
                       weight_scale="learned")
    rw = train(warm, digits, quiet=True, init=p)
    rc = train(cold, digits, quiet=True)
    assert rw.metrics.golden_value > rc.metrics.golden_value
    assert fl.metrics.golden_value > 0.5


def test_resume_accepts_checkpoints_without_the_new_settings(digits, tmp_path):
    ck = tmp_path / "t.ckpt"
    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=1)
    train(cfg, digits, quiet=True, checkpoint=ck)
    st = torch.load(ck, weights_only=True)
    for k in ("weight_scale", "shadow_clip", "lr_scale", "lr_schedule", "warm_start"):
        del st["config"][k]  # as written before issue 15
    torch.save(st, ck)
    cfg2 = TrainConfig("digits", hidden=8, quant="ternary", epochs=2)
    train(cfg2, digits, quiet=True, checkpoint=ck, resume=True)
    other = TrainConfig("digits", hidden=8, quant="ternary", epochs=3, weight_scale="learned")
    with pytest.raises(HwgenError, match="weight_scale"):
        train(other, digits, quiet=True, checkpoint=ck, resume=True)


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_gap_flags(tmp_path, capsys):
    f = tmp_path / "f.hwgm"
    base = ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "-q"]
    assert main([*base, "--quant", "float", "-o", str(f)]) == 0
    t = tmp_path / "t.hwgm"
    assert main([*base, "--quant", "ternary", "--weight-scale", "learned", "--no-shadow-clip",
                 "--lr-scale", "1/w0", "--warm-start", f"{f}.ckpt", "-o", str(t)]) == 0
    from hwgen.modelfile import load_model

    meta = load_model(t).meta
    assert meta["train"]["weight_scale"] == "learned"
    assert meta["train"]["shadow_clip"] is False
    assert meta["train"]["lr_scale"] == "1/w0"
    assert meta["train"]["warm_start"] == f"{f}.ckpt"
    assert meta["train"]["lr_schedule"] == "constant"
    assert meta["train"]["recurrent_lr"] == 1.0
    r = tmp_path / "r.hwgm"
    assert main([*base, "--quant", "exp", "--recurrent-lr", "0.25", "-o", str(r)]) == 0
    assert load_model(r).meta["train"]["recurrent_lr"] == 0.25
    capsys.readouterr()
    cases = [
        (["--quant", "exp", "--weight-scale", "learned"], "--weight-scale learned is for binary"),
        (["--quant", "float", "--lr-scale", "w0"], "--lr-scale w0 scales by"),
        (["--warm-start", str(tmp_path / "nope.ckpt")], "no such file"),
        (["--warm-start", str(f)], "a model file holds quantized weights"),
        (["--cell", "lstm", "--warm-start", f"{f}.ckpt"], "a gru checkpoint"),
    ]
    for extra, msg in cases:
        assert main([*base, *extra, "-o", str(tmp_path / "x.hwgm")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("hwgen: error: ") and msg in err and "\n" not in err, err
    for bad in (["--weight-scale", "median"], ["--lr-schedule", "step"]):
        assert main([*base, *bad, "-o", str(tmp_path / "x.hwgm")]) == 2
        assert "invalid choice" in capsys.readouterr().err
    for bad in ("0", "-1", "nan", "x"):
        assert main([*base, "--recurrent-lr", bad, "-o", str(tmp_path / "x.hwgm")]) == 2
        err = capsys.readouterr().err.strip()
        assert "argument --recurrent-lr:" in err and "Traceback" not in err, err
    for bad in ("1", "-0.5", "nan", "x"):
        assert main([*base, "--quant-delay", bad, "-o", str(tmp_path / "x.hwgm")]) == 2
        err = capsys.readouterr().err.strip()
        assert "argument --quant-delay:" in err and "Traceback" not in err, err
    assert main([*base, "--epochs", "2", "--quant-delay", "0.5", "-o", str(r)]) == 0
    assert load_model(r).meta["train"]["quant_delay"] == 0.5


# -- learning-rate schedule ------------------------------------------------------------------------
def test_lr_factor():
    from hwgen.train.trainer import lr_factor

    assert lr_factor("constant", 7, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == 1.0
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 9, 10) == pytest.approx(0.5 * (1 + math.cos(0.9 * math.pi)))
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0)
    with pytest.raises(HwgenError, match="learning-rate schedule"):
        TrainConfig("digits", hidden=8, epochs=1, lr_schedule="step").check()


def test_cosine_schedule_trains_differently_and_resumes_exactly(digits, tmp_path):
    from hwgen.modelfile import to_bytes

    cfg = TrainConfig("digits", hidden=8, quant="ternary", epochs=3, seed=2, lr=1e-2,
                      lr_schedule="cosine")
    a = train(cfg, digits, quiet=True)
    const = train(TrainConfig("digits", hidden=8, quant="ternary", epochs=3, seed=2, lr=1e-2),
                  digits, quiet=True)
    assert to_bytes(a.model) != to_bytes(const.model)
    assert a.model.meta["train"]["lr_schedule"] == "cosine"

    class Stop(Exception):
        pass

    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Stop

    ck = tmp_path / "cos.ckpt"
    with pytest.raises(Stop):
        train(cfg, digits, quiet=True, checkpoint=ck, on_eval=stop_after_two)
    b = train(cfg, digits, quiet=True, checkpoint=ck, resume=True)
    assert to_bytes(b.model) == to_bytes(a.model)  # the schedule follows the step index
