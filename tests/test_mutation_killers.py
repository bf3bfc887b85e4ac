# amaranth: UnusedElaboratable=no
"""Tests from the mutation campaign (benchmarks/mutation.py, docs/verification.md), and the
vacuity check of the random models the covering simulation tests draw.

Each ``test_kills_*`` test kills a gateware mutant that survived the campaign's killer set: it
fails on that mutant (checked by applying it, `benchmarks/mutation.py --only KEY`) and passes on
the real code.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.golden import GoldenModel
from hwgen.spec import EncodingKind, Model

# -- vacuity -------------------------------------------------------------------------------------


def code_space(enc) -> set[int]:
    """Every legal code of ``enc``."""
    codes = np.arange(1 << enc.bits)
    return {int(c) for c in codes[enc.valid_codes(codes)]}


def vacuity_problems(model: Model, sequences) -> list[str]:
    """What makes a test on ``model`` with input ``sequences`` (a list of (T, I) or (T,) arrays)
    compare little: an all-zero matrix (binary has no zero code: it cannot be all zero), or a
    golden output that is the same at every timestep of every sequence. Empty when neither."""
    out = []
    for name, qm in model.matrices():
        if not np.any(qm.encoding.decode(qm.codes) != 0):
            out.append(f"{name} ({qm.encoding.describe()}) is all zeros")
    golden = GoldenModel(model)
    logits = np.concatenate([golden.run(np.asarray(s)[None]).logits[0] for s in sequences])
    if len(logits) > 1 and np.all(logits == logits[0]):
        out.append(f"the golden logits are constant over {len(logits)} timesteps")
    return out


def _covering_models():
    """(test id, model, input sequences) of the covering simulation tests: the models and
    inputs they draw, built by the tests' own parameter tables and helpers."""
    import test_load as ld
    import test_sparse_core as sp

    import tests.test_gateware as g
    from conftest import make_model
    from hwgen.freeze import freeze, random_float_params
    from hwgen.spec import CellKind, Formats, Sparsity

    for c, q, n, p, t, _ in g.CONFIGS:
        m = g.build(c, q, layers=n, tokens=t, seed=p)
        yield f"gateware[{c}-{q}-L{n}-P{p}]", m, g.sequences(m, (4, 3), n + p)
    for c, q, i, h, n, p, t, _, hq in g.PAIRED:
        kind = CellKind(c)
        m = freeze(random_float_params(kind, i, h, g.OUTPUTS, layers=n,
                                       tokens=g.VOCAB if t else None, seed=h),
                   g._quant(q), Formats.standard(8, lstm=kind is CellKind.LSTM),
                   head_quant=None if hq is None else g._quant(hq), argmax=True)
        yield f"paired[{c}-{q}-I{i}-H{h}]", m, g.sequences(m, (3, 2), p)
    for c, q, i, h, n, p, t, _, hq, sh in sp.SPARSE:
        if hq is None:
            m = make_model(c, q, inputs=i, hidden=h, outputs=3, layers=n, tokens=7 if t else None,
                           argmax=True, sparsity="2:4", sparse_head=sh, seed=h)
        else:
            kind = CellKind(c)
            m = freeze(random_float_params(kind, i, h, 3, layers=n, tokens=7 if t else None,
                                           seed=h),
                       g._quant(q), Formats.standard(8, lstm=kind is CellKind.LSTM),
                       head_quant=g._quant(hq), argmax=True, sparsity=Sparsity(2, 4))
        yield f"sparse[{c}-{q}-I{i}-H{h}]", m, g.sequences(m, (3, 2), p)
    for c, q, i, h, n, _p, t, _ in sp.SPARSE_PAIRED:
        m = make_model(c, q, inputs=i, hidden=h, outputs=3, layers=n, tokens=5 if t else None,
                       argmax=True, sparsity="2:4", seed=h)
        yield f"sparse_paired[{c}-{q}-I{i}-H{h}]", m, g.sequences(m, (3, 2), 3)
    for c, q, i, h, n, t in [("gru", "ternary", 4, 6, 1, None), ("lstm", "exp", 3, 5, 2, 7),
                             ("rnn", "ternary", 2, 9, 1, None), ("gru", "int8", 3, 4, 1, None)]:
        for seed in (1, 2):
            m = make_model(c, q, inputs=i, hidden=h, outputs=3, layers=n, tokens=t, argmax=True,
                           seed=seed)
            yield f"load[{c}-{q}-seed{seed}]", m, ld._inputs(m, (3, 2), 0)


