"""The generated Verilog in real simulators (cocotb: Icarus and Verilator), exact against golden.

Each configuration gets its own RTL and build folder. The covering list has every cell type, every
encoding, token and vector inputs, stacked layers and lane counts 1 / a divisor / a non-divisor /
all, on Icarus; Verilator (7-15 s per C++ build) runs a smaller covering subset.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import make_model
from hwgen.cli import main
from hwgen.cosim import SimPlan, cosim
from hwgen.export import generate
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError

pytestmark = pytest.mark.sim

CONFIGS = [
    # (simulator, model keywords, lanes)
    ("icarus", dict(cell="rnn", quant="ternary", inputs=3, hidden=5, outputs=3), 1),
    ("icarus", dict(cell="gru", quant="exp", inputs=4, hidden=6, outputs=3, tokens=9), 4),
    ("icarus", dict(cell="lstm", quant="int8", inputs=3, hidden=4, outputs=2), 2),
    ("icarus", dict(cell="gru", quant="binary", inputs=3, hidden=4, outputs=3, layers=2), 3),
    ("icarus", dict(cell="lstm", quant="pow2", inputs=2, hidden=4, outputs=3, argmax=True), 4),
    ("icarus", dict(cell="rnn", quant="exp", inputs=5, hidden=4, outputs=2, layers=2), 5),
    ("verilator", dict(cell="gru", quant="ternary", inputs=3, hidden=6, outputs=3, tokens=7), 4),
    ("verilator", dict(cell="lstm", quant="exp", inputs=3, hidden=4, outputs=2, layers=2), 3),
    ("verilator", dict(cell="rnn", quant="int8", inputs=4, hidden=4, outputs=4, argmax=True), 1),
    # paired input segments (layer 0's input in half the lanes, two recurrent words a row)
    ("icarus", dict(cell="gru", quant="ternary", inputs=2, hidden=9, outputs=3, layers=2), 4),
    ("verilator", dict(cell="lstm", quant="ternary", inputs=4, hidden=10, outputs=3), 8),
    # zero skipping: the sparse core (2:4 recurrent matrices; a dense head: two words a span)
    ("icarus", dict(cell="gru", quant="ternary", inputs=5, hidden=9, outputs=3, layers=2,
                    sparsity="2:4"), 4),
    ("verilator", dict(cell="lstm", quant="exp", inputs=4, hidden=8, outputs=3, tokens=6,
                       sparsity="2:4", sparse_head=True), 2),
    ("icarus", dict(cell="rnn", quant="ternary", inputs=4, hidden=12, outputs=3,
                    sparsity="2:4"), 4),  # paired input segments in the sparse core
    # mixed precision (the lm recipe's shape): ternary recurrent, int8 input matrix and head
    ("verilator", dict(cell="gru", quant="ternary", inputs=5, hidden=8, outputs=4, tokens=9,
                       input_quant="int8", head_quant="int8"), 4),
    ("icarus", dict(cell="lstm", quant="ternary", inputs=4, hidden=8, outputs=3,
                    input_quant="int8", head_quant="exp", sparsity="2:4"), 4),
    # per-row scales (issue 26; loadable cores: test_loadable_rtl_with_row_scales): every cell
    # in each simulator, dense, paired and sparse
    ("icarus", dict(cell="rnn", quant="int8", inputs=3, hidden=5, outputs=3, layers=2,
                    row_scales=8), 2),
    ("icarus", dict(cell="gru", quant="ternary", inputs=5, hidden=8, outputs=3, sparsity="2:4",
                    argmax=True, row_scales=12), 4),
    ("verilator", dict(cell="lstm", quant="exp", inputs=2, hidden=9, outputs=3, tokens=6,
                       row_scales=5), 4),  # paired input segments
    ("verilator", dict(cell="rnn", quant="ternary", inputs=4, hidden=8, outputs=3,
                       sparsity="2:4", row_scales=16), 2),
]


def _ids(c):
    sim, kw, lanes = c
    return f"{sim}-" + "-".join(f"{v}" for v in kw.values()) + f"-P{lanes}"


def _sequences(model, count, rng, lengths=(1, 9)):
    from hwgen.commands.sim import _random_sequences

    return [
        s for s in _random_sequences(model, count, None, rng) if lengths[0] <= len(s) <= lengths[1]
    ] or _random_sequences(model, count, 3, rng)


@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_rtl_equals_golden(tmp_path, config):
    simulator, kw, lanes = config
    model = make_model(**kw)
    manifest = generate(model, tmp_path / "rtl", lanes=lanes)
    assert manifest["timing"]["zero_skipping"] == ("sparsity" in kw)
    rng = np.random.default_rng(1)
    seqs = _sequences(model, 6, rng)
    # back to back, no stalls: outputs exact and the cycle count is the manifest's
    r = cosim(tmp_path / "rtl", SimPlan(seqs), simulator=simulator)
    assert r.ok, r.summary()
    assert r.cycles_per_timestep == manifest["timing"]["cycles_per_timestep"]
    # random idle inputs, backpressure, resets between sequences and in the middle of one
    plan = SimPlan(seqs, abort={1: 2}, reset_before={3}, in_stall=0.3, out_stall=0.4, seed=2)
    r = cosim(tmp_path / "rtl", plan, simulator=simulator)
    assert r.ok, r.summary()
    assert r.timesteps == sum(len(s) for s in seqs) + min(2, len(seqs[1]))


def test_long_sequence_on_verilator(tmp_path):
    model = make_model("gru", "ternary", inputs=3, hidden=4, outputs=2)
    generate(model, tmp_path / "rtl", lanes=4)
    fmt = model.formats.input
    x = np.random.default_rng(3).integers(fmt.min_code, fmt.max_code + 1, (1500, 3))
    r = cosim(tmp_path / "rtl", SimPlan([x], out_stall=0.05, seed=1), simulator="verilator")
    assert r.ok and r.timesteps == 1500, r.summary()


def test_a_wrong_reference_fails_with_the_mismatch(tmp_path, capsys):
    model = make_model("rnn", "ternary", inputs=3, hidden=4, outputs=3)
    generate(model, tmp_path / "rtl", lanes=2)
    # the reference differs from the RTL in one weight
    codes = model.layers[0].wx.codes.copy()
    codes[0, 0] = 1 if codes[0, 0] != 1 else 0
    other = dataclasses.replace(
        model,
        layers=(
            dataclasses.replace(
                model.layers[0], wx=dataclasses.replace(model.layers[0].wx, codes=codes)
            ),
        ),
    )
    save_model(other, tmp_path / "other.hwgm")
    rc = main(
        [
            "sim",
            str(tmp_path / "rtl"),
            "--model",
            str(tmp_path / "other.hwgm"),
            "--sequences",
            "4",
            "--length",
            "6",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith("FAIL icarus") and "first mismatch: sequence 0, timestep" in out
    assert "expected" in out and "got" in out
    # and against its own model it passes
    assert main(["sim", str(tmp_path / "rtl"), "--sequences", "2"]) == 0


def test_sim_cli_waves_and_summary(tmp_path, capsys):
    model = make_model("lstm", "ternary", inputs=2, hidden=3, outputs=2)
    save_model(model, tmp_path / "m.hwgm")
    assert (
        main(["generate", str(tmp_path / "m.hwgm"), "-o", str(tmp_path / "rtl"), "--lanes", "3"])
        == 0
    )
    rc = main(
        [
            "sim",
            str(tmp_path / "rtl"),
            "--sequences",
            "3",
            "--resets",
            "--stall-in",
            "0.2",
            "--stall-out",
            "0.2",
            "--waves",
            str(tmp_path / "w.vcd"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.splitlines()[-1].startswith("PASS icarus: 3 sequences")
    assert (tmp_path / "w.vcd").read_text()[:200].lstrip().startswith("$date")


def test_missing_simulator_is_a_clear_error(tmp_path, monkeypatch):
    model = make_model("rnn", "ternary", inputs=2, hidden=2, outputs=2)
    generate(model, tmp_path / "rtl", lanes=1)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with pytest.raises(HwgenError, match=r"Icarus Verilog \(iverilog\) is not installed"):
        cosim(tmp_path / "rtl", SimPlan([np.zeros((2, 2), np.int64)]), simulator="icarus")


def test_missing_manifest(tmp_path):
    with pytest.raises(HwgenError, match="no manifest.json"):
        cosim(tmp_path, SimPlan([np.zeros((1, 2), np.int64)]))


@pytest.mark.parametrize("simulator,weights,cell,rows", [
    ("icarus", "spram", "gru", None), ("verilator", "ram", "gru", None),
    ("icarus", "spram", "lstm", 8), ("verilator", "ram", "gru", 8)])  # per-row scales, issue 26
def test_loadable_rtl_runs_any_model_of_its_shape(tmp_path, simulator, weights, cell, rows):
    """A loadable core's Verilog (weights written through its load port first): exact for the
    model it was generated from and for another model of the shape, with stalls and resets.
    With per-row scales the multipliers are loaded too (the last image): the two models'
    multipliers differ."""
    a = make_model(cell, "ternary", inputs=3, hidden=6, outputs=3, seed=1, argmax=True,
                   row_scales=rows)
    b = make_model(cell, "ternary", inputs=3, hidden=6, outputs=3, seed=2, argmax=True,
                   row_scales=rows)
    manifest = generate(a, tmp_path / "rtl", lanes=4, weights=weights)
    assert manifest["load"]["ports"]["data"] == "load__data"
    assert [m["name"] for m in manifest["load"]["memories"]] == ["weights0", "biases"] + (
        ["row_mult"] if rows else [])
    assert (tmp_path / "rtl" / "load_images.json").is_file()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(-128, 128, (4, 3)) for _ in range(3)]
    plan = SimPlan(seqs, abort={1: 2}, reset_before={2}, in_stall=0.3, out_stall=0.3, seed=1)
    for ref in (None, b):
        r = cosim(tmp_path / "rtl", plan, simulator=simulator, model=ref)
        assert r.ok, r.summary()
    wider = make_model(cell, "ternary", inputs=3, hidden=8, outputs=3, argmax=True,
                       row_scales=rows)
    with pytest.raises(HwgenError, match="does not fit this bitstream's shape: hidden: "
                       "bitstream 6, model 8"):
        cosim(tmp_path / "rtl", SimPlan(seqs), simulator=simulator, model=wider)
