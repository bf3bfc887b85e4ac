"""The fast Verilator path (hwgen sim --fast) against the cocotb path, on one design, one run.

All 370 Japanese Vowels test utterances through a 64-unit GRU (12 features -> 9 speakers, random
ternary weights, 16 lanes; the design of benchmarks/sim_speed.py), every output compared with
the golden model, once with the cocotb bench on Verilator and once with the compiled harness.
The figure that counts is simulated cycles per CPU-second of the simulator process (for cocotb:
the Verilated model with VPI plus the embedded Python bench; for the fast path: the harness);
the table also shows the end-to-end times (plan, golden model and comparison included).

Writes docs/performance.md (block fast-speed). Usage: python benchmarks/fast_speed.py
[--lanes P] [--stalls] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.cosim import SimPlan, cosim  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.fastsim import build_fastsim, fastsim  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats  # noqa: E402
from hwgen.train.datasets import load_dataset  # noqa: E402


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--stalls", action="store_true",
                    help="also a run with input idles, output backpressure and resets")
    ap.add_argument("--workdir", default=None, help="keep build folders under this folder")
    args = ap.parse_args()
    ds = load_dataset("vowels")
    p = random_float_params(CellKind.GRU, 12, 64, 9, seed=0)
    model = freeze(p, QuantConfig.parse("ternary"), Formats.standard(8))
    codes, _ = model.formats.input.quantize(ds.test.X)
    seqs = [codes[i, : int(ds.test.lengths[i])] for i in range(len(codes))]
    plans = [("back to back", lambda: SimPlan(list(seqs)))]
    if args.stalls:
        plans.append((
            "stalls + resets",
            lambda: SimPlan(list(seqs), in_stall=0.2, out_stall=0.3, seed=1,
                            reset_before=set(range(1, len(seqs), 3)),
                            abort={n: max(1, len(seqs[n]) // 2) for n in range(0, len(seqs), 4)}),
        ))
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.workdir or scratch)
        man = generate(model, tmp / "rtl", lanes=args.lanes)
        # builds first (timed apart): a one-sequence cocotb run, the harness compile
        t0 = time.perf_counter()
        cosim(tmp / "rtl", SimPlan(seqs[:1]), simulator="verilator", build_dir=tmp / "b_cocotb")
        builds = {"cocotb": time.perf_counter() - t0}
        _, builds["fast"] = build_fastsim(tmp / "rtl", tmp / "b_fast")
        for what, make in plans:
            got = {}
            for path in ("cocotb", "fast"):
                c0, s0, t0 = _child_cpu(), _self_cpu(), time.perf_counter()
                if path == "cocotb":
                    r = cosim(tmp / "rtl", make(), simulator="verilator",
                              build_dir=tmp / "b_cocotb")
                    sim_cpu = _child_cpu() - c0  # the simulator process (model + bench)
                else:
                    r = fastsim(tmp / "rtl", make(), build_dir=tmp / "b_fast")
                    sim_cpu = r.sim_cpu_s
                total, own = time.perf_counter() - t0, _self_cpu() - s0
                assert r.ok, r.summary()
                got[path] = (r, sim_cpu, total, own)
                rows.append(
                    f"| {what} | {path} | {r.timesteps} | {r.cycles:,} | {sim_cpu:.2f} s | "
                    f"{r.cycles / sim_cpu:,.0f} | {total:.1f} s | {own:.1f} s | "
                    f"{builds[path]:.1f} s |"
                )
                print(rows[-1], flush=True)
            assert got["fast"][0].cycles == got["cocotb"][0].cycles
            ratios.append(got["cocotb"][1] / got["fast"][1])
    text = "\n".join([
        "| plan | path | timesteps | cycles | simulator CPU | cycles per CPU-second | "
        "wall (no build) | Python CPU | build |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Speed-up in simulated cycles per CPU-second: "
        f"{', '.join(f'{x:.1f}x' for x in ratios)} ({', '.join(w for w, _ in plans)}). "
        f"Both paths run the same plan and report the same cycle count; every output compared "
        f"with the golden model (all equal). GRU 12 -> 64 -> 9, random ternary weights, "
        f"{args.lanes} lanes, {man['timing']['cycles_per_timestep']} cycles per timestep, all "
        f"370 Japanese Vowels test utterances. 'simulator CPU': user + system seconds of the "
        f"simulator process (cocotb: the Verilated model built with VPI + the embedded Python "
        f"bench; fast: the compiled harness). 'Python CPU': this process (plan, golden model, "
        f"comparison). 'build': Verilator + C++ compile. 2-core machine; "
        f"{versions('cocotb', 'verilator', 'amaranth')}.",
    ])
    write_block("performance.md", "fast-speed", text)


if __name__ == "__main__":
    main()
