"""``hwgen sim`` guards: the manifest's schema and model hash, one folder per run (concurrent runs
on one RTL folder), the wall-clock limit, progress lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_model
from hwgen import HwgenError, api
from hwgen.cli import main
from hwgen.cosim import _progress_status
from hwgen.manifest import MANIFEST_VERSION

pytestmark = pytest.mark.sim


@pytest.fixture
def rtl(tmp_path):
    model = make_model("rnn", "ternary", inputs=3, hidden=4, outputs=2)
    api.generate(model, tmp_path / "rtl", lanes=2)
    return tmp_path / "rtl"


def test_a_model_file_that_is_not_the_generated_one_is_refused(rtl, capsys):
    data = bytearray((rtl / "model.hwgm").read_bytes())
    other = make_model("rnn", "ternary", inputs=3, hidden=4, outputs=2, seed=5)
    api.save_model(other, rtl / "model.hwgm")
    assert bytes(data) != (rtl / "model.hwgm").read_bytes()
    assert main(["sim", str(rtl), "--sequences", "1"]) == 1
    err = capsys.readouterr().err
    assert "is not the model this RTL was generated from" in err and err.count("\n") == 1


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(version=MANIFEST_VERSION + 1),
     f"manifest version {MANIFEST_VERSION + 1}; this hwgen reads version {MANIFEST_VERSION}"),
    (lambda m: m.update(schema="other"), "not a hwgen manifest"),
    (lambda m: m["timing"].update(cycles_per_timestep=1.5),
     "field 'timing.cycles_per_timestep' must be a positive integer, not 1.5"),
    (lambda m: m.update(verilog=["../../etc/passwd"]), "field 'verilog' must list file names"),
    (lambda m: m["streams"]["input"].pop("payload"), "field 'streams.input.payload' is missing"),
])
def test_the_manifest_schema_is_checked(rtl, edit, message):
    m = json.loads((rtl / "manifest.json").read_text())
    edit(m)
    (rtl / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(HwgenError, match=message.replace("(", r"\(").replace(")", r"\)")):
        api.simulate(rtl, sequences=1)


def test_two_runs_on_one_folder_do_not_share_files(rtl):
    """Both at once, different stimuli: each passes (they used to share plan and result)."""
    cmd = [sys.executable, "-m", "hwgen.cli", "sim", str(rtl), "--sequences", "6", "-q"]
    procs = [subprocess.Popen(cmd + ["--seed", str(s), "--length", str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s, n in ((1, 40), (2, 7))]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert "240 timesteps" in outs[0][0] and "42 timesteps" in outs[1][0]
    # a run leaves no folder behind when it passes; the build is shared
    assert [p.name for p in (rtl / "sim_build" / "icarus").glob("run-*")] == []


def test_the_wall_clock_limit(rtl, capsys):
    t0 = time.monotonic()
    rc = main(["sim", str(rtl), "--sequences", "400", "--length", "200", "--time-limit", "1.5",
               "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "did not finish within its time limit of 1.5 s" in err
    assert time.monotonic() - t0 < 30
    for bad in ("nan", "0", "-1", "inf"):
        assert main(["sim", str(rtl), "--time-limit", bad]) == 2


def test_progress_lines(rtl, capsys):
    np.save(rtl.parent / "x.npy", np.random.default_rng(0).normal(0, 1, (3, 4, 3)))
    assert main(["sim", str(rtl), "--inputs", str(rtl.parent / "x.npy")]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("PASS icarus: 3 sequences, 12 timesteps")
    err = cap.err.splitlines()
    assert err[0].startswith("[0:0") and "building the icarus simulation" in err[0]
    assert "simulating 3 sequences (12 timesteps)" in err[1]
    assert err[-1] == f"next: hwgen synth {rtl} --target ice40-up5k"


def test_progress_status_counts_sequences(tmp_path):
    epochs = [[(0, 0), (0, 1), (1, 0)], [(2, 0), (2, 1)]]
    status = _progress_status(tmp_path / "p.json", epochs, time.monotonic() - 10, 5)
    assert status() is None  # nothing reported yet
    (tmp_path / "p.json").write_text(json.dumps({"inputs": 3}))
    line = status()
    assert line.startswith("simulating: 2/3 sequences, 3/5 timesteps, 10 s, about 7 s left")
