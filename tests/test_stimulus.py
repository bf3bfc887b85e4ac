"""The one preparation step and the one stimulus of both simulators (hwgen.stimulus); no
simulator runs here (tests/test_fastsim.py checks that both see every transfer on the same
edge)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.export import generate
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError
from hwgen.stimulus import MAX_STALL, SimPlan, draw, prepare


@pytest.fixture
def rtl(tmp_path):
    model = make_model("gru", inputs=3, hidden=4, outputs=3, seed=2)
    generate(model, tmp_path / "rtl", lanes=2)
    return model, tmp_path / "rtl"


def test_prepare_checks_the_model_file_and_copies_the_plan(rtl, tmp_path):
    model, folder = rtl
    seqs = list(random_inputs(model, batch=3, time=4))
    plan = SimPlan(seqs)
    run = prepare(folder, plan)
    assert run.plan is not plan and plan.sequences is seqs  # the caller's plan is unchanged
    assert len(run.plan.sequences) == 3 and run.model.outputs == 3
    other = make_model("gru", inputs=3, hidden=4, outputs=3, seed=9)
    save_model(other, folder / "model.hwgm")  # not the model the RTL was generated from
    with pytest.raises(HwgenError, match="is not the model this RTL was generated from"):
        prepare(folder, plan)
    assert prepare(folder, plan, other).model is other  # an explicit reference: no hash check


def test_prepare_refuses_bad_sequences(rtl):
    model, folder = rtl
    with pytest.raises(HwgenError, match="^every sequence needs at least one timestep$"):
        prepare(folder, SimPlan([np.zeros((0, 3), np.int64)]))
    with pytest.raises(HwgenError, match="outputs; the RTL has 3"):
        prepare(folder, SimPlan([np.zeros((1, 3), np.int64)]),
                make_model("gru", inputs=3, hidden=4, outputs=2))


def test_draw_once_for_both_simulators(rtl):
    model, folder = rtl
    seqs = [np.asarray(s) for s in random_inputs(model, batch=5, time=3)]
    plan = SimPlan(seqs, abort={1: 2}, reset_before={3}, in_stall=0.3, out_stall=0.4, seed=5)
    run = prepare(folder, plan)
    stim = draw(run.manifest, run.model, run.plan)
    kinds = [op[0] for op in stim.ops]
    assert kinds.count("x") == stim.timesteps == 5 * 3 + 2
    assert kinds.count("reset") == 1 and kinds.count("abort") == 1
    # epoch 0: sequence 0, 2 steps of sequence 1, the abort; 1: sequences 1, 2; 2: 3, 4
    assert stim.aborted == {0} and len(stim.epochs) == 3
    assert [e for _, _, e in stim.inputs()] == [0] * 5 + [1] * 6 + [2] * 6
    assert all(0 <= op[2] < MAX_STALL for op in stim.ops if op[0] == "x")
    assert any(op[2] for op in stim.ops if op[0] == "x")
    # the output stalls: the draws the cocotb bench made itself before (random.Random(seed))
    rng = random.Random(5)
    want = [rng.randint(1, MAX_STALL) if rng.random() < 0.4 else 0
            for _ in range(stim.timesteps + 1)]
    assert list(stim.out_stalls) == want and any(want)
    again = draw(run.manifest, run.model, run.plan)
    assert again == stim  # a pure function of the plan
    calm = draw(run.manifest, run.model, SimPlan(run.plan.sequences))
    assert not any(calm.out_stalls) and not any(op[2] for op in calm.ops)
