"""The delta core beside the dense core after synthesis and place-and-route (issue 23).

For a delta model (default runs/delta_rtl/fsdd-gru.hwgm, from benchmarks/delta_rtl.py):
``hwgen generate`` of the delta core and of the dense core of the same weights (the model without
thresholds; state ``auto``), `LANES` lanes each, then ``hwgen synth`` on the iCE40 UP5K and the
ECP5-25k (registered-I/O timing wrapper, Fmax the median of 3 seeds). Timesteps per second: Fmax
over the cycles per timestep, the dense core's exact figure, the delta core's measured mean on
the dataset's test split (the ``sim`` JSON of benchmarks/delta_rtl.py; without one, the mean of
the manifest's bound over the split's column counts, `hwgen estimate --dataset`) and its worst
case. One run at a time, resumable (runs/delta_synth/*.json); writes
benchmarks/results/delta_synth.json and the table in docs/synthesis.md between the
``delta-synth`` markers.

    HEAVY_TAG=delta /work/wt/heavy .venv/bin/python benchmarks/delta_synth.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LANES = 8  # --lanes
STATE = "auto"  # --state: the delta core's (the dense core's stays auto)
TARGETS = ("ice40-up5k", "ecp5-25k")


def measured_cycles(model, runs_rtl: Path, stem: str, dataset: str,
                    sim_json: str | None = None) -> tuple[float, str]:
    """(delta cycles per timestep, where the figure comes from): ``sim_json`` (a ``sim`` JSON
    of benchmarks/delta_rtl.py, e.g. of the trained model whose shape is synthesized) if given,
    else the model's own ``sim`` JSON beside it, else the estimate."""
    paths = [Path(sim_json)] if sim_json else [runs_rtl / f"{stem}-{sim}.json"
                                               for sim in ("verilator", "icarus")]
    if sim_json and not paths[0].exists():
        raise SystemExit(f"--sim-json {sim_json}: no such file")
    for p in paths:
        if p.exists():
            sim = p.stem.split("-")[-1]
            r = json.loads(p.read_text())
            if r["ok"]:
                return r["mean_cycles_per_timestep"], (
                    f"measured in {sim} on {r['sequences']} {r['dataset']} test sequences"
                    + (f" ({r['model']})" if sim_json else ""))
    from hwgen import api
    from hwgen.delta.estimate import delta_estimate

    seqs = api._dataset_sequences(model, dataset, None)
    e = delta_estimate(model, LANES, seqs, dataset)
    return e.expected, "the manifest's bound over the test split's columns (hwgen estimate)"


def run_one(model, core: str, target: str, runs: Path, seeds: int) -> dict:
    from hwgen import api
    from hwgen.delta import with_thresholds

    out = runs / f"{core}-{target}.json"
    if out.exists():
        return json.loads(out.read_text())
    rtl = runs / f"rtl-{core}"
    if not (rtl / "manifest.json").exists():
        if core == "delta":
            api.generate(model, rtl, LANES, state=STATE)
        else:
            api.generate(with_thresholds(model, None), rtl, LANES)
    from hwgen.spec import HwgenError

    work = runs / f"synth-{core}-{target}"
    try:
        rep = api.synthesize(rtl, target, seeds=seeds, out_dir=work, timeout=1500,
                             fit_check=False,  # measure what the fit check would refuse
                             warn=lambda w: print(f"warning: {w}", flush=True))
    except HwgenError as e:  # e.g. nextpnr cannot place it: record Yosys's counts and why
        log = work / "nextpnr_seed1.log"
        use = [" ".join(line.split()[1:]) for line in
               (log.read_text().splitlines() if log.exists() else [])
               if "%" in line and any(b in line for b in ("_LC:", "_RAM:", "COMB:", "DP16KD:"))]
        rec = {"core": core, "target": target,
               "error": str(e).split(" (log:")[0] + (f" ({', '.join(use)})" if use else ""),
               **_yosys_counts(work / "stat.json", target)}
        out.write_text(json.dumps(rec, indent=1))
        print(f"{core} {target}: {rec['error']}", flush=True)
        return rec
    rec = {"core": core, "target": target, **rep.to_json()}
    out.write_text(json.dumps(rec, indent=1))
    print(f"{core} {target}: LUT {rep.luts}, FF {rep.ffs}, RAM {rep.bram}, Fmax {rep.fmax_mhz}",
          flush=True)
    return rec


