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

__all__ = ["absorb_ecp5_output_registers"]

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
