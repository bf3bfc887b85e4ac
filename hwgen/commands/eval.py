"""``hwgen eval``: the metric of a model file on a dataset, float forward and golden model."""

from __future__ import annotations

from ._common import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="accuracy or bits per character of a model on a dataset",
        description="Evaluate a model file on a dataset split: accuracy (classification, logits "
        "at each sequence's last valid timestep) or bits per character (character models), of "
        "the float forward (quantized weights, float activations) and of the bit-exact integer "
        "golden model. Needs NumPy only.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.hwgm)")
    p.add_argument("--dataset", required=True, metavar="NAME|PATH",
                   help="digits, vowels, ptb, or an .npz / text file")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test",
                   help="(default: %(default)s)")
    p.add_argument("--max-chars", type=positive_int, metavar="N",
                   help="character models: evaluate on the first N characters only")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..modelfile import load_model
    from ..train.datasets import load_dataset
    from ..train.evaluate import evaluate

    model = load_model(args.model)
    ds = load_dataset(args.dataset)
    m = evaluate(model, ds, args.split, max_chars=args.max_chars)
    print(f"{args.model} on {ds.name} {args.split}: {m.describe()}")
    return 0
