# amaranth: UnusedElaboratable=no
"""The sequencer alone (`hwgen.gateware.sequencer.Sequencer`): its signature, the order of the
words it issues against the plan (every row of every layer, then the head), the cycles of a
timestep and of each gap against the schedule, and a reset in the middle of a timestep."""

from __future__ import annotations

import pytest
from amaranth.hdl import Elaboratable, Module, ResetInserter, Signal
from amaranth.sim import Simulator

from conftest import make_model
from hwgen.gateware.plan import make_plan
from hwgen.gateware.schedule import ISSUE_DELAY
from hwgen.gateware.sequencer import Sequencer, issue_shapes
from hwgen.spec import HwgenError, TokenInput

# (cell, quant, inputs, hidden, layers, lanes, tokens, sparse): plain, two layers, one lane,
# paired input segments, a sparse core with an unpacked (halved) matrix, tokens.
CONFIGS = [
    ("rnn", "ternary", 4, 6, 1, 3, None, "off"),
    ("gru", "ternary", 5, 4, 2, 2, None, "off"),
    ("lstm", "int8", 3, 3, 1, 1, None, "off"),
    ("gru", "ternary", 4, 12, 1, 8, None, "off"),  # paired
    ("lstm", "ternary", 4, 10, 2, 8, 5, "off"),  # paired, tokens
    ("gru", "int4", 6, 11, 1, 2, None, "on"),  # sparse, int4 unpacked: halve
]
IDS = [f"{c}-L{n}-P{p}{'-tok' if t else ''}-sparse_{s}" for c, _, _, _, n, p, t, s in CONFIGS]


def _plan(cell, quant, inputs, hidden, layers, lanes, tokens, sparse):
    model = make_model(cell, quant, inputs=inputs, hidden=hidden, outputs=3, layers=layers,
                       tokens=tokens, argmax=True, sparsity="2:4" if sparse == "on" else None,
                       seed=hidden)
    return make_plan(model, lanes, sparse=sparse)


def expected_words(plan, fresh: bool) -> list[tuple]:
    """Every word of one timestep, in order, as (mid, unit, gate, chunk, src_x, op_layer,
    op_bank, op_zero, defer), written from the architecture's description. ``op_bank``: 1 for
    the new bank (``parity``), 0 for the old one; operand fields of input-buffer words: None."""
    m = plan.model
    G, H, L = m.cell.num_gates, m.hidden, m.num_layers
    words = []

    def segment(mid, row, layer, *, defer=False):
        rec = mid % 2 == 1 and mid != plan.head_id
        op_layer = layer if rec else (L - 1 if mid == plan.head_id else max(layer - 1, 0))
        for c in range(plan.chunks(mid) if not (plan.paired and mid == 0) else 1):
            words.append((mid, row // G if mid != plan.head_id else row,
                          row % G if mid != plan.head_id else 0, c, mid == 0,
                          None if mid == 0 else op_layer, None if mid == 0 else int(not rec),
                          rec and fresh, defer))

    for layer in range(L):
        rows = range(G * H)
        if layer == 0 and plan.paired:
            for r in rows[::2]:
                segment(0, r, 0)
                segment(1, r, 0)
                if r + 1 < G * H:
                    segment(1, r + 1, 0, defer=True)
            continue
        for r in rows:
            segment(2 * layer, r, layer)
            segment(2 * layer + 1, r, layer)
    for o in range(m.outputs):
        segment(plan.head_id, o, L)
    return words


class _Bench(Elaboratable):
    def __init__(self, seq):
        self.seq, self.rst = seq, Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.seq = ResetInserter(self.rst)(self.seq)
        return m


