"""``hwgen inspect``: what a model file holds."""

from __future__ import annotations

from ..modelfile import load_model
from ..report import describe_model


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="describe a model file",
        description="Print cell, sizes, formats, encodings, sparsity, weight memory and "
        "accumulator widths of a model file.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.set_defaults(func=run)


def run(args) -> int:
    print(describe_model(load_model(args.model)))
    return 0
