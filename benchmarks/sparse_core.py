"""Zero skipping: the sparse core beside the dense one (cycles, weight memory, synthesis).

Models: GRU and LSTM 16-64-10, ternary, recurrent matrices 2:4 sparse (``random-model
--sparsity 2:4``: pruned by magnitude, then quantized; their zero fractions are measured and
printed) and the head dense. For each lane count P in 8, 16:

``cycles``  cycles per timestep and weight-memory bits, dense core vs sparse core (the
            schedule), each figure measured in amaranth.sim (inputs accepted exactly that many
            cycles apart, logits equal to the golden model's); writes docs/cycles.md
            (SPARSE block).
``synth``   Yosys + nextpnr (``hwgen.synth``, registered-I/O wrapper) of both cores for the
            GRU at P = 8, 16 on ice40-up5k and ecp5-25k: LUT, FF, RAM, Fmax, and the net
            timesteps per second; resumable (``--resume`` reuses finished runs); writes
            docs/synthesis.md (SPARSE block) and benchmarks/results/sparse_core.json.

    nice -n 10 .venv/bin/python benchmarks/sparse_core.py cycles
    nice -n 10 .venv/bin/python benchmarks/sparse_core.py synth --seeds 1 --resume
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _record import versions, write_block  # noqa: E402

from hwgen.api import random_model  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.fit import fit_result  # noqa: E402
from hwgen.gateware.core import Accelerator  # noqa: E402
from hwgen.gateware.plan import make_plan  # noqa: E402
from hwgen.gateware.simulate import simulate  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.spec import HwgenError  # noqa: E402
from hwgen.synth import SynthReport, synthesize, tool_versions  # noqa: E402

LANES = (8, 16)
TARGETS = ("ice40-up5k", "ecp5-25k")
#: Synthesis runs: (quant, lanes, sparse, targets); dense at 2P is the equal-throughput
#: comparison. int8 (real multipliers) shows where the selection is cheaper than the lanes.
SYNTH_RUNS = (("ternary", 8, "off", TARGETS), ("ternary", 8, "on", TARGETS),
              ("ternary", 16, "off", TARGETS), ("ternary", 16, "on", TARGETS),
              ("ternary", 32, "off", TARGETS),
              ("int8", 8, "off", ("ecp5-25k",)), ("int8", 8, "on", ("ecp5-25k",)),
              ("int8", 16, "off", ("ecp5-25k",)))
RESULTS = ROOT / "benchmarks" / "results" / "sparse_core.json"


def model_for(cell: str, seed: int = 0, sparsity: str | None = "2:4", argmax: bool = True,
              quant: str = "ternary"):
    """``cell`` 16-64-10, ternary, recurrent matrices ``sparsity``, the head dense. Synthesis
    uses ``argmax=False`` like benchmarks/synth_sweep.py: on the UP5K the argmax comparator
    (about 60 MHz) would hide the datapath's own critical path in both cores."""
    return random_model(cell, 16, 64, 10, quant=quant, argmax=argmax, seed=seed,
                        sparsity=sparsity)


def zero_fraction(model) -> float:
    codes = [np.asarray(m.codes) for _, m in model.matrices()[:-1]]
    return float(sum((c == 0).sum() for c in codes) / sum(c.size for c in codes))


def weight_bits(plan) -> int:
    return sum(r.bits for r in plan.weight_roms)


def measured_cycles(model, lanes: int, sparse: str, steps: int = 3) -> int:
    rng = np.random.default_rng(1)
    fmt = model.formats.input
    x = rng.integers(fmt.min_code, fmt.max_code + 1, (steps, model.input.features))
    sos = np.arange(steps) == 0
    accel = Accelerator(model, lanes, sparse=sparse)
    got = simulate(accel, x, sos, seed=1)
    want = GoldenModel(model).run(x[None]).logits[0]
    if not np.array_equal(got.logits, want):
        raise SystemExit(f"{model.cell.value} P={lanes} sparse={sparse}: logits differ")
    gaps = set(np.diff(got.accepted).tolist())
    if len(gaps) != 1:
        raise SystemExit(f"uneven input gaps {gaps}")
    return gaps.pop()


