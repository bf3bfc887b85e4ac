"""``hwgen prove``: formal properties of a generated accelerator and its components (SymbiYosys)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..spec import HwgenError
from ._common import add_options, command, emit, positive_int

LARGE_CPT = 300  # cycles per timestep beyond which the interface proofs get slow


def register(sub) -> None:
    p = command(sub, "prove", "prove stream, timing and arithmetic properties with SymbiYosys",
                "Run the formal properties of the accelerator in RTL_DIR (from 'hwgen "
                "generate'), or of MODEL generated with --lanes: stream handshakes and timing on "
                "the Verilog top's ports (from manifest.json), and the arithmetic of the gateware "
                "components at the model's widths (docs/verification.md). One line per property "
                "with its result and time; exit 0 when every property holds, 1 otherwise.",
                run_prove)
    p.add_argument("target", metavar="RTL_DIR|MODEL",
                   help="a folder written by 'hwgen generate', or a model file (.hwgm)")
    add_options(p.add_argument_group("build-time options (MODEL only)"), "lanes",
                lanes=dict(default=1, help="lanes of the accelerator generated from MODEL "
                           "(default: %(default)s)"))
    run = p.add_argument_group("run-time options")
    run.add_argument("--only", metavar="NAMES",
                     help="comma-separated property names or prefixes, e.g. 'timing,scale'")
    run.add_argument("--no-components", action="store_true",
                     help="only the interface properties of the Verilog top")
    run.add_argument("--no-interface", action="store_true", help="only the component proofs")
    run.add_argument("--bounded", action="store_true",
                     help="also the bounded checks of streams.order, streams.order_bmc and "
                     "timing.latency on the Verilog top (black box, minutes each; the core.* "
                     "proofs show the same assertions for ever on the core it is converted from)")
    run.add_argument("--stall-bound", type=positive_int, metavar="S",
                     help="streams.order: longest output stall in cycles (default: cycles per "
                     "timestep)")
    run.add_argument("--bmc-depth", type=positive_int, metavar="D",
                     help="streams.order_bmc: cycles from reset (default: 2 x cycles per "
                     "timestep + 8)")
    run.add_argument("--work", metavar="DIR",
                     help="folder for the SymbiYosys runs and traces (default: RTL_DIR/formal, "
                     "or MODEL.formal)")
    run.add_argument("--list", action="store_true", help="list the properties, run nothing")


def _interface(rtl: Path, manifest: dict, model, args) -> list:
    """The interface properties: the black-box ones on the Verilog top (the bounded order and
    timing checks only with ``--bounded``) and the white-box ``core.*`` proofs of the core the
    folder's model and options build (a delta core's: `formal.delta_whitebox`)."""
    from ..design import manifest_options, resolve
    from ..formal import delta_properties, interface_properties, whitebox_properties

    props = interface_properties(rtl, manifest, stall_bound=args.stall_bound,
                                 bmc_depth=args.bmc_depth, bounded=args.bounded)
    design = resolve(model, **manifest_options(manifest))
    white = delta_properties if model.delta is not None else whitebox_properties
    return props + white(design, manifest)


def run_prove(args) -> int:
    from ..cosim import load_manifest
    from ..formal import component_properties, run_properties
    from ..modelfile import load_model

    target = Path(args.target)
    if target.is_dir():
        rtl = target
        manifest = load_manifest(rtl)
        if "load" in manifest and not args.no_components:
            print(f"hwgen: note: {rtl} is a loadable core: its weights are unknown until run "
                  "time, so the component proofs are left out (prove the ROM design of the same "
                  "model for them: hwgen prove MODEL.hwgm --lanes P)", file=sys.stderr)
            args.no_components = True
        model = load_model(rtl / manifest["model_file"])
        work = Path(args.work) if args.work else rtl / "formal"
    elif target.is_file():
        from ..export import generate

        model = load_model(target)
        work = Path(args.work) if args.work else target.with_suffix(".formal")
        rtl = work / "rtl"
        manifest = generate(model, rtl, lanes=args.lanes)
    else:
        raise HwgenError(f"{target}: no such folder or model file")
    if args.no_interface and args.no_components:
        raise HwgenError("--no-interface and --no-components leave nothing to prove")
    props = []
    if not args.no_interface:
        props += _interface(rtl, manifest, model, args)
    if not args.no_components:
        props += component_properties(model)
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        props = [p for p in props if any(p.name.startswith(w) for w in want)]
        if not props:
            raise HwgenError(f"no property matches --only {args.only!r}")
    cpt = manifest["timing"]["cycles_per_timestep"]
    if args.bounded and not args.no_interface and cpt > LARGE_CPT and not args.list:
        print(
            f"hwgen: warning: {cpt} cycles per timestep: the bounded checks unroll about that "
            f"many cycles and may take hours; prove a small configuration of the same generator "
            f"(docs/verification.md)",
            file=sys.stderr,
        )
    if args.list:
        emit(args, {"properties": [{"name": p.name, "mode": p.mode, "description": p.description}
                                   for p in props]},
             "\n".join(f"{p.name:28} {p.mode:10} {p.description}" for p in props),
             next_=[f"hwgen prove {args.target}"])
        return 0
    t0 = time.perf_counter()
    results = run_properties(props, work, on_result=None if args.json else
                             lambda r: print(r.line(), flush=True))
    failed = [r for r in results if not r.ok]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    head = "PASS" if not failed else "FAIL"
    data = {"ok": not failed, "work": work, "counts": counts,
            "seconds": time.perf_counter() - t0,
            "properties": [{"name": r.prop.name, "status": r.status, "ok": r.ok,
                            "seconds": r.seconds, "depth": r.depth, "detail": r.detail,
                            "trace": r.trace} for r in results]}
    emit(args, data,
         f"{head}: {len(results)} properties ({summary}) in {data['seconds']:.0f} s; "
         f"runs in {work}",
         next_=[f"hwgen synth {rtl} --target ice40-up5k"] if not failed else
         [f"hwgen sim {rtl} --resets --stall-in 0.3 --stall-out 0.3   # the failing run's "
          f"traces are in {work}"])
    return 1 if failed else 0
