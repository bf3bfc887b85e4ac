"""Post-synthesis netlist passes on Yosys JSON netlists (run by `hwgen.synth` before nextpnr).

`absorb_ecp5_output_registers`: Yosys infers ECP5 block RAM (DP16KD) without its output register
(``REGMODE = NOREG``: 5.8 ns from clock to data) and cannot absorb a following flip-flop into it
(memory_libmap has no such rule, YosysHQ/yosys#5814). The accelerator puts a plain flip-flop
(no reset, no enable) right after every RAM read; this pass moves each such flip-flop into the
RAM's own output register (``REGMODE = OUTREG``, about 1 ns from clock to data). The behaviour is
unchanged: in both cases the data appears one clock after the synchronous read, from a register
that powers up at zero.
"""

from __future__ import annotations

import copy
import re

__all__ = ["absorb_ecp5_output_registers", "retime_ecp5_read_multiplexers",
           "retime_ice40_read_registers", "ICE40_RETIMED_WRITABLE"]

_PLAIN_FF = {"CEMUX": "1", "CLKMUX": "CLK", "GSR": "DISABLED", "REGSET": "RESET"}


def _plain_ff(cell: dict) -> bool:
    """A TRELLIS_FF without enable, reset or inversion (parameters as Yosys writes them)."""
    if cell["type"] != "TRELLIS_FF":
        return False
    p = {k: str(v).strip() for k, v in cell["parameters"].items()}
    if any(p.get(k) != v for k, v in _PLAIN_FF.items()):
        return False
    conn = cell["connections"]
    lsr = conn.get("LSR", ["0"])
    if p.get("LSRMUX", "LSR") == "LSR" and lsr not in (["0"], ["x"]):
        return False
    return set(conn) <= {"CLK", "DI", "Q", "LSR", "CE"} and conn.get("CE", ["1"]) in (["1"],)


def _int(v) -> int:
    """A Yosys JSON parameter (a binary string or an int) as an int."""
    if isinstance(v, int):
        return v
    try:
        return int(str(v).strip(), 2)
    except ValueError:
        return -1


def _absorb(ram: dict, sides, cells: dict, sinks: dict, port_bits: set) -> int:
    """Give ``ram`` the output register of ``sides`` if every used data output of those sides
    drives exactly one plain flip-flop on the same clock; returns 1 if it did, else 0."""
    conn, params = ram["connections"], ram["parameters"]
    # A side whose clock is tied off (a ROM in the 36-bit mode reads through side B only, CLKA
    # is constant) does not count; the outputs of both sides follow the one read clock.
    clocks = {tuple(conn.get(f"CLK{x}", [])) for x in sides} - {("0",), ("1",), ("x",)}
    if len(clocks) != 1:
        return 0
    clock = list(clocks.pop())
    plan = []
    for x in sides:
        if str(params.get(f"REGMODE_{x}", "NOREG")).strip() != "NOREG":
            return 0
        if conn.get(f"RST{x}") not in (["0"],):
            return 0
        for pin, bits in conn.items():
            if not pin.startswith(f"DO{x}") or not isinstance(bits[0], int):
                continue
            b = bits[0]
            users = sinks.get(b, [])
            if b in port_bits or len(users) > 1:
                return 0
            if not users:
                continue  # an unused output
            ff_name, ff_pin = users[0]
            ff = cells[ff_name]
            if ff_pin != "DI" or not _plain_ff(ff) or ff["connections"]["CLK"] != clock:
                return 0
            plan.append((pin, ff_name, ff["connections"]["Q"]))
    if not plan:
        return 0
    for pin, ff_name, q in plan:
        conn[pin] = q
        del cells[ff_name]
    for x in sides:
        params[f"REGMODE_{x}"] = "OUTREG"
        conn[f"OCE{x}"] = ["1"]
        # a tied-off clock gets the read clock: whichever side's clock the output register
        # uses, it is clocked (the side stays disabled: its CE and WE are untouched)
        if tuple(conn.get(f"CLK{x}", [])) in (("0",), ("1",), ("x",)):
            conn[f"CLK{x}"] = clock
    return 1