def cycles(args) -> None:
    rows = []
    for cell in ("gru", "lstm"):
        model = model_for(cell)
        dense_model = model_for(cell, sparsity=None)
        for lanes in LANES:
            d, s = make_plan(model, lanes, sparse="off"), make_plan(model, lanes, sparse="on")
            row = {"cell": cell, "lanes": lanes, "zeros": zero_fraction(model),
                   "dense_model_zeros": zero_fraction(dense_model),
                   "dense_cycles": d.timing.cycles_per_timestep,
                   "sparse_cycles": s.timing.cycles_per_timestep,
                   "dense_bits": weight_bits(d), "sparse_bits": weight_bits(s),
                   "dense_model_auto_sparse": make_plan(dense_model, lanes).sparse}
            if not args.no_simulate:
                t0 = time.monotonic()
                row["dense_measured"] = measured_cycles(model, lanes, "off")
                row["sparse_measured"] = measured_cycles(model, lanes, "on")
                row["sim_seconds"] = round(time.monotonic() - t0, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
    lines = [
        "| model, ternary | P | zeros | dense cycles/step | sparse cycles/step | speed-up "
        "| weight bits dense | weight bits sparse |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        meas = ""
        if "dense_measured" in r:
            ok = (r["dense_measured"] == r["dense_cycles"]
                  and r["sparse_measured"] == r["sparse_cycles"])
            meas = "" if ok else " (simulation disagrees!)"
        lines.append(
            f"| {r['cell'].upper()} 16-64-10, 2:4 | {r['lanes']} | {100 * r['zeros']:.1f}% "
            f"| {r['dense_cycles']} | **{r['sparse_cycles']}**{meas} "
            f"| {r['dense_cycles'] / r['sparse_cycles']:.2f}x | {r['dense_bits']} "
            f"| {r['sparse_bits']} ({r['sparse_bits'] / r['dense_bits']:.2f}x) |")
    dz = ", ".join(f"{r['cell'].upper()} {100 * r['dense_model_zeros']:.1f}%"
                   for r in rows[:: len(LANES)])
    lines += [
        "",
        f"The same models without `--sparsity` (zeros: {dz}) do not pack: `--sparse auto` keeps "
        "them dense (a group of 4 weights with 3 or 4 non-zeros would need two words). Trained "
        "2:4 ternary models are 52-59% zeros in their recurrent matrices (docs/results.md, "
        "\"Sparse ternary\"), these random ones 57.6%; the cycles depend only on which matrices "
        "pack, not on the zero fraction beyond the 2:4 pattern.",
        "",
        f"Every figure measured in amaranth.sim (inputs accepted that many cycles apart, logits "
        f"equal to the golden model's): {'yes' if not args.no_simulate else 'no'}. "
        f"{versions('amaranth')}.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_block("cycles.md", "SPARSE", text)


def synth(args) -> None:
    work = Path(args.work)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    only = set(args.only or [])
    for target in TARGETS:
        for quant, lanes, mode, targets in SYNTH_RUNS:
            if target not in targets:
                continue
            model = model_for("gru", argmax=False, quant=quant)
            tag = _tag(quant, lanes, mode, target)
            if only and tag not in only:
                continue
            if args.resume and tag in results:
                continue
            rtl = work / _tag(quant, lanes, mode)
            t0 = time.monotonic()
            manifest = generate(model, rtl, lanes, sparse=mode)
            saved = rtl / f"synth-{target}" / "synth_report.json"
            verdict = fit_result(model, lanes, target, sparse=mode)
            try:
                if not verdict.fits:
                    raise HwgenError("; ".join(verdict.problems))
                if args.resume and saved.exists():
                    r = SynthReport.from_json(json.loads(saved.read_text()))
                else:
                    r = synthesize([rtl / manifest["verilog"][0]], manifest["top"], target,
                                   rtl / f"synth-{target}", seeds=args.seeds,
                                   timeout=args.timeout, cycles_per_timestep=manifest[
                                       "timing"]["cycles_per_timestep"])
            except HwgenError as err:
                results[tag] = {"target": target, "lanes": lanes, "sparse": mode == "on",
                                "refused": str(err).splitlines()[0][:300],
                                "cycles_per_timestep": manifest["timing"][
                                    "cycles_per_timestep"]}
                print(json.dumps({tag: results[tag]}), flush=True)
                RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
                continue
            results[tag] = {
                "target": target, "lanes": lanes, "sparse": mode == "on", "quant": quant,
                "luts": r.luts, "lut_equivalent": r.lut_equivalent, "ffs": r.ffs,
                "bram": r.bram, "spram": r.spram, "dsp": r.dsp, "fmax_mhz": r.fmax_mhz,
                "fmax_by_seed": r.fmax_by_seed, "cycles_per_timestep": r.cycles_per_timestep,
                "timesteps_per_second": r.timesteps_per_second,
                "seconds": round(time.monotonic() - t0, 1),
            }
            print(json.dumps({tag: results[tag]}), flush=True)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_synth_table(results)


def _tag(quant: str, lanes: int, mode: str, target: str | None = None) -> str:
    name = "gru64" if quant == "ternary" else f"gru64_{quant}"
    return f"{name}_p{lanes}_{mode}" + (f"_{target}" if target else "")


def write_synth_table(results: dict) -> None:
    lines = [
        "| target | weights | P | core | LUT (LUT-eq) | FF | RAM blocks | DSP | Fmax MHz "
        "| cycles/step | timesteps/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for target in TARGETS:
        for quant, lanes, m, targets in SYNTH_RUNS:
            r = results.get(_tag(quant, lanes, m, target))
            mode = "sparse" if m == "on" else "dense"
            if r is None or target not in targets:
                continue
            if "refused" in r:
                lines.append(f"| {target} | {quant} | {lanes} | {mode} | does not fit: "
                             f"{r['refused']} | | | | | {r['cycles_per_timestep']} | |")
                continue
            tps = r["timesteps_per_second"]
            base = results.get(_tag(quant, lanes, "off", target), {})
            gain = ""
            if mode == "sparse" and tps and base.get("timesteps_per_second"):
                gain = f" ({tps / base['timesteps_per_second']:.2f}x dense P = {lanes})"
            lines.append(
                f"| {target} | {quant} | {lanes} | {mode} | {r['luts']} ({r['lut_equivalent']}) "
                f"| {r['ffs']} | {r['bram']} | {r.get('dsp', '')} | {r['fmax_mhz']:.1f} "
                f"| {r['cycles_per_timestep']} | {tps:,.0f}{gain} |")
    v = tool_versions()
    lines += ["", "GRU 16-64-10, recurrent matrices 2:4 sparse, dense head, no argmax; the "
              "same model in both cores; Fmax the median of 3 seeds. "
              + ", ".join(f"{k} {x}" for k, x in v.items()) + "."]
    text = "\n".join(lines)
    print(text)
    write_block("synthesis.md", "SPARSE", text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("cycles", "synth", "table"))
    p.add_argument("--no-simulate", action="store_true", help="cycles: schedule figures only")
    p.add_argument("--no-write", action="store_true", help="cycles: do not write docs")
    p.add_argument("--work", default=str(ROOT / "build" / "sparse_core"), metavar="DIR")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--only", action="append", metavar="TAG")
    args = p.parse_args(argv)
    if args.mode == "cycles":
        cycles(args)
    elif args.mode == "synth":
        synth(args)
    else:
        write_synth_table(json.loads(RESULTS.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
