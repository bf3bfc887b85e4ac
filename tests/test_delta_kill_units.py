# amaranth: UnusedElaboratable=no
"""Checks the delta killer set lacked (issue 27's mutation campaign over hwgen/gateware/delta_*.py,
docs/verification.md): the memory attribute the block-RAM mapping relies on, and the exact cycles
of a timestep that processes no column when the head runs after the cell pass."""

from __future__ import annotations

import re

import pytest
from amaranth.back import rtlil

from conftest import make_model
from hwgen.gateware.delta_encoder import DeltaEncoder
from hwgen.gateware.delta_update import DeltaColumnUpdate


def _memory_attributes(text: str) -> dict[str, dict[str, str]]:
    """RTLIL memories -> their attributes (the ``attribute`` lines just above each one)."""
    out, pending = {}, {}
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"attribute \\(\S+) (.*)", line)
        if m:
            pending[m.group(1)] = m.group(2)
            continue
        m = re.match(r"memory .*\\(\S+)$", line)
        if m:
            out[m.group(1)] = pending
        pending = {}
    return out


@pytest.mark.parametrize("unit", ["encoder", "update"])
def test_the_hat_store_and_delta_memory_waive_read_write_checks(unit):
    """Both memories are read through a port whose same-cycle write the unit forwards itself;
    ``no_rw_check`` tells Yosys so, which keeps it from wrapping the block RAM in collision
    logic. Yosys reads the attribute as a boolean: it must be non-zero."""
    if unit == "encoder":
        top, name = DeltaEncoder(lanes=2, value_width=4, chunks=3), "hats"
    else:
        W = make_model("gru", "ternary", inputs=3, hidden=2).layers[0].wh
        top, name = DeltaColumnUpdate(matrix=W, lanes=2, delta_width=9, acc_width=12), "mem"
    attrs = _memory_attributes(rtlil.convert(top))
    assert name in attrs, sorted(attrs)
    assert int(attrs[name].get("no_rw_check", "0")) != 0


def test_a_timestep_without_columns_takes_the_fixed_cycles_with_the_head_after_the_pass():
    """ceil(O / P) = 3 > 2G: the head applies the H columns after the cell pass (its clear
    waited for); thresholds no change reaches, so every timestep processes no column and its
    cycles must equal the manifest's fixed cycles exactly (a core one cycle faster fails)."""
    import test_delta_core as dc

    for state in ("registers", "ram"):
        dc.test_delta_accelerator_equals_the_golden_model("rnn", "int8", 1, 1, (255, 255),
                                                          state, 6, 3)


def test_a_multi_bit_pow2_column_update(monkeypatch):
    """The killer set's pow2 update used the 2-bit code (levels 0, +-1: the ternary path); a
    pow2 matrix with 1 integer and 2 fraction bits (test_gateware's ``pow2x3``: codes read as
    two's complement) takes the multiplier path: M = levels(W) x_hat exactly after every
    timestep (test_delta_core's check on that matrix)."""
    import test_delta_core as dc
    from test_gateware import build

    model = build("gru", "pow2x3", seed=4)
    codes = set(model.layers[0].wh.codes.ravel().tolist())
    assert codes - {0, 1, (1 << model.layers[0].wh.encoding.bits) - 1}, codes  # not ternary
    monkeypatch.setattr(dc, "make_model", lambda *a, **kw: model)
    dc.test_column_update_is_levels_times_held_values("pow2x3", 6, 3)


def test_the_cell_pass_refuses_a_layer_past_the_last():
    """A clear error, not an IndexError from the plan's matrices during elaboration."""
    from hwgen.gateware.delta_cell import DeltaCellPass
    from hwgen.gateware.plan import make_plan
    from hwgen.spec import HwgenError

    plan = make_plan(make_model("gru", "ternary", inputs=3, hidden=2, layers=2), 2)
    DeltaCellPass(plan, 1, acc_x_width=12, acc_h_width=12)
    with pytest.raises(HwgenError, match="Layer"):
        DeltaCellPass(plan, 2, acc_x_width=12, acc_h_width=12)


def test_the_cell_pass_latency_is_its_read_to_event_delay():
    """``DeltaCellPass.latency``: a row's input-part event leaves that many cycles after its
    read (the first read is in the first busy cycle), measured in amaranth.sim."""
    from amaranth.sim import Simulator

    from hwgen.gateware.delta_cell import DeltaCellPass
    from hwgen.gateware.plan import make_plan

    plan = make_plan(make_model("gru", "ternary", inputs=3, hidden=2), 2)
    cp = DeltaCellPass(plan, 0, acc_x_width=12, acc_h_width=12)
    seen = {}

    async def bench(ctx):
        ctx.set(cp.start, 1)
        for cycle in range(40):
            if ctx.get(cp.busy):
                seen.setdefault("read", cycle)
            if ctx.get(cp.valid):
                seen.setdefault("event", cycle)
            await ctx.tick()
            ctx.set(cp.start, 0)

    sim = Simulator(cp)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert cp.latency >= 1 and seen["event"] - seen["read"] == cp.latency, (seen, cp.latency)
