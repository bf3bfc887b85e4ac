"""Delta networks (issue 23): accuracy against columns processed over a grid of thresholds.

For spoken digits (``fsdd:FOLDER``, the FSDD recordings in ../shared/data/fsdd) and Japanese
Vowels, GRU 64 hidden, ternary: trains per seed a dense model and a delta model
(``hwgen train --delta THX,THH``, THX,THH = `TRAIN_DELTA`), then runs the integer golden model
(`hwgen.delta.DeltaGolden`, bit-exact) of each over the grid `GRID_X` x `GRID_H` of thresholds
on the valid and the test split, recording accuracy, the fraction of columns processed (input,
recurrent, all; over each sequence's valid timesteps) and the cycles per timestep of the planned
delta core at `LANES` lanes (`hwgen.delta.cycles`: a *model* of a core not built yet) against the
dense core's exact schedule.

Selection, honest: per model, the thresholds with the fewest modelled cycles whose **valid**
accuracy is within 0.01 of the dense model's valid accuracy (same seed, theta 0); their **test**
accuracy and speedup are reported. The dense reference is the dense-trained model's golden test
accuracy.

Runs (model files and JSON) are kept under --runs (default runs/delta_sweep/) and reused, so the
script can be interrupted and resumed; ``--report-only`` rewrites the tables from them. Writes
benchmarks/results/delta_sweep.json and docs/results.md between the ``delta`` markers.

    nice -n 10 .venv/bin/python benchmarks/delta_sweep.py --fsdd ../shared/data/fsdd
    .venv/bin/python benchmarks/delta_sweep.py --report-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GRID_X = (0, 4, 8, 12, 16, 20, 24, 32)
GRID_H = (0, 4, 8, 12, 16, 20, 24, 32, 48)
LANES = 8
TOLERANCE = 0.01
#: dataset -> (hidden, epochs, batch)
SETUPS = {
    "fsdd": (64, 30, 32),
    "vowels": (64, 40, 16),
}
#: the models trained per dataset and seed: "dense", and a delta model per training threshold pair
TRAIN_DELTAS = ("16,16", "16,32")
VARIANTS = ("dense",) + tuple("delta" + t.replace(",", "-") for t in TRAIN_DELTAS)


def dataset_spec(name: str, fsdd: Path) -> str:
    return f"fsdd:{fsdd}" if name == "fsdd" else name


def train_one(ds_name, ds, variant: str, seed: int, runs: Path, spec: str) -> dict:
    from hwgen import api
    from hwgen.train.trainer import TrainConfig, train

    hidden, epochs, batch = SETUPS[ds_name]
    delta = None if variant == "dense" else variant[len("delta"):].replace("-", ",")
    path = runs / f"{ds_name}-{variant}-s{seed}.hwgm"
    cfg = TrainConfig(spec, cell="gru", hidden=hidden, quant="ternary", epochs=epochs,
                      batch=batch, seed=seed, delta=delta)
    t0 = time.monotonic()
    r = train(cfg, ds, quiet=True, output=path)
    wall = time.monotonic() - t0
    ev = api.evaluate(api.load_model(path), ds, "test")  # hwgen eval MODEL --dataset D
    if ev.golden_value != r.metrics.golden_value:
        raise SystemExit(f"{path}: evaluation from the file differs from training's")
    return {"dataset": ds_name, "variant": variant, "seed": seed, "model": path.name,
            "train_delta": delta, "hidden": hidden, "epochs": epochs, "batch": batch,
            "golden_test": ev.golden_value, "float_test": ev.float_value,
            "columns_test": ev.columns, "train_seconds": r.seconds, "wall_seconds": wall,
            "command": f"hwgen train --dataset {ds_name if ds_name != 'fsdd' else 'fsdd:FOLDER'}"
                       f" --cell gru --hidden {hidden} --quant ternary --epochs {epochs} "
                       f"--batch {batch} --seed {seed}" + (f" --delta {delta}" if delta else "")}


def sweep(model, ds) -> list[dict]:
    """Every grid point on the valid and test splits."""
    from hwgen.delta import DeltaGolden, DeltaThresholds
    from hwgen.delta.cycles import delta_cycles
    from hwgen.golden import quantize_inputs
    from hwgen.train.evaluate import accuracy_at_lengths

    splits = {}
    for name in ("valid", "test"):
        sp = ds.split(name)
        splits[name] = (sp, quantize_inputs(model, sp.X)[0])
    rows = []
    for tx in GRID_X:
        for th in GRID_H:
            g = DeltaGolden(model, DeltaThresholds.uniform(tx, th, model.num_layers))
            row = {"theta_x": tx, "theta_h": th}
            for name, (sp, codes) in splits.items():
                r = g.run(codes)
                fr = r.columns.fractions(sp.lengths)
                cyc = delta_cycles(model, LANES, r.columns, sp.lengths)
                row[name] = {"accuracy": accuracy_at_lengths(r.logits, sp.y, sp.lengths),
                             "fraction_x": fr["x"], "fraction_h": fr["h"],
                             "fraction": fr["all"], "cycles": cyc.delta,
                             "dense_cycles": cyc.dense, "speedup": cyc.speedup}
            rows.append(row)
    return rows


def choose(rows: list[dict], dense_valid: float) -> dict | None:
    ok = [r for r in rows if r["valid"]["accuracy"] >= dense_valid - TOLERANCE - 1e-12]
    return min(ok, key=lambda r: (r["valid"]["cycles"], -r["valid"]["accuracy"]),
               default=None)


def run_all(args) -> None:
    import torch

    from hwgen.modelfile import load_model
    from hwgen.train.datasets import load_dataset

    torch.set_num_threads(1)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    for ds_name in args.datasets:
        spec = dataset_spec(ds_name, Path(args.fsdd))
        t_load = time.monotonic()
        ds = load_dataset(spec)
        load_s = time.monotonic() - t_load
        for seed in range(args.seeds):
            for variant in VARIANTS:
                path = runs / f"{ds_name}-{variant}-s{seed}.json"
                if path.exists():
                    continue
                rec = train_one(ds_name, ds, variant, seed, runs, spec)
                t1 = time.monotonic()
                rec["sweep"] = sweep(load_model(runs / rec["model"]), ds)
                rec["sweep_seconds"] = time.monotonic() - t1
                rec["load_seconds"] = load_s
                rec["sizes"] = [len(ds.train), len(ds.valid), len(ds.test)]
                path.write_text(json.dumps(rec, indent=1))
                print(f"{ds_name} {variant} seed {seed}: golden test {rec['golden_test']:.4f} "
                      f"(train {rec['wall_seconds']:.0f} s, sweep {rec['sweep_seconds']:.0f} s;"
                      f" {(time.monotonic() - t0) / 60:.1f} min so far)", flush=True)


#: one row of a run's "grid" in benchmarks/results/delta_sweep.json, per grid point
GRID_FIELDS = ("theta_x", "theta_h") + tuple(
    f"{split}_{k}" for split in ("valid", "test")
    for k in ("accuracy", "fraction_x", "fraction_h", "fraction", "cycles"))


def _compact(rec: dict) -> dict:
    """A stored run with its sweep as rows of `GRID_FIELDS` (5 significant digits)."""
    out = {k: v for k, v in rec.items() if k != "sweep"}
    out["dense_cycles"] = rec["sweep"][0]["test"]["dense_cycles"]
    out["grid"] = [[r["theta_x"], r["theta_h"]] + [
        float(f"{r[split][k]:.5g}") for split in ("valid", "test")
        for k in ("accuracy", "fraction_x", "fraction_h", "fraction", "cycles")]
        for r in rec["sweep"]]
    return out


def _front(rows: list[dict], split: str) -> list[dict]:
    """Pareto front (fewest modelled cycles, highest accuracy) of ``split``."""
    pts = sorted(rows, key=lambda r: (r[split]["cycles"], -r[split]["accuracy"]))
    out, best = [], -1.0
    for r in pts:
        if r[split]["accuracy"] > best:
            out.append(r)
            best = r[split]["accuracy"]
    return out


def _selected(by: dict, ds_name: str, seeds: list[int]) -> tuple[list[str], dict]:
    """The per-seed table of the thresholds chosen on valid, and per variant the chosen test
    (accuracy - dense accuracy, speedup) pairs."""
    lines = ["| seed | model (train thresholds) | dense-model test acc | own theta 0 test acc | "
             "theta_x, theta_h (chosen on valid) | test acc (vs dense model) | columns processed "
             "(x / h / all) | modelled delta-core cycles / step | vs dense core | same, "
             "unchanged cell unit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    chosen: dict[str, list] = {}
    for seed in seeds:
        dense = by.get((ds_name, "dense", seed))
        dense_test = dense["sweep"][0]["test"]["accuracy"] if dense else float("nan")
        dense_valid = dense["sweep"][0]["valid"]["accuracy"] if dense else float("nan")
        for variant in VARIANTS:
            rec = by.get((ds_name, variant, seed))
            if rec is None:
                continue
            own = rec["sweep"][0]["test"]["accuracy"]
            c = choose(rec["sweep"], dense_valid)
            label = "dense" if variant == "dense" else f"delta ({rec['train_delta']})"
            head = f"| {seed} | {label} | {dense_test:.3f} | {own:.3f} |"
            if c is None:
                lines.append(f"{head} none within {TOLERANCE} on valid | | | | | |")
                continue
            t = c["test"]
            slow = t["dense_cycles"] / (t["cycles"] + _cell_rows(ds_name))
            chosen.setdefault(label, []).append((t["accuracy"] - dense_test, t["speedup"]))
            lines.append(
                f"{head} {c['theta_x']}, {c['theta_h']} | {t['accuracy']:.3f} "
                f"({t['accuracy'] - dense_test:+.3f}) | {t['fraction_x']:.3f} / "
                f"{t['fraction_h']:.3f} / {t['fraction']:.3f} | {t['cycles']:.0f} | "
                f"{t['speedup']:.2f}x | {slow:.2f}x |")
    return lines, chosen


def _cell_rows(ds_name: str) -> int:
    """G*H of the swept GRU (one layer): the cycles the cell pass adds when the dense core's cell
    unit takes a row's two terms as two events (`delta_cycles` with ``row_cycles=2``)."""
    return 3 * SETUPS[ds_name][0]


