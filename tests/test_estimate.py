"""hwgen.estimate: memory layout, RAM-block tiling, logic model and cycles (pure functions)."""

from __future__ import annotations

import json

import pytest

from conftest import make_model
from hwgen.cli import main
from hwgen.estimate import datapath_kind, estimate, format_estimate, memory_layout
from hwgen.gateware.plan import make_plan
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
    assert mems["weights0"] == (16, 192 * (2 + 8) + 10 * 8, (192 * 80 + 10 * 64) * 2)
    assert mems["biases"][1] == 192 + 64 + 10 + 1  # gate biases, GRU b_hn, head, one spare
    f = m.formats
    assert mems["sigmoid.table"] == (9, 1 << f.sigmoid_in_width, (1 << f.sigmoid_in_width) * 9)
    assert mems["tanh.table"][:2] == (8, 1 << f.tanh_in_width)
    # h: two banks of 8 words of 8 values, doubled by the zero region; the GRU's narrow copy
    assert mems["state"] == (8 * 8, 2 * (2 * 8), 2 * 64 * 8)
    assert mems["hprev"] == (8, 2 * 64, 64 * 8)
    plan = make_plan(m, 8)
    assert [x.name for x in plan.memories()] == list(mems)


def test_lstm_tanh_table_has_two_copies_on_ice40_only():
    m = make_model("lstm", "ternary", inputs=4, hidden=8)
    ice = [name for name, *_ in memory_layout(m, 4, Family.ICE40)]
    ecp = [name for name, *_ in memory_layout(m, 4, Family.ECP5)]
    assert "tanh.table.copy1" in ice and "tanh.table" in ecp
    assert "cstate" not in ice  # 8 units: c (104 bits) lives in registers
    big = [name for name, *_ in memory_layout(make_model("lstm", hidden=16), 4, Family.ICE40)]
    assert "cstate" in big  # 16 words: its own block RAM


def test_padding_counts_in_the_memory():
    m = make_model("rnn", "ternary", inputs=5, hidden=10, outputs=3)
    mems = {name: (w, d, p) for name, w, d, p in memory_layout(m, 4)}
    # 5 columns -> 2 words of 4 codes, 10 -> 3; the head's 10 columns -> 3 words.
    assert mems["weights0"] == (8, 10 * (2 + 3) + 3 * 3, (10 * 15 + 3 * 10) * 2)


def test_mixed_encodings_get_one_rom_each():
    import dataclasses

    from hwgen.quant import QuantConfig

    m = make_model("gru", "ternary", inputs=4, hidden=8, outputs=3)
    head = QuantConfig.parse("int8").quantize(m.head.w.values, fan_in=8, fan_out=3)
    m = dataclasses.replace(m, head=dataclasses.replace(m.head, w=head))
    mems = {name: (w, d) for name, w, d, _ in memory_layout(m, 4)}
    assert mems["weights0"] == (8, 24 * (1 + 2)) and mems["weights1"] == (32, 3 * 2)


def test_estimate_of_a_64_unit_gru_on_up5k():
    m = make_model("gru", "ternary", inputs=16, hidden=64, outputs=10)
    e = estimate(m, 8, "ice40-up5k")
    assert e.weight_bits == m.weight_memory_bits == (192 * 80 + 640) * 2
    w = {x.name: x for x in e.memories}
    assert (w["weights0"].blocks, w["weights0"].mode) == (8, (16, 256))
    assert e.bram_blocks == sum(x.blocks for x in e.memories) == 18  # Yosys 0.69: 18
    assert all(x.placement == "bram" for x in e.memories)  # every memory marked block RAM
    assert e.bram_bits == e.bram_blocks * 4096
    assert e.luts == sum(e.luts_breakdown.values())
    assert e.cycles_per_timestep == cycles_per_timestep(m, 8)
    assert e.macs_per_timestep == 192 * 80 + 640
    assert [s["mode"] for s in e.state] == ["ram", "ram"]
    assert any("4 SPRAM blocks unused" in n for n in e.notes)
    text = format_estimate(e)
    assert "weights0" in text and "cycles      " in text


def test_state_logic_grows_at_most_linearly_in_the_hidden_size():
    """The v2 core keeps h in block RAM: its logic must not grow faster than linearly in H (the
    old core's state multiplexers grew ~H**2). Checked from the plan and the estimate: with
    state in RAM no register state at all, and the logic estimate's growth from H to 2H never
    more than twice the growth from H/2 to H; in registers mode the register state is linear.
    (The weight ROMs' read multiplexers grow with the weights, ~H**2: weight memory, counted
    apart.)"""
    for target in ("ice40-up5k", "ecp5-25k"):
        luts = {}
        for h in (32, 64, 128, 256):
            m = make_model("gru", "ternary", inputs=16, hidden=h, outputs=10)
            assert make_plan(m, 8).register_state_bits() == 0
            e = estimate(m, 8, target)
            luts[h] = e.luts - e.luts_breakdown["RAM read multiplexers"]
        for h in (64, 128):
            assert luts[2 * h] - luts[h] <= max(2 * (luts[h] - luts[h // 2]), 0.05 * luts[h])
    bits = {h: make_plan(make_model("gru", "ternary", inputs=16, hidden=h), 8,
                         "registers").register_state_bits() for h in (32, 64, 128)}
    assert bits[128] - bits[64] <= 2 * (bits[64] - bits[32])


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
    assert "block RAM   18 / 30 (60%) SB_RAM40_4K" in out and "fit         yes" in out
    save_model(make_model("gru", "int8", inputs=16, hidden=64, outputs=10), tmp_path / "big")
    assert main(["estimate", str(tmp_path / "big"), "--lanes", "8", "--target", "ice40-up5k",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits"] is False and d["bram_blocks"] == 42 and "SB_RAM40_4K" in d["problems"][0]
