"""Simulation speed of the generated Verilog: all 370 Japanese Vowels test utterances through a
64-unit GRU (12 features -> 9 speakers), every output checked against the golden model.

Writes docs/performance.md (block sim-speed). Usage: python benchmarks/sim_speed.py [--lanes P]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.cosim import SimPlan, cosim  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats  # noqa: E402
from hwgen.train.datasets import load_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--simulators", default="verilator,icarus")
    ap.add_argument("--icarus-sequences", type=int, default=20,
                    help="Icarus is ~50x slower on this design: the first N utterances only")
    ap.add_argument("--workdir", default=None, help="keep build folders under this folder")
    args = ap.parse_args()
    ds = load_dataset("vowels")
    p = random_float_params(CellKind.GRU, 12, 64, 9, seed=0)
    model = freeze(p, QuantConfig.parse("ternary"), Formats.standard(8))
    codes, _ = model.formats.input.quantize(ds.test.X)
    seqs = [codes[i, : int(ds.test.lengths[i])] for i in range(len(codes))]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.workdir or scratch
        man = generate(model, Path(tmp) / "rtl", lanes=args.lanes)
        for sim in args.simulators.split(","):
            t0 = time.perf_counter()
            part = seqs[: args.icarus_sequences] if sim == "icarus" else seqs
            r = cosim(Path(tmp) / "rtl", SimPlan(part), simulator=sim)
            total = time.perf_counter() - t0
            assert r.ok, r.summary()
            rows.append(
                f"| {sim} | {r.sequences} | {r.timesteps} | {r.cycles:,} | "
                f"{man['timing']['cycles_per_timestep']} | {r.wall_s:.1f} s | {total:.1f} s | "
                f"{r.cycles / r.wall_s:,.0f} | {r.timesteps / r.wall_s:,.0f} |"
            )
            print(rows[-1])
    text = "\n".join([
        "| simulator | sequences | timesteps | cycles | cycles/timestep | simulation | "
        "with build | cycles/s | timesteps/s |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"GRU 12 -> 64 -> 9, random ternary weights, {args.lanes} lanes, every output compared "
        f"with the golden model (all equal). 'simulation' is the cocotb run (simulator start "
        f"included), 'with build' adds compiling the Verilog. 2-core machine; "
        f"{versions('cocotb', 'verilator', 'amaranth')}, Icarus Verilog 11.0 (Debian).",
    ])
    write_block("performance.md", "sim-speed", text)


if __name__ == "__main__":
    main()
