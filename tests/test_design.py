"""The resolver (hwgen.design): a request is planned once and every stage reads that plan."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

import hwgen.api as api
import hwgen.gateware.plan as plan_mod
from conftest import make_model
from hwgen.design import Design, manifest_options, resolve, resolve_board
from hwgen.gateware.plan import make_plan, weight_memory_bits
from hwgen.gateware.schedule import schedule
from hwgen.spec import HwgenError


@pytest.fixture
def plans(monkeypatch):
    """Counts every plan made: ``resolved`` (make_plan: a request resolved) with its arguments,
    and ``built`` (every Plan constructed, `plan_like` included). Replaces make_plan in every
    hwgen module that imported it by name."""
    import hwgen.boardfit
    import hwgen.estimate
    import hwgen.export
    import hwgen.fit
    import hwgen.gateware.core
    import hwgen.report
    import hwgen.shape  # noqa: F401 (every module that may plan, imported before patching)

    calls = SimpleNamespace(resolved=[], built=0)
    original, build = plan_mod.make_plan, plan_mod._build

    def counting(model, lanes, state="auto", weights="rom", sparse="auto"):
        calls.resolved.append((id(model), lanes, state, weights, sparse))
        return original(model, lanes, state, weights, sparse)

    def counting_build(*args):
        calls.built += 1
        return build(*args)

    for name, mod in list(sys.modules.items()):
        if name.startswith("hwgen") and getattr(mod, "make_plan", None) is original:
            monkeypatch.setattr(mod, "make_plan", counting)
    monkeypatch.setattr(plan_mod, "_build", counting_build)
    return calls


SPARSE = dict(cell="gru", inputs=8, hidden=16, outputs=4, sparsity="2:4", seed=3)


@pytest.mark.parametrize("weights", ["rom", "ram", "spram"])
@pytest.mark.parametrize("sparse", ["auto", "on", "off"])
def test_generate_plans_once(tmp_path, plans, weights, sparse):
    m = make_model(**SPARSE)
    api.generate(m, tmp_path / "rtl", 4, weights=weights, sparse=sparse)
    assert len(plans.resolved) == 1
    # a loadable core: its plan and the model's words laid out like it (the load image)
    assert plans.built == (1 if weights == "rom" else 2)


@pytest.mark.parametrize("sparse", ["auto", "on", "off"])
def test_board_estimate_plans_once(plans, sparse):
    m = make_model(**SPARSE)
    fit = api.estimate(m, 4, board="icebreaker", weights="rom", sparse=sparse)
    assert len(plans.resolved) == 1
    assert fit.fit.estimate.zero_skipping == (sparse != "off")


@pytest.mark.parametrize("weights", ["rom", "spram"])
def test_target_estimate_plans_once(plans, weights):
    m = make_model(**SPARSE)
    fit = api.estimate(m, 4, target="ice40-up5k", weights=weights, sparse="auto")
    assert len(plans.resolved) == 1 and fit.estimate.plan.loadable == (weights != "rom")


def _fake_build(monkeypatch):
    import hwgen.board.build as bb

    built = []

    def fake(accel, board, out, **kw):
        accel._MustUse__silence = True  # not elaborated: the tools are not run
        out.mkdir(parents=True, exist_ok=True)
        built.append(accel)
        return SimpleNamespace(to_json=lambda: {}, clock_mhz=12.0, bitstream=None)

    monkeypatch.setattr(bb, "build_board", fake)
    return built


@pytest.mark.parametrize("weights", ["rom", "spram"])
def test_build_resolves_once(tmp_path, monkeypatch, plans, weights):
    built = _fake_build(monkeypatch)
    m = make_model(**SPARSE)
    report = api.build(m, "icebreaker", tmp_path / "b", lanes=4, weights=weights, sparse="auto")
    (accel,) = built
    assert accel.plan.sparse and report.lanes == 4
    # the plan the fit judged is the core, a loadable one too (its shape's core: the capacity
    # model with the shape's patterns), and the link's load images come from it
    assert len(plans.resolved) == 1 and plans.built == 1
    assert accel.plan is report.fit.fit.estimate.plan


def test_build_with_auto_lanes_builds_the_judged_plan(tmp_path, monkeypatch, plans):
    built = _fake_build(monkeypatch)
    m = make_model(**SPARSE)
    report = api.build(m, "icebreaker", tmp_path / "b", weights="rom")
    (accel,) = built
    assert accel.plan.lanes == 16 and accel.plan is report.fit.fit.estimate.plan
    # the fit's search (boardfit.choose_lanes) judges the winner, board_fit takes that verdict;
    # nothing after the fit plans again
    assert plans.resolved.count((id(m), 16, "auto", "rom", "auto")) == 1
    assert len(plans.resolved) == 1


def test_resolve_board_reuses_the_judged_plan():
    m = make_model(**SPARSE)
    d = resolve_board(m, "icebreaker", 4, weights="rom", sparse="on")
    assert isinstance(d, Design) and d.plan is d.fit.fit.estimate.plan and d.shape is None
    assert d.sparse_option == "on" and d.weights == "rom"


def test_resolve_loadable_design():
    m = make_model(**SPARSE)
    d = resolve(m, 4, weights="spram")
    assert d.shape is not None and d.shape["lanes"] == 4 and d.plan.loadable
    assert d.plan.model is not m  # the capacity model of the shape
    assert [im.depth for im in d.load_images()] == [im.depth for im in d.plan.load_images()]
    with pytest.raises(HwgenError, match="no load port"):
        resolve(m, 4).load_images()


def test_resolve_errors():
    m = make_model(**SPARSE)
    with pytest.raises(HwgenError, match="Weight storage must be one of rom, ram, spram, not "
                                         "'flash'"):
        resolve(m, 4, weights="flash")
    with pytest.raises(HwgenError, match="Model must be a hwgen Model, not None"):
        resolve(None, 4)
    with pytest.raises(HwgenError, match="Lane count 99 exceeds"):
        resolve(m, 99, weights="ram")
    from hwgen.gateware.core import Accelerator

    with pytest.raises(HwgenError, match="takes no other options"):
        Accelerator(make_plan(m, 4), 4)


def test_manifest_options_round_trip(tmp_path):
    m = make_model(**SPARSE)
    man = api.generate(m, tmp_path / "rtl", 4, weights="ram", sparse="on", state="registers")
    opts = manifest_options(man)
    assert opts == {"lanes": 4, "state": "registers", "weights": "ram", "sparse": "on"}
    again = resolve(m, opts.pop("lanes"), **opts)
    assert again.plan.load_images() == resolve(m, 4, weights="ram", sparse="on",
                                               state="registers").plan.load_images()


@pytest.mark.parametrize("kw,lanes", [
    (dict(cell="gru", inputs=8, hidden=16, outputs=4, sparsity="2:4", sparse_head=True), 4),
    (dict(cell="lstm", inputs=3, hidden=20, outputs=3, layers=2, sparsity="2:4"), 8),
    (dict(cell="rnn", inputs=5, hidden=12, outputs=2, quant="int4", head_quant="exp"), 3),
    (dict(cell="gru", inputs=4, hidden=40, outputs=2, tokens=6, sparsity="2:4",
          input_quant="pow2"), 8),
])
def test_weight_memory_bits_is_the_plans(kw, lanes):
    m = make_model(**kw)
    for sparse in (False, True) if lanes % 2 == 0 else (False,):
        p = make_plan(m, lanes, sparse="on" if sparse else "off")
        assert weight_memory_bits(m, schedule(m, lanes, sparse)) == sum(
            r.bits for r in p.weight_roms)


@pytest.mark.parametrize("weights", ["rom", "spram"])
@pytest.mark.parametrize("sparse", ["auto", "off"])
def test_resolve_board_plans_the_core_the_build_made_before(weights, sparse):
    """The board build's core as api.build built it before the resolver: the fit's lanes and
    zero skipping, the shape's core for a loadable build."""
    from hwgen.boardfit import check_board_fit
    from hwgen.shape import shape_core, shape_of

    m = make_model(**SPARSE)
    fit = check_board_fit(m, "icebreaker", 4, None, weights, sparse)
    onoff = "on" if fit.fit.estimate.zero_skipping else "off"
    if weights == "rom":
        old = make_plan(m, fit.lanes, "auto", "rom", onoff)
    else:
        core, core_sparse = shape_core(shape_of(m, fit.lanes, "auto", weights, sparse=onoff), m)
        old = make_plan(core, fit.lanes, "auto", weights, core_sparse)
    new = resolve_board(m, "icebreaker", 4, weights=weights, sparse=sparse).plan
    assert new.to_json() == old.to_json() and new.timing == old.timing
    assert new.weight_roms == old.weight_roms and new.biases == old.biases
