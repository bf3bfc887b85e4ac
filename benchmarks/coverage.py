"""What the suite's simulations reach (issue 27 item 2): a coverage report.

Runs the covering simulation test files (amaranth.sim through `hwgen.gateware.simulate`:
tests/test_gateware.py, test_sparse_core.py, test_load.py, test_mutation_killers.py; ``--files``) in
this process, with recorders patched in:

- **weight codes**: every legal code of each matrix's encoding (`code_space`) against the codes the
  simulated models hold (every code in a ROM is issued every timestep);
- **table entries and saturation**: every sigmoid / tanh lookup of the golden model (bit-exact
  with the simulation on the same inputs): the entries read and how often the index saturated
  low / high; the LSTM cell state's saturation low / high;
- **sequencer states and transitions**: the sequencer's issue outputs sampled every cycle of every
  simulation: a state is the phase (``idle``: the core takes an input; ``issue`` of a layer's input
  / recurrent segment, first / middle / last word, or of the head; ``wait``: a layer gap or the
  accept cycles) and a transition a change between two consecutive cycles;
- **stall interleavings**: in which phase the consumer stalled a valid output (``out_stall``), the
  sequencer waited for the output register (``out_busy``), and the producer offered an input the
  core did not take (``in_wait``) or the core waited for one (``starve``).

``python benchmarks/coverage.py [--record]`` prints the report (JSON in
benchmarks/results/coverage.json); ``--record`` writes the table into docs/verification.md.
Resets are not part of these simulations: tests/test_contract.py resets in every cycle of a
timestep (its own recorder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from _record import versions, write_block

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "coverage.json"
FILES = ["tests/test_gateware.py", "tests/test_sparse_core.py", "tests/test_load.py",
         "tests/test_mutation_killers.py"]


class Recorder:
    """Everything seen, merged over the run."""

    def __init__(self):
        self.codes: dict[str, set] = defaultdict(set)  # encoding -> codes held by some matrix
        self.legal: dict[str, set] = {}
        self.matrices_full = Counter()  # encoding -> matrices holding every legal code
        self.matrices = Counter()
        self.tables: dict[tuple, set] = defaultdict(set)  # (model id, table, width) -> indices
        self.table_sat = Counter()  # (table, "low"/"high") -> lookups saturated
        self.table_lookups = Counter()
        self.cell_sat = Counter()  # "low"/"high" -> LSTM c values saturated
        self.cell_values = 0
        self.states = Counter()
        self.transitions = Counter()
        self.stalls = Counter()  # (kind, phase) -> cycles
        self.cycles = 0
        self.sims = 0
        self._models_seen: set[int] = set()

    # -- models ----------------------------------------------------------------------------------
    def model(self, model) -> None:
        if id(model) in self._models_seen:
            return
        self._models_seen.add(id(model))
        for _, qm in model.matrices():
            enc = qm.encoding.describe()
            legal = code_space(qm.encoding)
            self.legal[enc] = legal
            held = {int(c) for c in np.unique(qm.codes)}
            self.codes[enc] |= held
            self.matrices[enc] += 1
            self.matrices_full[enc] += held >= legal

    def report(self) -> dict:
        tables = defaultdict(list)
        for (_, name, width), idx in self.tables.items():
            tables[name].append(len(idx) / (1 << width))
        return {
            "simulations": self.sims, "cycles": self.cycles,
            "codes": {enc: {"legal": len(self.legal[enc]), "seen": len(self.codes[enc]),
                            "missing": sorted(self.legal[enc] - self.codes[enc])[:16],
                            "matrices": self.matrices[enc],
                            "matrices_every_code": self.matrices_full[enc]}
                      for enc in sorted(self.legal)},
            "tables": {name: {"models": len(f), "entries_min": round(min(f), 3),
                              "entries_median": round(float(np.median(f)), 3),
                              "entries_max": round(max(f), 3),
                              "lookups": self.table_lookups[name],
                              "saturated_low": self.table_sat[(name, "low")],
                              "saturated_high": self.table_sat[(name, "high")]}
                       for name, f in sorted(tables.items())},
            "cell_state": {"values": self.cell_values, "saturated_low": self.cell_sat["low"],
                           "saturated_high": self.cell_sat["high"]},
            "states": dict(sorted(self.states.items())),
            "transitions": {f"{a} -> {b}": n for (a, b), n in sorted(self.transitions.items())},
            "stalls": {f"{k} in {p}": n for (k, p), n in sorted(self.stalls.items())},
        }


def code_space(enc) -> set[int]:
    codes = np.arange(1 << enc.bits)
    return {int(c) for c in codes[enc.valid_codes(codes)]}


def _phase(v: dict) -> str:
    """The abstract sequencer state of one cycle's samples."""
    if v["ready"]:
        return "idle"
    if not v["issue"]:
        return "wait"
    if v["head"]:
        return "issue head"
    where = "first" if v["first"] else ("last" if v["last"] else "middle")
    seg = "recurrent" if v["part"] else "input"
    layer = "layer 0" if v["layer"] == 0 else "upper layer"
    return f"issue {layer} {seg} {where}"


