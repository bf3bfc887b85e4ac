"""The accelerator in amaranth.sim, exact against the golden model (np.testing.assert_array_equal).

A covering list of configurations (every cell type, every encoding, lane counts 1 / a divisor /
a non-divisor / all, one and two layers, vector and token inputs, random stalls on both streams),
each run as two sequences with a start-of-sequence restart between them. Runs without stalls
also check that inputs are accepted exactly `schedule.cycles_per_timestep` cycles apart.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.freeze import freeze, random_float_params
from hwgen.gateware.core import Accelerator
from hwgen.gateware.schedule import cycles_per_timestep, schedule
from hwgen.gateware.simulate import simulate
from hwgen.golden import GoldenModel
from hwgen.quant import QuantConfig
from hwgen.spec import CellKind, EncodingKind, Formats

INPUTS, HIDDEN, OUTPUTS, VOCAB = 4, 6, 3, 7


def _quant(name: str) -> QuantConfig:
    if name == "pow2x3":  # 1 integer + 2 fraction bits: a real multiplier
        return QuantConfig(EncodingKind.POW2, int_bits=1, frac_bits=2)
    return QuantConfig.parse(name)


def build(cell, quant, *, layers=1, tokens=False, argmax=True, head=None, seed=0, bits=8):
    cell = CellKind(cell)
    params = random_float_params(
        cell, INPUTS, HIDDEN, OUTPUTS, layers=layers, tokens=VOCAB if tokens else None, seed=seed
    )
    return freeze(
        params,
        _quant(quant),
        Formats.standard(bits, lstm=cell is CellKind.LSTM),
        head_quant=None if head is None else _quant(head),
        argmax=argmax,
    )


def sequences(model, lengths, seed):
    rng = np.random.default_rng(seed)
    out = []
    for t in lengths:
        if model.embedding is not None:
            out.append(rng.integers(0, model.input.vocab, (t,)))
        else:
            fmt = model.formats.input
            out.append(rng.integers(fmt.min_code, fmt.max_code + 1, (t, model.input.features)))
    return out


def check_against_golden(model, lanes, *, seed=0, in_stall=0.0, out_stall=0.0, lengths=(4, 3),
                         state="auto", weights="rom", load=None):
    seqs = sequences(model, lengths, seed)
    golden = GoldenModel(model)
    want = [golden.run(s[None]) for s in seqs]
    x = np.concatenate(seqs)
    sos = np.concatenate([np.arange(len(s)) == 0 for s in seqs])
    accel = Accelerator(model, lanes, state=state, weights=weights)
    got = simulate(accel, x, sos, seed=seed, in_stall=in_stall, out_stall=out_stall, load=load)
    want_logits = np.concatenate([w.logits[0] for w in want])
    for t in range(len(x)):
        np.testing.assert_array_equal(
            got.logits[t], want_logits[t], err_msg=f"timestep {t}: logits differ"
        )
    if model.head.argmax:
        np.testing.assert_array_equal(got.classes, np.concatenate([w.classes[0] for w in want]))
    else:
        assert got.classes is None
    return accel, got


# (cell, quant, layers, lanes, tokens, stalls); lanes: 1, divisor of 6, non-divisor, all (6).
CONFIGS = [
    ("rnn", "ternary", 1, 1, False, False),
    ("rnn", "binary", 2, 6, False, True),
    ("rnn", "exp", 1, 4, True, False),
    ("rnn", "int8", 1, 3, False, False),
    ("rnn", "pow2", 2, 5, True, True),
    ("gru", "ternary", 2, 3, False, False),
    ("gru", "ternary", 1, 6, True, True),
    ("gru", "binary", 1, 1, True, False),
    ("gru", "pow2", 1, 6, False, False),
    ("gru", "exp", 2, 5, False, True),
    ("gru", "int8", 1, 2, True, False),
    ("lstm", "ternary", 1, 4, False, True),
    ("lstm", "ternary", 2, 6, False, False),
    ("lstm", "binary", 2, 2, False, False),
    ("lstm", "pow2", 1, 1, True, False),
    ("lstm", "exp", 1, 6, False, True),
    ("lstm", "int8", 2, 5, True, False),
]


@pytest.mark.parametrize(
    "cell,quant,layers,lanes,tokens,stalls",
    CONFIGS,
    ids=[
        f"{c}-{q}-L{n}-P{p}-{'tok' if t else 'vec'}{'-stall' if s else ''}"
        for c, q, n, p, t, s in CONFIGS
    ],
)
@pytest.mark.parametrize("state", ["ram", "registers"])
def test_exact_against_golden(cell, quant, layers, lanes, tokens, stalls, state):
    model = build(cell, quant, layers=layers, tokens=tokens, seed=lanes)
    stall = dict(in_stall=0.4, out_stall=0.6) if stalls else {}
    _, got = check_against_golden(model, lanes, seed=layers + lanes, state=state, **stall)
    if not stalls:
        gaps = np.diff(got.accepted)
        assert np.all(gaps == cycles_per_timestep(model, lanes)), gaps


# Paired input segments (layer 0's input fits the MAC tree's right half and ceil(H/P) >= 2: one
# word carries the input parts of two rows): every cell, an odd row count (the last row alone),
# two layers (layer 0 paired, layer 1 not), tokens, stalls, a lane count that is not a power of
# two (split at 16 of 24), a head of another encoding (two MAC units).
# (cell, quant, inputs, hidden, layers, lanes, tokens, stalls, head)
PAIRED = [
    ("rnn", "ternary", 2, 9, 1, 4, False, True, None),  # 9 rows: the last one unpaired
    ("rnn", "binary", 2, 7, 2, 6, True, False, None),  # binary pads with -1: its half is cut
    ("gru", "ternary", 4, 12, 1, 8, False, False, None),
    ("gru", "exp", 4, 11, 2, 8, True, True, None),  # 33 rows
    ("gru", "ternary", 8, 30, 1, 24, False, False, "int8"),
    ("lstm", "ternary", 4, 10, 2, 8, False, True, None),
    ("lstm", "int8", 2, 5, 1, 4, False, False, None),
]


@pytest.mark.parametrize(
    "cell,quant,inputs,hidden,layers,lanes,tokens,stalls,head",
    PAIRED,
    ids=[f"{c}-{q}-I{i}-H{h}-L{n}-P{p}{'-tok' if t else ''}{'-stall' if s else ''}"
         for c, q, i, h, n, p, t, s, _ in PAIRED],
)
@pytest.mark.parametrize("state", ["ram", "registers"])
def test_paired_input_segments_exact(cell, quant, inputs, hidden, layers, lanes, tokens, stalls,
                                     head, state):
    kind = CellKind(cell)
    params = random_float_params(kind, inputs, hidden, OUTPUTS, layers=layers,
                                 tokens=VOCAB if tokens else None, seed=hidden)
    model = freeze(params, _quant(quant), Formats.standard(8, lstm=kind is CellKind.LSTM),
                   head_quant=None if head is None else _quant(head), argmax=True)
    sched = schedule(model, lanes)
    assert sched.paired
    rows = kind.num_gates * hidden
    nh = -(-hidden // lanes)
    assert sched.layer_issue[0] == rows * nh + -(-rows // 2)
    stall = dict(in_stall=0.4, out_stall=0.6) if stalls else {}
    _, got = check_against_golden(model, lanes, seed=lanes, state=state, lengths=(3, 2), **stall)
    if not stalls:
        assert np.all(np.diff(got.accepted) == sched.cycles_per_timestep)
        assert np.all(got.delivered - got.accepted == sched.latency)


def test_pairing_applies_only_where_it_fits():
    """Paired only when the input fits the tree's right half and a recurrent segment has at least
    two words; GRU 16-64-10 at P = 32 then meets 1.05 x ideal + 16 (it took 634 cycles before)."""
    kind = CellKind.GRU
    model = freeze(random_float_params(kind, 16, 64, 10), QuantConfig.parse("ternary"),
                   Formats.standard(8), argmax=True)
    s32 = schedule(model, 32)
    assert s32.paired and s32.cycles_per_timestep <= 1.05 * s32.ideal_cycles + 16
    assert s32.cycles_per_timestep == 538
    assert not schedule(model, 16).paired  # 16 inputs > 8 lanes of a half
    assert not schedule(model, 64).paired  # one recurrent word per row
    assert not schedule(model, 2).paired  # no tree level below the root


@pytest.mark.parametrize(
    "cell,quant,head,lanes",
    [
        ("gru", "ternary", "int8", 3),  # two MAC units: ternary layers, int8 head
        ("lstm", "exp3", "ternary", 4),  # 3 exponents (2-bit field)
        ("rnn", "pow2x3", "binary", 5),  # multi-bit pow2 (multiplier) with a binary head
    ],
)
def test_mixed_encodings(cell, quant, head, lanes):
    model = build(cell, quant, head=head, layers=2)
    check_against_golden(model, lanes, seed=7)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_no_argmax_and_narrow_formats(cell):
    model = build(cell, "ternary", argmax=False, bits=5, seed=3)
    check_against_golden(model, 2, seed=3)


def test_heavy_backpressure_loses_nothing():
    model = build("gru", "ternary", layers=2)
    check_against_golden(model, 6, seed=11, in_stall=0.8, out_stall=0.9, lengths=(3, 2, 4))


def test_restart_every_step():
    model = build("lstm", "int8", seed=5)
    check_against_golden(model, 3, seed=5, lengths=(1, 1, 2, 1))


@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 5, 6])
def test_cycles_per_timestep_measured(lanes):
    model = build("gru", "ternary", layers=2, tokens=True)
    _, got = check_against_golden(model, lanes, lengths=(3,))
    assert np.all(np.diff(got.accepted) == cycles_per_timestep(model, lanes))
    assert np.all(got.delivered - got.accepted == schedule(model, lanes).latency)


@pytest.mark.parametrize(
    "cell,inputs,hidden,outputs,layers,vocab,lanes",
    [
        ("rnn", 1, 1, 1, 1, None, 1),  # every ROM one word deep
        ("gru", 3, 2, 1, 3, None, 2),  # three layers, one output
        ("lstm", 2, 3, 2, 1, 1, 3),  # a one-token vocabulary
        ("gru", 5, 1, 4, 2, 2, 5),  # lanes above the hidden size (inputs are wider)
        ("lstm", 1, 9, 1, 1, None, 4),
    ],
)
@pytest.mark.parametrize("state", ["ram", "registers"])
def test_edge_sizes(cell, inputs, hidden, outputs, layers, vocab, lanes, state):
    kind = CellKind(cell)
    params = random_float_params(kind, inputs, hidden, outputs, layers=layers, tokens=vocab, seed=3)
    model = freeze(
        params, QuantConfig.parse("ternary"), Formats.standard(8, lstm=kind is CellKind.LSTM),
        argmax=True,
    )
    check_against_golden(model, lanes, seed=3, in_stall=0.3, out_stall=0.3, lengths=(3, 2),
                         state=state)


def test_argmax_ties_go_to_the_lowest_index():
    """Equal logits (head rows and biases made equal): the hardware's argmax is the lowest
    index among the maxima, like the golden model's, for a tie of all and a tie of two."""
    import dataclasses

    base = build("gru", "ternary", seed=2)
    w = np.array(base.head.w.codes)
    bias = np.array(base.head.bias)
    for tie in ((0, 1, 2), (1, 2)):
        codes, b = w.copy(), bias.copy()
        for o in tie:
            codes[o], b[o] = w[tie[0]], bias[tie[0]]
        if tie == (1, 2):  # row 0 loses: no weights, the most negative bias that fits
            codes[0], b[0] = 0, -(1 << 5)
        head = dataclasses.replace(base.head, w=dataclasses.replace(base.head.w, codes=codes),
                                   bias=b)
        model = dataclasses.replace(base, head=head)
        _, got = check_against_golden(model, 3, seed=4)
        assert set(got.classes.tolist()) <= {tie[0], 0}
        assert tie[0] in got.classes.tolist()