COVERING = list(_covering_models())


@pytest.mark.parametrize("name,model,seqs", COVERING, ids=[c[0] for c in COVERING])
def test_covering_models_are_not_vacuous(name, model, seqs):
    assert vacuity_problems(model, seqs) == []


def test_covering_models_reach_every_code_of_their_encodings():
    """Over the covering tests' models, every legal code of every encoding of up to 4 bits they
    use appears in some matrix (a zero-skipping or sign path no weight takes is a path no test
    checks); of a wider one (int8: 250 of its 255 codes), zero, +-1, +-the largest level and
    at least 90% of its codes."""
    seen: dict[str, set[int]] = {}
    spaces, encodings = {}, {}
    for _, model, _ in COVERING:
        for _, qm in model.matrices():
            key = qm.encoding.describe()
            spaces[key] = code_space(qm.encoding)
            encodings[key] = qm.encoding
            seen.setdefault(key, set()).update(int(c) for c in np.unique(qm.codes))
    kinds = {k.kind for _, m, _ in COVERING for _, k in
             [(n, q.encoding) for n, q in m.matrices()]}
    assert {EncodingKind.BINARY, EncodingKind.TERNARY, EncodingKind.POW2, EncodingKind.EXP,
            EncodingKind.INT} <= kinds
    missing = {}
    for k, space in spaces.items():
        enc = encodings[k]
        if enc.bits > 4:
            lv = enc.decode(np.array(sorted(seen[k])))
            top = enc.max_level
            assert {0, 1, -1, top, -top} <= set(lv.tolist()), k
            assert len(seen[k]) >= 0.9 * len(space), (k, len(seen[k]), len(space))
        elif space - seen[k]:
            missing[k] = sorted(space - seen[k])
    assert missing == {}


def test_vacuity_check_flags_an_empty_model():
    """The check itself can fail: a model with a zeroed matrix, and one with constant output."""
    import dataclasses

    import tests.test_gateware as g

    m = g.build("gru", "ternary")
    wh = m.layers[0].wh
    zero = dataclasses.replace(wh, codes=np.zeros_like(np.asarray(wh.codes)))
    empty = dataclasses.replace(m, layers=(dataclasses.replace(m.layers[0], wh=zero),))
    seqs = g.sequences(m, (4,), 0)
    assert vacuity_problems(m, seqs) == []
    assert vacuity_problems(empty, seqs) == ["layer0.wh (ternary) is all zeros"]
    assert any("constant" in p for p in vacuity_problems(m, [np.repeat(seqs[0][:1], 1, 0),
                                                              np.repeat(seqs[0][:1], 1, 0)]))


def test_soak_models_are_not_vacuous():
    """benchmarks/soak.py's configurations, each with the model of its seed and its first
    chunk's sequences (cut to 48 timesteps): no all-zero matrix, no constant output."""
    from tests.test_fastsim import _soak

    soak = _soak()
    problems = {}
    for ci, cfg in enumerate(soak.configurations()):
        model = cfg.model(seed=ci)
        plan = soak.chunk_plan(cfg, model, seed=1000 * ci, timesteps=48)
        if p := vacuity_problems(model, plan.sequences):
            problems[cfg.name] = p
    assert problems == {}


# -- killers of the campaign's survivors ---------------------------------------------------------


def test_auto_state_storage_follows_the_bit_and_word_limits():
    """``state="auto"`` keeps a state store in registers iff it has at most
    REGISTER_STATE_MAX_BITS bits (words x values x value bits) and REGISTER_STATE_MAX_WORDS
    words, else in RAM. Kills plan.py:615 (the bits as words x values + value bits)."""
    from conftest import make_model
    from hwgen.gateware.plan import REGISTER_STATE_MAX_BITS, REGISTER_STATE_MAX_WORDS, make_plan

    def layout(hidden, lanes):
        s = make_plan(make_model("rnn", inputs=4, hidden=hidden, outputs=3), lanes).state
        return s.words, s.words * s.values * s.value_bits, s.mode

    assert (REGISTER_STATE_MAX_BITS, REGISTER_STATE_MAX_WORDS) == (256, 8)
    assert layout(8, 8) == (4, 256, "registers")  # at the bit limit
    assert layout(16, 16) == (4, 512, "ram")  # over it, few words
    assert layout(8, 1) == (16, 128, "ram")  # few bits, over the word limit


