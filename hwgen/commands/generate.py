"""``hwgen generate``: write the Verilog accelerator, manifest.json and model copy for a model."""

from __future__ import annotations

from .. import api
from ..gateware.plan import STATE_MODES, WEIGHT_MODES
from ._common import add_options, command, emit


def register(sub) -> None:
    p = command(sub, "generate", "generate the Verilog accelerator of a model",
                "Build the accelerator of MODEL with P lanes (weights per cycle) and write "
                "OUT/<top>.v, OUT/manifest.json (ports, stream payload layout, formats, cycles "
                "per timestep, memory and widths; docs/manifest.md) and OUT/model.hwgm. The same "
                "inputs always give byte-identical files.", run, "model", "output",
                output=dict(metavar="OUT", help="output folder, e.g. rtl_out/NAME (created if "
                            "missing)"))
    build = p.add_argument_group("build-time options")
    add_options(build, "lanes", "sparse",
                lanes=dict(default=1, help="weights consumed per cycle, 1 .. max(inputs, "
                           "hidden) (default: %(default)s)"))
    build.add_argument("--state", choices=STATE_MODES, default="auto",
                       help="where h (and c) live: block RAM, registers, or auto (registers only "
                       "for tiny stores) (default: %(default)s)")
    build.add_argument("--weights", choices=WEIGHT_MODES, default="rom",
                       help="rom (in the Verilog), or ram / spram: loadable memories written at "
                       "run time through the load port (manifest 'load'; spram: single-port, for "
                       "iCE40 SPRAM) (default: %(default)s)")
    build.add_argument("--top", default="hwgen_top", metavar="NAME",
                       help="name of the top Verilog module (default: %(default)s)")


def run(args) -> int:
    manifest = api.generate(api.load_model(args.model), args.output, args.lanes, top=args.top,
                            state=args.state, weights=args.weights, sparse=args.sparse)
    t = manifest["timing"]
    if "delta" in t:  # a delta core (issue 23): data-dependent cycles
        cycles = (f"{t['cycles_per_timestep']} cycles per timestep worst case, "
                  f"{t['delta']['fixed_cycles']} + at most {t['delta']['cycles_per_column']} "
                  "per processed column (delta core)")
    else:
        cycles = (f"{t['cycles_per_timestep']} cycles per timestep (ideal "
                  f"{t['ideal_cycles']})")
    emit(args, {"output": args.output, "verilog": manifest["verilog"], "top": manifest["top"],
                "lanes": manifest["lanes"], "cycles_per_timestep": t["cycles_per_timestep"],
                "ideal_cycles": t["ideal_cycles"],
                "weight_rom_bits": manifest["memory"]["weight_rom_bits"]},
         f"wrote {args.output}/{manifest['verilog'][0]}, manifest.json, model.hwgm: "
         f"{manifest['lanes']} lanes, {cycles}, {manifest['memory']['weight_rom_bits']} "
         "weight ROM bits",
         next_=[f"hwgen sim {args.output} --simulator verilator"])
    return 0
