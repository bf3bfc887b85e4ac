"""The delta core through ``hwgen generate`` and ``hwgen sim`` (issue 23): its manifest, the
options it refuses, and its Verilog in Icarus and Verilator against the golden delta model
(exact logits, the columns counter equal to the golden count, every timestep within the
manifest's cycle bound), with random stalls and resets; theta 0 is the dense network."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import make_model
from hwgen import api
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.delta.sim import check_delta_counters
from hwgen.spec import HwgenError

icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


def _delta(cell="gru", quant="ternary", th=(6, 4), layers=1, **kw):
    base = make_model(cell, quant, inputs=5, hidden=6, outputs=3, layers=layers, seed=2, **kw)
    return with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))


def test_generate_writes_the_delta_core_and_its_manifest(tmp_path):
    model = _delta()
    man = api.generate(model, tmp_path / "rtl", 4)
    again = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert again == man
    t = man["timing"]["delta"]
    # the worst case: every column (5 inputs + 6 states) at a start of sequence, R = 18 / 4
    assert t["cycles_per_column"] == 5 and t["columns_per_layer"] == [11]
    assert man["timing"]["cycles_per_timestep"] == t["fixed_cycles"] + t["clear_cycles"] + 55
    assert man["delta"]["thresholds"] == {"theta_x": [6], "theta_h": [4]}
    assert {p["name"] for p in man["ports"]} >= {"columns", "cycles"}
    names = {m["name"] for m in man["memory"]["memories"]}
    assert {"layer0.wx_columns", "layer0_m_x", "layer0_m_h", "layer0_hats", "head_m"} <= names
    text = (tmp_path / "rtl" / "hwgen_top.v").read_text()
    assert "module hwgen_top" in text and "columns" in text
    # the same inputs, byte-identical files
    api.generate(model, tmp_path / "rtl2", 4)
    for f in ("hwgen_top.v", "manifest.json", "model.hwgm"):
        assert (tmp_path / "rtl" / f).read_bytes() == (tmp_path / "rtl2" / f).read_bytes()


@pytest.mark.parametrize("kw,model_kw,word", [
    (dict(weights="spram"), {}, "--weights spram"),
    (dict(sparse="on"), {}, "--sparse on"),
    ({}, dict(argmax=True), "argmax"),
    ({}, dict(tokens=7), "token inputs"),
])
def test_the_delta_core_refuses_what_it_cannot_run(tmp_path, kw, model_kw, word):
    model = _delta(**model_kw)
    with pytest.raises(HwgenError, match=word):
        api.generate(model, tmp_path / "rtl", 2, **kw)
    assert not (tmp_path / "rtl").exists()


def _manifest(fixed=50, clear=7, per=5, cols=(11,)):
    return {"timing": {"cycles_per_timestep": fixed + clear + per * sum(cols),
                       "delta": {"fixed_cycles": fixed, "clear_cycles": clear,
                                 "cycles_per_column": per, "columns_per_layer": list(cols),
                                 "dense_core_cycles_per_timestep": 100}}}


def test_the_counter_check_catches_wrong_columns_and_slow_timesteps():
    """The host's check of the counters (read at each output: columns through that timestep,
    cycles through it less its transfer cycle) passes the core's own counts and fails on a
    column count the golden model did not make and on a timestep above the manifest's bound."""
    model = _delta()
    codes = np.array([[[10, 0, 0, 0, 0], [10, 30, 0, 0, 0], [10, 30, 0, 0, 0]]])
    r = api.golden(model, codes=codes)
    n = (r.columns.x_cols + r.columns.h_cols)[0, :, 0].tolist()
    epochs, outs = [[(0, 0), (0, 1), (0, 2)]], {0: [0, 1, 2]}
    cyc = [50 + 7 + 5 * n[0], 50 + 5 * n[1], 50 + 5 * n[2]]  # each at the bound

    def counters(cols, cycles):
        return [[int(c), int(y) - 1] for c, y in zip(np.cumsum(cols), np.cumsum(cycles),
                                                      strict=True)]

    bad, rep = check_delta_counters(_manifest(), [r], epochs, outs, counters(n, cyc))
    assert bad is None and rep.max_cycles == max(cyc) and rep.mean_cycles == np.mean(cyc)
    assert rep.columns_fraction == pytest.approx(sum(n) / 33)
    wrong = counters([n[0], n[1] + 1, n[2]], cyc)
    assert check_delta_counters(_manifest(), [r], epochs, outs, wrong)[0][:3] == \
        (0, 1, "columns processed")
    slow = counters(n, [cyc[0], cyc[1], cyc[2] + 1])
    bad = check_delta_counters(_manifest(), [r], epochs, outs, slow)[0]
    assert bad[:3] == (0, 2, "cycles") and bad[4] == cyc[2] + 1


def _sim(rtl, simulator, **kw):
    return api.simulate(rtl, simulator=simulator, stall_in=0.3, stall_out=0.3, resets=True,
                        **kw)


@icarus
@pytest.mark.sim
@pytest.mark.parametrize("cell,quant,layers,lanes,th,state", [
    ("gru", "ternary", 1, 4, (6, 4), "registers"),
    ("lstm", "int8", 2, 3, (3, 5), "registers"),
    ("rnn", "exp", 1, 2, (2, 9), "registers"),
    ("gru", "ternary", 2, 4, (6, 4), "ram"),  # the state in block RAM (--state ram)
    ("lstm", "int8", 2, 3, (3, 5), "ram"),
])
def test_hwgen_sim_runs_the_delta_core_in_icarus(tmp_path, cell, quant, layers, lanes, th,
                                                 state):
    model = _delta(cell, quant, th, layers)
    rtl = tmp_path / "rtl"
    man = api.generate(model, rtl, lanes, state=state)
    assert man["memory"]["state"]["state"] == state
    rep = _sim(rtl, "icarus", sequences=6, length=5, seed=lanes)
    assert rep.ok, rep.summary()
    d = rep.delta
    assert d is not None and 0 < d.columns_fraction < 1
    assert d.max_cycles <= d.worst_cycles and rep.cycles_per_timestep == d.mean_cycles


