"""hwgen explore: the design space, fronts and recommendations (pure), the command's errors, and
a tiny exploration on a local Ray (3 trials, 2 epochs on digits) that is then resumed."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.explore.designs import make_platform, mark_fronts, pareto_front, recommend
from hwgen.explore.space import (
    DatasetRef,
    TrialConfig,
    dataset_ref,
    grid,
    parse_list,
    sample,
    trial_hash,
)
from hwgen.spec import HwgenError

VOWELS = DatasetRef("vowels", "vowels", "classify")


# -- the design space ------------------------------------------------------------------------------
def test_trial_hash_names_the_configuration_and_the_dataset():
    a = TrialConfig("gru", "ternary", 32, 40)
    assert trial_hash(VOWELS, a) == trial_hash(VOWELS, TrialConfig("gru", "ternary", 32, 40))
    others = [TrialConfig("lstm", "ternary", 32, 40), TrialConfig("gru", "pow2", 32, 40),
              TrialConfig("gru", "ternary", 64, 40), TrialConfig("gru", "ternary", 32, 41),
              TrialConfig("gru", "ternary", 32, 40, seed=1),
              TrialConfig("gru", "ternary", 32, 40, batch=16),
              TrialConfig("gru", "ternary", 32, 40, lr=1e-3)]
    hashes = {trial_hash(VOWELS, c) for c in [a, *others]}
    assert len(hashes) == len(others) + 1
    assert trial_hash(DatasetRef("digits", "digits", "classify"), a) != trial_hash(VOWELS, a)


def test_a_dataset_file_is_identified_by_its_contents(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(0, 1, (30, 4, 3)).astype(np.float32), rng.integers(0, 3, 30)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    (tmp_path / "b.npz").write_bytes((tmp_path / "a.npz").read_bytes())
    np.savez(tmp_path / "c.npz", X=X + 1, y=y)
    a, b, c = (dataset_ref(tmp_path / n) for n in ("a.npz", "b.npz", "c.npz"))
    assert a.ident == b.ident != c.ident and a.ident.startswith("sha256:")
    assert a.kind == "classify" and a.source == str((tmp_path / "a.npz").resolve())
    with pytest.raises(HwgenError, match="unknown dataset 'nope'"):
        dataset_ref("nope")


def test_grid_and_sample():
    g = grid(["rnn", "gru"], ["ternary", "int8"], [16, 32], budget=5, batch=16)
    assert len(g) == 8 and g[0] == TrialConfig("rnn", "ternary", 16, 5, batch=16)
    assert [c.hidden for c in g[:2]] == [16, 32] and g[-1].label() == "gru h32 int8"
    s = sample(g, 3, seed=1)
    assert len(s) == 3 and len(set(s)) == 3 and s == sample(g, 3, seed=1)
    assert [g.index(c) for c in s] == sorted(g.index(c) for c in s)
    assert sample(g, 100) == g


@pytest.mark.parametrize("text, kwargs, message", [
    ("16,,32", {"cast": int}, "--hidden: expected a comma-separated list, not '16,,32'"),
    ("16,x", {"cast": int}, "--hidden: 'x' is not a valid value"),
    ("0,4", {"cast": int}, "--hidden: expected positive integers, not 0"),
    ("gru,tcn", {"choices": ("rnn", "gru", "lstm")},
     "--hidden: unknown value 'tcn'; expected one of rnn, gru, lstm"),
])
def test_parse_list_errors(text, kwargs, message):
    with pytest.raises(HwgenError) as e:
        parse_list(text, "--hidden", **kwargs)
    assert str(e.value) == message


def test_parse_list_keeps_order_and_drops_duplicates():
    assert parse_list(" 32, 16,32 ", "--hidden", cast=int) == [32, 16]


def test_trial_config_validates():
    with pytest.raises(HwgenError, match="unknown cell 'tcn'; expected one of rnn, gru, lstm"):
        TrialConfig("tcn", "ternary", 8, 1)
    with pytest.raises(HwgenError, match="hidden must be a positive integer, not 0"):
        TrialConfig("gru", "ternary", 0, 1)


# -- fronts and recommendations -------------------------------------------------------------------
def _row(valid, logic, bram=1, us=10.0, feasible=True, lanes=1, trial="t"):
    return {"valid": valid, "logic_cells": logic, "bram": bram, "us_per_timestep": us,
            "board_us_per_timestep": us, "feasible": feasible, "lanes": lanes, "trial": trial}


def test_pareto_front_keeps_only_non_dominated_feasible_designs():
    rows = [_row(0.90, 1000), _row(0.95, 2000), _row(0.93, 2500), _row(0.97, 3000),
            _row(0.99, 900, feasible=False), _row(0.90, 1200), _row(0.97, 3000, lanes=2)]
    assert pareto_front(rows, "logic_cells") == [0, 1, 3, 6]
    # Lower is better (bits per character): the same rows read as costs of a bpc metric.
    assert pareto_front(rows, "logic_cells", higher_is_better=False) == [0]
    mark_fronts(rows)
    assert [r["front_logic"] for r in rows] == [True, True, False, True, False, False, True]


def test_pareto_front_settles_exact_ties_with_a_second_cost():
    rows = [_row(0.9, 1000, bram=2, us=40.0), _row(0.9, 1100, bram=2, us=20.0),
            _row(0.9, 1000, bram=2, us=40.0), _row(0.8, 900, bram=1, us=50.0)]
    assert pareto_front(rows, "bram") == [3, 0, 2]  # 1 loses to 0 and 2 on logic
    assert pareto_front(rows, "logic_cells") == [3, 0, 2]  # 1 has more logic for the same
    assert pareto_front(rows, "us_per_timestep") == [1]


def test_pareto_front_brute_force_on_random_rows():
    rng = np.random.default_rng(3)
    rows = [_row(float(v), int(c), feasible=bool(f)) for v, c, f in
            zip(rng.integers(0, 10, 60) / 10, rng.integers(1, 20, 60), rng.random(60) < 0.8,
                strict=True)]
    front = set(pareto_front(rows, "logic_cells"))
    for i, r in enumerate(rows):
        dominated = any(o["feasible"] and o["valid"] >= r["valid"] and o["logic_cells"]
                        <= r["logic_cells"] and (o["valid"], o["logic_cells"])
                        != (r["valid"], r["logic_cells"]) for o in rows)
        assert (i in front) == (r["feasible"] and not dominated)


def test_recommend_per_objective():
    rows = [_row(0.96, 3000, bram=9, us=50.0, trial="big"),
            _row(0.95, 1200, bram=6, us=90.0, trial="small"),
            _row(0.95, 1900, bram=3, us=20.0, trial="fast"),
            _row(0.80, 500, bram=1, us=5.0, trial="poor"),
            _row(0.99, 400, bram=1, us=1.0, feasible=False, trial="too big")]
    r = recommend(rows, tolerance=0.02)
    assert {k: v["trial"] for k, v in r.items()} == {
        "accuracy": "big", "logic": "small", "ram": "fast", "latency": "fast"}
    r0 = recommend(rows, tolerance=0.0)
    assert {v["trial"] for v in r0.values()} == {"big"}
    assert recommend([_row(0.9, 1, feasible=False)]) == dict.fromkeys(r)
    # bits per character: lower is better.
    assert recommend(rows, higher_is_better=False)["accuracy"]["trial"] == "poor"


def test_make_platform():
    p = make_platform(board="icebreaker")
    assert (p.target, p.board, p.clock_mhz) == ("ice40-up5k", "icebreaker", 72.0)  # the PLL
    assert make_platform(target="ecp5-25k", clock_mhz=50).clock_mhz == 50.0
    for kw, msg in [
        ({}, "give either --board or --target (not both)"),
        ({"board": "icebreaker", "target": "ecp5-25k"}, "give either --board or --target"),
        ({"target": "ecp5-25k"}, "--target ecp5-25k needs --clock-mhz"),
        ({"board": "icebreaker", "clock_mhz": 24},
         "--clock-mhz goes with --target; on icebreaker the core runs at the PLL clock 'hwgen "
         "build --clock auto' starts at (72 MHz)"),
        ({"board": "nope"}, "unknown board 'nope'"),
    ]:
        with pytest.raises(HwgenError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            make_platform(**kw)


# -- the command's errors -------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    ([], "hwgen: error: give --dataset NAME|PATH (or --report DIR)"),
    (["--dataset", "digits", "--board", "icebreaker"],
     "hwgen: error: give -o DIR, the exploration folder"),
    (["--dataset", "digits", "--target", "ecp5-25k", "-o", "x"],
     "hwgen: error: --target ecp5-25k needs --clock-mhz (the clock for microseconds per "
     "timestep), or give --board"),
    (["--dataset", "digits", "--board", "icebreaker", "--hidden", "8,0", "-o", "x"],
     "hwgen: error: --hidden: expected positive integers, not 0"),
    (["--report", "nowhere"],
     "hwgen: error: nowhere: no exploration.json; not an exploration folder (written by hwgen "
     "explore -o DIR)"),
])
def test_explore_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["explore", *argv]) == 1
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("address, message", [
    ("nonsense", "--address must be host:port, 'auto' or ray://host:port, not 'nonsense'"),
    ("127.0.0.1:9", "cannot reach the Ray cluster at 127.0.0.1:9: Connection refused"),
])
def test_a_cluster_address_is_checked_before_ray_starts(address, message, capsys, tmp_path,
                                                        monkeypatch):
    # No ~/.ray/auth_token here: the command leaves RAY_AUTH_MODE alone, so the local Ray that
    # later tests start in this process is not switched to token authentication.
    monkeypatch.setenv("HOME", str(tmp_path))
    pytest.importorskip("ray")
    pytest.importorskip("torch")
    argv = ["explore", "--dataset", "digits", "--board", "icebreaker", "--address", address,
            "-o", str(tmp_path / "x")]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "hwgen: error: " + message


def test_explore_without_ray_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["explore", "--dataset", "digits", "--board", "icebreaker",
                 "-o", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.strip() == (
        "hwgen: error: hwgen explore runs on Ray, which is not installed; install the explore "
        "extra: pip install 'hwgen[explore]' (in a checkout: pip install -e '.[explore]')")
    assert not (tmp_path / "x").exists()


def test_the_rest_of_hwgen_does_not_import_ray():
    code = ("import sys, pkgutil, importlib, hwgen, hwgen.cli\n"
            "hwgen.cli.build_parser()\n"
            "for m in pkgutil.walk_packages(hwgen.__path__, 'hwgen.'):\n"
            "    if not m.name.startswith(('hwgen.benches',)):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(k for k in sys.modules if k == 'ray' or k.startswith('ray.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "[]"


# -- a tiny exploration on a local Ray ------------------------------------------------------------
TINY = dict(budget=2, batch=32)
CONFIGS = [TrialConfig("rnn", "ternary", 8, **TINY), TrialConfig("gru", "ternary", 8, **TINY),
           TrialConfig("gru", "bogus", 8, **TINY)]  # the last one fails inside its trial
LANES = [1, 8]


def _explore(folder, logs):
    from hwgen.explore.runner import explore

    return explore(folder, dataset_ref("digits"), CONFIGS, make_platform(board="icebreaker"),
                   lanes=LANES, cpus=2, log=logs.append)


def _table(folder):
    with open(folder / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _without_times(folder):
    """The table less what a rerun measures anew (training seconds)."""
    return [{k: v for k, v in x.items() if k not in ("train_seconds",)} for x in _table(folder)]


@pytest.fixture(scope="module")
def ray_local():
    pytest.importorskip("torch")
    ray = pytest.importorskip("ray")
    from hwgen.explore.runner import require_ray

    require_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(ray_local, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore") / "tiny"
    logs: list[str] = []
    r = _explore(folder, logs)
    return folder, r, logs


@pytest.mark.train
def test_tiny_exploration_table_front_and_recommendation(tiny):
    from hwgen.modelfile import load_model
    from hwgen.train.datasets import load_dataset
    from hwgen.train.evaluate import evaluate

    folder, r, logs = tiny
    assert "trials: running 3 on Ray (running, 2 CPUs)" in logs[0]
    rows = _table(folder)
    designs = [x for x in rows if x["lanes"]]
    assert [(x["cell"], x["lanes"]) for x in designs] == [("rnn", "1"), ("rnn", "8"),
                                                          ("gru", "1"), ("gru", "8")]
    failed = [x for x in rows if not x["lanes"]]
    assert len(failed) == 1 and failed[0]["status"] == "error"
    assert failed[0]["error"].startswith("unknown quantization 'bogus'")
    # The golden model's metrics, recomputed from the stored model file.
    ds = load_dataset("digits")
    for x in designs:
        m = load_model(x["model"])
        assert float(x["test"]) == evaluate(m, ds, "test").golden_value
        assert float(x["valid"]) == evaluate(m, ds, "valid").golden_value
        assert int(x["cycles"]) > 0 and int(x["bram"]) > 0 and int(x["logic_cells"]) > 0
        assert float(x["us_per_timestep"]) == pytest.approx(int(x["cycles"]) / 72.0, abs=1e-4)
    assert int(designs[0]["cycles"]) > int(designs[1]["cycles"])  # 8 lanes are faster
    # Fronts and recommendations agree with the rows.
    doc = json.loads((folder / "trials.json").read_text())
    assert doc["columns"][0] == "trial" and len(doc["rows"]) == 5
    feasible = [x for x in doc["rows"] if x.get("feasible")]
    best = max(x["valid"] for x in feasible)
    rec = doc["recommendations"]["accuracy"]
    chosen = next(x for x in feasible if (x["trial"], x["lanes"]) == (rec["trial"], rec["lanes"]))
    assert chosen["valid"] == best and chosen["front_logic"]
    # issue 25: "fastest" counts the board's link: on the iCEBreaker the UART bounds these small
    # designs, so the fastest is the cheapest of the equally fast ones, not the most lanes
    rec = doc["recommendations"]["latency"]
    fastest = next(x for x in feasible if (x["trial"], x["lanes"]) == (rec["trial"], rec["lanes"]))
    assert fastest["board_us_per_timestep"] == pytest.approx(
        max(fastest["us_per_timestep"], fastest["uart_us_per_timestep"]), abs=1e-4)
    assert fastest["board_us_per_timestep"] == fastest["uart_us_per_timestep"]
    assert not any(o["valid"] >= fastest["valid"]
                   and o["board_us_per_timestep"] < fastest["board_us_per_timestep"]
                   for o in feasible)
    for x in feasible:
        dominated = any(o["valid"] >= x["valid"] and o["logic_cells"] <= x["logic_cells"]
                        and ((o["valid"], o["logic_cells"]) != (x["valid"], x["logic_cells"])
                             or o["us_per_timestep"] < x["us_per_timestep"]) for o in feasible)
        assert x["front_logic"] == (not dominated)
    for name in ("logic", "ram", "latency"):
        png = (folder / f"front_{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    summary = (folder / "summary.md").read_text()
    assert f"hwgen build {chosen['model']} --board icebreaker --lanes {chosen['lanes']}" in summary
    assert "bogus" in summary and "3 in the space, 2 trained, 1 failed" in summary


@pytest.mark.train
def test_the_train_command_reproduces_the_model_file(tiny, tmp_path, monkeypatch):
    folder, r, _ = tiny
    row = r.recommendations["accuracy"]
    argv = shlex.split(row["train_command"])
    assert argv[:2] == ["hwgen", "train"]
    argv[argv.index("-o") + 1] = str(tmp_path / "again.hwgm")
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:] + ["-q"]) == 0
    assert (tmp_path / "again.hwgm").read_bytes() == (folder / "trials" /
                                                      f"{row['trial']}.hwgm").read_bytes()


@pytest.mark.train
def test_the_exploration_resumes_where_it_stopped(tiny, capsys):
    folder, _, _ = tiny
    before = _without_times(folder)
    ok = [x for x in _table(folder) if x["status"] == "ok"]
    lost = ok[-1]["trial"]
    # As if the exploration had been stopped before this trial finished.
    (folder / "trials" / f"{lost}.json").unlink()
    (folder / "trials" / f"{lost}.hwgm").unlink()
    logs: list[str] = []
    _explore(folder, logs)
    assert logs[0].startswith("trials: running 1 on Ray")  # the two others are cached
    assert sum(line.startswith("[") for line in logs) == 1
    assert _without_times(folder) == before  # same seed, same model, same table
    runs = json.loads((folder / "exploration.json").read_text())["runs"]
    assert [(x["ran"], x["cached"], x["failed"]) for x in runs] == [(3, 0, 1), (1, 2, 0)]
    # Everything cached: no trial runs; --report re-renders the same table.
    logs.clear()
    _explore(folder, logs)
    assert logs == [f"trials: all 3 cached in {folder / 'trials'}; nothing to train"]
    (folder / "trials.csv").unlink()
    assert main(["explore", "--report", str(folder), "--no-plots"]) == 0
    assert "## Recommended: best valid accuracy" in capsys.readouterr().out
    assert _without_times(folder) == before
    # --report needs neither Ray nor PyTorch.
    (folder / "trials.csv").unlink()
    code = ("import sys; sys.modules['ray'] = sys.modules['torch'] = None\n"
            "from hwgen.cli import main\n"
            f"sys.exit(main(['explore', '--report', {str(folder)!r}, '--no-plots']))\n")
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=True)
    after = _without_times(folder)
    diffs = [(k, b[k], a[k]) for b, a in zip(before, after, strict=True) for k in b if b[k] != a[k]]
    assert not diffs


@pytest.mark.train
@pytest.mark.synth
def test_synthesis_of_the_best_front_design(tiny, tmp_path):
    """--synth: the best feasible front design through Yosys + nextpnr (ECP5, one seed), as a Ray
    task; the trials come from the tiny exploration's cache (copied), so nothing trains."""
    import shutil

    from hwgen.explore.runner import explore

    folder, _, _ = tiny
    shutil.copytree(folder / "trials", tmp_path / "x" / "trials")
    logs: list[str] = []
    r = explore(tmp_path / "x", dataset_ref("digits"), CONFIGS[:1],  # the RNN: the smallest
                make_platform(target="ecp5-25k", clock_mhz=50), lanes=[1], synth=True,
                synth_max=1, plots=False, log=logs.append)
    assert logs[0] == f"trials: all 1 cached in {tmp_path / 'x' / 'trials'}; nothing to train"
    done = [x for x in r.rows if x.get("synth_luts") is not None]
    assert len(done) == 1 and logs[1].startswith("synthesis: 1 of the ")
    x = done[0]
    assert x == r.recommendations["accuracy"]
    assert x["synth_luts"] > 100 and x["synth_bram"] >= 1 and x["synth_fmax_mhz"] > 20
    assert x["meets_clock"] == (x["synth_fmax_mhz"] >= 50)
    saved = json.loads((tmp_path / "x" / "synth" / f"{x['trial']}-p1-ecp5-25k" /
                        "explore_synth.json").read_text())
    assert saved["status"] == "ok" and saved["luts"] == x["synth_luts"]
    assert saved["cycles_per_timestep"] == x["cycles"]  # the accelerator generated now
    assert saved["tool_versions"]["yosys"].startswith("Yosys 0.69")
