"""Delta networks (issue 23): the exact integer delta model, its thresholds and model file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.delta import (
    DeltaGolden,
    DeltaResult,
    DeltaThresholds,
    delta_widths,
    max_threshold,
    with_thresholds,
)
from hwgen.golden import GoldenModel
from hwgen.modelfile import ModelFileError, load_model, save_model, to_bytes
from hwgen.numerics import derive_widths, scaled_term
from hwgen.spec import HwgenError, TokenInput

ENCODINGS = ("binary", "ternary", "pow2", "exp", "int8")


def smooth_inputs(model, batch=3, time=12, seed=0, step=6):
    """Random walks within the input format: consecutive frames close, as in speech."""
    rng = np.random.default_rng(seed)
    fmt = model.formats.input
    walk = np.cumsum(rng.integers(-step, step + 1, (batch, time, model.input.features)), axis=1)
    return np.clip(walk + rng.integers(-20, 20, (batch, 1, model.input.features)),
                   fmt.min_code, fmt.max_code)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("quant", ENCODINGS)
@pytest.mark.parametrize("theta", [0, 1])
def test_theta_0_and_1_are_the_dense_model_exactly(cell, quant, theta):
    m = make_model(cell, quant, layers=2, inputs=6, hidden=8, outputs=4, seed=3)
    x = random_inputs(m, batch=4, time=9, seed=1)
    x[:, 3] = x[:, 2]  # an unchanged frame: zero deltas for every column
    dense = GoldenModel(m).run(x, return_hidden=True)
    d = DeltaGolden(m, DeltaThresholds.uniform(theta, theta, 2)).run(x, return_hidden=True)
    np.testing.assert_array_equal(d.logits, dense.logits)
    np.testing.assert_array_equal(d.classes, dense.classes)
    for a, b in zip(d.hidden, dense.hidden, strict=True):
        np.testing.assert_array_equal(a, b)
    for (h1, c1), (h2, c2) in zip(d.state, dense.state, strict=True):
        np.testing.assert_array_equal(h1, h2)
        if c2 is not None:
            np.testing.assert_array_equal(c1, c2)
    # processed columns: exactly those whose value changed since the previous timestep
    prev = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    np.testing.assert_array_equal(d.columns.x_cols[:, :, 0], np.count_nonzero(x != prev, axis=2))
    assert np.all(d.columns.x_cols[:, 3, 0] == 0)
    h0 = dense.hidden[0]
    shift = lambda a: np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], axis=1)  # noqa: E731
    # layer 0's recurrent columns at t compare h_{t-1} with h_{t-2}; layer 1's input columns
    # compare layer 0's h_t with h_{t-1}
    np.testing.assert_array_equal(d.columns.h_cols[:, :, 0],
                                  np.count_nonzero(shift(h0) != shift(shift(h0)), axis=2))
    np.testing.assert_array_equal(d.columns.x_cols[:, :, 1], np.count_nonzero(h0 != shift(h0), 2))


def test_theta_0_token_model_is_dense():
    m = make_model("gru", "ternary", tokens=7, hidden=8)
    x = random_inputs(m, batch=3, time=8)
    d = DeltaGolden(m).run(x)
    np.testing.assert_array_equal(d.logits, GoldenModel(m).run(x).logits)
    assert isinstance(m.input, TokenInput) and d.columns.x_width == (m.input.dim,)


def reference(model, x, th: DeltaThresholds):
    """An independent statement of the delta network: per column, in Python integers, the
    encoder; the cell reads levels(W) x_hat and levels(W) h_hat (what M must equal)."""
    g = GoldenModel(model)
    f = model.formats
    B, T = x.shape[:2]
    state = g.initial_state(B)
    x_hat = [np.zeros((B, model.layer_input_width(i)), np.int64)
             for i in range(model.num_layers)]
    h_hat = [np.zeros((B, model.hidden), np.int64) for _ in range(model.num_layers)]
    logits, count = np.zeros((B, T, model.outputs), np.int64), 0
    for t in range(T):
        v = x[:, t]
        for i, layer in enumerate(model.layers):
            for hat, now, theta in ((x_hat[i], v, th.theta_x[i]),
                                    (h_hat[i], state[i][0], th.theta_h[i])):
                for b in range(B):
                    for j in range(hat.shape[1]):
                        if abs(int(now[b, j]) - int(hat[b, j])) >= max(theta, 1):
                            hat[b, j] = now[b, j]
                            count += 1
            tx = scaled_term(x_hat[i] @ layer.wx.levels.T, layer.wx.scale,
                             model.layer_input_format(i).frac, f.gate_frac)
            th_ = scaled_term(h_hat[i] @ layer.wh.levels.T, layer.wh.scale, f.state.frac,
                              f.gate_frac)
            state[i] = g.cell_step(i, tx, th_, *state[i])
            v = state[i][0]
        logits[:, t] = scaled_term(v @ model.head.w.levels.T, model.head.w.scale, f.state.frac,
                                   f.output_frac) + model.head.bias
    return logits, count


@pytest.mark.parametrize("cell,quant", [("rnn", "pow2"), ("gru", "ternary"), ("lstm", "int8"),
                                        ("gru", "exp")])
@pytest.mark.parametrize("thx,thh", [(4, 3), (12, 20), (40, 1)])
def test_thresholds_match_the_reference(cell, quant, thx, thh):
    m = make_model(cell, quant, layers=2, inputs=5, hidden=6, outputs=3, seed=7)
    x = smooth_inputs(m, batch=2, time=10, seed=thx)
    th = DeltaThresholds((thx, thh), (thh, thh + 2))
    r = DeltaGolden(m, th).run(x)
    want, count = reference(m, x, th)
    np.testing.assert_array_equal(r.logits, want)
    assert r.columns.processed()[0] == count
    dense = GoldenModel(m).run(x).logits
    assert r.columns.fraction() < DeltaGolden(m).run(x).columns.fraction() <= 1.0
    assert not np.array_equal(r.logits, dense)  # the thresholds do change the arithmetic


def test_memories_are_levels_times_hats_within_the_dense_widths():
    m = make_model("lstm", "int8", layers=2, inputs=6, hidden=8, seed=2)
    x = smooth_inputs(m, batch=5, time=15, step=30)
    r = DeltaGolden(m, DeltaThresholds((6, 2), (3, 5))).run(x)
    w = derive_widths(m)
    for i, (xh, hh, mx, mh) in enumerate(r.memories):
        np.testing.assert_array_equal(mx, xh @ m.layers[i].wx.levels.T)
        np.testing.assert_array_equal(mh, hh @ m.layers[i].wh.levels.T)
        assert np.abs(mx).max() <= w.layers[i].acc_x_bound
        assert np.abs(mh).max() <= w.layers[i].acc_h_bound
    dw = delta_widths(m)
    assert dw[0].mx_width == w.layers[0].acc_x_width and dw[0].dx_width == 9  # s8 delta: 9 bits
    assert dw[1].dx_width == dw[1].dh_width == 9


def test_stats_fractions_and_lengths():
    m = make_model("gru", "ternary", inputs=4, hidden=6)
    x = smooth_inputs(m, batch=2, time=6)
    x[1, 3:] = 0
    r = DeltaGolden(m, DeltaThresholds((2,), (2,))).run(x)
    s = r.columns
    lengths = np.array([6, 3])
    done, total = s.processed(lengths)
    assert total == 9 * (4 + 6)
    assert done == s.x_cols[0].sum() + s.h_cols[0].sum() + s.x_cols[1, :3].sum() \
        + s.h_cols[1, :3].sum()
    fr = s.fractions(lengths)
    assert 0 < fr["all"] == done / total <= 1 and set(fr) == {"x", "h", "all"}


def test_golden_model_dispatches_to_the_delta_network():
    m = make_model("gru", "ternary", inputs=5, hidden=8)
    x = smooth_inputs(m)
    th = DeltaThresholds((5,), (3,))
    md = with_thresholds(m, th)
    r = GoldenModel(md).run(x)
    assert isinstance(r, DeltaResult)
    np.testing.assert_array_equal(r.logits, DeltaGolden(m, th).run(x).logits)
    with pytest.raises(HwgenError, match="runs from the start of a sequence"):
        GoldenModel(md).run(x, state=GoldenModel(m).initial_state(3))
    assert GoldenModel(m).run(x).__class__.__name__ == "GoldenResult"  # dense stays dense


def test_threshold_validation():
    m = make_model("gru", "ternary", layers=2, hidden=8)
    top_in, top_h = max_threshold(m.formats.input), max_threshold(m.formats.state)
    assert (top_in, top_h) == (255, 255)
    DeltaThresholds((top_in, top_h), (top_h, 0)).check(m)
    cases = [
        (lambda: DeltaThresholds((-1, 0), (0, 0)), r"delta theta_x\[0\] must be a non-negative"),
        (lambda: DeltaThresholds((1, 0), (True, 0)), r"theta_h\[0\] must be a non-negative"),
        (lambda: DeltaThresholds((1.5,), (0,)), r"theta_x\[0\] must be a non-negative"),
        (lambda: DeltaThresholds((1, 2), (0,)), "theta_x has 2 entries and theta_h 1"),
        (lambda: DeltaThresholds((), ()), "must be a non-empty list"),
        (lambda: DeltaThresholds((256, 0), (0, 0)).check(m),
         r"delta theta_x\[0\] is 256; a s8\.5 code changes by at most 255"),
        (lambda: DeltaThresholds((0, 0), (0, 300)).check(m), r"delta theta_h\[1\] is 300"),
        (lambda: DeltaThresholds((0,), (0,)).check(m),
         "given for 1 layers; the model has 2"),
        (lambda: DeltaThresholds.parse("8", 1), "--delta takes two integer codes THX,THH"),
        (lambda: DeltaThresholds.parse("a,b", 1), "--delta takes two integer codes"),
    ]
    for fn, msg in cases:
        with pytest.raises(HwgenError, match=msg):
            fn()
    assert DeltaThresholds.parse(" 8, 4", 3) == DeltaThresholds((8, 4, 4), (4, 4, 4))


def test_model_file_round_trip_and_dense_bytes_unchanged(tmp_path):
    m = make_model("lstm", "exp", layers=2)
    assert "delta" not in _header(to_bytes(m))  # a dense model's file has no delta section
    md = with_thresholds(m, DeltaThresholds((9, 2), (2, 3)))
    p = tmp_path / "d.hwgm"
    save_model(md, p)
    back = load_model(p)
    assert back.delta == md.delta and to_bytes(back) == p.read_bytes()
    assert _header(p.read_bytes())["delta"] == {"theta_x": [9, 2], "theta_h": [2, 3]}
    x = random_inputs(m, time=5)
    np.testing.assert_array_equal(GoldenModel(back).run(x).logits, GoldenModel(md).run(x).logits)


def _header(data: bytes) -> dict:
    import io
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return json.loads(z["header"].tobytes().decode())


@pytest.mark.parametrize("section,msg", [
    ({"theta_x": [1, 2], "theta_h": [1]}, "theta_x has 2 entries and theta_h 1"),
    ({"theta_x": [1], "theta_h": [1]}, "given for 1 layers; the model has 2"),
    ({"theta_x": [1, "2"], "theta_h": [1, 1]}, r"theta_x\[1\] must be a non-negative integer"),
    ({"theta_x": [1, 2], "theta_h": [1, 999]}, r"theta_h\[1\] is 999; a s8\.7 code"),
    ({"theta_x": [1, 2]}, "'theta_h' is missing"),
    ({"theta_x": [1, 2], "theta_h": [1, 1], "theta_o": 3}, "unknown key 'theta_o'"),
    ([1, 2], "must be an object"),
])
def test_bad_delta_sections_name_the_field(tmp_path, section, msg):
    from test_modelfile import _mutate

    p = tmp_path / "m.hwgm"
    save_model(make_model("gru", "ternary", layers=2), p)
    _mutate(p, lambda h, a: h.update(delta=section, version=2))  # a delta file is version 2
    with pytest.raises(ModelFileError, match="field 'delta': .*" + msg):
        load_model(p)


def test_cli_inspect_and_golden(tmp_path, capsys):
    from hwgen.cli import main

    m = make_model("gru", "ternary", inputs=5, hidden=8)
    md = with_thresholds(m, DeltaThresholds((6,), (4,)))
    p = tmp_path / "d.hwgm"
    save_model(md, p)
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "delta network: theta_x 6, theta_h 4 (codes)" in out
    assert main(["inspect", str(p), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["delta"]["theta_x"] == [6] and js["delta"]["widths"][0]["dx_width"] == 9
    x = smooth_inputs(m)
    np.save(tmp_path / "x.npy", x * 2.0**-m.formats.input.frac)
    assert main(["golden", str(p), "--inputs", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), GoldenModel(md).run(x).logits)
    frac = DeltaGolden(md).run(x).columns.fraction()
    assert f"delta network: {frac:.1%} of columns processed" in capsys.readouterr().out


def test_cycles_model_of_the_planned_core():
    from hwgen.delta import DeltaStats
    from hwgen.delta.cycles import delta_cycles
    from hwgen.gateware.schedule import schedule

    m = make_model("gru", "ternary", inputs=20, hidden=64, outputs=10)
    s = schedule(m, 8)
    B, T = 2, 5
    none = DeltaStats(np.zeros((B, T, 1), np.int64), np.zeros((B, T, 1), np.int64), (20,), (64,))
    c0 = delta_cycles(m, 8, none)
    fixed = 2 + 10 * 8 + 192 + s.layer_gap
    assert c0.dense == s.cycles_per_timestep == 2 + 192 * (3 + 8) + s.layer_gap + 80
    assert c0.delta == fixed + 11  # the encoder's ceil(84 / 8) cycles, no column
    full = DeltaStats(np.full((B, T, 1), 20), np.full((B, T, 1), 64), (20,), (64,))
    c1 = delta_cycles(m, 8, full)
    assert c1.delta == c1.worst == fixed + 84 * 24
    half = DeltaStats(np.full((B, T, 1), 5), np.full((B, T, 1), 16), (20,), (64,))
    half.x_cols[1, 2:] = 0
    half.h_cols[1, 2:] = 0
    c2 = delta_cycles(m, 8, half, lengths=np.array([5, 2]))  # padding steps not counted
    assert c2.delta == fixed + 21 * 24 and c2.speedup == c2.dense / c2.delta
    r = DeltaGolden(m).run(smooth_inputs(m, time=6))
    assert delta_cycles(m, 8, r.columns).worst == c1.worst
    assert delta_cycles(m, 8, half, np.array([5, 2]), row_cycles=2).delta == c2.delta + 192


def test_the_dense_core_refuses_a_delta_model(tmp_path, capsys):
    from hwgen.cli import main
    from hwgen.gateware.plan import make_plan

    m = make_model("gru", "ternary", inputs=5, hidden=8)
    md = with_thresholds(m, DeltaThresholds((6,), (4,)))
    make_plan(m, 4)
    with pytest.raises(HwgenError, match=r"this model is a delta network \(theta_x 6, theta_h 4"):
        make_plan(md, 4)
    p = tmp_path / "d.hwgm"
    save_model(md, p)
    # the commands take the delta core instead (tests/test_delta_sim.py)
    assert main(["estimate", str(p), "--lanes", "4", "--target", "ice40-up5k"]) == 0
    assert capsys.readouterr().out.startswith("core        delta")
    assert with_thresholds(md, None).delta is None


def test_a_delta_model_file_is_version_2_and_a_dense_one_stays_version_1(tmp_path):
    """A reader of version 1 alone must refuse a delta network, not run it as a dense one; a
    dense model's file (and hash) is unchanged. The section and the version go together."""
    from test_modelfile import _mutate

    m = make_model("gru", "ternary", layers=2)
    assert _header(to_bytes(m))["version"] == 1
    p = tmp_path / "d.hwgm"
    save_model(with_thresholds(m, DeltaThresholds((9, 2), (2, 3))), p)
    assert _header(p.read_bytes())["version"] == 2
    _mutate(p, lambda h, a: h.update(version=1))  # a delta section in a version-1 file
    with pytest.raises(ModelFileError, match="a 'delta' section comes with version 2"):
        load_model(p)
    save_model(m, p)
    _mutate(p, lambda h, a: h.update(version=2))  # version 2 without the section
    with pytest.raises(ModelFileError, match="a 'delta' section comes with version 2"):
        load_model(p)
