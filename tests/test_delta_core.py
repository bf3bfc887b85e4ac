# amaranth: UnusedElaboratable=no
"""The first units of the delta core (docs/delta.md) against the golden delta model, with random
input gaps and output stalls: the encoder (hwgen.gateware.delta_encoder) and the column update
(hwgen.gateware.delta_update)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from conftest import make_model
from hwgen.delta.golden import DeltaGolden
from hwgen.gateware.delta_encoder import DeltaEncoder
from hwgen.gateware.delta_update import DeltaColumnUpdate
from hwgen.numerics import derive_widths
from hwgen.spec import HwgenError


async def offer(ctx, port) -> int:
    """Keep the offered transfer on ``port`` (valid set by the caller) until it is taken;
    returns the cycles it took."""
    n = 0
    while True:
        ready = ctx.get(port.ready)
        await ctx.tick()
        n += 1
        if ready:
            return n


def expected(vectors, regions, lanes):
    """(column, delta) lists per vector, from `DeltaGolden._encode`: region r holds
    regions[r] = (first chunk, chunks, theta) and vectors[t][r] its values."""
    hats = {r: np.zeros(n * lanes, np.int64) for r, (_, n, _) in enumerate(regions)}
    out = []
    for vec in vectors:
        cols = []
        for r, (first, _, theta) in enumerate(regions):
            v = np.asarray(vec[r], np.int64)[None]
            d = DeltaGolden._encode(v, hats[r][None], theta)[0]  # updates hats[r] in place
            cols += [(first * lanes + j, int(d[j])) for j in np.flatnonzero(d)]
        out.append(cols)
    return out


@pytest.mark.parametrize("lanes,seed", [(1, 0), (3, 1), (4, 2), (8, 3)])
def test_encoder_matches_the_golden_encoder(lanes, seed):
    rng = np.random.default_rng(seed)
    width = 8
    # two regions (an input and a state) of 2 and 3 chunks, their own thresholds
    regions = [(0, 2, int(rng.integers(0, 12))), (2, 3, int(rng.integers(0, 12)))]
    T = 7
    vectors = []
    walk = [rng.integers(-100, 100, n * lanes) for _, n, _ in regions]
    for _ in range(T):
        walk = [np.clip(x + rng.integers(-15, 16, x.shape) * (rng.random(x.shape) < 0.6),
                        -128, 127) for x in walk]
        vectors.append([x.copy() for x in walk])
    want = expected(vectors, regions, lanes)
    enc = DeltaEncoder(lanes=lanes, value_width=width, chunks=5)
    got: list[list] = [[]]

    async def feed(ctx):
        for t, vec in enumerate(vectors):
            for r, (first, n, theta) in enumerate(regions):
                for c in range(n):
                    while rng.random() < 0.3:  # input gaps
                        ctx.set(enc.i_stream.valid, 0)
                        await ctx.tick()
                    ctx.set(enc.i_stream.valid, 1)
                    ctx.set(enc.i_stream.p, {
                        "values": [int(v) for v in vec[r][c * lanes:(c + 1) * lanes]],
                        "chunk": first + c, "theta": theta, "fresh": t == 0,
                        "last": r == len(regions) - 1 and c == n - 1})
                    await ctx.tick().until(enc.i_stream.ready)
        ctx.set(enc.i_stream.valid, 0)

    async def drain(ctx):
        while len(got) <= T:
            ctx.set(enc.o_stream.ready, int(rng.random() < 0.7))  # output stalls
            _, _, valid, ready, p = await ctx.tick().sample(
                enc.o_stream.valid, enc.o_stream.ready, enc.o_stream.p)
            if valid and ready:
                if p.end:
                    got.append([])
                else:
                    got[-1].append((int(p.column), int(p.delta)))

    sim = Simulator(enc)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(drain, background=True)
    sim.run_until(1e-8 * 4000)
    assert got[:T] == want and got[T] == []


def test_encoder_rates():
    """Chunks that keep no lane are accepted one per cycle; kept lanes leave one per cycle."""
    P, chunks = 4, 4
    enc = DeltaEncoder(lanes=P, value_width=8, chunks=chunks)
    spans = []

    async def bench(ctx):
        ctx.set(enc.o_stream.ready, 1)
        cycle = 0
        for t in range(3):  # t = 0: every lane new; t = 1: nothing changes; t = 2: all change
            first = None
            for c in range(chunks):
                ctx.set(enc.i_stream.valid, 1)
                vals = [10 * c + k + (5 if t == 2 else 0) for k in range(P)]
                ctx.set(enc.i_stream.p, {"values": vals, "chunk": c, "theta": 1,
                                         "fresh": t == 0, "last": c == chunks - 1})
                cycle += await offer(ctx, enc.i_stream)
                first = cycle if first is None else first
            ctx.set(enc.i_stream.valid, 0)
            while True:
                done = ctx.get(enc.o_stream.valid) and ctx.get(enc.o_stream.p.end)
                await ctx.tick()
                cycle += 1
                if done:
                    break
            spans.append(cycle - first + 1)

    sim = Simulator(enc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # nothing changed: 4 chunks in 4 cycles, the marker 2 cycles behind the last one
    assert spans[1] == chunks + 2
    # all 16 lanes changed (at t = 0 column 0 holds 0: 15 new columns): one delta per cycle,
    # the encoder stalling while the emit register is busy, then the marker: 2 cycles of latency
    assert spans[2] == P * chunks + 1 + 2 and spans[0] == P * chunks - 1 + 1 + 2


def test_encoder_arguments():
    with pytest.raises(HwgenError, match="Encoder lanes must be a positive integer"):
        DeltaEncoder(lanes=0, value_width=8, chunks=2)
    with pytest.raises(HwgenError, match="Value width must be a positive integer"):
        DeltaEncoder(lanes=2, value_width="8", chunks=2)


# -- the column update ---------------------------------------------------------------------------
async def clear(ctx, unit):
    """A clear pass of a `DeltaColumnUpdate` (a start of sequence), to its end."""
    ctx.set(unit.clear, 1)
    await ctx.tick()
    ctx.set(unit.clear, 0)
    await ctx.tick().until(~unit.busy)


@pytest.mark.parametrize("quant,hidden,lanes", [("ternary", 6, 4), ("binary", 4, 3),
                                                ("exp", 5, 4), ("int8", 4, 2), ("pow2", 2, 8),
                                                ("ternary", 3, 16)])
def test_column_update_is_levels_times_held_values(quant, hidden, lanes):
    """After every timestep's columns, M = levels(W) x_hat exactly (R = 1 exercises the
    forwarding of a word written in its read cycle)."""
    m = make_model("gru", quant, inputs=5, hidden=hidden, seed=4)
    W = m.layers[0].wh  # (3H, H): a recurrent matrix, state-format columns
    rows, cols = W.shape
    rng = np.random.default_rng(hidden)
    order = rng.permutation(rows)
    acc_w = derive_widths(m).layers[0].acc_h_width
    unit = DeltaColumnUpdate(matrix=W, lanes=lanes, delta_width=9, acc_width=acc_w,
                             row_order=order)
    R = unit.words_per_column
    T, theta = 6, 3
    hat = np.zeros((1, cols), np.int64)
    steps, want = [], []
    x = rng.integers(-127, 128, cols)
    for _ in range(T):
        x = np.clip(x + rng.integers(-20, 21, cols) * (rng.random(cols) < 0.5), -127, 127)
        d = DeltaGolden._encode(x[None], hat, theta)[0]
        steps.append([(int(j), int(d[j])) for j in np.flatnonzero(d)])
        want.append((W.levels @ hat[0])[order])
    got = []

    async def bench(ctx):
        await clear(ctx, unit)
        for cols_t in steps:
            for j, dj in cols_t + [(0, None)]:
                while rng.random() < 0.25:
                    ctx.set(unit.i_stream.valid, 0)
                    await ctx.tick()
                ctx.set(unit.i_stream.valid, 1)
                ctx.set(unit.i_stream.p, {"column": j, "delta": dj or 0, "end": dj is None})
                await ctx.tick().until(unit.i_stream.ready)
            ctx.set(unit.i_stream.valid, 0)
            await ctx.tick().until(unit.done)
            words = []
            for k in range(R):
                ctx.set(unit.raddr, k)
                await ctx.tick()
                words += [int(v) for v in ctx.get(unit.rdata)]
            got.append(np.array(words[:rows]))

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for t in range(T):
        np.testing.assert_array_equal(got[t], want[t], err_msg=f"timestep {t}")


def test_column_update_rate():
    """Columns back to back: R cycles each, ``done`` 2 cycles after the last issue."""
    W = make_model("gru", "ternary", inputs=5, hidden=8).layers[0].wh  # 24 rows
    unit = DeltaColumnUpdate(matrix=W, lanes=4, delta_width=9, acc_width=12)
    R, n = unit.words_per_column, 5
    span = []

    async def bench(ctx):
        await clear(ctx, unit)
        cycle = start = 0
        for j in list(range(n)) + [None]:
            ctx.set(unit.i_stream.valid, 1)
            ctx.set(unit.i_stream.p, {"column": j or 0, "delta": 1, "end": j is None})
            cycle += await offer(ctx, unit.i_stream)
            start = start or cycle
        ctx.set(unit.i_stream.valid, 0)
        while not ctx.get(unit.done):
            await ctx.tick()
            cycle += 1
        span.append(cycle - start + 1)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert R == 6 and span == [n * R + 2]


# -- the cell pass: delta memories -> the dense cell unit -> h, against the golden model ----------
@pytest.mark.parametrize("cell,quant,lanes", [("gru", "ternary", 4), ("lstm", "int8", 3),
                                              ("rnn", "exp", 6), ("gru", "pow2", 1)])
def test_cell_pass_and_cell_unit_give_the_golden_state(cell, quant, lanes):
    """The delta golden model's memories at timestep t, read by the cell pass into the dense
    core's (unchanged) cell unit with the golden h(t-1) / c(t-1), give the golden h(t), c(t)."""
    from hwgen.delta import DeltaThresholds
    from hwgen.gateware.core import _CELLS
    from hwgen.gateware.delta_cell import DeltaCellPass
    from hwgen.gateware.plan import make_plan

    model = make_model(cell, quant, inputs=5, hidden=6, seed=9)
    H, G = model.hidden, model.cell.num_gates
    rng = np.random.default_rng(lanes)
    fmt = model.formats.input
    x = np.clip(np.cumsum(rng.integers(-20, 21, (1, 5, 5)), axis=1), fmt.min_code, fmt.max_code)
    th = DeltaThresholds((6,), (4,))
    t = 4
    before = DeltaGolden(model, th).run(x[:, :t], return_hidden=True)
    after = DeltaGolden(model, th).run(x[:, : t + 1], return_hidden=True)
    _, _, mx, mh = after.memories[0]
    h_old = before.hidden[0][0, -1]
    c_old = before.state[0][1][0] if cell == "lstm" else None
    want_h = after.hidden[0][0, -1]
    plan = make_plan(model, lanes)
    w = derive_widths(model).layers[0]
    cp = DeltaCellPass(plan, 0, acc_x_width=w.acc_x_width, acc_h_width=w.acc_h_width)
    unit = _CELLS[model.cell](model, term_width=plan.term_width, bias_width=plan.bias_width)
    order = plan.matrices[0].row_order
    R = -(-G * H // lanes)

    def words(mem):
        v = np.zeros(R * lanes, np.int64)
        v[: G * H] = mem[0][list(order)]
        return v.reshape(R, lanes)

    wx, wh = words(mx), words(mh)
    got_h, got_c = {}, {}

    from amaranth.hdl import Module

    top = Module()
    top.submodules.cp, top.submodules.unit = cp, unit
    for name in ("valid", "part", "gate", "unit", "layer", "term", "bias"):
        top.d.comb += getattr(unit, name).eq(getattr(cp, name))

    async def memories(ctx):  # M_x / M_h read ports (one cycle), the old h / c (two cycles)
        pend = [0, 0]
        async for _, _, ax, ah, ru in ctx.tick().sample(cp.mx_addr, cp.mh_addr, unit.rd_unit):
            ax, ah = min(ax, R - 1), min(ah, R - 1)  # past the last row: a don't-care read
            for k in range(lanes):
                ctx.set(cp.mx_data[k], int(wx[ax, k]))
                ctx.set(cp.mh_data[k], int(wh[ah, k]))
            pend.append(ru)
            u = pend.pop(0)
            ctx.set(unit.rd_h, int(h_old[u]))
            if c_old is not None:
                ctx.set(unit.rd_c, int(c_old[u]))

    async def bench(ctx):
        ctx.set(cp.start, 1)
        await ctx.tick()
        ctx.set(cp.start, 0)
        for _ in range(2 * G * H + 80):
            if ctx.get(unit.h_we):
                got_h[len(got_h)] = ctx.get(unit.h_data)
            if c_old is not None and ctx.get(unit.c_we):
                got_c[len(got_c)] = ctx.get(unit.c_data)
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_process(memories)
    sim.add_testbench(bench)
    sim.run()
    assert [got_h[j] for j in range(H)] == want_h.tolist()
    if c_old is not None:
        assert [got_c[j] for j in range(H)] == after.state[0][1][0].tolist()


# -- one whole delta layer, timestep after timestep -----------------------------------------------
@pytest.mark.parametrize("cell,quant,lanes,th", [("gru", "ternary", 4, (6, 4)),
                                                 ("lstm", "int8", 3, (3, 9)),
                                                 ("rnn", "exp", 2, (0, 0)),
                                                 ("gru", "binary", 8, (10, 2))])
def test_delta_layer_is_the_golden_delta_network(cell, quant, lanes, th):
    """Encoder -> column updates -> cell pass -> the dense cell unit, with a bench playing the
    sequencer and the state store, with random input gaps: every h (and c) of every timestep
    equals the golden delta network's, and so does the count of processed columns."""
    from hwgen.delta import DeltaThresholds
    from hwgen.gateware.delta_layer import DeltaLayer
    from hwgen.gateware.plan import make_plan

    model = make_model(cell, quant, inputs=5, hidden=8, seed=11)
    H, T, F = model.hidden, 7, 5
    rng = np.random.default_rng(lanes)
    fmt = model.formats.input
    x = np.clip(np.cumsum(rng.integers(-12, 13, (1, T, F)), axis=1) + 30, fmt.min_code,
                fmt.max_code)
    thr = DeltaThresholds((th[0],), (th[1],))
    gold = DeltaGolden(model, thr).run(x, return_hidden=True)
    dut = DeltaLayer(make_plan(model, lanes), 0)
    cx, ch = dut.chunks
    lstm = cell == "lstm"
    state = {"h": np.zeros(H, np.int64), "c": np.zeros(H, np.int64)}
    got_h, got_c, cols, now = [], [], [0] * T, [0]

    def padded(v, chunks):
        out = np.zeros(chunks * lanes, np.int64)
        out[: len(v)] = v
        return out.reshape(chunks, lanes)

    async def store(ctx):  # the old bank: rd_unit -> rd_h / rd_c two cycles later
        pend = [0, 0]
        async for _, _, ru in ctx.tick().sample(dut.rd_unit):
            pend.append(ru)
            u = pend.pop(0)
            ctx.set(dut.rd_h, int(state["h"][u]))
            if lstm:
                ctx.set(dut.rd_c, int(state["c"][u]))

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await ctx.tick().repeat(4)
        for t in range(T):
            now[0] = t
            chunks = [(c, v, th[0]) for c, v in enumerate(padded(x[0, t], cx))]
            chunks += [(cx + c, v, th[1]) for c, v in enumerate(padded(state["h"], ch))]
            for n, (c, v, theta) in enumerate(chunks):
                while rng.random() < 0.3:
                    ctx.set(dut.i_stream.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.p, {"values": [int(a) for a in v], "chunk": c,
                                         "theta": theta, "fresh": t == 0,
                                         "last": n == len(chunks) - 1})
                await ctx.tick().until(dut.i_stream.ready)
            ctx.set(dut.i_stream.valid, 0)
            hs, cs = [], []
            while len(hs) < H or (lstm and len(cs) < H):
                if ctx.get(dut.h_we):
                    hs.append(ctx.get(dut.h_data))
                if lstm and ctx.get(dut.c_we):
                    cs.append(ctx.get(dut.c_data))
                await ctx.tick()
            await ctx.tick().until(~dut.busy)
            got_h.append(hs)
            got_c.append(cs)
            state["h"], state["c"] = np.array(hs), np.array(cs or [0] * H)

    async def count(ctx):  # processed columns, per timestep
        async for _, _, strobe in ctx.tick().sample(dut.column):
            cols[now[0]] += strobe

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(store)
    sim.add_process(count)
    sim.add_testbench(bench)
    sim.run()
    for t in range(T):
        assert got_h[t] == gold.hidden[0][0, t].tolist(), f"timestep {t}"
    assert cols == (gold.columns.x_cols + gold.columns.h_cols)[0, :, 0].tolist()
    if lstm:
        assert got_c[-1] == gold.state[0][1][0].tolist()


# -- the first delta accelerator: streams in, logits out ------------------------------------------
@pytest.mark.parametrize("cell,quant,lanes,layers,th,state,hidden,outputs", [
    ("gru", "ternary", 4, 1, (6, 4), "registers", 6, 3),
    ("lstm", "int8", 3, 2, (3, 5), "registers", 6, 3),
    ("rnn", "exp", 2, 2, (0, 0), "registers", 6, 3),
    ("rnn", "ternary", 6, 1, (1, 1), "registers", 6, 3),  # R = 1: a column update per cycle
    ("lstm", "ternary", 4, 2, (255, 255), "registers", 6, 3),  # no column processed: fixed
    ("rnn", "int8", 1, 1, (2, 3), "registers", 6, 3),  # ceil(O/P) = 3 > 2G: head after the pass
    # the state in block RAM (two values a word, an encoder of 2 lanes): odd H pads a lane
    ("gru", "ternary", 4, 1, (6, 4), "ram", 7, 3),
    ("lstm", "int8", 3, 2, (3, 5), "ram", 6, 3),
    ("rnn", "exp", 2, 2, (0, 0), "ram", 5, 3),
    ("rnn", "ternary", 1, 2, (2, 3), "ram", 2, 3),  # P = 1: a value a word; head after the pass
    ("lstm", "ternary", 4, 2, (255, 255), "ram", 6, 3),  # no column processed: the fixed cycles
    ("gru", "int8", 2, 2, (1, 1), "ram", 2, 3),  # one word of h: GAP1 before the second layer
    ("lstm", "ternary", 2, 2, (255, 255), "ram", 2, 3),  # GAP1 in the fixed cycles, exactly
    ("gru", "int8", 2, 2, (1, 1), "registers", 2, 3),
    # the spoken-digit GRU's shape: 10 outputs, a head of ceil(10 / 4) = 3 lanes (head_lanes)
    ("gru", "ternary", 8, 1, (16, 32), "ram", 16, 10),
])
def test_delta_accelerator_equals_the_golden_model(cell, quant, lanes, layers, th, state,
                                                   hidden, outputs):
    """Sequences through i_stream (sos at each start) with random input gaps and output stalls:
    every logit equals the golden model's for the delta model, the processed columns its count,
    and the working cycles of every timestep are within the manifest's bound
    (`hwgen.delta.schedule`); the state in flip-flops and in block RAM."""
    from hwgen.delta import DeltaThresholds, with_thresholds
    from hwgen.delta.design import delta_plan, state_in_ram
    from hwgen.gateware.delta_core import DeltaAccelerator
    from hwgen.golden import GoldenModel

    base = make_model(cell, quant, inputs=5, hidden=hidden, outputs=outputs, layers=layers,
                      seed=5)
    model = with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))
    rng = np.random.default_rng(lanes)
    fmt = model.formats.input
    seqs = [np.clip(np.cumsum(rng.integers(-15, 16, (n, 5)), axis=0) + 20, fmt.min_code,
                    fmt.max_code) for n in (5, 3, 4)]
    want = [GoldenModel(model).run(s[None]) for s in seqs]
    plan = delta_plan(model, lanes, state)
    assert state_in_ram(plan) == (state == "ram")
    dut = DeltaAccelerator(model, lanes, plan)
    got, cols, cycles = [], [], []

    async def feed(ctx):
        for s in seqs:
            for t, v in enumerate(s):
                while rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.p, {"sos": t == 0, "x": [int(a) for a in v]})
                await ctx.tick().until(dut.i_stream.ready)
                ctx.set(dut.i_stream.valid, 0)

    async def drain(ctx):
        async for _, _, valid, ready, p, col, cyc in ctx.tick().sample(
                dut.o_stream.valid, dut.o_stream.ready, dut.o_stream.p, dut.columns, dut.cycles):
            if valid and ready:  # the counters, read per output (cycles lacks this one)
                got.append([int(v) for v in p.logits])
                cols.append(int(col))
                cycles.append(int(cyc) + 1)
            ctx.set(dut.o_stream.ready, int(rng.random() < 0.7))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_process(drain)
    sim.run_until(1e-8 * 20000)
    expect = [row.tolist() for r in want for row in r.logits[0]]
    assert got == expect
    per_step = [int((r.columns.x_cols + r.columns.h_cols)[0, t].sum()) for r in want
                for t in range(r.logits.shape[1])]
    assert np.diff([0] + cols).tolist()[: len(per_step)] == per_step
    sos = [t == 0 for r in want for t in range(r.logits.shape[1])]
    bound = dut.schedule.bound(per_step, sos)
    measured = np.diff([0] + cycles)[: len(per_step)]
    assert (measured <= bound).all()
    idle = np.asarray(per_step) == 0  # exact when no column is processed
    assert (measured[idle] == bound[idle]).all()
    assert idle.all() or th != (255, 255)
