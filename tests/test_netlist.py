"""hwgen.netlist: moving the flip-flop after an ECP5 block-RAM read into the RAM's output
register (a pure transformation of Yosys JSON netlists)."""

from __future__ import annotations

import copy

from hwgen.netlist import absorb_ecp5_output_registers

CLK = 2


def _ff(d: int, q: int, **overrides) -> dict:
    params = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
              "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}
    params.update(overrides)
    return {"type": "TRELLIS_FF", "parameters": params,
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"},
            "connections": {"CLK": [CLK], "DI": [d], "LSR": ["0"], "Q": [q]}}


def _ram(width_a=18, width_b=18, rst="0") -> dict:
    conn = {"CLKA": [CLK], "CLKB": [CLK], "CEA": ["1"], "CEB": ["1"], "OCEA": ["1"],
            "OCEB": ["1"], "RSTA": [rst], "RSTB": ["0"], "WEA": ["0"], "WEB": ["0"]}
    dirs = {k: "input" for k in conn}
    for side, base in (("A", 100), ("B", 200)):
        for k in range(18):
            conn[f"DO{side}{k}"] = [base + k]
            dirs[f"DO{side}{k}"] = "output"
    return {"type": "DP16KD", "port_directions": dirs, "connections": conn,
            "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG",
                           "DATA_WIDTH_A": f"{width_a:032b}", "DATA_WIDTH_B": f"{width_b:032b}"}}


def _netlist(cells: dict) -> dict:
    return {"modules": {"top": {"ports": {"clk": {"direction": "input", "bits": [CLK]}},
                                "cells": cells}}}


def test_a_plain_flip_flop_after_a_read_port_moves_into_the_ram():
    net = _netlist({"ram": _ram(), "ff0": _ff(100, 500), "ff1": _ff(101, 501)})
    assert absorb_ecp5_output_registers(net) == 1
    cells = net["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}  # both flip-flops gone
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_A"] == "OUTREG" and ram["parameters"]["REGMODE_B"] == "NOREG"
    assert ram["connections"]["DOA0"] == [500] and ram["connections"]["DOA1"] == [501]


def test_anything_but_a_plain_flip_flop_is_left_alone():
    cases = [
        {"ram": _ram(), "ff": _ff(100, 500, CEMUX="CE")},  # an enable
        {"ram": _ram(), "ff": _ff(100, 500, REGSET="SET")},  # powers up at 1
        {"ram": _ram(), "ff": _ff(100, 500), "other": _ff(100, 501)},  # a second load
        {"ram": _ram(rst="5"), "ff": _ff(100, 500)},  # the RAM's output reset is used
    ]
    for cells in cases:
        net = _netlist(copy.deepcopy(cells))
        before = copy.deepcopy(net)
        assert absorb_ecp5_output_registers(net) == 0
        assert net == before
    # a flip-flop on another clock
    ff = _ff(100, 500)
    ff["connections"]["CLK"] = [9]
    net = _netlist({"ram": _ram(), "ff": ff})
    assert absorb_ecp5_output_registers(net) == 0


def test_the_36_bit_mode_converts_both_sides_or_neither():
    net = _netlist({"ram": _ram(36, 36), "a": _ff(100, 500), "b": _ff(200, 600)})
    assert absorb_ecp5_output_registers(net) == 1
    ram = net["modules"]["top"]["cells"]["ram"]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["DOA0"] == [500] and ram["connections"]["DOB0"] == [600]
    # one side unconvertible: neither changes
    net = _netlist({"ram": _ram(36, 36), "a": _ff(100, 500), "b": _ff(200, 600, CEMUX="CE")})
    assert absorb_ecp5_output_registers(net) == 0
    assert net["modules"]["top"]["cells"]["ram"]["parameters"]["REGMODE_A"] == "NOREG"


def test_a_36_bit_rom_reading_through_side_b_gets_its_output_register():
    """Yosys maps a 64-bit, 480-word ROM in the 36-bit mode with CLKA tied to 0 (side A only
    writes, and a ROM never does): both sides convert, and CLKA gets the read clock."""
    ram = _ram(36, 36)
    ram["connections"].update(CLKA=["0"], CEA=["0"])
    net = _netlist({"ram": ram, "a": _ff(100, 500), "b": _ff(200, 600)})
    assert absorb_ecp5_output_registers(net) == 1
    conn = net["modules"]["top"]["cells"]["ram"]["connections"]
    assert conn["CLKA"] == [CLK] and conn["CEA"] == ["0"] and conn["OCEA"] == ["1"]
    assert conn["DOA0"] == [500] and conn["DOB0"] == [600]
    # both clocks tied off: nothing to clock the register with
    ram = _ram(36, 36)
    ram["connections"].update(CLKA=["0"], CLKB=["0"])
    assert absorb_ecp5_output_registers(_netlist({"ram": ram, "a": _ff(100, 500)})) == 0
