"""The first delta accelerator in simulation (amaranth.sim) on real utterances (issue 23).

Loads a delta model (``hwgen train --delta``), takes the first N sequences of a dataset's test
split, streams them through `hwgen.gateware.delta_core.DeltaAccelerator` (consumer always ready),
checks every logit against the golden model (exact) and measures the cycles between accepted
inputs. Prints them beside the planned core's modelled cycles (`hwgen.delta.cycles`) and the
dense core's exact schedule, and writes benchmarks/results/delta_core_sim.json. (The Verilog
in Icarus and Verilator: ``hwgen sim``, benchmarks/delta_rtl.py.)

    nice -n 10 .venv/bin/python benchmarks/delta_core_sim.py \
        runs/delta_sweep/fsdd-delta16-32-s0.hwgm --dataset fsdd:../shared/data/fsdd -n 4
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


def main() -> None:
    from amaranth.sim import Simulator

    from hwgen.delta import DeltaGolden, DeltaThresholds, with_thresholds
    from hwgen.delta.cycles import delta_cycles
    from hwgen.gateware.delta_core import DeltaAccelerator
    from hwgen.golden import quantize_inputs
    from hwgen.modelfile import load_model
    from hwgen.train.datasets import load_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--theta", help="THX,THH instead of the model's own thresholds")
    p.add_argument("-n", type=int, default=2, help="test sequences (default: %(default)s)")
    p.add_argument("--lanes", type=int, default=8)
    args = p.parse_args()
    model = load_model(args.model)
    if args.theta:
        model = with_thresholds(model, DeltaThresholds.parse(args.theta, model.num_layers))
    ds = load_dataset(args.dataset)
    sp = ds.test
    codes, _ = quantize_inputs(model, sp.X[: args.n])
    seqs = [codes[i, : sp.lengths[i]] for i in range(args.n)]
    golden = [DeltaGolden(model).run(s[None]) for s in seqs]
    dut = DeltaAccelerator(model, args.lanes)
    got, accepts = [], []

    async def feed(ctx):
        cycle = 0
        for s in seqs:
            for t, v in enumerate(s):
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.p, {"sos": t == 0, "x": [int(a) for a in v]})
                while True:
                    ready = ctx.get(dut.i_stream.ready)
                    await ctx.tick()
                    cycle += 1
                    if ready:
                        accepts.append(cycle)
                        break
        ctx.set(dut.i_stream.valid, 0)

    async def drain(ctx):
        ctx.set(dut.o_stream.ready, 1)
        async for _, _, valid, pl in ctx.tick().sample(dut.o_stream.valid, dut.o_stream.p):
            if valid:
                got.append([int(v) for v in pl.logits])

    total = sum(len(s) for s in seqs)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_process(drain)
    t0 = time.monotonic()
    sim.run_until(1e-8 * 4000 * (total + 2))
    wall = time.monotonic() - t0
    want = [row.tolist() for r in golden for row in r.logits[0]]
    exact = got[: len(want)] == want
    gaps = np.diff(accepts)
    modelled = [delta_cycles(model, args.lanes, r.columns) for r in golden]
    rec = {
        "model": Path(args.model).name, "thresholds": model.delta.to_json(),
        "lanes": args.lanes, "sequences": args.n, "timesteps": total, "exact": exact,
        "logits_compared": len(want),
        "measured_cycles_per_timestep": float(gaps.mean()) if len(gaps) else None,
        "modelled_planned_core": float(np.mean([c.delta for c in modelled])),
        "dense_core": modelled[0].dense,
        "columns_processed": float(np.mean([r.columns.fraction() for r in golden])),
        "sim_seconds": wall,
    }
    print(json.dumps(rec, indent=1))
    out = ROOT / "benchmarks" / "results" / "delta_core_sim.json"
    out.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if not exact:
        raise SystemExit("the delta accelerator's logits differ from the golden model's")


if __name__ == "__main__":
    main()