def test_signed_words_refuses_values_beyond_the_width():
    """`plan.signed_words` packs two's-complement fields and refuses a value outside the signed
    range at both ends. Kills plan.py:143 (the upper bound doubled)."""
    from hwgen.gateware.plan import signed_words
    from hwgen.spec import HwgenError

    assert signed_words([-8, 7, -1, 0], 4) == [8, 7, 15, 0]
    for bad in ([8], [-9]):
        with pytest.raises(HwgenError, match="do not fit 4 signed bits"):
            signed_words(bad, 4)


def test_sparse_schedule_refuses_odd_lanes():
    """The sparse schedule itself refuses an odd lane count (callers check before it, so only a
    direct call reaches this guard). Kills schedule.py:276 (``lanes % 1``)."""
    from conftest import make_model
    from hwgen.gateware.schedule import schedule
    from hwgen.spec import HwgenError

    model = make_model("gru", inputs=8, hidden=8, sparsity="2:4")
    assert schedule(model, 4, sparse=True).sparse
    with pytest.raises(HwgenError, match="zero skipping needs an even lane count, not 3"):
        schedule(model, 3, sparse=True)


def test_paired_rnn_with_an_even_row_count():
    """Paired input segments on an RNN of 8 rows (every pair full, the last pair's second row
    the layer's last): exact and on time. The suite's paired RNNs have odd row counts. Kills
    sequencer.py:316 (the one-gate cell's "next row is the last" flag)."""
    import tests.test_gateware as g

    g.test_paired_input_segments_exact("rnn", "ternary", 2, 8, 1, 4, False, False, None, "ram")


def test_sparse_words_refuse_odd_lanes():
    """`packing.sparse_words` refuses an odd lane count itself (lanes pair up over a group).
    Kills packing.py:125 (``lanes % 1``)."""
    from conftest import make_model
    from hwgen.gateware.packing import sparse_words
    from hwgen.spec import HwgenError

    wh = make_model("gru", inputs=8, hidden=8, sparsity="2:4").layers[0].wh
    rows = range(wh.shape[0])
    assert len(sparse_words(wh, 4, rows, 1)) == wh.shape[0]
    with pytest.raises(HwgenError, match="a sparse core needs an even lane count, not 3"):
        sparse_words(wh, 3, rows, 1)


def test_loadable_memories_ask_for_block_ram_except_spram():
    """In the Verilog of a GRU core, a loadable memory asks for block RAM (``ram_style =
    "block"``) like the ROMs do, except the single-port weight memory meant for iCE40 SPRAM.
    Kills core.py:164 (``block=im.single_port``), which simulation cannot see."""
    import re

    from amaranth.back import verilog

    from conftest import make_model
    from hwgen.gateware.core import Accelerator

    m = make_model("gru", inputs=4, hidden=6, outputs=3)

    def blocks(weights):
        return len(re.findall(r'ram_style = "block"', verilog.convert(Accelerator(m, 3,
                                                                                 weights=weights))))

    assert blocks("rom") == blocks("ram") == 2
    assert blocks("spram") == 1


