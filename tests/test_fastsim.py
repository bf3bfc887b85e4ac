"""The fast Verilator path (hwgen sim --fast): the cocotb bench's plan and cycles, exact against
the golden model, mismatches reported like the cocotb path, clear errors; and a CI-sized sample
of the soak (benchmarks/soak.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_model, stream_mutant
from hwgen.cli import main
from hwgen.cosim import SimPlan, cosim
from hwgen.export import generate
from hwgen.fastsim import fastsim, verilated_name
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parent.parent


def _sequences(model, count, seed, lengths=(1, 9)):
    rng = np.random.default_rng(seed)
    fmt = model.formats.input
    out = []
    for _ in range(count):
        T = int(rng.integers(*lengths))
        if model.embedding is not None:
            out.append(rng.integers(0, model.input.vocab, T))
        else:
            out.append(rng.integers(fmt.min_code, fmt.max_code + 1, (T, model.input.features)))
    return out


def test_same_plan_same_cycles_as_cocotb(tmp_path):
    """Stalls, idle resets and resets with work in flight: the fast harness and the cocotb bench
    (Icarus) see every transfer on the same edge, so they end on the same cycle."""
    model = make_model("gru", "ternary", inputs=3, hidden=4, outputs=3, tokens=7)
    generate(model, tmp_path / "rtl", lanes=2)
    seqs = _sequences(model, 6, seed=1)

    def plan():
        return SimPlan(list(seqs), abort={1: 2}, reset_before={3, 4}, in_stall=0.3,
                       out_stall=0.4, seed=5)

    slow = cosim(tmp_path / "rtl", plan(), simulator="icarus")
    fast = fastsim(tmp_path / "rtl", plan())
    assert slow.ok and fast.ok, (slow.summary(), fast.summary())
    assert (fast.cycles, fast.timesteps) == (slow.cycles, slow.timesteps)
    assert fast.summary().startswith("PASS verilator-fast: 6 sequences")
    # back to back: the measured cycles per timestep are the manifest's
    r = fastsim(tmp_path / "rtl", SimPlan(list(seqs)))
    assert r.ok and r.cycles_per_timestep == r.manifest_cycles_per_timestep
    assert r.build_s == 0.0  # the harness build is reused


def test_a_wrong_reference_fails_with_the_mismatch(tmp_path, capsys):
    # payloads wider than 64 bits in and out (Verilator's VlWide ports)
    model = make_model("lstm", "int8", inputs=9, hidden=3, outputs=9, argmax=True)
    man = generate(model, tmp_path / "rtl", lanes=3)
    assert man["streams"]["input"]["payload_width"] > 64
    assert man["streams"]["output"]["payload_width"] > 64
    codes = model.head.w.codes.copy()
    codes[1, 0] = codes[1, 0] + 1 if codes[1, 0] < 127 else 0
    other = dataclasses.replace(
        model, head=dataclasses.replace(
            model.head, w=dataclasses.replace(model.head.w, codes=codes)
        )
    )
    save_model(other, tmp_path / "other.hwgm")
    argv = ["sim", str(tmp_path / "rtl"), "--fast", "--sequences", "4", "--length", "5"]
    assert main(argv + ["--model", str(tmp_path / "other.hwgm")]) == 1
    out = capsys.readouterr().out
    # the first difference between the two golden models, in plan order
    from hwgen.commands.sim import _random_sequences
    from hwgen.golden import GoldenModel

    seqs = _random_sequences(other, 4, 5, np.random.default_rng(0))
    want = GoldenModel(other).run(np.stack(seqs)).logits
    rtl = GoldenModel(model).run(np.stack(seqs)).logits
    n, t, k = np.argwhere(want != rtl)[0]
    assert out.startswith("FAIL verilator-fast: ")
    assert (
        f"first mismatch: sequence {n}, timestep {t}, logit {k}: expected {want[n, t, k]}, "
        f"got {rtl[n, t, k]}" in out
    ), out
    assert main(argv + ["--resets", "--stall-out", "0.3"]) == 0
    assert capsys.readouterr().out.startswith("PASS verilator-fast: 4 sequences")


def test_extra_outputs_and_a_stuck_input_fail(tmp_path):
    model = make_model("rnn", "ternary", inputs=2, hidden=2, outputs=2)
    manifest = generate(model, tmp_path / "rtl", lanes=2)
    mutant = stream_mutant(tmp_path / "rtl", manifest, "valid_stuck")
    (tmp_path / "rtl" / "manifest.json").write_text(json.dumps(mutant))
    r = fastsim(tmp_path / "rtl", SimPlan(_sequences(model, 2, seed=3)))
    assert not r.ok and "(extra outputs)" in r.summary(), r.summary()
    mutant = stream_mutant(tmp_path / "rtl", manifest, "ready_stuck")
    (tmp_path / "rtl" / "manifest.json").write_text(json.dumps(mutant))
    with pytest.raises(HwgenError, match="the fast simulation timed out waiting for the acc"):
        fastsim(tmp_path / "rtl", SimPlan(_sequences(model, 2, seed=3)), timeout_cycles=200)


def test_fast_errors(tmp_path, monkeypatch, capsys):
    model = make_model("rnn", "ternary", inputs=2, hidden=2, outputs=2)
    generate(model, tmp_path / "rtl", lanes=1)
    assert main(["sim", str(tmp_path / "rtl"), "--fast", "--waves", "w.vcd"]) == 1
    assert "hwgen: error: --waves needs the cocotb path; drop --fast" in capsys.readouterr().err
    with pytest.raises(HwgenError, match="every sequence needs at least one timestep"):
        fastsim(tmp_path / "rtl", SimPlan([np.zeros((0, 2), np.int64)]))
    monkeypatch.setattr("hwgen.fastsim.verilator_bin", lambda: None)
    with pytest.raises(HwgenError, match="Verilator is not installed in this environment"):
        fastsim(tmp_path / "rtl", SimPlan([np.zeros((2, 2), np.int64)]))


def test_verilated_names():
    assert verilated_name("i_stream__valid") == "i_stream___05Fvalid"
    assert verilated_name("o_stream__payload") == "o_stream___05Fpayload"
    assert verilated_name("clk") == "clk" and verilated_name("a_b") == "a_b"


def _soak():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "benchmarks" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_soak_sample(tmp_path):
    """A CI-sized sample of the soak: two configurations of its covering list, two chunks each,
    stalls and resets; then a rerun resumes from the checkpoint and does nothing."""
    soak = _soak()
    configs = soak.configurations()
    assert {c.cell for c in configs} == {"rnn", "gru", "lstm"}
    assert {c.quant for c in configs} == {"binary", "ternary", "pow2", "exp", "int8"}
    assert len({c.lanes == 1 for c in configs}) == 2
    sample = [configs[6], configs[-2]]  # a GRU and an LSTM
    lines = []
    ck = soak.run_soak(tmp_path, 800, 2, sample, log=lines.append)
    t = ck["totals"]
    assert t["mismatches"] == 0 and not ck["failures"], ck["failures"]
    assert t["configurations"] == 2 and t["chunks"] == 4 and t["timesteps"] >= 800
    assert len(lines) == 4
    again = soak.run_soak(tmp_path, 800, 2, sample, log=lines.append)
    assert again["totals"] == t and len(lines) == 4
    assert json.loads((tmp_path / "checkpoint.json").read_text())["totals"] == t