def run(plan, cycles, reset_at=()):
    """Drive ``Sequencer(plan)`` with an always-valid input (sos on the first only), a free output
    loader for ``cycles`` cycles, resetting it for one cycle at each cycle in ``reset_at``.
    Returns per cycle: (transfer, issue fields or None, output_start, fresh, reset)."""
    seq = Sequencer(plan)
    top = _Bench(seq)
    token = isinstance(plan.model.input, TokenInput)
    names = ("layer", "unit", "gate", "chunk", "src_x", "op_layer", "op_bank", "op_zero")
    log = []

    async def bench(ctx):
        s = seq.i_stream
        if token:
            ctx.set(s.payload, {"sos": 1, "token": 1})
        else:
            ctx.set(s.payload, {"sos": 1, "x": [1] * plan.model.input.width})
        ctx.set(s.valid, 1)
        for c in range(cycles):
            ctx.set(top.rst, c in reset_at)
            if c and log[-1][0]:  # the first transfer took sos = 1
                ctx.set(s.payload.sos, 0)
            word = None
            if ctx.get(seq.issue):
                f = {k: ctx.get(getattr(seq, k)) for k in names}
                mid = 2 * f.pop("layer") + ctx.get(seq.part)
                defer = bool(ctx.get(seq.defer)) if plan.paired else False
                x = bool(f["src_x"])
                word = (mid, f["unit"], f["gate"], f["chunk"], x,
                        None if x else f["op_layer"],
                        None if x else f["op_bank"] ^ ctx.get(seq.parity) ^ 1,
                        bool(f["op_zero"]), defer)
            log.append((bool(ctx.get(s.ready)), word, bool(ctx.get(seq.output_start)),
                        bool(ctx.get(seq.fresh)), c in reset_at))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log


def test_signature_follows_the_plan():
    plain = _plan(*CONFIGS[0])
    members = Sequencer(plain).signature.members
    assert "defer" not in members and "halve" not in members and "emb_addr" not in members
    assert set(issue_shapes(plain)) <= set(members)
    paired_tokens = Sequencer(_plan(*CONFIGS[4])).signature.members
    assert {"defer", "emb_addr", "emb_data"} <= set(paired_tokens)
    assert "halve" in Sequencer(_plan(*CONFIGS[5])).signature.members
    with pytest.raises(HwgenError, match=r"^Plan must be a hwgen Plan, not None$"):
        Sequencer(None)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_issue_order_and_cycles_match_the_schedule(config):
    plan = _plan(*config)
    sched = plan.timing
    cpt = sched.cycles_per_timestep
    log = run(plan, 3 * cpt + 20)
    accepted = [c for c, (ready, *_) in enumerate(log) if ready]
    assert accepted[:3] == [accepted[0] + k * cpt for k in range(3)]
    for k in range(2):  # the first timestep is fresh (sos), the second is not
        t0, t1 = accepted[k], accepted[k + 1]
        # the words decided in [t0, t1), seen ISSUE_DELAY later
        d = ISSUE_DELAY
        issued = [(c, w) for c, (_, w, *_) in enumerate(log[t0 + d : t1 + d], t0 + d) if w]
        assert [w for _, w in issued] == expected_words(plan, fresh=k == 0)
        # the first word is decided accept_cycles after the transfer and issued ISSUE_DELAY later
        assert issued[0][0] - t0 == sched.accept_cycles + ISSUE_DELAY
        # each layer's words back to back, then the gap; the head's words back to back
        cycles = [c for c, _ in issued]
        runs, start = [], 0
        for i in range(1, len(cycles) + 1):
            if i == len(cycles) or cycles[i] != cycles[i - 1] + 1:
                runs.append((cycles[start], i - start))
                start = i
        assert [n for _, n in runs] == [*sched.layer_issue, sched.head_issue]
        gaps = [b - (a + n) for (a, n), (b, _) in zip(runs, runs[1:], strict=False)]
        assert gaps == [sched.layer_gap] * len(sched.layer_issue)
        starts = [c for c in range(t0 + d, t1 + d) if log[c][2]]
        assert starts == [cycles[-1]]  # output_start with the head's last word


@pytest.mark.parametrize("config", [CONFIGS[1], CONFIGS[3]], ids=[IDS[1], IDS[3]])
@pytest.mark.parametrize("where", [0.3, 0.97])  # inside layer 0's words; in the head or a gap
def test_reset_in_a_middle_state(config, where):
    plan = _plan(*config)
    cpt = plan.timing.cycles_per_timestep
    log = run(plan, 3 * cpt + 40)
    t0 = next(c for c, (ready, *_) in enumerate(log) if ready)
    at = t0 + 1 + int(where * (cpt - 2))
    assert not log[at][0]  # busy there
    log = run(plan, at + 2 * cpt + 40, reset_at=(at,))
    t1 = at + 1
    assert log[t1][0] and log[t1][1] is None  # idle (ready), nothing issued, after the reset
    # a whole timestep from layer 0, from zero state (sos was 0: the reset makes it fresh)
    d = ISSUE_DELAY
    issued = [w for _, w, *_ in log[t1 + d : t1 + cpt + d] if w]
    assert issued == expected_words(plan, fresh=True)
    assert log[t1 + d + plan.timing.accept_cycles][3]
    assert log[t1 + cpt][0]  # the next input a whole timestep later