def _fronts(by: dict, ds_name: str, seed: int) -> list[str]:
    """Test-split fronts of the delta-trained models of one seed."""
    lines = []
    for variant in VARIANTS[1:]:
        rec = by.get((ds_name, variant, seed))
        if rec is None:
            continue
        lines += [f"Test-split front of the model trained with --delta {rec['train_delta']}, "
                  f"seed {seed} (fewest modelled cycles for each accuracy, chosen on test: "
                  "for reading the curve, not for claims):", "",
                  "| theta_x, theta_h | test acc | columns processed | modelled cycles / step "
                  "| vs dense core |", "|---|---|---|---|---|"]
        for r in _front(rec["sweep"], "test"):
            t = r["test"]
            lines.append(f"| {r['theta_x']}, {r['theta_h']} | {t['accuracy']:.3f} | "
                         f"{t['fraction']:.3f} | {t['cycles']:.0f} | {t['speedup']:.2f}x |")
        lines.append("")
    return lines


def report(args) -> None:
    from _record import versions, write_block

    runs = Path(args.runs)
    recs = [json.loads(p.read_text()) for p in sorted(runs.glob("*-s*.json"))]
    if not recs:
        raise SystemExit(f"no runs in {runs}")
    head = {"lanes": LANES, "tolerance": TOLERANCE, "grid_x": GRID_X, "grid_h": GRID_H,
            "setups": SETUPS, "train_deltas": TRAIN_DELTAS, "grid_fields": list(GRID_FIELDS)}
    res = ROOT / "benchmarks" / "results" / "delta_sweep.json"
    runs_text = ",\n".join(json.dumps(_compact(r), separators=(",", ":")) for r in recs)
    res.write_text(json.dumps(head, indent=1)[:-2] + ',\n "runs": [\n' + runs_text + "\n]}\n")
    print(f"wrote {res.relative_to(ROOT)}")
    lines = []
    by = {(r["dataset"], r["variant"], r["seed"]): r for r in recs}
    for ds_name, (hidden, epochs, batch) in SETUPS.items():
        seeds = sorted({s for (d, _, s) in by if d == ds_name})
        if not seeds:
            continue
        first = next(by[k] for k in by if k[0] == ds_name)
        sizes = "/".join(map(str, first.get("sizes", [])))
        title = "Spoken digits (FSDD, 5 speakers)" if ds_name == "fsdd" else "Japanese Vowels"
        lines += [f"**{title}**: GRU {hidden} hidden, ternary, {epochs} epochs, batch {batch}; "
                  f"splits train/valid/test {sizes}; dense core at {LANES} lanes: "
                  f"{first['sweep'][0]['test']['dense_cycles']} cycles per timestep. Thresholds "
                  "chosen on valid (fewest modelled cycles with valid accuracy >= the dense "
                  f"model's valid accuracy - {TOLERANCE}), reported on test. The last column: "
                  "the cell pass at two cycles per row (the dense core's cell units unchanged)."
                  , ""]
        table, chosen = _selected(by, ds_name, seeds)
        lines += table + [""]
        for label, pts in chosen.items():
            a = np.array(pts)
            lines.append(f"- {label}, mean over {len(a)} seeds: test accuracy "
                         f"{a[:, 0].mean():+.3f} against the dense model, "
                         f"{a[:, 1].mean():.2f}x fewer modelled cycles than the dense core")
        lines.append("")
        lines += _fronts(by, ds_name, seeds[0])
    secs = [r["wall_seconds"] for r in recs]
    lines.append(f"Training {min(secs):.0f}-{max(secs):.0f} s per model (one torch thread, "
                 f"a shared 2-core machine); {versions('torch')}.")
    write_block("results.md", "delta", "\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fsdd", default=str(ROOT.parent / "shared" / "data" / "fsdd"),
                   help="the FSDD folder (default: %(default)s)")
    p.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--runs", default=str(ROOT / "runs" / "delta_sweep"))
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    if not args.report_only:
        run_all(args)
    report(args)


if __name__ == "__main__":
    main()