def _yosys_counts(stat: Path, target: str) -> dict:
    """LUT4 / FF / RAM blocks of the top module in Yosys's ``stat -json`` (a failed place);
    all None when Yosys itself failed (no statistics)."""
    if not stat.exists():
        return {k: None for k in ("luts", "lut_equivalent", "ffs", "bram", "fmax_mhz")}
    cells = next(v["num_cells_by_type"] for k, v in json.loads(stat.read_text())["modules"].items()
                 if k.endswith("hwgen_top"))
    ice = target.startswith("ice40")
    ffs = sum(n for t, n in cells.items() if t.startswith("SB_DFF" if ice else "TRELLIS_FF"))
    luts = cells.get("SB_LUT4" if ice else "LUT4", 0)
    ccu = 0 if ice else cells.get("CCU2C", 0)
    return {"luts": luts, "lut_equivalent": luts + 2 * ccu, "ffs": ffs,
            "bram": cells.get("SB_RAM40_4K" if ice else "DP16KD", 0), "fmax_mhz": None}


def report(recs: list[dict], cycles: dict, source: str, model_name: str, note: str = "") -> None:
    (ROOT / "benchmarks" / "results" / "delta_synth.json").write_text(json.dumps(
        {"model": model_name, "lanes": LANES, "cycles": cycles, "cycles_source": source,
         "runs": recs}, indent=1) + "\n")
    rows = ["| target | core | LUT4 (LUT-eq) | FF | RAM blocks | Fmax MHz | cycles/timestep | "
            "timesteps/s |", "|---|---|---|---|---|---|---|---|"]
    versions = set()
    for r in recs:
        f = r.get("fmax_mhz")
        if r["core"] == "delta":
            how = "measured" if source.startswith("measured") else "expected"
            cyc = f"{cycles['delta']:.1f} {how} (worst {cycles['worst']})"
            rate = (f"{f * 1e6 / cycles['delta']:,.0f} (worst case "
                    f"{f * 1e6 / cycles['worst']:,.0f})" if f else "-")
        else:
            cyc = str(cycles["dense"])
            rate = f"{f * 1e6 / cycles['dense']:,.0f}" if f else "-"
        fmax = "does not place: " + r["error"].split("ERROR: ")[-1] if "error" in r else (
            f if f is None else round(f, 1))
        rows.append(f"| {r['target']} | {r['core']} | {r['luts']} ({r['lut_equivalent']}) | "
                    f"{r['ffs']} | {r['bram']} | {fmax} | {cyc} | {rate} |")
        versions |= {f"{k} {v}" for k, v in r.get("tool_versions", {}).items()}
    text = ("\n".join(rows) + f"\n\nModel: {model_name}{note}, {LANES} lanes. Delta cycles: "
            f"{source}. "
            f"Tools: {'; '.join(sorted(versions))}.\n")
    from _record import write_block

    write_block("synthesis.md", "delta-synth", text)
    print(text)


def main() -> None:
    from hwgen import api

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "runs" / "delta_rtl" / "fsdd-gru.hwgm"))
    p.add_argument("--dataset", default="fsdd:/work/shared/data/fsdd")
    p.add_argument("--runs", default=str(ROOT / "runs" / "delta_synth"))
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lanes", type=int, default=LANES)
    p.add_argument("--state", default=STATE, choices=("auto", "registers", "ram"),
                   help="the delta core's state option (auto: block RAM unless tiny)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--sim-json", default=None,
                   help="the delta cycles from this sim JSON of benchmarks/delta_rtl.py")
    p.add_argument("--note", default="", help="what the table says of the model, after its name")
    args = p.parse_args()
    globals().update(LANES=args.lanes, STATE=args.state)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    model = api.load_model(args.model)
    recs = []
    for target in args.targets:
        for core in ("dense", "delta"):
            if args.report_only:
                f = runs / f"{core}-{target}.json"
                if f.exists():
                    recs.append(json.loads(f.read_text()))
            else:
                recs.append(run_one(model, core, target, runs, args.seeds))
    stem = Path(args.model).stem
    delta, source = measured_cycles(model, Path(args.model).parent, stem, args.dataset,
                                    args.sim_json)
    man = json.loads((runs / "rtl-delta" / "manifest.json").read_text())
    dense = json.loads((runs / "rtl-dense" / "manifest.json").read_text())
    cycles = {"delta": delta, "worst": man["timing"]["cycles_per_timestep"],
              "dense": dense["timing"]["cycles_per_timestep"]}
    report(recs, cycles, source, Path(args.model).name, args.note and f" ({args.note})")


if __name__ == "__main__":
    main()
