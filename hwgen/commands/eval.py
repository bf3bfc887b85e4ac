"""``hwgen eval``: the metric of a model file on a dataset, float forward and golden model."""

from __future__ import annotations

from .. import api
from ._common import command, emit, positive_int


def register(sub) -> None:
    p = command(sub, "eval", "accuracy or bits per character of a model on a dataset",
                "Evaluate a model file on a dataset split: accuracy (classification, logits at "
                "each sequence's last valid timestep) or bits per character (character models), "
                "of the float forward (quantized weights, float activations) and of the "
                "bit-exact integer golden model. Needs NumPy only.", run,
                "model", "dataset", "split")
    p.add_argument("--max-chars", type=positive_int, metavar="N",
                   help="character models: evaluate on the first N characters only")


def run(args) -> int:
    model = api.load_model(args.model)
    ds = api.load_dataset(args.dataset)
    m = api.evaluate(model, ds, args.split, max_chars=args.max_chars)
    emit(args, {"model": args.model, "dataset": ds.name, "split": args.split,
                "metric": m.metric, "float_forward": m.float_value, "golden": m.golden_value,
                "count": m.count, "saturated": m.saturated},
         f"{args.model} on {ds.name} {args.split}: {m.describe()}",
         next_=[f"hwgen estimate {args.model} --board icebreaker"])
    return 0
