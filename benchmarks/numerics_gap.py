"""Gap between the integer golden model and the float forward as the formats' bits grow.

Writes the table into docs/numerics.md. Usage: python benchmarks/numerics_gap.py
"""

from __future__ import annotations

import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.floatref import float_forward  # noqa: E402
from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats  # noqa: E402

BITS = (4, 6, 8, 10, 12, 14)


def gap(cell: CellKind, bits: int, quant: str, seed: int = 0) -> tuple[float, float]:
    p = random_float_params(cell, 6, 16, 4, seed=seed)
    m = freeze(p, QuantConfig.parse(quant), Formats.standard(bits, lstm=cell is CellKind.LSTM))
    rng = np.random.default_rng(seed)
    fmt = m.formats.input
    x = rng.integers(fmt.min_code, fmt.max_code + 1, (32, 12, 6))
    golden = GoldenModel(m).run(x).logits * 2.0**-m.formats.output_frac
    d = np.abs(golden - float_forward(m, x * fmt.lsb))
    return float(d.mean()), float(d.max())


def main() -> None:
    lines = [
        "| cell | weights | " + " | ".join(f"bits={b}" for b in BITS) + " |",
        "|---|---|" + "---|" * len(BITS),
    ]
    for cell in CellKind:
        for quant in ("int8", "ternary"):
            cols = [gap(cell, b, quant) for b in BITS]
            lines.append(
                f"| {cell.value} | {quant} | "
                + " | ".join(f"{m:.5f} (max {x:.4f})" for m, x in cols)
                + " |"
            )
            print(lines[-1])
    lines.append("")
    lines.append(f"Mean (max) |logit difference|, 16 hidden units, seed 0. {versions()}.")
    write_block("numerics.md", "numerics-gap", "\n".join(lines))


if __name__ == "__main__":
    main()
