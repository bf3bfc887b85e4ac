"""``hwgen golden``: run the bit-exact integer model on inputs from an .npy file."""

from __future__ import annotations

import sys

import numpy as np

from ..golden import GoldenModel, quantize_inputs
from ..modelfile import load_model
from ..spec import HwgenError, TokenInput
from ._common import load_npy


def register(sub) -> None:
    p = sub.add_parser(
        "golden",
        help="run the integer golden model",
        description="Run the bit-exact integer model. Inputs: a float array "
        "(batch, time, features) "
        "quantized by the model's input format, or token ids (batch, time). Output: the head's "
        "logits per timestep as int64 codes (batch, time, outputs) with the model's output "
        "fraction "
        "bits, or real values with --real.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.add_argument("--inputs", required=True, metavar="X.npy", help="input array")
    p.add_argument("-o", "--output", required=True, metavar="Y.npy", help="logits to write")
    p.add_argument(
        "--real",
        action="store_true",
        help="write logits as float64 real values instead of integer codes",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    model = load_model(args.model)
    x = load_npy(args.inputs)
    if isinstance(model.input, TokenInput):
        if not np.issubdtype(x.dtype, np.integer):
            raise HwgenError(f"{args.inputs}: a token model needs integer token ids, not {x.dtype}")
        codes = x
    else:
        if x.ndim != 3 or x.shape[2] != model.input.features:
            raise HwgenError(
                f"{args.inputs}: has shape {x.shape}; this model needs "
                f"(batch, time, {model.input.features})"
            )
        codes, saturated = quantize_inputs(model, x)
        if saturated:
            fmt = model.formats.input
            print(
                f"hwgen: warning: {saturated} input values lie outside the input format "
                f"{fmt.describe()} range [{fmt.min_code * fmt.lsb}, {fmt.max_code * fmt.lsb}] "
                "and were saturated",
                file=sys.stderr,
            )
    result = GoldenModel(model).run(codes)
    out = result.logits * 2.0**-model.formats.output_frac if args.real else result.logits
    np.save(args.output, out)
    B, T = result.logits.shape[:2]
    print(f"wrote {args.output}: logits {result.logits.shape} ({B} sequences x {T} timesteps)")
    return 0
