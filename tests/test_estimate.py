"""hwgen.estimate: memory layout, RAM-block tiling, logic model and cycles (pure functions)."""

from __future__ import annotations

import json

import pytest

from conftest import make_model
from hwgen.cli import main
from hwgen.estimate import LOGIC_MODEL, datapath_kind, estimate, format_estimate, memory_layout
from hwgen.gateware.schedule import cycles_per_timestep
from hwgen.modelfile import save_model
from hwgen.spec import HwgenError, WeightEncoding
from hwgen.targets import Family


def test_datapath_kinds():
    assert datapath_kind(WeightEncoding.ternary()) == "addsub"
    assert datapath_kind(WeightEncoding.binary()) == "addsub"
    assert datapath_kind(WeightEncoding.pow2()) == "addsub"  # 0.1 fixed point: ternary levels
    assert datapath_kind(WeightEncoding.pow2(1, 1)) == "mult"
    assert datapath_kind(WeightEncoding.exp(7)) == "shift"
    assert datapath_kind(WeightEncoding.int_n(8)) == "mult"


def test_memory_layout_follows_the_gateware():
    m = make_model("gru", "ternary", inputs=16, hidden=64, outputs=10)
    mems = {name: (w, d, p) for name, w, d, p in memory_layout(m, 8)}
    # One ROM per encoding, P codes a word, each row of each matrix as ceil(cols / P) words.
    assert mems["weights.ternary"] == (16, 192 * (2 + 8) + 10 * 8, (192 * 80 + 10 * 64) * 2)
    assert mems["biases"][1] == 192 + 64 + 10 + 1  # gate biases, GRU b_hn, head, one spare
    f = m.formats
    assert mems["sigmoid.table"] == (9, 1 << f.sigmoid_in_width, (1 << f.sigmoid_in_width) * 9)
    assert mems["tanh.table"][:2] == (8, 1 << f.tanh_in_width)


def test_lstm_tanh_table_has_two_copies_on_ice40_only():
    m = make_model("lstm", "ternary", inputs=4, hidden=8)
    ice = [name for name, *_ in memory_layout(m, 4, Family.ICE40)]
    ecp = [name for name, *_ in memory_layout(m, 4, Family.ECP5)]
    assert "tanh.table.copy1" in ice and "tanh.table" in ecp


def test_padding_counts_in_the_memory():
    m = make_model("rnn", "ternary", inputs=5, hidden=10, outputs=3)
    mems = {name: (w, d, p) for name, w, d, p in memory_layout(m, 4)}
    # 5 columns -> 2 words of 4 codes, 10 -> 3; the head's 10 columns -> 3 words.
    assert mems["weights.ternary"] == (8, 10 * (2 + 3) + 3 * 3, (10 * 15 + 3 * 10) * 2)


def test_mixed_encodings_get_one_rom_each():
    import dataclasses

    from hwgen.quant import QuantConfig

    m = make_model("gru", "ternary", inputs=4, hidden=8, outputs=3)
    head = QuantConfig.parse("int8").quantize(m.head.w.values, fan_in=8, fan_out=3)
    m = dataclasses.replace(m, head=dataclasses.replace(m.head, w=head))
    mems = {name: (w, d) for name, w, d, _ in memory_layout(m, 4)}
    assert mems["weights.ternary"] == (8, 24 * (1 + 2)) and mems["weights.int8"] == (32, 3 * 2)


def test_estimate_of_a_64_unit_gru_on_up5k():
    m = make_model("gru", "ternary", inputs=16, hidden=64, outputs=10)
    e = estimate(m, 8, "ice40-up5k")
    assert e.weight_bits == m.weight_memory_bits == (192 * 80 + 640) * 2
    w = {x.name: x for x in e.memories}
    assert (w["weights.ternary"].blocks, w["weights.ternary"].mode) == (8, (16, 256))
    assert e.bram_blocks == sum(x.blocks for x in e.memories) == 13  # Yosys 0.69: 13
    assert e.bram_bits == e.bram_blocks * 4096
    lm = LOGIC_MODEL[Family.ICE40]
    assert e.luts_breakdown["lanes"] == round(8 * lm["lane"]["addsub"])
    assert e.luts == sum(e.luts_breakdown.values())
    assert e.cycles_exact and e.cycles_per_timestep == cycles_per_timestep(m, 8)
    assert e.macs_per_timestep == 192 * 80 + 640
    assert "4 SPRAM blocks unused" in e.notes[0]
    text = format_estimate(e)
    assert "weights.ternary" in text and "cycles      " in text


def test_small_roms_stay_in_logic():
    m = make_model("gru", "ternary", inputs=16, hidden=32, outputs=10)
    w = {x.name: x for x in estimate(m, 8, "ice40-up5k").memories}
    assert w["biases"].placement == "logic" and w["biases"].blocks == 0  # as Yosys 0.69 maps it
    assert w["weights.ternary"].placement == "bram"


def test_int8_on_ecp5_uses_one_multiplier_per_lane():
    e = estimate(make_model("gru", "int8", inputs=16, hidden=64), 8, "ecp5-25k")
    assert e.dsp == 8
    assert estimate(make_model("gru", "int8", inputs=16, hidden=64), 8, "ice40-up5k").dsp == 0


def test_int8_costs_more_logic_and_memory_than_ternary():
    t = estimate(make_model("lstm", "ternary", inputs=8, hidden=32), 8, "ice40-up5k")
    i = estimate(make_model("lstm", "int8", inputs=8, hidden=32), 8, "ice40-up5k")
    assert i.weight_bits == 4 * t.weight_bits
    assert i.luts > t.luts + 8 * 90 and i.bram_blocks >= t.bram_blocks


def test_more_lanes_fewer_cycles_more_logic():
    m = make_model("gru", "exp", inputs=16, hidden=32)
    a, b = estimate(m, 4, "ecp5-25k"), estimate(m, 16, "ecp5-25k")
    assert b.cycles_per_timestep < a.cycles_per_timestep and b.luts > a.luts


def test_estimate_checks_lanes():
    m = make_model("rnn", inputs=5, hidden=8)
    with pytest.raises(HwgenError, match="Lane count 9 exceeds the widest matrix row"):
        estimate(m, 9, "ice40-up5k")
    with pytest.raises(HwgenError, match="Lane count must be a positive integer, not 0"):
        estimate(m, 0, "ice40-up5k")


def test_estimate_command(tmp_path, capsys):
    save_model(make_model("gru", "ternary", inputs=16, hidden=64, outputs=10), tmp_path / "m")
    assert main(["estimate", str(tmp_path / "m"), "--lanes", "8", "--target", "ice40-up5k"]) == 0
    out = capsys.readouterr().out
    assert "block RAM   13 / 30 (43%) SB_RAM40_4K" in out and "fit         yes" in out
    save_model(make_model("gru", "int8", inputs=16, hidden=64, outputs=10), tmp_path / "big")
    assert main(["estimate", str(tmp_path / "big"), "--lanes", "8", "--target", "ice40-up5k",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] is False and d["bram_blocks"] == 37 and "SB_RAM40_4K" in d["problems"][0]
