"""``hwgen sim --fast`` on a delta core (issue 23): the compiled harness reads the core's debug
counters at every output transfer, as the cocotb bench does, so the fast path checks each
timestep's processed columns against the golden model and its cycles against the manifest's
bound, and reports the same measured cycles as the cocotb bench on the same plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_model
from hwgen.cosim import SimPlan, cosim
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.export import generate
from hwgen.fastsim import fastsim

pytestmark = pytest.mark.sim


def _drift(model, count, seed):
    """Slowly drifting inputs: some columns change by less than the threshold, some by more."""
    rng = np.random.default_rng(seed)
    fmt = model.formats.input
    return [np.clip(np.cumsum(rng.integers(-9, 10, (int(T), model.input.features)), axis=0),
                    fmt.min_code, fmt.max_code) for T in rng.integers(2, 12, count)]


def test_fast_delta_core_counts_columns_and_cycles_like_cocotb(tmp_path):
    base = make_model("lstm", "ternary", inputs=5, hidden=6, outputs=3, seed=4)
    model = with_thresholds(base, DeltaThresholds.uniform(6, 4, 1))
    rtl = tmp_path / "rtl"
    generate(model, rtl, lanes=2)
    seqs = _drift(model, 6, seed=3)

    def plan():
        return SimPlan(list(seqs), abort={1: 2}, reset_before={3, 4}, in_stall=0.3,
                       out_stall=0.4, seed=5)

    slow = cosim(rtl, plan(), simulator="icarus")
    fast = fastsim(rtl, plan())
    assert slow.ok and fast.ok, (slow.summary(), fast.summary())
    assert fast.delta is not None and fast.delta == slow.delta
    assert 0.0 < fast.delta.columns_fraction < 1.0  # the thresholds skip some columns
    assert "delta core:" in fast.summary() and "of columns processed" in fast.summary()
    # the fast path checks the bound: a manifest that promises 3 cycles fewer fails on a cycle
    path = rtl / "manifest.json"
    m = json.loads(path.read_text())
    m["timing"]["delta"]["fixed_cycles"] -= 3
    path.write_text(json.dumps(m))
    bad = fastsim(rtl, plan())
    assert not bad.ok and bad.mismatch.output == "cycles", bad.summary()
    assert "above the manifest's bound" in bad.summary()
