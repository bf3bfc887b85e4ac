"""Per-row scales (issue 26): what they cost in hardware, per-row beside per-matrix scales.

Model: GRU 16-64-10, ternary, no argmax (like benchmarks/synth_sweep.py), seed 0; the per-row
variant is the same model with random 8-bit row multipliers on every matrix
(``random-model --row-scales 8``, `hwgen.api.add_row_scales`). For each target (ice40-up5k,
ecp5-25k) and lane count: Yosys + nextpnr (``hwgen.synth``, registered-I/O wrapper, median
Fmax over the seeds) of both: LUT, FF, RAM blocks, DSP, Fmax, cycles per timestep, and the
estimate of each (`hwgen.estimate`). Resumable; writes docs/synthesis.md (ROWSCALE block) and
benchmarks/results/rowscale.json.

    nice -n 10 .venv/bin/python benchmarks/rowscale.py --seeds 3 --resume
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _record import write_block  # noqa: E402

from hwgen.api import add_row_scales, random_model, synthesize  # noqa: E402
from hwgen.estimate import estimate  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.synth import SynthReport  # noqa: E402

TARGETS = ("ice40-up5k", "ecp5-25k")
#: (name, folder tag, row bits, keep the matrices' mantissas): "per-row u8" is what a folded
#: normalization gives (`spec.row_multipliers`: 8-bit multipliers, power-of-two scales); the
#: last keeps each matrix's 8-bit scale mantissa too (the widest scalers)
VARIANTS = (("per-matrix", "mat", None, False), ("per-row u8", "row", 8, False),
            ("per-row u8, mantissa kept", "rowm", 8, True))
RESULTS = ROOT / "benchmarks" / "results" / "rowscale.json"


def model_for(bits: int | None, keep_mantissa: bool = False):
    model = random_model("gru", 16, 64, 10, quant="ternary", argmax=False, seed=0)
    if bits is None:
        return model
    return add_row_scales(model, bits, seed=0, keep_mantissa=keep_mantissa)


def run(args) -> None:
    work = Path(args.work)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for lanes in args.lanes:
        for name, folder, bits, mantissa in VARIANTS:
            model = model_for(bits, mantissa)
            rtl = work / f"gru64_p{lanes}_{folder}"
            manifest = generate(model, rtl, lanes)
            for target in TARGETS:
                tag = f"{rtl.name}_{target}"
                if args.resume and tag in results:
                    continue
                t0 = time.monotonic()
                saved = rtl / f"synth-{target}" / "synth_report.json"
                if not (args.resume and saved.exists()):  # writes synth_report.json
                    synthesize(rtl, target, seeds=args.seeds, timeout=args.timeout)
                r = SynthReport.from_json(json.loads(saved.read_text()))
                assert r.cycles_per_timestep == manifest["timing"]["cycles_per_timestep"]
                e = estimate(model, lanes, target)
                results[tag] = {
                    "target": target, "lanes": lanes, "variant": name, "luts": r.luts,
                    "lut_equivalent": r.lut_equivalent, "ffs": r.ffs, "bram": r.bram,
                    "dsp": r.dsp, "fmax_mhz": r.fmax_mhz, "fmax_by_seed": r.fmax_by_seed,
                    "cycles_per_timestep": r.cycles_per_timestep,
                    "est_luts": e.luts, "est_ffs": e.ffs, "est_bram": e.bram_blocks,
                    "seconds": round(time.monotonic() - t0, 1),
                    "tools": ", ".join(f"{k} {v}" for k, v in sorted(r.tool_versions.items())),
                }
                print(json.dumps({tag: results[tag]}), flush=True)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_table(results)


def write_table(results: dict) -> None:
    lines = ["| target | P | scales | LUT (LUT-eq) | FF | RAM blocks | DSP | Fmax MHz (seeds) "
             "| cycles/step | us/step | estimate LUT / FF / RAM |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    tools = ""
    for target in TARGETS:
        for key in sorted(results):
            r = results[key]
            if r["target"] != target:
                continue
            seeds = " / ".join(f"{v:.1f}" for v in r["fmax_by_seed"].values() if v)
            us = r["cycles_per_timestep"] / r["fmax_mhz"] if r["fmax_mhz"] else float("nan")
            lines.append(
                f"| {target} | {r['lanes']} | {r['variant']} | {r['luts']} "
                f"({r['lut_equivalent']}) | {r['ffs']} | {r['bram']} | {r['dsp']} "
                f"| {r['fmax_mhz']:.1f} ({seeds}) | {r['cycles_per_timestep']} | {us:.2f} "
                f"| {r['est_luts']} / {r['est_ffs']} / {r['est_bram']} |")
            tools = r["tools"]
    lines += ["", "GRU 16-64-10 ternary, no argmax, seed 0; per-row: random 8-bit multipliers on "
              "every matrix (`random-model --row-scales 8`). Fmax: median of the seeds, "
              f"registered-I/O wrapper. {tools}."]
    text = "\n".join(lines)
    print(text)
    write_block("synthesis.md", "ROWSCALE", text)


def multiplier(args) -> None:
    """The row multiply alone (8-bit multiplier x 16-bit accumulator, the GRU-64's widths): the
    core's `PipelinedMul` (shift-add, logic) against ``a * b`` with registered operands and
    product (what a DSP block takes: MULT18X18D on ECP5, SB_MAC16 on iCE40 with ``--dsp``)."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, signed, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hwgen.gateware.arith import register
    from hwgen.gateware.mult import PipelinedMul
    from hwgen.spec import HwgenError
    from hwgen.synth import synthesize as synth_files

    class Star(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(unsigned(8)), "b": In(signed(16)), "p": Out(signed(25))})

        def elaborate(self, platform):
            m = Module()
            prod = register(m, register(m, self.a, "ra") * register(m, self.b, "rb"), "rp")
            m.d.comb += self.p.eq(register(m, prod, "rp2"))
            return m

    work = Path(args.work) / "mult"
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make in (("shift-add", lambda: PipelinedMul(a_width=8, b_width=16)),
                       ("a*b", Star)):
        v = work / f"{name.replace('*', 'x')}.v"
        v.write_text(verilog.convert(make(), name="top"))
        for target, dsp in (("ice40-up5k", False), ("ice40-up5k", True), ("ecp5-25k", True)):
            key = f"{name} {target}{' dsp' if dsp else ''}"
            try:
                r = synth_files([v], "top", target, work / f"{v.stem}-{target}-{dsp}",
                                seeds=args.seeds, dsp=dsp, timeout=args.timeout)
            except HwgenError as e:  # e.g. SB_MAC16 absorbing every cell of the bare multiply
                out[key] = {"error": str(e).splitlines()[0][:200]}
                continue
            out[key] = {"luts": r.luts, "lut_equivalent": r.lut_equivalent, "ffs": r.ffs,
                        "dsp": r.dsp, "fmax_mhz": r.fmax_mhz}
            print(json.dumps(out), flush=True)
    path = ROOT / "benchmarks" / "results" / "rowscale_mult.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lanes", type=int, nargs="+", default=[16])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--work", default=str(ROOT / "build" / "rowscale"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--table", action="store_true", help="only rewrite the table")
    p.add_argument("--multiplier", action="store_true",
                   help="measure the row multiply alone, shift-add against a * b (DSP)")
    args = p.parse_args()
    if args.multiplier:
        multiplier(args)
        return
    if args.table:
        write_table(json.loads(RESULTS.read_text()))
        return
    run(args)


if __name__ == "__main__":
    main()