def absorb_ecp5_output_registers(netlist: dict) -> int:
    """Rewrite ``netlist`` (a Yosys JSON netlist, modified in place): every DP16KD read port in
    NOREG mode whose used data outputs each drive exactly one plain flip-flop on the port's clock
    gets ``REGMODE = OUTREG`` (and its output clock enable tied high) and those flip-flops
    removed. Returns the number of RAM blocks (or block sides) changed."""
    changed = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        port_bits = {b for p in module.get("ports", {}).values() for b in p.get("bits", [])}
        sinks: dict = {}
        for name, cell in cells.items():
            dirs = cell.get("port_directions", {})
            for pin, bits in cell["connections"].items():
                if dirs.get(pin) == "output":
                    continue
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, pin))
        for ram in [c for c in cells.values() if c["type"] == "DP16KD"]:
            params = ram["parameters"]
            wide = any(_int(params.get(f"DATA_WIDTH_{x}", 18)) == 36 for x in "AB")
            # In the 36-bit (pseudo dual port) mode one read returns DOA and DOB together: both
            # sides are converted together, or neither.
            for sides in (("A", "B"),) if wide else (("A",), ("B",)):
                changed += _absorb(ram, sides, cells, sinks, port_bits)
    return changed


#: Cells Yosys uses for the fabric multiplexer (and LUT ROM) behind a RAM cascaded in depth.
_MUX_CELLS = {"LUT4", "PFUMX", "L6MUX21"}
#: A cone larger than this per RAM data bit is not a read multiplexer: leave it alone.
_MAX_CONE_PER_BIT = 8


def _index(cells: dict):
    drivers, sinks = {}, {}
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for pin, bits in cell["connections"].items():
            for b in bits:
                if not isinstance(b, int):
                    continue
                if dirs.get(pin) == "output":
                    drivers[b] = (name, pin)
                else:
                    sinks.setdefault(b, []).append((name, pin))
    return drivers, sinks


def _outputs(cell: dict) -> list[int]:
    dirs = cell.get("port_directions", {})
    return [b for pin, bits in cell["connections"].items() if dirs.get(pin) == "output"
            for b in bits if isinstance(b, int)]


def _inputs(cell: dict):
    dirs = cell.get("port_directions", {})
    return [(pin, i, b) for pin, bits in cell["connections"].items()
            if dirs.get(pin) != "output" for i, b in enumerate(bits)]


def _read_sides(ram: dict) -> tuple[str, ...]:
    params = ram["parameters"]
    if any(_int(params.get(f"DATA_WIDTH_{x}", 18)) == 36 for x in "AB"):
        return ("A", "B")
    conn = ram["connections"]
    return tuple(x for x in "AB" if any(p.startswith(f"DO{x}") and isinstance(b[0], int)
                                        for p, b in conn.items()))


