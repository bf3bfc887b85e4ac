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
           "retime_ice40_read_registers", "ICE40_RETIMED_WRITABLE", "ice40_delay_lines_to_ram",
           "ICE40_RING_MIN_LENGTH"]

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


#: Plain flip-flop chains at least this long become a block-RAM ring
#: (`ice40_delay_lines_to_ram`); shorter ones are cheaper in logic than the ring's address.
ICE40_RING_MIN_LENGTH = 4
_RING_DEPTH, _RING_WIDTH = 256, 16  # SB_RAM40_4K in its 256 x 16 mode


def _lut_init(fn) -> str:
    """SB_LUT4 ``LUT_INIT`` of ``fn(i0, i1, i2, i3)`` (bit k: inputs ``k = i0 + 2 i1 + ...``)."""
    return "".join(str(fn(k & 1, k >> 1 & 1, k >> 2 & 1, k >> 3 & 1) & 1)
                   for k in reversed(range(16)))


class _Cells:
    """New cells for a Yosys JSON module: fresh net numbers, SB_DFF / SB_LUT4 / SB_CARRY."""

    def __init__(self, cells: dict):
        self.cells = cells
        self.next = 1 + max((b for c in cells.values() for bits in c["connections"].values()
                             for b in bits if isinstance(b, int)), default=1)

    def net(self) -> int:
        self.next += 1
        return self.next - 1

    def add(self, kind: str, conn: dict, outputs: tuple, params: dict | None = None) -> None:
        dirs = {p: "output" if p in outputs else "input" for p in conn}
        self.cells[f"hwgen_ring_{self.next}_{len(self.cells)}"] = {
            "type": kind, "parameters": params or {}, "attributes": {},
            "port_directions": dirs, "connections": conn}

    def ff(self, d, clock) -> int:
        q = self.net()
        self.add("SB_DFF", {"C": [clock], "D": [d], "Q": [q]}, ("Q",))
        return q

    def lut(self, inputs, fn) -> int:
        o = self.net()
        conn = {f"I{k}": [v] for k, v in enumerate((list(inputs) + ["0"] * 4)[:4])}
        conn["O"] = [o]
        self.add("SB_LUT4", conn, ("O",), {"LUT_INIT": _lut_init(fn)})
        return o

    def counter(self, clock) -> list[int]:
        """A free-running 8-bit counter (powers up at 0), LUTs only (no carry chain)."""
        q = [self.net() for _ in range(8)]
        t0 = self.lut(q[:4], lambda a, b, c, d: a & b & c & d)
        t1 = self.lut([t0, q[4], q[5], q[6]], lambda a, b, c, d: a & b & c & d)
        nxt = [self.lut([q[0]], lambda a, *_: 1 - a),
               self.lut(q[:2], lambda a, b, *_: a ^ b),
               self.lut(q[:3], lambda a, b, c, _: c ^ (a & b)),
               self.lut(q[:4], lambda a, b, c, d: d ^ (a & b & c)),
               self.lut([t0, q[4]], lambda t, a, *_: a ^ t),
               self.lut([t0, q[4], q[5]], lambda t, a, b, _: b ^ (t & a)),
               self.lut([t0, q[4], q[5], q[6]], lambda t, a, b, c: c ^ (t & a & b)),
               self.lut([t1, q[7]], lambda t, a, *_: a ^ t)]
        for qi, di in zip(q, nxt, strict=True):
            self.add("SB_DFF", {"C": [clock], "D": [di], "Q": [qi]}, ("Q",))
        return q

    def plus(self, bits: list[int], k: int) -> list[int]:
        """``bits + k`` (mod 2^len): a carry chain, the sum bits in the carries' LUTs."""
        out, carry = [], "0"
        for i, b in enumerate(bits):
            ki = str(k >> i & 1)
            out.append(self.lut(["0", b, ki, carry], lambda _, a, c, ci: a ^ c ^ ci))
            if i < len(bits) - 1:
                co = self.net()
                self.add("SB_CARRY", {"CI": [carry], "I0": [b], "I1": [ki], "CO": [co]},
                         ("CO",))
                carry = co
        return out


