"""``hwgen random-model``: a random quantized model, for trying sizes and for tests."""

from __future__ import annotations

from ..freeze import freeze, random_float_params
from ..modelfile import save_model
from ..quant import QuantConfig
from ..spec import CellKind, Formats
from ._common import nonnegative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "random-model",
        help="write a random quantized model",
        description="Write a random quantized model file "
        "(random weights, frozen like a trained one).",
    )
    p.add_argument("--cell", required=True, choices=[c.value for c in CellKind])
    p.add_argument(
        "--inputs",
        required=True,
        type=positive_int,
        metavar="I",
        help="input features (or embedding dimensions with --tokens)",
    )
    p.add_argument("--hidden", required=True, type=positive_int, metavar="H")
    p.add_argument("--outputs", required=True, type=positive_int, metavar="O")
    p.add_argument(
        "--layers",
        type=positive_int,
        default=1,
        metavar="L",
        help="stacked layers (default: %(default)s)",
    )
    p.add_argument(
        "--tokens",
        type=positive_int,
        metavar="V",
        help="token inputs through a V-entry embedding of I dimensions",
    )
    p.add_argument(
        "--quant",
        required=True,
        metavar="Q",
        help="binary, ternary, pow2, exp, expN (N exponents) or intN, e.g. int8",
    )
    p.add_argument(
        "--stochastic",
        action="store_true",
        help="stochastic rounding for binary, ternary and exp (default: deterministic)",
    )
    p.add_argument(
        "--bits",
        type=positive_int,
        default=8,
        metavar="B",
        help="precision knob of the fixed-point formats (default: %(default)s)",
    )
    p.add_argument("--argmax", action="store_true", help="the head also outputs the argmax class")
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        metavar="S",
        help="random seed (default: %(default)s)",
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.set_defaults(func=run)


def run(args) -> int:
    cell = CellKind(args.cell)
    quant = QuantConfig.parse(args.quant, args.stochastic)
    params = random_float_params(
        cell,
        args.inputs,
        args.hidden,
        args.outputs,
        layers=args.layers,
        tokens=args.tokens,
        seed=args.seed,
    )
    formats = Formats.standard(args.bits, lstm=cell is CellKind.LSTM)
    model = freeze(
        params,
        quant,
        formats,
        argmax=args.argmax,
        rng=args.seed,
        meta={"source": f"random-model seed {args.seed}"},
    )
    save_model(model, args.output)
    print(f"wrote {args.output}: {cell.value}, {args.layers} x {args.hidden} hidden, {quant.name}")
    return 0
