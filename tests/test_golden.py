import dataclasses

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.floatref import float_forward
from hwgen.freeze import freeze, random_float_params
from hwgen.golden import GoldenModel, check_inputs
from hwgen.numerics import derive_widths, round_shift, table_index
from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, Formats, HwgenError, Scale, VectorInput

COVER = [
    dict(cell="rnn", quant="ternary"),
    dict(cell="rnn", quant="int8", layers=2),
    dict(cell="gru", quant="binary", tokens=9),
    dict(cell="gru", quant="exp", layers=2),
    dict(cell="gru", quant="pow2"),
    dict(cell="lstm", quant="ternary", layers=2),
    dict(cell="lstm", quant="exp", tokens=7),
    dict(cell="lstm", quant="int8"),
]
IDS = ["-".join(str(v) for v in kw.values()) for kw in COVER]


@pytest.mark.parametrize("kw", COVER, ids=IDS)
def test_batch_equals_one_sequence_at_a_time(kw):
    m = make_model(**kw)
    g = GoldenModel(m)
    x = random_inputs(m, batch=5, time=7, seed=3)
    batch = g.run(x, return_hidden=True)
    for b in range(5):
        one = g.run(x[b : b + 1], return_hidden=True)
        np.testing.assert_array_equal(one.logits[0], batch.logits[b])
        for i in range(m.num_layers):
            np.testing.assert_array_equal(one.hidden[i][0], batch.hidden[i][b])


@pytest.mark.parametrize("kw", COVER, ids=IDS)
def test_state_carries_over_between_runs(kw):
    m = make_model(**kw)
    g = GoldenModel(m)
    x = random_inputs(m, batch=2, time=8, seed=4)
    whole = g.run(x)
    first = g.run(x[:, :3])
    rest = g.run(x[:, 3:], state=first.state)
    np.testing.assert_array_equal(np.concatenate([first.logits, rest.logits], 1), whole.logits)


@pytest.mark.parametrize("kw", COVER, ids=IDS)
def test_values_stay_within_derived_widths(kw):
    m = make_model(**kw)
    w = derive_widths(m)
    g = GoldenModel(m)
    x = random_inputs(m, batch=8, time=10, seed=5)
    if m.embedding is None:  # also the extreme inputs
        fmt = m.formats.input
        x[:4] = np.where(
            np.random.default_rng(0).random(x[:4].shape) < 0.5, fmt.min_code, fmt.max_code
        )
    r = g.run(x, return_hidden=True)
    assert np.abs(r.logits).max() <= w.logit_bound
    for h in r.hidden:
        assert np.abs(h).max() <= w.state_bound


def test_token_model_equals_vector_model_fed_the_embedding():
    m = make_model("gru", "ternary", tokens=10, inputs=4)
    vec = dataclasses.replace(m, input=VectorInput(4), embedding=None)
    x = random_inputs(m, batch=3, time=6)
    np.testing.assert_array_equal(
        GoldenModel(m).run(x).logits, GoldenModel(vec).run(m.embedding[x]).logits
    )


def test_argmax_takes_the_lowest_index_on_ties():
    m = make_model("rnn", "ternary", argmax=True)
    r = GoldenModel(m).run(random_inputs(m))
    np.testing.assert_array_equal(r.classes, np.argmax(r.logits, axis=-1))


def _sig(m, z):
    return int(m.sigmoid_table[table_index(z, m.formats.sigmoid_in_width)])


def _tanh(m, z):
    return int(m.tanh_table[table_index(z, m.formats.tanh_in_width)])


def _term(acc, s: Scale, in_frac, out_frac):
    k = s.exponent - in_frac + out_frac
    v = acc * s.mantissa
    return v << k if k >= 0 else round_shift(v, -k)


