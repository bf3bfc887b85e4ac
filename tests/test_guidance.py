"""What the command line tells a user: --json on every reporting command, next: lines, board-aware
estimates, progress lines, own data (dataset export, stored input normalization), and files that
are checked before work and written atomically."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from conftest import make_model
from hwgen import HwgenError, api
from hwgen.cli import main
from hwgen.fileio import atomic_write_bytes, check_output_dir, check_output_file
from hwgen.golden import GoldenModel
from hwgen.modelfile import save_model


def _cli(capsys, *words):
    rc = main([str(w) for w in words])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "m.hwgm"
    save_model(make_model("gru", "ternary", inputs=3, hidden=4, outputs=2), p)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(0, 1, (2, 3, 3)))
    return p


@pytest.mark.parametrize("words", [
    ["inspect", "{m}"],
    ["golden", "{m}", "--inputs", "{d}/x.npy", "-o", "{d}/y.npy"],
    ["estimate", "{m}", "--target", "ecp5-25k", "--lanes", "2"],
    ["estimate", "{m}", "--board", "icebreaker"],
    ["generate", "{m}", "-o", "{d}/rtl", "--lanes", "2"],
    ["random-model", "--cell", "rnn", "--inputs", "2", "--hidden", "3", "--outputs", "2",
     "--quant", "exp", "-o", "{d}/r.hwgm"],
    ["eval", "{m}", "--dataset", "{d}/data.npz"],
    ["dataset", "export", "digits", "-o", "{d}/X.npy", "--labels", "{d}/labels.npy"],
], ids=lambda w: " ".join(w[:2]))
def test_json_on_every_reporting_command(model_file, capsys, words):
    d = model_file.parent
    np.savez(d / "data.npz", X=np.random.default_rng(1).normal(0, 1, (10, 3, 3)),
             y=np.arange(10) % 2)
    rc, out, err = _cli(capsys, *[w.format(m=model_file, d=d) for w in words], "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert isinstance(data, dict) and "next:" not in err
    rc, out, err = _cli(capsys, *[w.format(m=model_file, d=d) for w in words])
    assert rc == 0 and not out.lstrip().startswith("{")
    if words[0] != "dataset":
        assert err.splitlines()[-1].startswith("next: hwgen ")
        assert data["next"] == [ln.removeprefix("next: ") for ln in err.splitlines()
                                if ln.startswith("next: ")]


def test_estimate_board_counts_the_uart_link_and_gives_the_time(tmp_path, capsys):
    """A model that fits the bare device but not the board build with its UART link."""
    m = make_model("gru", "int8", inputs=16, hidden=24, outputs=10)
    save_model(m, tmp_path / "m.hwgm")
    rc, out, _ = _cli(capsys, "estimate", tmp_path / "m.hwgm", "--target", "ice40-up5k",
                      "--lanes", "16")
    assert rc == 0 and "fit         yes" in out
    rc, out, _ = _cli(capsys, "estimate", tmp_path / "m.hwgm", "--board", "icebreaker",
                      "--lanes", "16", "--json")
    d = json.loads(out)
    assert not d["fits"] and d["uart_link"]["luts"] > 300
    # the core clock the build starts at: the PLL's fastest frequency at most the expected Fmax
    assert d["clock"] == "auto" and d["clock_mhz"] == 72.0 and d["baud"] == 3_000_000
    assert d["us_per_timestep"] == pytest.approx(d["estimate"]["cycles_per_timestep"] / 72.0)
    rc, out, _ = _cli(capsys, "estimate", tmp_path / "m.hwgm", "--board", "icebreaker",
                      "--lanes", "16")
    assert "fit         NO: this model does not fit icebreaker" in out
    hint = re.search(r"What would fit: --lanes (\d+) fits", out)
    assert hint and int(hint.group(1)) < 16 and "--board ulx3s-12f fits" in out  # smallest
    assert "--target" not in out  # build's own options
    # without --lanes, estimate picks what build would pick: the most that fit
    assert api.estimate(m, board="icebreaker").lanes == 8
    # build refuses it the same way, before any tool
    rc, _, err = _cli(capsys, "build", tmp_path / "m.hwgm", "--board", "icebreaker", "--lanes",
                      "16", "-o", tmp_path / "b")
    assert rc == 1 and hint.group(0) in err and "--target" not in err
    assert not (tmp_path / "b").exists()


def test_build_shows_progress_and_how_to_flash(tmp_path, capsys, monkeypatch):
    from hwgen.board.build import BuildResult

    def fake_build(core, board, out, baud, seed, clock, timeout, link, progress):
        core._MustUse__silence = True  # a stub: the core is never elaborated
        out.mkdir(parents=True)
        (out / "top.bin").write_bytes(b"bits")
        return BuildResult("icebreaker", out / "top.bin", 24, baud, {}, {}, 75.0, 72.0,
                           clock_request=clock)

    monkeypatch.setattr("hwgen.board.build.build_board", fake_build)
    save_model(make_model("gru", "ternary", inputs=3, hidden=4, outputs=2), tmp_path / "m.hwgm")
    rc, out, err = _cli(capsys, "build", tmp_path / "m.hwgm", "--board", "icebreaker", "-o",
                        tmp_path / "b")
    assert rc == 0 and "bitstream" in out
    assert "[0:00] build: icebreaker with 4 lanes" in err
    assert f"next: iceprog {tmp_path / 'b' / 'top.bin'}" in err
    assert (tmp_path / "b" / "model.hwgm").is_file()


# -- own data: export and normalization ------------------------------------------------------------
def test_dataset_export_and_stored_normalization_round_trip(tmp_path, capsys):
    """vowels: raw export + the model's stored normalization = the normalized training data."""
    ds = api.load_dataset("vowels")
    m = make_model("gru", "ternary", inputs=12, hidden=6, outputs=9)
    m.meta["input_norm"] = ds.norm
    save_model(m, tmp_path / "m.hwgm")
    rc, out, _ = _cli(capsys, "dataset", "export", "vowels", "--split", "test", "-o",
                      tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--lengths",
                      tmp_path / "L.npy")
    assert rc == 0 and "X (370, 29, 12) float64" in out
    raw = np.load(tmp_path / "X.npy")
    assert raw.shape == ds.test.X.shape and np.abs(raw - ds.test.X).max() > 1  # not normalized
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), ds.test.y)
    np.testing.assert_array_equal(np.load(tmp_path / "L.npy"), ds.test.lengths)
    assert _cli(capsys, "golden", tmp_path / "m.hwgm", "--inputs", tmp_path / "X.npy", "-o",
                tmp_path / "Y.npy")[0] == 0
    want = GoldenModel(m).run(m.formats.input.quantize(ds.test.X)[0]).logits
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), want)
    # --normalized export + --no-normalize: the same; raw features without it: different
    _cli(capsys, "dataset", "export", "vowels", "-o", tmp_path / "Xn.npy", "--normalized")
    _cli(capsys, "golden", tmp_path / "m.hwgm", "--inputs", tmp_path / "Xn.npy", "-o",
         tmp_path / "Yn.npy", "--no-normalize")
    np.testing.assert_array_equal(np.load(tmp_path / "Yn.npy"), want)
    rc, _, err = _cli(capsys, "golden", tmp_path / "m.hwgm", "--inputs", tmp_path / "X.npy",
                      "-o", tmp_path / "Yr.npy", "--no-normalize")
    assert rc == 0
    assert not np.array_equal(np.load(tmp_path / "Yr.npy"), want)
    # the API does the same
    np.testing.assert_array_equal(api.golden(m, features=raw).logits, want)


