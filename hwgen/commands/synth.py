"""``hwgen synth``: synthesize, place and route a generated accelerator; print its resources,
Fmax and time per timestep."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..fit import check_fit
from ..modelfile import load_model
from ..synth import format_report, read_rtl_dir, synthesize
from ..targets import target_names
from ._common import positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="synthesize and place-and-route generated Verilog (Yosys + nextpnr)",
        description="Run Yosys and nextpnr on RTL_DIR (written by 'hwgen generate': "
        "manifest.json names the top module, its files and cycles per timestep) inside a "
        "registered-I/O timing wrapper; print LUTs, flip-flops, RAM blocks, DSPs, median Fmax "
        "over the seeds and the time per timestep at that Fmax. A model that cannot fit the "
        "target is refused before any tool runs.",
    )
    p.add_argument("rtl_dir", metavar="RTL_DIR", help="folder with manifest.json and Verilog")
    p.add_argument("--target", required=True, choices=target_names(), metavar="T",
                   help="device: " + ", ".join(target_names()))
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                   help="place-and-route seeds; Fmax is their median (default: %(default)s)")
    p.add_argument("--freq", type=float, metavar="MHZ",
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
    p.add_argument("-o", "--output", metavar="DIR",
                   help="where tool logs and synth_report.json go (default: RTL_DIR/synth-T)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    rtl = read_rtl_dir(args.rtl_dir, args.top)
    if rtl.model_file is not None and rtl.lanes and not args.no_fit_check:
        fit = check_fit(load_model(rtl.model_file), rtl.lanes, args.target)
        for w in fit.warnings:
            print(f"hwgen: warning: {w}", file=sys.stderr)
    out = Path(args.output) if args.output else rtl.folder / f"synth-{args.target}"
    print(f"synthesizing {rtl.top} for {args.target} in {out} ...", file=sys.stderr)
    report = synthesize(
        list(rtl.sources), rtl.top, args.target, out, seeds=args.seeds, freq_mhz=args.freq,
        dsp=True if args.dsp else None, cycles_per_timestep=rtl.cycles_per_timestep,
        timeout=args.timeout,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
        print(f"report      {out / 'synth_report.json'}")
    return 0
