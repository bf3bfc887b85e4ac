"""Would zero skipping pay in the delta core? (issue 23: "combine with 2:4 zero skipping only if
it pays (measure, say why or why not)").

The delta core reads a processed column's weights as R = ceil(G*H / P) words of P rows (lanes
across rows, `hwgen.gateware.delta_update.column_words`) and spends one cycle per word. Zero
weights could save cycles in two ways, both measured here on the spoken-digit test split (FSDD,
the delta GRU of benchmarks/delta_rtl.py: 20-64-10, ternary, ``--delta 16,32`` in training, run
at (16, 48)):

- **word skipping**: skip a word whose P codes are all zero (a one-bit flag per word beside the
  ROM, the column's remaining words issued back to back). Saved: the all-zero words of every
  processed column, counted column by column on the golden model's own deltas.
- **compressed columns**: a column's non-zero weights only, P per cycle (a row index per weight
  and a scatter into the delta memory: EdgeDRNN's layout), ceil(nnz_j / P) cycles for column j,
  a lower bound of what any zero skipping reaches.

Each for the model trained as today (no sparsity) and for the same model trained 2:4 sparse
(``--sparsity 2:4``: two non-zeros in every four weights of a row, the pattern the dense core's
zero skipping uses), with its accuracy. Cycles are the delta core's bound (`hwgen.delta.
schedule`: fixed + sos * clear + R * columns) with R per column replaced as above; the bound is
what `hwgen sim` checks and within a few percent of the measured cycles.

    HEAVY_TAG=lead /work/wt/heavy .venv/bin/python benchmarks/delta_nm.py [--fsdd FOLDER]

Models are kept under --runs (default runs/delta_nm/) and reused. Writes
benchmarks/results/delta_nm.json and the ``delta-nm`` block of docs/results.md.
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

from benchmarks._record import versions, write_block  # noqa: E402

TRAIN_DELTA, RUN_DELTA, EPOCHS, BATCH = "16,32", "16,48", 30, 32
VARIANTS = {"ternary": None, "ternary 2:4": "2:4"}
LANES = (8, 16)


def train_models(runs: Path, fsdd: str) -> dict[str, Path]:
    """The two models (reused when their files exist)."""
    from hwgen import api

    out = {}
    for name, sparsity in VARIANTS.items():
        path = runs / f"fsdd-gru-{name.replace(' ', '-').replace(':', '')}.hwgm"
        if not path.exists():
            t0 = time.monotonic()
            api.train(f"fsdd:{fsdd}", cell="gru", hidden=64, quant="ternary", epochs=EPOCHS,
                      batch=BATCH, seed=0, delta=TRAIN_DELTA, sparsity=sparsity, output=path,
                      threads=1)
            print(f"trained {path.name} in {time.monotonic() - t0:.0f} s", flush=True)
        out[name] = path
    return out


def column_masks(model, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence (T, I) of a one-layer delta model: the processed input and recurrent columns
    per timestep ((T, I) and (T, H) bool, from the golden model's own encoder and hidden
    states; checked against its counts) and the column counts per timestep."""
    from hwgen.delta import DeltaGolden

    g = DeltaGolden(model)
    r = g.run(codes[None], return_hidden=True)
    h = r.hidden[0][0]
    prev = np.vstack([np.zeros((1, h.shape[1]), np.int64), h[:-1]])
    x_hat = np.zeros((1, codes.shape[1]), np.int64)
    h_hat = np.zeros((1, h.shape[1]), np.int64)
    th = model.delta
    mx = np.stack([g._encode(codes[t][None].astype(np.int64), x_hat, th.theta_x[0])[0] != 0
                   for t in range(len(codes))])
    mh = np.stack([g._encode(prev[t][None].copy(), h_hat, th.theta_h[0])[0] != 0
                   for t in range(len(codes))])
    counts = r.columns.x_cols[0, :, 0] + r.columns.h_cols[0, :, 0]
    if not np.array_equal(mx.sum(1) + mh.sum(1), counts):
        raise SystemExit("the recomputed column masks disagree with the golden counts")
    return mx, mh, counts


