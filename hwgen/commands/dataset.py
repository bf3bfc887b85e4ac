"""``hwgen dataset export``: a dataset split as the .npy arrays ``golden``, ``run`` and ``sim``
take."""

from __future__ import annotations

from .. import api
from ._common import command, emit, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "dataset",
        help="export a dataset split as .npy arrays",
        description="Datasets as arrays. 'hwgen dataset export NAME|PATH --split test -o X.npy "
        "[--labels y.npy] [--lengths L.npy]' writes the split's features (raw: before the "
        "dataset's normalization, which a model trained on it stores and applies again; "
        "--normalized for the normalized ones) or token windows of character datasets.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    e = command(verbs, "export", "write a split as X.npy (+ labels, lengths)",
                "Write a dataset split as .npy arrays.", run, "split", "output",
                output=dict(metavar="X.npy", help="features (N, T, F) float64/32, or token ids "
                            "(N, T)"))
    e.add_argument("dataset", metavar="NAME|PATH",
                   help="digits, vowels, ptb, or an .npz / text file")
    e.add_argument("--labels", metavar="y.npy",
                   help="class labels (N,), or next-character targets (N, T) with -1 past the end")
    e.add_argument("--lengths", metavar="L.npy", help="valid timesteps per sequence (N,)")
    e.add_argument("--normalized", action="store_true",
                   help="write the normalized features the model was trained on (then pass "
                   "--no-normalize to golden / sim / run)")
    e.add_argument("--length", type=positive_int, default=100, metavar="T",
                   help="character datasets: window length (default: %(default)s)")


def run(args) -> int:
    a = api.export_dataset(args.dataset, args.split, normalized=args.normalized,
                           length=args.length, output=args.output, labels=args.labels,
                           lengths_output=args.lengths)
    written = [x for x in (args.output, args.labels, args.lengths) if x]
    emit(args, {"files": written, "X_shape": list(a.X.shape), "X_dtype": str(a.X.dtype),
                "y_shape": list(a.y.shape), "normalized": args.normalized},
         f"wrote {', '.join(written)}: X {a.X.shape} {a.X.dtype}, {len(a.X)} sequences of the "
         f"{args.split} split",
         next_=[f"hwgen golden MODEL --inputs {args.output} -o Y.npy"])
    return 0