def test_gru_step_by_hand():
    """docs/numerics.md, restated with Python ints, one unit at a time (PyTorch's GRU form)."""
    m = make_model("gru", "ternary", inputs=3, hidden=2, outputs=2)
    f = m.formats
    L = m.layers[0]
    wx, wh, H = L.wx.levels, L.wh.levels, 2
    x = [[5, -17, 40], [-128, 127, 0], [3, 3, 3]]
    h = [0, 0]
    g = GoldenModel(m).run(np.array([x]), return_hidden=True)
    for t in range(3):
        pre = []
        for row in range(3 * H):
            ax = sum(int(wx[row, j]) * x[t][j] for j in range(3))
            ah = sum(int(wh[row, j]) * h[j] for j in range(H))
            pre.append(
                (
                    _term(ax, L.wx.scale, f.input.frac, f.gate_frac),
                    _term(ah, L.wh.scale, f.state.frac, f.gate_frac),
                )
            )
        new = []
        for j in range(H):
            r = _sig(m, pre[j][0] + pre[j][1] + int(L.bias[j]))
            u = _sig(m, pre[H + j][0] + pre[H + j][1] + int(L.bias[H + j]))
            inner = round_shift(r * (pre[2 * H + j][1] + int(L.bias_hn[j])), f.sigmoid_frac)
            n = _tanh(m, pre[2 * H + j][0] + int(L.bias[2 * H + j]) + inner)
            new.append(n + round_shift(u * (h[j] - n), f.sigmoid_frac))
        h = new
        assert g.hidden[0][0, t].tolist() == h
        logits = [
            _term(
                sum(int(m.head.w.levels[o, j]) * h[j] for j in range(H)),
                m.head.w.scale,
                f.state.frac,
                f.output_frac,
            )
            + int(m.head.bias[o])
            for o in range(2)
        ]
        assert g.logits[0, t].tolist() == logits


def test_lstm_step_by_hand():
    m = make_model("lstm", "int8", inputs=2, hidden=1, outputs=1)
    f = m.formats
    L = m.layers[0]
    x = [[60, -100], [127, 127]]
    h, c = 0, 0
    g = GoldenModel(m).run(np.array([x]), return_hidden=True)
    for t in range(2):
        z = []
        for row in range(4):
            ax = sum(int(L.wx.levels[row, j]) * x[t][j] for j in range(2))
            ah = int(L.wh.levels[row, 0]) * h
            z.append(
                _term(ax, L.wx.scale, f.input.frac, f.gate_frac)
                + _term(ah, L.wh.scale, f.state.frac, f.gate_frac)
                + int(L.bias[row])
            )
        i, fg, gg, o = _sig(m, z[0]), _sig(m, z[1]), _tanh(m, z[2]), _sig(m, z[3])
        fs, fc = f.sigmoid_frac, f.cell.frac
        c = round_shift(fg * c, fs) + round_shift(i * gg, fs + f.state.frac - fc)
        c = max(f.cell.min_code, min(f.cell.max_code, c))
        tc = _tanh(
            m, round_shift(c, fc - f.gate_frac) if fc > f.gate_frac else c << (f.gate_frac - fc)
        )
        h = round_shift(o * tc, fs)
        assert g.hidden[0][0, t].tolist() == [h]


def _gap(cell, bits, seed=0):
    cell = CellKind(cell)
    p = random_float_params(cell, 6, 16, 4, seed=seed)
    m = freeze(p, QuantConfig.parse("int8"), Formats.standard(bits, lstm=cell is CellKind.LSTM))
    x = random_inputs(m, batch=32, time=12, seed=seed)
    golden = GoldenModel(m).run(x).logits * 2.0**-m.formats.output_frac
    ref = float_forward(m, x * m.formats.input.lsb)
    return float(np.mean(np.abs(golden - ref)))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gap_to_float_shrinks_as_fraction_bits_grow(cell):
    gaps = [_gap(cell, b) for b in (4, 6, 8, 10, 12)]
    # measured (docs/numerics.md): about 4x smaller per 2 more bits
    assert all(a > 2 * b for a, b in zip(gaps, gaps[1:], strict=False)), gaps


def test_bad_inputs_are_refused():
    m = make_model("gru", "ternary", tokens=5)
    with pytest.raises(HwgenError, match=r"token ids must lie in \[0, 4\]; found 0..5"):
        check_inputs(m, np.array([[0, 5]]))
    v = make_model("gru", "ternary")
    with pytest.raises(HwgenError, match=r"shape \(batch, time, 5\)"):
        check_inputs(v, np.zeros((2, 3, 4), np.int64))
    with pytest.raises(HwgenError, match=r"input codes must lie in \[-128, 127\]"):
        check_inputs(v, np.full((1, 1, 5), 200))