def column_cycles(model, lanes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per scheme, the cycles of each input column and each recurrent column."""
    from hwgen.design import resolve

    plan = resolve(model, lanes).plan
    out = {"today": [], "word skip": [], "compressed": []}
    for mid in (0, 1):  # layer 0's x and h matrices
        mp = plan.matrices[mid]
        levels = mp.matrix.levels
        order = np.asarray(mp.row_order) if mp.row_order is not None else np.arange(len(levels))
        R = -(-len(levels) // lanes)
        padded = np.zeros((R * lanes, levels.shape[1]), bool)
        padded[: len(order)] = levels[order] != 0
        nonzero_words = padded.reshape(R, lanes, -1).any(axis=1).sum(axis=0)
        out["today"].append(np.full(levels.shape[1], R))
        out["word skip"].append(nonzero_words)
        out["compressed"].append(-(-(levels != 0).sum(axis=0) // lanes))
    return {k: tuple(v) for k, v in out.items()}


def measure(model, seqs, lanes: int) -> dict:
    """Mean cycles per timestep of each scheme over ``seqs`` (the bound's fixed part, clear at
    each sequence's start, plus each processed column's cycles)."""
    from hwgen.delta.schedule import delta_schedule
    from hwgen.design import resolve

    sched = delta_schedule(model, resolve(model, lanes).plan)
    per = column_cycles(model, lanes)
    totals = dict.fromkeys(per, 0)
    steps = 0
    for s in seqs:
        mx, mh, counts = column_masks(model, s)
        base = sched.fixed * len(s) + sched.clear
        add = {k: base + int((mx * cx).sum() + (mh * ch).sum()) for k, (cx, ch) in per.items()}
        if add["today"] != int(sched.bound(counts, np.arange(len(s)) == 0).sum()):
            raise SystemExit("'today' disagrees with the delta core's own bound")
        for k, v in add.items():
            totals[k] += v
        steps += len(s)
    mean = {k: v / steps for k, v in totals.items()}
    plan = resolve(model, lanes).plan
    lv = [plan.matrices[i].matrix.levels for i in (0, 1)]
    return {"lanes": lanes, "fixed": sched.fixed, "per_column": sched.per_column,
            "dense_core": sched.dense_cycles, "steps": steps,
            "zero_weights": float(np.mean(np.concatenate([(x == 0).ravel() for x in lv]))),
            "cycles": mean,
            "update_share": 1 - (sched.fixed + sched.clear * len(seqs) / steps) / mean["today"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fsdd", default="/work/shared/data/fsdd")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "delta_nm")
    args = ap.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    from hwgen import api
    from hwgen.delta import DeltaThresholds, with_thresholds
    from hwgen.train.datasets import load_dataset
    from hwgen.train.evaluate import evaluate

    ds = load_dataset(f"fsdd:{args.fsdd}")
    rows = []
    for name, path in train_models(args.runs, args.fsdd).items():
        trained = api.load_model(path)
        model = with_thresholds(trained, DeltaThresholds.parse(RUN_DELTA, 1))
        seqs = api._dataset_sequences(model, f"fsdd:{args.fsdd}", None)
        m = evaluate(model, ds, "test")
        for lanes in LANES:
            r = measure(model, seqs, lanes)
            r.update(model=name, accuracy=m.golden_value, columns=m.columns)
            rows.append(r)
            print(json.dumps(r), flush=True)
    out = {"rows": rows, "train": f"hwgen train --dataset fsdd:FOLDER --cell gru --hidden 64 "
           f"--quant ternary --epochs {EPOCHS} --batch {BATCH} --seed 0 --delta {TRAIN_DELTA} "
           "[--sparsity 2:4]", "thresholds": RUN_DELTA, "tools": versions("torch", "amaranth")}
    res = ROOT / "benchmarks" / "results" / "delta_nm.json"
    res.write_text(json.dumps(out, indent=1) + "\n")
    write_block("results.md", "delta-nm", table(out))
    return 0


def table(out: dict) -> str:
    lines = ["| model | test acc | columns processed | zero weights | lanes | dense core | "
             "delta core (today) | update share | word skip | compressed columns |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        c = r["cycles"]
        lines.append(
            f"| {r['model']} | {r['accuracy']:.3f} | {r['columns']:.1%} | "
            f"{r['zero_weights']:.1%} | {r['lanes']} | {r['dense_core']} | {c['today']:.1f} | "
            f"{r['update_share']:.0%} | {c['word skip']:.1f} ({c['today'] / c['word skip']:.2f}x)"
            f" | {c['compressed']:.1f} ({c['today'] / c['compressed']:.2f}x) |")
    lines.append("")
    lines.append(f"Cycles per timestep: the delta core's bound (`hwgen.delta.schedule`), mean over "
                 f"the FSDD test split at thresholds {out['thresholds']}; training: "
                 f"`{out['train']}`. Tools: {out['tools']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
