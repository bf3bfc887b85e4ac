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
                while True:
                    ready = ctx.get(enc.i_stream.ready)
                    await ctx.tick()
                    cycle += 1
                    if ready:
                        break
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
        ctx.set(unit.clear, 1)
        await ctx.tick()
        ctx.set(unit.clear, 0)
        await ctx.tick().until(~unit.busy)
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
        ctx.set(unit.clear, 1)
        await ctx.tick()
        ctx.set(unit.clear, 0)
        await ctx.tick().until(~unit.busy)
        cycle = start = 0
        for j in list(range(n)) + [None]:
            ctx.set(unit.i_stream.valid, 1)
            ctx.set(unit.i_stream.p, {"column": j or 0, "delta": 1, "end": j is None})
            while True:
                ready = ctx.get(unit.i_stream.ready)
                await ctx.tick()
                cycle += 1
                if ready:
                    break
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
