"""``hwgen random-model``: a random quantized model, for trying sizes and for tests."""

from __future__ import annotations

from .. import api
from ..fileio import check_output_file
from ..report import weights_summary
from ..spec import CellKind
from ._common import add_json, add_sparsity, emit, nonnegative_int, positive_int, sized


def register(sub) -> None:
    p = sub.add_parser(
        "random-model",
        help="write a random quantized model",
        description="Write a random quantized model file "
        "(random weights, frozen like a trained one).",
    )
    p.add_argument("--cell", required=True, choices=[c.value for c in CellKind])
    p.add_argument("--inputs", required=True, type=sized("features"), metavar="I",
                   help="input features (or embedding dimensions with --tokens)")
    p.add_argument("--hidden", required=True, type=sized("hidden"), metavar="H")
    p.add_argument("--outputs", required=True, type=sized("outputs"), metavar="O")
    p.add_argument("--layers", type=sized("layers"), default=1, metavar="L",
                   help="stacked layers (default: %(default)s)")
    p.add_argument("--tokens", type=sized("vocab"), metavar="V",
                   help="token inputs through a V-entry embedding of I dimensions")
    p.add_argument("--quant", required=True, metavar="Q",
                   help="binary, ternary, pow2, exp, expN (N exponents) or intN, e.g. int8")
    p.add_argument("--input-quant", metavar="Q",
                   help="layer 0's input matrix: another quantizer (default: --quant)")
    p.add_argument("--head-quant", metavar="Q",
                   help="the head matrix: another quantizer (default: --quant)")
    p.add_argument("--stochastic", action="store_true",
                   help="stochastic rounding for binary, ternary and exp (default: deterministic)")
    p.add_argument("--bits", type=positive_int, default=8, metavar="B",
                   help="precision knob of the fixed-point formats, 3..14 (default: %(default)s)")
    p.add_argument("--argmax", action="store_true", help="the head also outputs the argmax class")
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="S",
                   help="random seed (default: %(default)s)")
    add_sparsity(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    out = check_output_file(args.output, "model file")
    model = api.random_model(args.cell, args.inputs, args.hidden, args.outputs,
                             layers=args.layers, tokens=args.tokens, quant=args.quant,
                             stochastic=args.stochastic, bits=args.bits, argmax=args.argmax,
                             seed=args.seed, sparsity=args.sparsity,
                             sparse_head=args.sparse_head, input_quant=args.input_quant,
                             head_quant=args.head_quant)
    api.save_model(model, out)
    quant = weights_summary(model)
    emit(args, {"model": out, "cell": model.cell.value, "layers": model.num_layers,
                "hidden": model.hidden, "outputs": model.outputs, "weights": quant,
                "weight_bits": model.weight_memory_bits},
         f"wrote {out}: {model.cell.value}, {args.layers} x {args.hidden} hidden, {quant}"
         + (f", {args.sparsity} sparse" if args.sparsity else ""),
         next_=[f"hwgen estimate {out} --board icebreaker"])
    return 0