def _cascade(seed: str, cells: dict, drivers: dict, sinks: dict, port_bits: set):
    """The read multiplexer behind RAM ``seed``: (RAMs, cone cells, output flip-flops, clock)
    when the used outputs of those RAMs reach only a cone of multiplexer cells whose every
    output goes to cone cells or to plain flip-flops on the RAMs' one read clock (RAMs feeding
    the cone join the group); else None."""
    rams, cone, ffs, clock = {seed}, set(), set(), None
    todo = [seed]
    while todo:
        name = todo.pop()
        cell = cells[name]
        if cell["type"] == "DP16KD":
            conn = cell["connections"]
            sides = _read_sides(cell)
            for x in sides:
                if str(cell["parameters"].get(f"REGMODE_{x}", "NOREG")).strip() != "NOREG":
                    return None
                if conn.get(f"RST{x}") not in (["0"],):
                    return None
            clocks = {tuple(conn.get(f"CLK{x}", [])) for x in sides}
            clocks -= {("0",), ("1",), ("x",)}
            if len(clocks) != 1:
                return None
            c = list(clocks.pop())
            if clock is not None and c != clock:
                return None
            clock = c
            outs = [b for p, bits in conn.items() if p.startswith("DO")
                    for b in bits if isinstance(b, int)]
        else:
            outs = _outputs(cell)
            # a RAM feeding this multiplexer cell belongs to the group
            for _, _, b in _inputs(cell):
                drv = drivers.get(b) if isinstance(b, int) else None
                if drv is not None and cells[drv[0]]["type"] == "DP16KD" and drv[0] not in rams:
                    rams.add(drv[0])
                    todo.append(drv[0])
        for b in outs:
            if b in port_bits:
                return None
            for user, pin in sinks.get(b, []):
                ucell = cells[user]
                if ucell["type"] in _MUX_CELLS:
                    if user not in cone:
                        cone.add(user)
                        todo.append(user)
                elif pin == "DI" and _plain_ff(ucell):
                    ffs.add(user)
                else:
                    return None
    bits = sum(1 for r in rams for p, v in cells[r]["connections"].items()
               if p.startswith("DO") and isinstance(v[0], int) and v[0] in sinks)
    if not ffs or not cone or len(cone) > _MAX_CONE_PER_BIT * max(bits, 1):
        return None
    if any(cells[f]["connections"]["CLK"] != clock for f in ffs):
        return None
    return rams, cone, ffs, clock


def retime_ecp5_read_multiplexers(netlist: dict) -> int:
    """Rewrite ``netlist`` (in place) for RAMs that Yosys cascaded in depth: their outputs meet
    in a fabric multiplexer (LUT4 / PFUMX / L6MUX21 cells, sometimes with a LUT ROM for the
    last few words) before the accelerator's plain flip-flop, so `absorb_ecp5_output_registers`
    cannot move that flip-flop into the RAMs, and the path from the RAM's unregistered output
    (5.8 ns) through the multiplexer set the clock (114 MHz for a 24 x 1040 ROM).

    The flip-flops are moved backwards across the multiplexer (retiming): every RAM of the
    group gets ``REGMODE = OUTREG``, every other input of the multiplexer (the registered
    address bits that select, the LUT ROM's address) gets a plain flip-flop of its own, and the
    flip-flops after the multiplexer are removed (their outputs now driven by it). The data
    still appears one clock after the read, now through the multiplexer from registers (only
    the value in the very first cycle after power-up differs: the multiplexer of zeros instead
    of a zero). Returns the number of RAM blocks changed."""
    changed = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        port_bits = {b for p in module.get("ports", {}).values() for b in p.get("bits", [])}
        next_bit = 1 + max((b for c in cells.values() for bits in c["connections"].values()
                            for b in bits if isinstance(b, int)), default=1)
        done: set = set()
        drivers, sinks = _index(cells)
        for seed in [n for n, c in cells.items() if c["type"] == "DP16KD"]:
            if seed in done:
                continue
            found = _cascade(seed, cells, drivers, sinks, port_bits)
            if found is None:
                continue
            rams, cone, ffs, clock = found
            done |= rams
            template = cells[next(iter(ffs))]
            # delay every cone input that is not a RAM output (shared per net)
            delayed: dict = {}
            for name in sorted(cone):
                conn = cells[name]["connections"]
                for pin, i, b in _inputs(cells[name]):
                    if not isinstance(b, int):
                        continue
                    drv = drivers.get(b)
                    if drv is not None and (drv[0] in rams or drv[0] in cone):
                        continue
                    if b not in delayed:
                        delayed[b] = next_bit
                        ff = copy.deepcopy(template)
                        ff["connections"] = {k: list(v) for k, v in ff["connections"].items()}
                        ff["connections"].update(CLK=list(clock), DI=[b], Q=[next_bit])
                        cells[f"hwgen_retime_{next_bit}"] = ff
                        next_bit += 1
                    conn[pin] = list(conn[pin])
                    conn[pin][i] = delayed[b]
            # the flip-flops after the multiplexer go: their outputs take over its nets
            for name in ffs:
                ff = cells.pop(name)
                d, q = ff["connections"]["DI"][0], ff["connections"]["Q"][0]
                for other in list(cone) + list(rams):
                    conn = cells[other]["connections"]
                    for pin, bits in conn.items():
                        if d in bits:
                            conn[pin] = [q if b == d else b for b in bits]
            for r in rams:
                ram = cells[r]
                for x in _read_sides(ram):
                    ram["parameters"][f"REGMODE_{x}"] = "OUTREG"
                    ram["connections"][f"OCE{x}"] = ["1"]
                    if tuple(ram["connections"].get(f"CLK{x}", [])) in (("0",), ("1",), ("x",)):
                        ram["connections"][f"CLK{x}"] = list(clock)
                changed += 1
            drivers, sinks = _index(cells)  # the group was rewired: index again
    return changed