# -- the cycle bound of gateware.simulate (a hang fails instead of running forever) -------------
def test_a_core_that_never_delivers_fails_within_the_cycle_bound():
    """A core whose output stream never becomes valid (the output loader removed): `simulate`
    raises `SimulationHang` after `cycle_bound` cycles, naming the outputs it got, instead of
    waiting forever (two campaign mutants used to hang the killer set until its timeout)."""
    import time

    from amaranth.hdl import C

    from conftest import make_model
    from hwgen.gateware.core import Accelerator
    from hwgen.gateware.simulate import SimulationHang, cycle_bound, simulate

    class Silent(Accelerator):
        def _output(self, m, iss, logits, best):
            return C(0, 1)

    model = make_model("rnn", inputs=3, hidden=4, outputs=2)
    core = Silent(model, 2)
    x = np.zeros((3, 3), np.int64)
    bound = cycle_bound(core, 3)
    start = time.perf_counter()
    with pytest.raises(SimulationHang, match=rf"the simulation did not finish: 0 of 3 outputs "
                       rf"after {bound + 1} cycles \(3 inputs accepted; bound {bound} from "
                       rf"latency_cycles {core.schedule.latency} per timestep"):
        simulate(core, x, [True, False, False])
    assert time.perf_counter() - start < 60
    with pytest.raises(SimulationHang, match="after 11 cycles"):
        simulate(core, x, [True, False, False], max_cycles=10)


@pytest.mark.parametrize("cell,lanes,stall", [("gru", 2, 0.0), ("lstm", 3, 0.7),
                                              ("rnn", 1, 0.9)])
def test_the_cycle_bound_holds_every_real_run(cell, lanes, stall):
    """The bound is a real worst case: runs with no stalls and with long random stalls on both
    streams finish (exact) well inside it; without stalls the last output comes within the
    serial bound (T + 1) x latency_cycles that `cycle_bound` doubles."""
    from conftest import make_model, random_inputs
    from hwgen.gateware.core import Accelerator
    from hwgen.gateware.simulate import simulate

    model = make_model(cell, inputs=3, hidden=5, outputs=2, seed=7)
    core = Accelerator(model, lanes)
    x = random_inputs(model, batch=1, time=6, seed=7)[0]
    sos = np.arange(6) == 0
    got = simulate(core, x, sos, in_stall=stall, out_stall=stall, seed=3)
    np.testing.assert_array_equal(got.logits, GoldenModel(model).run(x[None]).logits[0])
    if not stall:
        assert got.delivered[-1] <= 7 * core.schedule.latency


@pytest.mark.parametrize("state", ["ram", "registers"])
def test_the_state_address_top_bit_selects_the_zero_region(monkeypatch, state):
    """docs/manifest.md: a state store's address has ``addr_bits`` bits (the manifest's
    ``memory.state.stores``) and its top bit selects the zero region, read after a start of
    sequence. Sampled on the store's read port in amaranth.sim: the top bit is set in some
    cycles (old-state reads of a new sequence) and clear in others. Kills plan.py:214
    (``addr_bits`` one more: the same core, but its top bit never used)."""
    from amaranth.sim import Simulator

    import hwgen.gateware.core as core_mod
    from conftest import make_model

    made = []

    class Recorded(core_mod.StateStore):
        def __init__(self, layout):
            super().__init__(layout)
            made.append((layout, self))

    monkeypatch.setattr(core_mod, "StateStore", Recorded)
    model = make_model("gru", inputs=3, hidden=4, outputs=2)
    accel = core_mod.Accelerator(model, 2, state=state)
    sim = Simulator(accel)
    sim.add_clock(1e-8)
    stores = {lay.name: (lay, st) for lay, st in made}
    lay, store = stores["state"]
    assert len(store.raddr) == lay.addr_bits == accel.plan.to_json()["stores"][0]["addr_bits"]
    tops = set()

    async def bench(ctx):
        s = accel.i_stream
        ctx.set(accel.o_stream.ready, 1)
        for t in range(3):
            ctx.set(s.payload, {"sos": int(t != 1), "x": [1, -2, 3]})
            ctx.set(s.valid, 1)
            await ctx.tick().until(s.ready)
            ctx.set(s.valid, 0)
        for _ in range(2 * accel.schedule.latency):
            _, _, addr = await ctx.tick().sample(store.raddr)
            tops.add(addr >> (lay.addr_bits - 1))

    sim.add_testbench(bench)
    sim.run()
    assert tops == {0, 1}


