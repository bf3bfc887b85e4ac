"""``hwgen estimate``: memories, RAM blocks, logic and cycles of an accelerator, pre-synthesis."""

from __future__ import annotations

import json

from ..estimate import estimate, format_estimate
from ..fit import check_fit, fit_result
from ..modelfile import load_model
from ..spec import HwgenError
from ..targets import target_names
from ._common import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "estimate",
        help="estimate resources and cycles per timestep (no synthesis)",
        description="Estimate the accelerator's memories (tiled onto the target's RAM blocks), "
        "LUT4s, flip-flops and cycles per timestep, and say whether it fits. Runs no tool.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.add_argument("--lanes", required=True, type=positive_int, metavar="P",
                   help="multiply-accumulate lanes")
    p.add_argument("--target", required=True, choices=target_names(), metavar="T",
                   help="device: " + ", ".join(target_names()))
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    model = load_model(args.model)
    r = fit_result(model, args.lanes, args.target)
    if args.json:
        d = estimate(model, args.lanes, args.target).to_json()
        d.update(fits=r.fits, problems=list(r.problems), warnings=list(r.warnings))
        print(json.dumps(d, indent=2))
        return 0
    print(format_estimate(r.estimate))
    if r.fits:
        print("fit         yes" + "".join(f"; warning: {w}" for w in r.warnings))
    else:
        try:
            check_fit(model, args.lanes, args.target)
        except HwgenError as e:
            print(f"fit         NO: {e}")
    return 0
