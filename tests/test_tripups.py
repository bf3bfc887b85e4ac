"""Issue 25, "What a user still trips on": one test per defect found by trying hwgen as a new user
(each failed before its fix), through the command line as a user types it."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from hwgen import api
from hwgen.cli import main
from hwgen.fileio import atomic_write_files
from hwgen.spec import HwgenError

GRU = ["random-model", "--cell", "gru", "--inputs", "3", "--hidden", "4", "--outputs", "2",
       "--quant", "ternary"]


@pytest.fixture
def model(tmp_path):
    m = tmp_path / "m.hwgm"
    assert main([*GRU, "-o", str(m)]) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(0, 1, (2, 3, 3)))
    return m


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# -- an output that is an input ------------------------------------------------------------------
@pytest.mark.parametrize("which", ["model", "inputs"])
def test_golden_refuses_to_write_over_its_input(model, tmp_path, capsys, which):
    x = tmp_path / "x.npy"
    target = model if which == "model" else x
    before = target.read_bytes()
    assert main(["golden", str(model), "--inputs", str(x), "-o", str(target)]) == 1
    assert "would be overwritten" in _error(capsys)
    assert target.read_bytes() == before


def test_the_same_file_through_another_spelling_is_refused(model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(model, tmp_path / "link.hwgm")
    assert main(["golden", "m.hwgm", "--inputs", "x.npy", "-o", "./link.hwgm"]) == 1
    assert "is the input file" in _error(capsys)


# -- a write that fails is an error --------------------------------------------------------------
@pytest.fixture
def dev_full():
    """/dev/full, put back as the character device it is should a broken hwgen replace it with
    a file (as root, a rename over it succeeds: hwgen did that before issue 25's fix)."""
    p = Path("/dev/full")
    if not (p.exists() and stat.S_ISCHR(p.stat().st_mode)):
        pytest.skip("no /dev/full character device")
    rdev = p.stat().st_rdev
    yield p
    if not stat.S_ISCHR(p.lstat().st_mode):
        p.unlink()
        os.mknod(p, 0o666 | stat.S_IFCHR, rdev)
        os.chmod(p, 0o666)


@pytest.mark.parametrize("command", ["random-model", "golden"])
def test_a_failed_write_to_a_device_is_an_error(model, tmp_path, capsys, command, dev_full):
    argv = ([*GRU, "-o", str(dev_full)] if command == "random-model" else
            ["golden", str(model), "--inputs", str(tmp_path / "x.npy"), "-o", str(dev_full)])
    assert main(argv) == 1
    err = _error(capsys)
    assert "cannot write /dev/full: No space left on device" in err and "wrote" not in err
    assert stat.S_ISCHR(dev_full.stat().st_mode)  # the device itself was not replaced by a file


def test_a_fifo_is_written_in_place(model, tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first: the write won't block
    try:
        assert main(["golden", str(model), "--inputs", str(tmp_path / "x.npy"),
                     "-o", str(fifo)]) == 0
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the FIFO, not a file renamed over it
    assert data.startswith(b"\x93NUMPY")


def test_a_file_set_is_rolled_back_when_a_rename_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(HwgenError, match="cannot write .*b: No space left"):
        atomic_write_files({a: b"new a", b: b"new b"})
    assert a.read_bytes() == b"old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary file left


# -- generate: all files or none -----------------------------------------------------------------
def test_a_failing_generate_leaves_no_half_written_design(model, tmp_path, capsys):
    out = tmp_path / "rtl"
    (out / "model.hwgm").mkdir(parents=True)
    assert main(["generate", str(model), "-o", str(out)]) == 1
    assert "model.hwgm: it is a folder" in _error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["model.hwgm"]


def test_a_top_name_too_long_to_write_leaves_nothing(model, tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["generate", str(model), "-o", str(out), "--top", "t" * 300]) == 1
    assert "File name too long" in _error(capsys)
    assert not out.exists() or not any(out.iterdir())


# -- run: nothing to stream ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(0, 3, 3), (2, 0, 3)])
def test_run_with_no_timesteps_is_an_error(model, tmp_path, capsys, shape):
    np.save(tmp_path / "empty.npy", np.zeros(shape))
    argv = ["run", str(model), "--port", "sim", "--inputs", str(tmp_path / "empty.npy")]
    assert main(argv) == 1
    assert f"no timesteps to run: inputs of shape {shape}" in _error(capsys)


# -- a manifest whose payload fields were emptied ------------------------------------------------
@pytest.mark.parametrize("side,fields,message", [
    ("output", [], "must hold 'logits'"),
    ("input", [], "must hold 'sos' and one of 'x' or 'token'"),
])
def test_sim_refuses_a_manifest_without_payload_fields(model, tmp_path, capsys, side, fields,
                                                        message):
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=1)
    m = json.loads((rtl / "manifest.json").read_text())
    m["streams"][side]["fields"] = fields
    (rtl / "manifest.json").write_text(json.dumps(m))
    assert main(["sim", str(rtl), "--sequences", "1", "-q"]) == 1
    assert message in _error(capsys)


def test_sim_refuses_a_logits_field_of_another_count(model, tmp_path, capsys):
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=1)
    m = json.loads((rtl / "manifest.json").read_text())
    m["streams"]["output"]["fields"][0]["count"] = 7
    (rtl / "manifest.json").write_text(json.dumps(m))
    assert main(["sim", str(rtl), "--sequences", "1", "-q"]) == 1
    assert "'logits' must count 2 outputs" in _error(capsys)