def _ice40_chains(cells: dict, sinks: dict, port_bits: set) -> dict:
    """Maximal chains of plain flip-flops (``SB_DFF``: no enable, no reset) on one clock, each
    but the last driving nothing but the next one's D (so only the last one's Q is read):
    {(clock net, length): [[flip-flop names, first to last], ...]}. Synchronizers (cells of
    ``amaranth.lib.cdc``) are never part of one."""
    plain = {n for n, c in cells.items() if c["type"] == "SB_DFF"
             and set(c["connections"]) == {"C", "D", "Q"}
             and "cdc.py" not in str(c.get("attributes", {}).get("src", ""))}
    nxt, has_prev = {}, set()
    for n in plain:
        conn = cells[n]["connections"]
        q = conn["Q"][0]
        users = sinks.get(q, []) if isinstance(q, int) else []
        if q in port_bits or len(users) != 1:
            continue
        m, pin = users[0]
        if m in plain and pin == "D" and cells[m]["connections"]["C"] == conn["C"]:
            nxt[n] = m
            has_prev.add(m)
    chains: dict = {}
    for head in sorted(plain - has_prev):
        chain = [head]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        clock = cells[head]["connections"]["C"][0]
        if len(chain) > 1 and isinstance(clock, int):
            chains.setdefault((clock, len(chain)), []).append(chain)
    return chains


def ice40_delay_lines_to_ram(netlist: dict, blocks: int,
                             min_length: int = ICE40_RING_MIN_LENGTH) -> int:
    """Rewrite ``netlist`` (in place): chains of plain iCE40 flip-flops (delay lines: pipeline
    stages that only pass a value on, `_ice40_chains`) become rings in block RAM, up to 16
    chains of one length per ``SB_RAM40_4K`` (256 x 16), at most ``blocks`` RAMs (the ones the
    design leaves free), the chains of the most flip-flops first. A chain of L flip-flops (a
    logic cell each, nothing to pair with) gives its last Q the first D of L clocks before; the
    ring writes that D at address ``w`` and reads address ``w - (L - 1)`` (mod 256), ``w`` a
    free-running counter shared by every ring of the clock, the read address a constant adder
    per length: the read data, registered by the RAM, is the D of L clocks before, as the
    chain's last Q was. The RAM powers up at zero, as flip-flops do (and any value a ring holds
    from before is gone L clocks later: the board build holds its domain in reset far longer).
    Returns the number of RAMs added."""
    added = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        port_bits = {b for p in module.get("ports", {}).values() for b in p.get("bits", [])}
        _, sinks = _index(cells)
        chunks = [(clock, length, chains[i:i + _RING_WIDTH])
                  for (clock, length), chains in _ice40_chains(cells, sinks, port_bits).items()
                  if min_length <= length <= _RING_DEPTH
                  for i in range(0, len(chains), _RING_WIDTH)]
        chunks.sort(key=lambda c: (-c[1] * len(c[2]), c[1]))
        new = _Cells(cells)
        write, read = {}, {}
        for clock, length, chains in chunks:
            if added >= blocks or length * len(chains) < _RING_WIDTH:
                break
            if clock not in write:
                write[clock] = new.counter(clock)
            if (clock, length) not in read:
                read[clock, length] = new.plus(write[clock], _RING_DEPTH - (length - 1))
            wdata = [cells[c[0]]["connections"]["D"][0] for c in chains]
            rdata = [cells[c[-1]]["connections"]["Q"][0] for c in chains]
            for chain in chains:
                for name in chain:
                    del cells[name]
            pad = _RING_WIDTH - len(chains)
            conn = {"RCLK": [clock], "WCLK": [clock], "RCLKE": ["1"], "WCLKE": ["1"],
                    "RE": ["1"], "WE": ["1"], "MASK": ["0"] * _RING_WIDTH,
                    "RADDR": read[clock, length] + ["0"] * 3,
                    "WADDR": write[clock] + ["0"] * 3,
                    "WDATA": wdata + ["0"] * pad, "RDATA": rdata + [new.net() for _ in range(pad)]}
            params = {"READ_MODE": "00", "WRITE_MODE": "00",
                      **{f"INIT_{k:X}": "0" * 256 for k in range(16)}}
            new.add("SB_RAM40_4K", conn, ("RDATA",), params)
            added += 1
    return added
