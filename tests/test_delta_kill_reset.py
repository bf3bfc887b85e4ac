# amaranth: UnusedElaboratable=no
"""Resets of the delta core (`hwgen.gateware.delta_core.DeltaAccelerator`) at any point of its
timesteps (issue 27: the delta gateware's killer set has stalls *and* resets; the other delta
tests never reset). One simulation per configuration runs episodes: a sequence (sos at its start)
cut by a one-cycle reset after a random number of cycles (before its first input, inside a
clear, a feed, a cell pass, the head, with an output stalled in the register), and a last
episode run to its end. What must hold: every output of an episode is the golden model's for
that sequence, in order (a prefix of them for a cut episode: nothing from before a reset leaks
out after it), and the last episode gives all of them."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from conftest import make_model
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.delta.design import delta_plan
from hwgen.gateware.delta_core import DeltaAccelerator
from hwgen.golden import GoldenModel


def _episodes(model, rng, n, cpt):
    """``n`` (sequence, cut) pairs: cut = cycles before the reset (None: run to the end)."""
    fmt = model.formats.input
    out = []
    for e in range(n):
        T = int(rng.integers(2, 5))
        seq = np.clip(np.cumsum(rng.integers(-15, 16, (T, model.input.features)), axis=0) + 10,
                      fmt.min_code, fmt.max_code)
        out.append((seq, None if e == n - 1 else int(rng.integers(1, 2 * cpt))))
    return out


def run_with_resets(cell, quant, lanes, layers, th, n=10, seed=0, state="auto"):
    """Simulate the episodes; returns (got, want) per episode (lists of logit lists).
    ``state``: the delta core's state storage (``registers``, ``ram``, ``auto``)."""
    base = make_model(cell, quant, inputs=4, hidden=5, outputs=3, layers=layers, seed=seed + 7)
    model = with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))
    dut = DeltaAccelerator(model, lanes, delta_plan(model, lanes, state))
    rng = np.random.default_rng(seed)
    episodes = _episodes(model, rng, n, dut.schedule.cycles_per_timestep)
    want = [[row.tolist() for row in GoldenModel(model).run(s[None]).logits[0]]
            for s, _ in episodes]
    got: list[list] = [[] for _ in episodes]
    rst = Signal()
    i, o = dut.i_stream, dut.o_stream

    async def bench(ctx):
        for e, (seq, cut) in enumerate(episodes):
            t = cycles = 0
            while (len(got[e]) < len(seq)) if cut is None else cycles < cut:
                offer = t < len(seq) and rng.random() >= 0.2
                ctx.set(i.valid, int(offer))
                if offer:
                    ctx.set(i.p, {"sos": t == 0, "x": [int(v) for v in seq[t]]})
                ctx.set(o.ready, int(rng.random() < 0.7))
                took = ctx.get(i.valid) and ctx.get(i.ready)
                gave = ctx.get(o.valid) and ctx.get(o.ready)
                logits = [int(v) for v in ctx.get(o.p.logits)]
                await ctx.tick()
                t += bool(took)
                if gave:
                    got[e].append(logits)
                cycles += 1
                assert cycles < 40 * dut.schedule.cycles_per_timestep, "the core hangs"
            ctx.set(i.valid, 0)
            ctx.set(rst, 1)
            await ctx.tick()
            ctx.set(rst, 0)

    sim = Simulator(ResetInserter(rst)(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, want


@pytest.mark.parametrize("cell,quant,lanes,layers,th,state", [
    ("gru", "ternary", 3, 1, (5, 3), "registers"),
    ("lstm", "int8", 2, 2, (0, 0), "registers"),
    ("gru", "ternary", 3, 1, (5, 3), "ram"),  # the zero flag: a reset clears the old bank
    ("lstm", "int8", 2, 2, (0, 0), "ram"),
])
def test_a_reset_anywhere_restarts_the_delta_core_exactly(cell, quant, lanes, layers, th,
                                                          state):
    got, want = run_with_resets(cell, quant, lanes, layers, th, seed=lanes, state=state)
    for e, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w[:len(g)], f"episode {e}: outputs differ from the golden model's"
    assert got[-1] == want[-1]
    assert sum(len(g) for g in got[:-1]) > 0  # some cut episode gave outputs before its reset