# -- a Verilog whose simulated time stops --------------------------------------------------------
@pytest.mark.sim
def test_an_endless_initial_loop_is_stopped_with_a_clear_error(model, tmp_path, monkeypatch):
    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog")
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=1)
    v = rtl / "hwgen_top.v"
    text = v.read_text()
    cut = text.index("endmodule")
    v.write_text(text[:cut] + "  reg hang_r = 0;\n  initial while (1) hang_r = ~hang_r;\n"
                 + text[cut:])
    monkeypatch.setattr("hwgen.cosim.STALL_SECONDS", 3.0)
    with pytest.raises(HwgenError, match="made no progress for 3 s .* endless loop"):
        api.simulate(rtl, sequences=1, length=2, time_limit=120)


# -- demo: lanes out of range --------------------------------------------------------------------
@pytest.mark.train
def test_demo_refuses_more_lanes_than_the_widest_row(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "demo"
    assert main(["demo", "--lanes", "1000", "--out", str(out)]) == 1
    assert "--lanes 1000 exceeds the widest matrix row of the demo model (32 weights" in \
        _error(capsys)
    assert not out.exists()  # refused before any training


# -- random models cover the code space ----------------------------------------------------------
@pytest.mark.parametrize("hidden", [4, 64, 256])
@pytest.mark.parametrize("quant", ["pow2", "ternary", "exp2", "int4", "binary"])
def test_random_models_draw_every_level(quant, hidden):
    m = api.random_model("gru", 16, hidden, 10, quant=quant, seed=1)
    for name, qm in m.matrices():
        enc = qm.encoding
        levels = set(np.unique(enc.decode(qm.codes)).tolist())
        if enc.kind.value == "pow2" or qm.codes.size >= 64 * (2 * enc.max_level + 1):
            want = set(range(-enc.max_level, enc.max_level + 1))
            if enc.kind.value == "binary":
                want = {-1, 1}
            if enc.kind.value == "exp":
                want = {0} | {s * 2**e for s in (-1, 1) for e in range(enc.exponents)}
            assert want <= levels, (name, sorted(levels))
        assert len(levels) > 1, name


def test_random_pow2_model_from_the_command_line_is_not_empty(tmp_path):
    m = tmp_path / "p.hwgm"
    assert main(["random-model", "--cell", "gru", "--inputs", "16", "--hidden", "64",
                 "--outputs", "10", "--quant", "pow2", "-o", str(m)]) == 0
    for name, qm in api.load_model(m).matrices():
        zeros = float(np.mean(qm.encoding.decode(qm.codes) == 0))
        assert 0.2 < zeros < 0.5, (name, zeros)  # about a third of each level


# -- model files at the extremes of their formats --------------------------------------------------
@pytest.mark.sim
@pytest.mark.parametrize("width,frac,bias_exp", [(8, -5, 40), (8, -32, 50), (30, 3, 51)])
def test_golden_and_rtl_agree_at_the_extremes_a_model_file_allows(tmp_path, width, frac,
                                                                   bias_exp):
    """An input format with negative fraction bits (codes are multiples of 2**-frac) or a wide one,
    and biases near the 2**52 the widths allow, load (they are in range) and the Verilog computes
    exactly what the golden model does, on the extreme input codes and on random ones."""
    import dataclasses

    from hwgen.spec import FixedFormat

    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog")
    m = api.random_model("gru", 3, 4, 2, quant="ternary", seed=0)
    ly = m.layers[0]
    b, hb = ly.bias.copy(), m.head.bias.copy()
    b[0], b[5], hb[1] = 1 << bias_exp, -(1 << bias_exp) + 3, (1 << bias_exp) - 7
    m = dataclasses.replace(
        m, formats=dataclasses.replace(m.formats, input=FixedFormat(width, frac)),
        layers=(dataclasses.replace(ly, bias=b),), head=dataclasses.replace(m.head, bias=hb))
    api.save_model(m, tmp_path / "x.hwgm")
    m = api.load_model(tmp_path / "x.hwgm")
    api.generate(m, tmp_path / "rtl", lanes=2)
    f = m.formats.input
    rng = np.random.default_rng(0)
    codes = np.concatenate([
        np.full((1, 3, 3), f.min_code), np.full((1, 3, 3), f.max_code),
        rng.integers(f.min_code, f.max_code + 1, (2, 5, 3))[:, :3]])
    report = api.simulate(tmp_path / "rtl", codes=codes, time_limit=300)
    assert report.ok, report.summary()
    assert api.golden(m, codes=codes).logits.max() > 1 << (bias_exp - 8)  # the bias reached it


# -- packaging -------------------------------------------------------------------------------------
def test_pyproject_supports_python_3_11_to_3_13_and_has_a_vowels_extra():
    import tomllib

    root = Path(__file__).resolve().parent.parent
    proj = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert proj["requires-python"] == ">=3.11,<3.14"
    assert proj["optional-dependencies"]["vowels"][0] == "sktime==1.2.0"


def test_vowels_without_its_data_names_the_extra(monkeypatch):
    import importlib.util

    from hwgen.train import datasets

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sktime" else real(name, *a))
    with pytest.raises(HwgenError, match=r"pip install 'hwgen\[vowels\]'"):
        datasets.load_dataset("vowels")


# -- CLI guidance ----------------------------------------------------------------------------------
def test_a_bare_hwgen_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("random-model", "estimate", "generate", "sim", "build", "run", "explore"):
        assert name in out
    assert "start: hwgen demo" in out


@pytest.mark.parametrize("word,meant", [("simulate", "sim"), ("synthesize", "synth"),
                                        ("genrate", "generate"), ("bitstream", "build")])
def test_a_mistyped_command_suggests_the_meant_one(capsys, word, meant):
    assert main([word]) == 2
    assert f"did you mean {meant!r}?" in capsys.readouterr().err


def test_every_command_takes_json():
    from hwgen.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = [name for name, p in commands.items()
               if name != "dataset" and "--json" not in p._option_string_actions]
    assert missing == []
    export = commands["dataset"]._subparsers._group_actions[0].choices["export"]
    assert "--json" in export._option_string_actions


def test_prove_json_and_next(model, tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=1)
    assert main(["prove", str(rtl), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["properties"] and listed["next"] == [f"hwgen prove {rtl}"]

    def fake_run(props, work, on_result=None):  # the proofs themselves are test_formal's
        return [SimpleNamespace(prop=p, status="pass", ok=True, seconds=0.5, depth=1, detail="",
                                trace=None) for p in props]

    monkeypatch.setattr("hwgen.formal.run_properties", fake_run)
    assert main(["prove", str(rtl), "--only", "timing", "--json"]) == 0
    cap = capsys.readouterr()
    data = json.loads(cap.out)
    assert data["ok"] and data["properties"][0]["status"] == "pass"
    assert data["next"] == [f"hwgen synth {rtl} --target ice40-up5k"]
    assert main(["prove", str(rtl), "--only", "timing"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("PASS: ") and f"next: hwgen synth {rtl}" in cap.err


def test_explore_report_json_and_next(capsys, monkeypatch, tmp_path):
    from types import SimpleNamespace

    row = {"label": "gru32-ternary", "cell": "gru", "quant": "ternary", "hidden": 32, "lanes": 8,
           "valid": 0.9, "test": 0.88, "cycles": 500, "us_per_timestep": 20.0, "luts": 3000,
           "ffs": 900, "bram": 4, "dsp": 0, "fits": True, "trial": "abc",
           "train_command": "hwgen train ...", "build_command": "hwgen build m.hwgm --board x"}
    fake = SimpleNamespace(settings={"trials": ["abc"]}, rows=[row], missing=[],
                           recommendations={"accuracy": row, "logic": row, "ram": None,
                                            "latency": row})
    monkeypatch.setattr("hwgen.explore.report.render", lambda folder, plots=True: fake)
    assert main(["explore", "--report", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["designs"] == 1 and data["recommendations"]["ram"] is None
    assert data["recommendations"]["accuracy"]["lanes"] == 8
    assert data["next"] == ["hwgen build m.hwgm --board x"]


@pytest.mark.sim
def test_run_on_the_simulated_board_says_what_follows(model, tmp_path, capsys):
    assert main(["run", str(model), "--port", "sim", "--inputs", str(tmp_path / "x.npy"),
                 "--lanes", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["next"][0].startswith(f"hwgen build {model} --board icebreaker")


@pytest.mark.train
@pytest.mark.sim
def test_demo_json_is_the_only_stdout(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--hidden", "4", "--epochs", "1", "--lanes", "2",
                 "--simulator", "icarus", "--sim-sequences", "2", "-q", "--json"]) == 0
    cap = capsys.readouterr()
    data = json.loads(cap.out)  # the steps went to stderr
    assert data["ok"] and data["lanes"] == 2 and data["sequences"] == 2
    assert "[1/4] training" in cap.err
    assert data["next"][0] == f"hwgen synth {out} --target ice40-up5k"


# -- more boards -----------------------------------------------------------------------------------
@pytest.mark.parametrize("board,device,luts,blocks", [("ulx3s-12f", "LFE5U-12F", 12144, 32),
                                                      ("ulx3s-25f", "LFE5U-25F", 24288, 56),
                                                      ("ulx3s-45f", "LFE5U-45F", 43848, 108)])
def test_every_ulx3s_size_is_estimated_on_its_own_device(model, capsys, board, device, luts,
                                                         blocks):
    from hwgen.board.catalog import get_board
    from hwgen.targets import get_target

    assert main(["estimate", str(model), "--board", board, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["board"] == board and data["fits"]
    t = get_target(get_board(board).target)
    assert (t.device, t.luts, t.bram_count) == (device, luts, blocks)
    assert get_board(board).make_platform().device == device


def test_a_model_too_big_for_the_small_ulx3s_is_sent_to_a_bigger_one():
    m = api.random_model("lstm", 16, 256, 10, quant="int8")
    with pytest.raises(HwgenError, match="does not fit ulx3s-12f .* What would fit: --board "
                                         "ulx3s-85f fits"):
        from hwgen.boardfit import check_board_fit

        check_board_fit(m, "ulx3s-12f", 4)
    assert not api.estimate(m, board="ulx3s-45f").fits
    assert api.estimate(m, board="ulx3s-85f").fits


# -- the other guidance items --------------------------------------------------------------
def test_a_numeric_csv_is_not_trained_as_a_character_model(tmp_path):
    from hwgen.train.datasets import load_dataset

    csv = tmp_path / "data.csv"
    rows = np.random.default_rng(0).normal(0, 1, (40, 5))
    csv.write_text("a,b,c,d,label\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows))
    with pytest.raises(HwgenError, match="holds a table of numbers .* save an .npz with X"):
        load_dataset(csv)
    prose = tmp_path / "text.txt"
    prose.write_text("It was the best of times, it was the worst of times. 1, 2, 3.\n" * 5)
    assert load_dataset(prose).kind == "charlm"


def test_train_says_first_that_inputs_were_saturated(model, tmp_path, capsys):
    from types import SimpleNamespace

    from hwgen.commands.train import finish
    from hwgen.train.evaluate import Metrics

    m = api.load_model(model)
    r = SimpleNamespace(model=m, metrics=Metrics("accuracy", 0.5, 0.5, 10, saturated=123),
                        torch_test=0.5, seconds=1.0)
    finish(SimpleNamespace(json=False), r, model)
    err = capsys.readouterr().err
    assert err.startswith("hwgen: warning: 123 test input values lie outside the input format "
                          "s8.5 range [-4, 3.96875] and were saturated")
    assert "standardize the features" in err


@pytest.mark.sim
def test_sim_with_a_model_of_another_shape_says_so(model, tmp_path, capsys):
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=1)
    other = tmp_path / "other.hwgm"
    api.save_model(api.random_model("gru", 3, 6, 2), other)
    assert main(["sim", str(rtl), "--model", str(other), "-q"]) == 1
    assert "does not match" in (err := _error(capsys)) and "hidden 6, not 4" in err
    same_shape = tmp_path / "same.hwgm"
    api.save_model(api.random_model("gru", 3, 4, 2, seed=5), same_shape)
    main(["sim", str(rtl), "--model", str(same_shape), "--sequences", "2", "-q"])
    assert "is not the model" in capsys.readouterr().err


@pytest.mark.sim
def test_sim_reports_the_accuracy_against_labels(model, tmp_path, capsys):
    rtl = tmp_path / "rtl"
    api.generate(model, rtl, lanes=2)
    x = np.load(tmp_path / "x.npy")
    y = api.golden(model, features=x).classes[:, -1]
    y[0] = 1 - y[0]  # one label the model gets wrong
    np.save(tmp_path / "y.npy", y)
    assert main(["sim", str(rtl), "--inputs", str(tmp_path / "x.npy"), "--labels",
                 str(tmp_path / "y.npy"), "-q", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["accuracy"] == 0.5
    np.save(tmp_path / "bad.npy", np.zeros(5, np.int64))
    assert main(["sim", str(rtl), "--inputs", str(tmp_path / "x.npy"), "--labels",
                 str(tmp_path / "bad.npy"), "-q"]) == 1
    assert "expected 2 integer class labels" in _error(capsys)


def test_docs_cli_lists_every_command_and_board():
    from hwgen.board.catalog import BOARDS
    from hwgen.cli import build_parser

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    for name in build_parser()._subparsers._group_actions[0].choices:
        assert f"| `{name}" in text, name
    for board in BOARDS:
        assert f"`{board}`" in text, board


def test_explore_plot_legend_lists_only_what_the_run_has(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from hwgen.explore.designs import Platform
    from hwgen.explore.report import Rendered, _plot

    def row(cell, quant, lanes, us, link):
        return {"cell": cell, "quant": quant, "lanes": lanes, "valid": 0.9, "feasible": True,
                "logic_cells": 1000 * lanes, "bram": 4, "us_per_timestep": us,
                "board_us_per_timestep": max(us, link), "trial": f"{cell}{lanes}",
                "label": f"{cell}-{quant}", "front_latency": True}

    rows = [row("gru", "ternary", 1, 20.0, 60.0), row("gru", "ternary", 8, 3.0, 60.0)]
    r = Rendered({"dataset": {"metric": "accuracy", "source": "digits"}}, Platform(
        "ice40-up5k", "icebreaker", 72.0), rows, {"accuracy": rows[0], "latency": rows[0]}, [])
    seen = {}
    real = Axes.legend

    def legend(self, *a, handles=(), **k):
        seen["labels"] = [h.get_label() for h in handles]
        return real(self, *a, handles=handles, **k)

    monkeypatch.setattr(Axes, "legend", legend)
    _plot(r, "latency", tmp_path / "f.png")
    assert seen["labels"] == ["gru", "ternary", "1 lane", "8 lanes", "Pareto front", "recommended"]