# -- coverage holes (benchmarks/coverage.py, docs/verification.md) -------------------------------
def test_lstm_cell_state_saturates_high_and_low_exactly():
    """The LSTM cell state's saturation (no random model of the covering tests reaches it):
    input and forget gates held at 1 and the candidate at +1 / -1 by large biases, so c grows by
    about one a step until it saturates at the cell format's ends (13 bits, 7 fraction bits:
    +-32) in unit 0 (high) and unit 1 (low); 40 timesteps exact in amaranth.sim."""
    from conftest import make_model, random_inputs
    from hwgen.gateware.core import Accelerator
    from hwgen.gateware.simulate import simulate

    model = make_model("lstm", "ternary", inputs=2, hidden=2, outputs=2, seed=4)
    H, big = 2, 1000  # gate_frac 6: 15.6, both tables saturated
    bias = model.layers[0].bias
    bias[0:H] = big  # input gate
    bias[H:2 * H] = big  # forget gate
    bias[2 * H:3 * H] = [big, -big]  # candidate +1 / -1
    x = random_inputs(model, batch=1, time=40, seed=2)[0]
    golden = GoldenModel(model).run(x[None])
    c = golden.state[0][1][0]
    fmt = model.formats.cell
    assert c.tolist() == [fmt.max_code, fmt.min_code]  # saturated at both ends
    got = simulate(Accelerator(model, 2), x, np.arange(40) == 0)
    np.testing.assert_array_equal(got.logits, golden.logits[0])


@pytest.mark.parametrize("cell,quant,size,lanes", [("gru", "pow2x3", 6, 3), ("rnn", "int8", 16, 4),
                                                   ("lstm", "exp", 6, 2)])
def test_every_legal_code_in_every_matrix_runs_exactly(cell, quant, size, lanes):
    """Every legal code of the encoding in every matrix of a simulated core (random models hold
    only 7 of the 15 codes of 4-bit pow2 and 246 of 255 of int8: benchmarks/coverage.py): each
    matrix's codes replaced by a shuffled cycle through the whole code space, then stalls on
    both streams, exact against the golden model and not vacuous."""
    import tests.test_gateware as g
    from hwgen.freeze import freeze, random_float_params
    from hwgen.gateware.core import Accelerator
    from hwgen.gateware.simulate import simulate
    from hwgen.spec import CellKind, Formats

    kind = CellKind(cell)
    params = random_float_params(kind, 4 if size < 16 else size, size, 3 if size < 16 else size,
                                 seed=5)
    model = freeze(params, g._quant(quant), Formats.standard(8, lstm=kind is CellKind.LSTM),
                   argmax=True)
    rng = np.random.default_rng(5)
    for name, qm in model.matrices():
        legal = np.array(sorted(code_space(qm.encoding)))
        qm.codes[...] = rng.permutation(np.resize(legal, qm.codes.size)).reshape(qm.codes.shape)
        assert set(np.unique(qm.codes).tolist()) == set(legal.tolist()), name
    seqs = g.sequences(model, (5, 4), 5)
    assert vacuity_problems(model, seqs) == []
    x = np.concatenate(seqs)
    sos = np.concatenate([np.arange(len(s)) == 0 for s in seqs])
    got = simulate(Accelerator(model, lanes), x, sos, in_stall=0.3, out_stall=0.3, seed=5)
    want = np.concatenate([GoldenModel(model).run(s[None]).logits[0] for s in seqs])
    np.testing.assert_array_equal(got.logits, want)


def test_long_output_stalls_hold_the_core_in_every_phase():
    """Consumer stalls longer than a timestep (benchmarks/coverage.py found none in the
    covering tests' upper-layer and head phases: their bursts last a few cycles): a two-layer GRU
    whose consumer withholds ready about 200 cycles at a time, so outputs wait in the register
    while the next timesteps run and the sequencer holds for it; exact, and the outputs come
    further apart than a timestep."""
    from conftest import make_model, random_inputs
    from hwgen.gateware.core import Accelerator
    from hwgen.gateware.simulate import simulate

    model = make_model("gru", inputs=3, hidden=4, outputs=2, layers=2, seed=11)
    core = Accelerator(model, 2)
    x = random_inputs(model, batch=1, time=12, seed=11)[0]
    got = simulate(core, x, np.arange(12) == 0, out_stall=0.995, seed=11)
    np.testing.assert_array_equal(got.logits, GoldenModel(model).run(x[None]).logits[0])
    assert np.diff(got.delivered).max() > 1.5 * core.schedule.cycles_per_timestep
