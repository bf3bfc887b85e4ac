"""``hwgen synth``: synthesize, place and route a generated accelerator; print its resources,
Fmax and time per timestep."""

from __future__ import annotations

import sys

from .. import api
from ..synth import format_report
from ._common import command, emit, positive_float, positive_int, progress_for


def register(sub) -> None:
    p = command(sub, "synth", "synthesize and place-and-route generated Verilog (Yosys + nextpnr)",
                "Run Yosys and nextpnr on RTL_DIR (written by 'hwgen generate': manifest.json "
                "names the top module, its files and cycles per timestep) inside a "
                "registered-I/O timing wrapper; print LUTs, flip-flops, RAM blocks, DSPs, median "
                "Fmax over the seeds and the time per timestep at that Fmax. A model that cannot "
                "fit the target is refused before any tool runs. Progress lines (tool stage, "
                "seed, time left) go to stderr.", run, "rtl_dir", "target", "output", "quiet",
                rtl_dir=dict(help="folder with manifest.json and Verilog"),
                target=dict(required=True),
                output=dict(required=False, metavar="DIR", help="where tool logs and "
                            "synth_report.json go (default: RTL_DIR/synth-T)"))
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                   help="place-and-route seeds, 1..50; Fmax is their median (default: "
                   "%(default)s)")
    p.add_argument("--freq", type=positive_float, metavar="MHZ",
                   help="nextpnr frequency goal (default: the target's stretch goal)")
    p.add_argument("--timeout", type=positive_float, default=1800, metavar="SECONDS",
                   help="time limit per tool run: Yosys past it is an error, a nextpnr seed past "
                   "it is recorded as failed and the others count (default: %(default)s)")
    p.add_argument("--top", metavar="NAME", help="top module (default: from manifest.json)")
    p.add_argument("--dsp", action="store_true",
                   help="let Yosys infer DSP blocks on iCE40 (off by default: Yosys 0.69 "
                   "miscompiles inferred SB_MAC16)")
    p.add_argument("--no-fit-check", action="store_true",
                   help="synthesize even when the estimate says it cannot fit")


def run(args) -> int:
    progress = progress_for(args)
    report = api.synthesize(
        args.rtl_dir, args.target, seeds=args.seeds, freq_mhz=args.freq, out_dir=args.output,
        top=args.top, dsp=args.dsp, fit_check=not args.no_fit_check, progress=progress,
        timeout=args.timeout, warn=lambda w: print(f"hwgen: warning: {w}", file=sys.stderr),
    )
    out = args.output or f"{args.rtl_dir}/synth-{args.target}"
    board = {"ice40-up5k": "icebreaker", "ecp5-85k": "ulx3s-85f"}.get(args.target)
    nxt = [f"hwgen build {args.rtl_dir}/model.hwgm --board {board} -o build/NAME"] if board else []
    emit(args, report.to_json(), format_report(report) + f"\nreport      {out}/synth_report.json",
         next_=nxt)
    return 0
