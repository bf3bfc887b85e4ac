# amaranth: UnusedElaboratable=no
"""The delta core on boards (issue 23): its resource estimate and fit check
(`hwgen.delta.resources`), ``hwgen estimate --board`` / ``--target``, ``hwgen build``'s refusal
of a delta core that cannot fit (naming what would), the board design behind the UART link in
Verilator (``hwgen run --port sim``: data-dependent cycles through the link, bit-exact), and one
real iCEBreaker build (synth)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import make_model
from hwgen import api
from hwgen.boardfit import board_fit, check_board_fit
from hwgen.cli import main
from hwgen.delta import DeltaThresholds, with_thresholds
from hwgen.delta.resources import delta_memories, delta_resources
from hwgen.delta.schedule import delta_schedule
from hwgen.design import resolve
from hwgen.estimate import estimate
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError


def _delta(cell="gru", inputs=5, hidden=8, outputs=4, th=(6, 4), layers=1, quant="ternary",
           seed=2):
    base = make_model(cell, quant, inputs=inputs, hidden=hidden, outputs=outputs,
                      layers=layers, seed=seed)
    return with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))


def _worst(model, lanes: int) -> int:
    """The delta core's worst-case cycles per timestep (its manifest's, `delta_schedule`)."""
    return delta_schedule(model, resolve(model, lanes).plan).cycles_per_timestep


def test_the_estimate_counts_the_delta_cores_own_memories():
    """The delta core's memories, not the dense core's: column-major ROMs of every matrix, the
    delta memories (one read port: one copy on iCE40), hat stores, row ROMs, tables per layer;
    more lanes make the delta memories wider, not deeper."""
    model = _delta(layers=2)
    plan = resolve(model, 4).plan
    names = {m.name for m in delta_memories(model, plan)}
    assert {"layer0.wx_columns", "layer1.wh_columns", "head.w_columns", "layer0_m_x",
            "layer1_m_h", "layer1_hats", "layer0_rows", "layer1_tanh.table",
            "head_m"} <= names
    e = delta_resources(model, plan, "ice40-up5k")
    assert all(".copy" not in m.name for m in e.memories if "_m_" in m.name)
    assert e.cycles_per_timestep == _worst(model, 4)
    dense = estimate(with_thresholds(model, None), 4, "ice40-up5k")
    assert e.bram_blocks != dense.bram_blocks or e.luts != dense.luts
    wide = delta_resources(model, resolve(model, 8).plan, "ice40-up5k")
    mx = {m.name: m for m in delta_memories(model, resolve(model, 8).plan)}["layer0_m_x"]
    assert mx.width == 2 * {m.name: m for m in delta_memories(model, plan)}["layer0_m_x"].width
    assert wide.luts > e.luts


def test_board_fit_judges_the_delta_core_and_picks_lanes():
    """A small delta model fits the iCEBreaker: the fit is the delta core's (its estimate's
    memories and worst-case cycles), lanes chosen like a dense build, ROM weights."""
    model = _delta()
    r = board_fit(model, "icebreaker")
    assert r.fits and r.weights == "rom"
    assert any(m.name == "layer0_m_x" for m in r.fit.estimate.memories)
    assert r.fit.estimate.cycles_per_timestep == _worst(model, r.lanes)
    assert check_board_fit(model, "icebreaker", weights="auto").fits


def test_a_delta_core_that_cannot_fit_is_refused_naming_what_would(tmp_path, capsys):
    """The spoken-digit GRU (20-64-10) as a delta core with 8 lanes does not fit the UP5K beside
    the UART link (docs/synthesis.md): ``hwgen build`` refuses before any tool, in one line
    naming the lanes that fit there (the state in block RAM: fewer lanes do), the board that
    fits 8 lanes and the dense core of the same weights."""
    model = _delta(inputs=20, hidden=64, outputs=10, th=(16, 32))
    with pytest.raises(HwgenError) as err:
        check_board_fit(model, "icebreaker", 8)
    msg = str(err.value)
    assert msg.startswith("the delta core of this model does not fit icebreaker (ice40-up5k) "
                          "with 8 lanes")
    assert re.search(r"What would fit: --lanes [2-7] fits \(about \d+ LUT4, \d+ cycles per "
                     r"timestep\); --board (ulx3s|orangecrab)-\d+f fits 8 lanes", msg)
    assert "the dense core of these weights fits" in msg
    p = tmp_path / "d.hwgm"
    save_model(model, p)
    assert main(["build", str(p), "--board", "icebreaker", "--lanes", "8", "-o",
                 str(tmp_path / "b")]) == 1
    out = capsys.readouterr().err
    assert out.startswith("hwgen: error: the delta core of this model does not fit icebreaker")
    assert out.count("\n") == 1 and not (tmp_path / "b").exists()
    # SPRAM weights: the delta core's own refusal, naming the option (--weights ram is built:
    # tests/test_delta_load.py)
    assert main(["build", str(p), "--board", "icebreaker", "--weights", "spram", "-o",
                 str(tmp_path / "b")]) == 1
    assert "does not support --weights spram" in capsys.readouterr().err


def test_hwgen_estimate_of_a_delta_model_on_a_board_and_a_target(tmp_path, capsys):
    p = tmp_path / "d.hwgm"
    save_model(_delta(), p)
    assert main(["estimate", str(p), "--board", "icebreaker", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["core"] == "delta" and d["resources"]["fits"] and d["resources"]["board"] == \
        "icebreaker"
    assert d["resources"]["estimate"]["cycles_per_timestep"] == d["cycles_per_timestep"]
    assert main(["estimate", str(p), "--target", "ice40-up5k", "--lanes", "2"]) == 0
    text = capsys.readouterr().out
    assert "layer0_m_x" in text and "fit         yes" in text and "core        delta" in text
    big = tmp_path / "big.hwgm"
    save_model(_delta(inputs=20, hidden=64, outputs=10, th=(16, 32)), big)
    # the spoken-digit GRU's delta core at 8 lanes: the state in flip-flops does not fit the
    # UP5K, in block RAM (what auto picks for it) it does, by the estimate
    from hwgen.fit import judge_estimate

    bm = _delta(inputs=20, hidden=64, outputs=10, th=(16, 32))
    for state, fits in (("registers", False), ("ram", True)):
        e = delta_resources(bm, resolve(bm, 8, state=state).plan, "ice40-up5k")
        assert judge_estimate(e, "ice40-up5k").fits == fits
    assert main(["estimate", str(big), "--target", "ice40-up5k", "--lanes", "8"]) == 0
    text = capsys.readouterr().out
    assert "fit         yes" in text and "layer0_h_state" in text


@pytest.mark.sim
def test_run_streams_a_delta_model_through_the_simulated_board(tmp_path, capsys):
    """The delta core behind the UART link, then the SPI link, on Verilator (``hwgen run --port
    sim``): its cycles per timestep vary with the data and the link waits on the stream
    handshake, so every logit equals the golden delta model's (a constant sequence among them:
    its later timesteps process few columns, the fastest the core gets)."""
    model = _delta(th=(3, 2))
    p = tmp_path / "d.hwgm"
    save_model(model, p)
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, (3, 5, 5))
    x[1] = x[1, :1]  # a constant sequence
    np.save(tmp_path / "x.npy", x)
    rc = main(["run", str(p), "--port", "sim", "--inputs", str(tmp_path / "x.npy"), "-o",
               str(tmp_path / "y.npy")])
    assert rc == 0
    assert "hardware logits equal the golden model's (bit-exact)" in capsys.readouterr().out
    golden = api.golden(model, features=x).logits
    assert np.array_equal(np.load(tmp_path / "y.npy"), golden)
    # behind the SPI link (a build folder's design: 2 lanes at 48 MHz)
    build = tmp_path / "b"
    build.mkdir()
    (build / "build.json").write_text(json.dumps({
        "schema": "hwgen-build", "version": 1, "board": "icebreaker", "lanes": 2,
        "zero_skipping": False, "clock_mhz": 48.0, "divisor": 0, "baud": 3_000_000,
        "link": "spi"}))
    rc = main(["run", str(p), "--port", "sim", "--build", str(build), "--inputs",
               str(tmp_path / "x.npy"), "-o", str(tmp_path / "z.npy")])
    assert rc == 0 and "bit-exact" in capsys.readouterr().out
    assert np.array_equal(np.load(tmp_path / "z.npy"), golden)


@pytest.mark.synth
@pytest.mark.slow
def test_icebreaker_build_of_a_small_delta_core(tmp_path):
    """``hwgen build`` of a delta model: a bitstream of the delta core behind the UART link;
    the report's cycles per timestep are the delta core's worst case."""
    model = _delta()
    rep = api.build(model, "icebreaker", tmp_path / "b", lanes=2, clock="board")
    assert rep.bitstream.exists() and rep.bitstream.stat().st_size > 100_000
    doc = json.loads((tmp_path / "b" / "build.json").read_text())
    assert doc["cycles_per_timestep"] == _worst(model, 2) and doc["lanes"] == 2
    assert rep.result.fmax_mhz > 12.0


def test_explore_trials_of_delta_networks():
    """``hwgen explore --delta``: a trial of a delta network has its own cache name (a dense
    trial's is what it was), its label says so, and its designs are the delta core's, judged
    by its fit (on a target as on a board)."""
    from hwgen.explore.designs import design_rows, make_platform, train_command
    from hwgen.explore.space import DatasetRef, TrialConfig, trial_hash

    ds = DatasetRef("vowels", "vowels", "classify")
    dense = TrialConfig("gru", "ternary", 8, 2)
    delta = TrialConfig("gru", "ternary", 8, 2, delta="6,4")
    assert "delta" not in dense.to_json() and trial_hash(ds, dense) != trial_hash(ds, delta)
    assert TrialConfig.from_json(delta.to_json()) == delta and delta.label().endswith("6,4")
    rec = {"hash": "k", "config": delta.to_json(), "label": delta.label(), "status": "ok",
           "metric": "accuracy", "valid": 0.5, "test": 0.5, "test_float": 0.5,
           "train_seconds": 1.0, "weight_bits": 100, "zero_fraction": 0.3}
    assert train_command("vowels", False, delta.to_json(), "m.hwgm").endswith(
        "--seed 0 --delta 6,4 -o m.hwgm")
    model = _delta()
    for plat in (make_platform(target="ice40-up5k", clock_mhz=24),
                 make_platform(board="icebreaker")):
        rows = design_rows(rec, model, plat, [1, 2])
        assert [r["lanes"] for r in rows] == [1, 2] and all(r["fits"] for r in rows)
        assert rows[1]["cycles"] == _worst(model, 2)
