"""``hwgen explore --delta`` judges a delta core at its expected cycles (issue 23): the mean of
the delta core's cycle bound at the valid split's measured fraction of columns processed, not the
worst case (every column processed), which stays beside it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_model
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.delta.estimate import delta_estimate
from hwgen.delta.schedule import delta_schedule
from hwgen.design import resolve
from hwgen.explore.designs import design_rows, make_platform


def _delta(th=(6, 4)):
    base = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, seed=2)
    return with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], 1))


def test_expected_cycles_are_the_mean_of_the_bound():
    """`DeltaSchedule.expected` from (fraction of columns, fraction of sequence starts) equals
    the bound averaged timestep by timestep over real golden runs (`delta_estimate`)."""
    model = _delta()
    rng = np.random.default_rng(0)
    fmt = model.formats.input
    # slowly drifting inputs, so some columns are skipped and some processed
    seqs = [np.clip(np.cumsum(rng.integers(-9, 10, (T, 5)), axis=0), fmt.min_code, fmt.max_code)
            for T in (3, 11, 7, 20)]
    for lanes in (1, 2, 4):
        e = delta_estimate(model, lanes, seqs, "drift")
        assert 0.0 < e.columns_fraction < 1.0
        sched = delta_schedule(model, resolve(model, lanes).plan)
        got = sched.expected(e.columns_fraction, len(seqs) / e.timesteps)
        assert got == pytest.approx(e.expected, rel=1e-12)
        assert sched.fixed < got < sched.cycles_per_timestep
        assert sched.expected(1.0, 1.0) == sched.cycles_per_timestep  # every column, a start


def _record(**extra):
    return {"hash": "k", "config": {"cell": "gru", "quant": "ternary", "hidden": 8,
                                    "budget": 2, "delta": "6,4"},
            "label": "gru h8 ternary delta 6,4", "status": "ok", "metric": "accuracy",
            "valid": 0.5, "test": 0.5, "test_float": 0.5, "train_seconds": 1.0,
            "weight_bits": 100, "zero_fraction": 0.3, **extra}


def test_design_rows_use_the_valid_splits_columns():
    model = _delta()
    plat = make_platform(target="ice40-up5k", clock_mhz=24)
    old = design_rows(_record(), model, plat, [2])[0]  # a record from before: the worst case
    worst = delta_schedule(model, resolve(model, 2).plan)
    assert old["cycles"] == old["cycles_worst"] == worst.cycles_per_timestep
    row = design_rows(_record(delta_valid={"columns": 0.25, "sos_fraction": 0.05}), model,
                      plat, [2])[0]
    assert row["cycles"] == round(worst.expected(0.25, 0.05), 1) < row["cycles_worst"]
    assert row["cycles_worst"] == worst.cycles_per_timestep
    assert row["us_per_timestep"] == round(row["cycles"] / 24, 4)
    dense = design_rows(_record(delta_valid={"columns": 0.25, "sos_fraction": 0.05}),
                        with_thresholds(model, None), plat, [2])[0]
    assert dense["cycles"] == dense["cycles_worst"]  # a dense model: its exact schedule


@pytest.mark.train
def test_a_delta_trial_records_its_valid_columns():
    pytest.importorskip("torch")
    from hwgen.explore.space import TrialConfig, dataset_ref, trial_hash
    from hwgen.explore.trial import run_trial, trial_spec
    from hwgen.train.datasets import load_dataset

    ref = dataset_ref("digits")
    cfg = TrialConfig("gru", "ternary", 8, budget=1, batch=32, delta="24,12")
    rec, _ = run_trial(trial_spec(ref, cfg, trial_hash(ref, cfg), None))
    assert rec["status"] == "ok", rec.get("error")
    v = rec["delta_valid"]
    valid = load_dataset("digits").valid
    assert v["sos_fraction"] == len(valid.y) / int(valid.lengths.sum())
    assert 0.0 < v["columns"] < 1.0
    dense = TrialConfig("gru", "ternary", 8, budget=1, batch=32)
    rec, _ = run_trial(trial_spec(ref, dense, trial_hash(ref, dense), None))
    assert "delta_valid" not in rec