def test_float_features_are_never_truncated_to_codes():
    m = make_model("gru", "ternary", inputs=3, hidden=4, outputs=2)
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 3))
    with pytest.raises(HwgenError, match="input codes must be integers, not float64"):
        GoldenModel(m).run(x)
    with pytest.raises(HwgenError, match="give either features"):
        api.golden(m)
    r = api.golden(m, features=x)
    np.testing.assert_array_equal(r.logits, api.golden(m, codes=api.quantize(m, x).codes).logits)


def test_bad_stored_normalization_is_a_clear_error():
    m = make_model("gru", "ternary", inputs=3, hidden=4, outputs=2)
    m.meta["input_norm"] = {"mean": [0, 0], "std": [1, 1]}
    with pytest.raises(HwgenError, match=r"input_norm.mean' must be 3 finite numbers"):
        api.golden(m, features=np.zeros((1, 2, 3)))
    assert api.golden(m, features=np.zeros((1, 2, 3)), normalize=False).logits.shape == (1, 2, 2)


# -- outputs: checked first, written whole ---------------------------------------------------------
def test_output_locations_are_checked_before_work(tmp_path):
    with pytest.raises(HwgenError, match="the folder .*missing does not exist"):
        check_output_file(tmp_path / "missing" / "y.npy")
    with pytest.raises(HwgenError, match="is a folder; expected a file name"):
        check_output_file(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(HwgenError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(HwgenError, match="is not a folder"):
        check_output_dir(tmp_path / "f" / "sub")
    if os.geteuid() != 0:  # root may write anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(HwgenError, match="not writable"):
            check_output_file(tmp_path / "ro" / "y.npy")


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "y.bin"
    target.write_bytes(b"old")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(HwgenError, match="cannot write .*y.bin: No space left on device"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["y.bin"]


def test_golden_with_an_unwritable_output_fails_before_running(model_file, capsys):
    rc, _, err = _cli(capsys, "golden", model_file, "--inputs", model_file.parent / "x.npy",
                      "-o", model_file.parent / "nope" / "y.npy")
    assert rc == 1 and err.count("\n") == 1 and "does not exist" in err


def test_an_npz_given_as_npy_is_refused_and_closed(tmp_path):
    from hwgen.fileio import load_npy

    np.savez(tmp_path / "a.npz", x=np.zeros(2))
    with pytest.raises(HwgenError, match="holds several arrays"):
        load_npy(tmp_path / "a.npz")  # an unclosed file would fail this test (warnings = errors)
    import gc

    gc.collect()