@icarus
@pytest.mark.sim
def test_theta_0_delta_core_gives_the_dense_models_outputs(tmp_path):
    """The delta core with thresholds 0 against the *dense* model's golden outputs: equal."""
    model = _delta("gru", "ternary", (0, 0))
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, 3)
    dense = with_thresholds(model, None)
    rep = _sim(rtl, "icarus", model=dense, sequences=5, length=4, seed=1)
    assert rep.ok, rep.summary()
    # the check can fail: thresholds that skip columns differ from the dense network
    skipping = _delta("gru", "ternary", (40, 60))
    api.generate(skipping, tmp_path / "skip", 3)
    rep = _sim(tmp_path / "skip", "icarus", model=dense, sequences=5, length=4, seed=1)
    assert not rep.ok and "logit" in str(rep.mismatch)


@pytest.mark.sim
@pytest.mark.parametrize("cell,quant,layers,state", [("gru", "ternary", 1, "registers"),
                                                     ("lstm", "pow2", 2, "registers"),
                                                     ("gru", "ternary", 2, "ram")])
def test_hwgen_sim_runs_the_delta_core_in_verilator(tmp_path, cell, quant, layers, state):
    model = _delta(cell, quant, (4, 7), layers)
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, 3, state=state)
    rep = _sim(rtl, "verilator", sequences=5, length=5, seed=4)
    assert rep.ok, rep.summary()
    assert rep.delta.columns_fraction > 0


def test_estimate_gives_the_delta_cores_cycles_from_a_datasets_columns(tmp_path, capsys):
    """``hwgen estimate --dataset``: the mean of the cycle bound over the test split's measured
    column counts; with thresholds that skip every column it is the fixed cycles plus the
    clear pass at each start of sequence."""
    from hwgen.cli import main
    from hwgen.delta import max_threshold
    from hwgen.modelfile import save_model
    from hwgen.train.datasets import load_dataset

    base = make_model("gru", "ternary", inputs=12, hidden=6, outputs=9, seed=1)
    p = tmp_path / "d.hwgm"
    save_model(with_thresholds(base, DeltaThresholds.uniform(6, 4, 1)), p)
    args = ["estimate", str(p), "--lanes", "4", "--target", "ice40-up5k", "--json"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["expected_cycles_per_timestep"] is None
    assert main(args + ["--dataset", "vowels"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert plain["fixed_cycles"] < e["expected_cycles_per_timestep"] < e["cycles_per_timestep"]
    assert 0 < e["columns_processed_fraction"] < 1
    test = load_dataset("vowels").test
    assert e["timesteps"] == int(sum(test.lengths))
    top = max_threshold(base.formats.input), max_threshold(base.formats.state)
    save_model(with_thresholds(base, DeltaThresholds.uniform(*top, 1)), p)
    assert main(args + ["--dataset", "vowels"]) == 0
    none = json.loads(capsys.readouterr().out)
    clear = -(-18 // 4) + 2  # R + 2, R = ceil(G*H / P) = ceil(3*6 / 4)
    assert none["columns_processed_fraction"] == 0
    assert none["expected_cycles_per_timestep"] == pytest.approx(
        none["fixed_cycles"] + clear * len(test.lengths) / none["timesteps"])
    # a dense model has no use for --dataset
    save_model(base, p)
    assert main(args + ["--dataset", "vowels"]) == 1
    assert "--dataset applies to delta networks" in capsys.readouterr().err


def test_generate_of_a_delta_model_says_its_worst_case(tmp_path, capsys):
    """(Board builds and ``estimate --board`` of delta models: tests/test_delta_board.py.)"""
    from hwgen.cli import main
    from hwgen.modelfile import save_model

    p = tmp_path / "d.hwgm"
    save_model(_delta(), p)
    assert main(["generate", str(p), "--lanes", "2", "-o", str(tmp_path / "g")]) == 0
    assert "worst case" in capsys.readouterr().out


@icarus
@pytest.mark.sim
@pytest.mark.parametrize("dataset,cell", [("fsdd", "gru"), ("vowels", "lstm")])
def test_the_delta_core_on_real_speech_in_icarus(tmp_path, dataset, cell):
    """A small delta model (8 hidden) on the first test utterances of spoken digits (FSDD) and
    Japanese Vowels, with stalls and resets: exact, columns and cycles as the manifest says.
    (The trained 64-unit models on the whole test splits: benchmarks/delta_rtl.py.)"""
    from test_fsdd import FSDD

    if dataset == "fsdd":
        if not FSDD.is_dir():
            pytest.skip(f"no FSDD recordings at {FSDD}")
        spec, features = f"fsdd:{FSDD}", 20
    else:
        spec, features = "vowels", 12
    base = make_model(cell, "ternary", inputs=features, hidden=8, outputs=10, seed=3)
    model = with_thresholds(base, DeltaThresholds.uniform(16, 32, 1))
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, 4)
    rep = _sim(rtl, "icarus", dataset=spec, sequences=3, seed=2)
    assert rep.ok, rep.summary()
    assert 0 < rep.delta.columns_fraction < 1 and rep.timesteps > 20