# -- iCE40: the read register moved before the RAM ------------------------------------------------
#: Net of the flip-flops after a state store's read (`gateware.store.StateStore`, a core
#: submodule named ``store_<name>``; Yosys keeps ``rdata`` or ``rdata_reg``): the only writable
#: RAM whose read register `retime_ice40_read_registers` moves (its contract, below, makes that
#: exact).
ICE40_RETIMED_WRITABLE = re.compile(r"(^|\.)store_\w+\.rdata(_reg)?$")
_ICE40_RAMS = {"SB_RAM40_4K", "SB_RAM40_4KNR", "SB_RAM40_4KNW", "SB_RAM40_4KNRNW"}


def _ice40_lut_value(lut: dict, inputs: dict) -> int | None:
    """The output of an SB_LUT4 for ``inputs`` (pin -> 0/1; the other pins must be constant)."""
    index = 0
    for k in range(4):
        pin = f"I{k}"
        v = lut["connections"].get(pin, ["0"])[0]
        if pin in inputs:
            v = inputs[pin]
        elif v not in ("0", "1"):
            return None
        index |= int(v) << k
    init = str(lut["parameters"].get("LUT_INIT", "0")).strip()
    try:
        bits = int(init, 2)
    except ValueError:
        return None
    return (bits >> index) & 1


def _ice40_plain_ff(cell: dict, cells: dict | None = None, drivers: dict | None = None) -> bool:
    """A flip-flop without enable or reset; or with a synchronous reset that only the first
    clock after configuration can assert: Yosys' emulation of a register's initial value,
    ``R = f(flag)`` with ``flag`` a flip-flop loading the constant 1 and ``f(1) = 0``."""
    conn = cell["connections"]
    if cell["type"] == "SB_DFF" and set(conn) == {"C", "D", "Q"}:
        return True
    if cell["type"] != "SB_DFFSR" or set(conn) != {"C", "D", "Q", "R"} or cells is None:
        return False
    r = conn["R"][0]
    drv = drivers.get(r) if isinstance(r, int) else None
    if drv is None or cells[drv[0]]["type"] != "SB_LUT4":
        return False
    lut = cells[drv[0]]
    pins = [p for p in ("I0", "I1", "I2", "I3")
            if isinstance(lut["connections"].get(p, ["0"])[0], int)]
    if len(pins) != 1:
        return False
    flag = drivers.get(lut["connections"][pins[0]][0])
    if flag is None:
        return False
    fcell = cells[flag[0]]
    if fcell["type"] != "SB_DFF" or fcell["connections"].get("D") != ["1"] \
            or fcell["connections"].get("C") != conn["C"]:
        return False
    return _ice40_lut_value(lut, {pins[0]: 1}) == 0


def _ice40_read_only(ram: dict) -> bool:
    conn = ram["connections"]
    return conn.get("WCLKE") in (["0"],) or conn.get("WE") in (["0"],)


