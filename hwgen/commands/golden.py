"""``hwgen golden``: run the bit-exact integer model on inputs from an .npy file."""

from __future__ import annotations

import sys

from .. import api
from ..fileio import check_distinct_output, check_output_file, save_npy
from ..inputs import features_to_codes, input_norm
from ._common import command, emit, load_npy


def register(sub) -> None:
    p = command(sub, "golden", "run the integer golden model",
                "Run the bit-exact integer model. Inputs: real features (batch, time, features), "
                "normalized by the model's stored input normalization (if it has one) and "
                "quantized by its input format, or token ids (batch, time). Output: the head's "
                "logits per timestep as int64 codes (batch, time, outputs) with the model's "
                "output fraction bits, or real values with --real.", run,
                "model", "inputs", "output", "no_normalize",
                output=dict(metavar="Y.npy", help="logits to write"))
    p.add_argument("--real", action="store_true",
                   help="write logits as float64 real values instead of integer codes")


def run(args) -> int:
    out = check_output_file(args.output)
    check_distinct_output(out, args.model, args.inputs)
    model = api.load_model(args.model)
    q = features_to_codes(model, load_npy(args.inputs), normalize=not args.no_normalize,
                          what=args.inputs)
    if q.warning(model, args.inputs):
        print(f"hwgen: warning: {q.warning(model, args.inputs)}", file=sys.stderr)
    result = api.golden(model, codes=q.codes)
    y = result.logits * 2.0**-model.formats.output_frac if args.real else result.logits
    save_npy(out, y)
    B, T = result.logits.shape[:2]
    norm = " (inputs normalized by the model's stored normalization)" if q.normalized else ""
    # delta networks (issue 23): the fraction of columns processed, over every timestep
    cols = getattr(result, "columns", None)
    delta = "" if cols is None else f"; delta network: {cols.fraction():.1%} of columns processed"
    emit(args, {"output": out, "shape": list(y.shape), "dtype": str(y.dtype),
                "saturated": q.saturated, "normalized": q.normalized,
                "has_normalization": input_norm(model) is not None,
                **({} if cols is None else {"columns_processed": cols.fraction()})},
         f"wrote {out}: logits {result.logits.shape} ({B} sequences x {T} timesteps){norm}"
         f"{delta}",
         next_=[f"hwgen estimate {args.model} --board icebreaker"])
    return 0