def install(rec: Recorder):
    """Patch the recorders into hwgen (golden lookups, the simulator of gateware.simulate);
    returns a function that undoes the patches."""
    from amaranth.sim import Simulator

    import hwgen.gateware.core as core_mod
    import hwgen.gateware.simulate as sim_mod
    import hwgen.golden as golden_mod

    made = []

    class Sequencer(core_mod.Sequencer):
        def __init__(self, plan):
            super().__init__(plan)
            made.append(self)

    class RecordingSimulator(Simulator):
        def __init__(self, accel):
            made.clear()
            super().__init__(accel)  # elaborates: the core's sequencer is made here
            if made:
                rec.model(accel.model)
                rec.sims += 1
                self.add_testbench(_monitor(rec, accel, made[-1]), background=True)

    def lookup(name):
        real = getattr(golden_mod.GoldenModel, f"_{name}")
        width_of = {"sigmoid": "sigmoid_in_width", "tanh": "tanh_in_width"}[name]

        def wrapped(self, z):
            w = getattr(self.model.formats, width_of)
            half = 1 << (w - 1)
            z = np.asarray(z)
            rec.tables[(id(self.model), name, w)].update(
                np.unique(np.clip(z, -half, half - 1) + half).tolist())
            rec.table_lookups[name] += z.size
            rec.table_sat[(name, "low")] += int(np.sum(z < -half))
            rec.table_sat[(name, "high")] += int(np.sum(z > half - 1))
            return real(self, z)

        return real, wrapped

    real_sat = golden_mod.saturate

    def saturate(x, fmt):
        x = np.asarray(x)
        rec.cell_values += x.size
        rec.cell_sat["low"] += int(np.sum(x < fmt.min_code))
        rec.cell_sat["high"] += int(np.sum(x > fmt.max_code))
        return real_sat(x, fmt)

    saved = [(core_mod, "Sequencer", core_mod.Sequencer),
             (sim_mod, "Simulator", sim_mod.Simulator),
             (golden_mod, "saturate", golden_mod.saturate)]
    core_mod.Sequencer, sim_mod.Simulator = Sequencer, RecordingSimulator
    golden_mod.saturate = saturate
    for name in ("sigmoid", "tanh"):
        real, wrapped = lookup(name)
        saved.append((golden_mod.GoldenModel, f"_{name}", real))
        setattr(golden_mod.GoldenModel, f"_{name}", wrapped)

    def undo():
        for obj, attr, value in saved:
            setattr(obj, attr, value)

    return undo


def _monitor(rec: Recorder, accel, seq):
    names = ["issue", "layer", "head", "part", "first", "last", "out_busy"]
    sigs = [getattr(seq, n) for n in names] + [
        accel.i_stream.ready, accel.i_stream.valid, accel.o_stream.valid, accel.o_stream.ready]
    names += ["ready", "in_valid", "out_valid", "out_ready"]

    async def monitor(ctx):
        prev = None
        async for _, _, *vals in ctx.tick().sample(*sigs):
            v = dict(zip(names, vals, strict=True))
            phase = _phase(v)
            rec.cycles += 1
            rec.states[phase] += 1
            if prev is not None and prev != phase:
                rec.transitions[(prev, phase)] += 1
            prev = phase
            if v["out_valid"] and not v["out_ready"]:
                rec.stalls[("out_stall", phase)] += 1
            if v["out_busy"]:
                rec.stalls[("out_busy", phase)] += 1
            if v["in_valid"] and not v["ready"]:
                rec.stalls[("in_wait", phase)] += 1
            if v["ready"] and not v["in_valid"]:
                rec.stalls[("starve", phase)] += 1

    return monitor


def run(files: list[str], extra: list[str]) -> dict:
    import pytest

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    rec = Recorder()
    undo = install(rec)
    start = time.perf_counter()
    try:
        rc = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                          "-W", "ignore::pytest.PytestUnraisableExceptionWarning",
                          *[str(ROOT / f) for f in files], *extra])
    finally:
        undo()
    if rc != 0:
        raise SystemExit(f"the tests failed (pytest exit status {rc}); no report")
    out = rec.report()
    out["files"] = files
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def table(rep: dict) -> str:
    lines = [f"{rep['simulations']} simulations, {rep['cycles']:,} cycles "
             f"({', '.join(rep['files'])}; {rep['seconds']} s).", "",
             "| weight encoding | legal codes | codes held by the simulated matrices | matrices "
             "| matrices holding every legal code |", "|---|---|---|---|---|"]
    for enc, c in rep["codes"].items():
        miss = f" (missing: {c['missing']})" if c["missing"] else ""
        lines.append(f"| {enc} | {c['legal']} | {c['seen']}{miss} | {c['matrices']} | "
                     f"{c['matrices_every_code']} |")
    lines += ["", "| table | models | entries read (min / median / max of the table) | lookups "
              "| index saturated low / high |", "|---|---|---|---|---|"]
    for name, t in rep["tables"].items():
        lines.append(f"| {name} | {t['models']} | {t['entries_min']:.0%} / "
                     f"{t['entries_median']:.0%} / {t['entries_max']:.0%} | {t['lookups']:,} | "
                     f"{t['saturated_low']:,} / {t['saturated_high']:,} |")
    cs = rep["cell_state"]
    lines += ["", f"LSTM cell state: {cs['values']:,} values, saturated low {cs['saturated_low']:,}"
              f" / high {cs['saturated_high']:,}.", "",
              "| sequencer state | cycles | out_stall | out_busy | in_wait | starve |",
              "|---|---|---|---|---|---|"]
    for st, n in rep["states"].items():
        cells = [f"{rep['stalls'].get(f'{k} in {st}', 0):,}"
                 for k in ("out_stall", "out_busy", "in_wait", "starve")]
        lines.append(f"| {st} | {n:,} | " + " | ".join(cells) + " |")
    lines += ["", f"{len(rep['transitions'])} distinct transitions: "
              + "; ".join(f"{k} ({n:,})" for k, n in rep["transitions"].items()) + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="*", default=FILES)
    ap.add_argument("--record", action="store_true", help="write the table into the docs")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    args = ap.parse_args()
    rep = run(args.files, ["-k", args.k] if args.k else [])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rep, indent=1) + "\n")
    text = table(rep) + "\n\n" + versions("amaranth") + "."
    print(text)
    if args.record:
        write_block("verification.md", "coverage", text)


if __name__ == "__main__":
    main()