def retime_ice40_read_registers(netlist: dict) -> int:
    """Rewrite ``netlist`` (in place): move the plain flip-flop after an iCE40 block-RAM read
    (``SB_RAM40_4K``, which has no output register of its own) back before the RAM, onto its
    read address. The accelerator registers every RAM read (`schedule.READ_LATENCY` = 2: address,
    synchronous read, register): on iCE40 those flip-flops take a logic cell each and pair with
    nothing (256 at 32 lanes in the state store alone, 64 after the weight ROM), where a register
    on the few address bits (shared by the RAMs that read the same address) does the same.

    A RAM qualifies when its read is always enabled (``RE`` = ``RCLKE`` = 1), every used data
    output drives exactly one ``SB_DFF`` (no enable, no reset; or a reset that only Yosys'
    emulation of the register's initial value drives, in the first clock) on the read clock
    and no port,
    and it is read-only (a ROM) or a state store (the flip-flops' net is named
    `ICE40_RETIMED_WRITABLE`): the read now happens one clock later, which is exact when no
    word is written in the cycle after it is read. A state store's contract (`StateStore`)
    guarantees that: old-bank reads and new-bank writes never meet, new-bank reads come after
    the layer's last write, and a unit's narrow-store read precedes its write by the cell's
    multiplier pipeline. The data still appear two clocks after the address; only the value in
    the very first cycle after configuration differs (the RAM's word instead of a zero), which
    no consumer reads (valid flags gate them). Returns the number of RAM blocks changed."""
    changed = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        port_bits = {b for p in module.get("ports", {}).values() for b in p.get("bits", [])}
        names: dict = {}
        for net, info in module.get("netnames", {}).items():
            for b in info.get("bits", []):
                if isinstance(b, int):
                    names.setdefault(b, []).append(net)
        next_bit = 1 + max((b for c in cells.values() for bits in c["connections"].values()
                            for b in bits if isinstance(b, int)), default=1)
        drivers, sinks = _index(cells)
        delayed: dict = {}  # (clock, address bit) -> the registered bit
        for rname in [n for n, c in cells.items() if c["type"] in _ICE40_RAMS]:
            ram = cells[rname]
            conn = ram["connections"]
            if conn.get("RE") != ["1"] or conn.get("RCLKE", ["1"]) != ["1"]:
                continue
            clock = conn.get("RCLK")
            if not clock or not isinstance(clock[0], int):
                continue
            plan, ok = [], True
            for i, b in enumerate(conn.get("RDATA", [])):
                if not isinstance(b, int):
                    continue
                users = sinks.get(b, [])
                if b in port_bits or len(users) > 1:
                    ok = False
                    break
                if not users:
                    continue
                ff_name, pin = users[0]
                ff = cells[ff_name]
                if pin != "D" or not _ice40_plain_ff(ff, cells, drivers) \
                        or ff["connections"]["C"] != clock:
                    ok = False
                    break
                plan.append((i, ff_name, ff["connections"]["Q"][0]))
            if not ok or not plan:
                continue
            if not _ice40_read_only(ram):
                qnames = {n for _, _, q in plan for n in names.get(q, [])}
                if not any(ICE40_RETIMED_WRITABLE.search(n) for n in qnames):
                    continue
            rdata = list(conn["RDATA"])
            for i, ff_name, q in plan:
                rdata[i] = q
                del cells[ff_name]
            conn["RDATA"] = rdata
            raddr = list(conn["RADDR"])
            for i, b in enumerate(raddr):
                if not isinstance(b, int):
                    continue  # a constant address bit stays constant
                key = (clock[0], b)
                if key not in delayed:
                    delayed[key] = next_bit
                    cells[f"hwgen_raddr_{next_bit}"] = {
                        "type": "SB_DFF", "parameters": {}, "attributes": {},
                        "port_directions": {"C": "input", "D": "input", "Q": "output"},
                        "connections": {"C": list(clock), "D": [b], "Q": [next_bit]}}
                    next_bit += 1
                raddr[i] = delayed[key]
            conn["RADDR"] = raddr
            changed += 1
            drivers, sinks = _index(cells)
    return changed
