"""``hwgen random-model``: a random quantized model, for trying sizes and for tests."""

from __future__ import annotations

from .. import api
from ..fileio import check_output_file
from ..report import weights_summary
from ._common import _quant_help, add_sparsity, command, emit, row_scale_bits, sized


def register(sub) -> None:
    p = command(sub, "random-model", "write a random quantized model",
                "Write a random quantized model file (random weights, frozen like a trained one; "
                "every encoding's levels are drawn, docs/api.md).", run,
                "cell", "quant", "input_quant", "head_quant", "stochastic", "bits", "seed",
                "output", cell=dict(required=True, default=None, help=None),
                quant=dict(required=True, default=None, help=_quant_help()),
                output=dict(metavar="MODEL", help="model file to write"),
                seed=dict(help="random seed (default: %(default)s)"))
    p.add_argument("--inputs", required=True, type=sized("features"), metavar="I",
                   help="input features (or embedding dimensions with --tokens)")
    p.add_argument("--hidden", required=True, type=sized("hidden"), metavar="H")
    p.add_argument("--outputs", required=True, type=sized("outputs"), metavar="O")
    p.add_argument("--layers", type=sized("layers"), default=1, metavar="L",
                   help="stacked layers (default: %(default)s)")
    p.add_argument("--tokens", type=sized("vocab"), metavar="V",
                   help="token inputs through a V-entry embedding of I dimensions")
    p.add_argument("--argmax", action="store_true", help="the head also outputs the argmax class")
    add_sparsity(p)
    p.add_argument("--row-scales", type=row_scale_bits, nargs="?", const=8, metavar="BITS",
                   help="per-row scales (issue 26): every matrix gets a random integer "
                        "multiplier of BITS bits (1-16, default 8) per output row, like a "
                        "folded normalization (docs/numerics.md)")



def run(args) -> int:
    out = check_output_file(args.output, "model file")
    model = api.random_model(args.cell, args.inputs, args.hidden, args.outputs,
                             layers=args.layers, tokens=args.tokens, quant=args.quant,
                             stochastic=args.stochastic, bits=args.bits, argmax=args.argmax,
                             seed=args.seed, sparsity=args.sparsity,
                             sparse_head=args.sparse_head, input_quant=args.input_quant,
                             head_quant=args.head_quant, row_scales=args.row_scales)
    api.save_model(model, out)
    quant = weights_summary(model)
    emit(args, {"model": out, "cell": model.cell.value, "layers": model.num_layers,
                "hidden": model.hidden, "outputs": model.outputs, "weights": quant,
                "weight_bits": model.weight_memory_bits},
         f"wrote {out}: {model.cell.value}, {args.layers} x {args.hidden} hidden, {quant}"
         + (f", {args.sparsity} sparse" if args.sparsity else "")
         + (f", {args.row_scales}-bit row scales" if args.row_scales else ""),
         next_=[f"hwgen estimate {out} --board icebreaker"])
    return 0
