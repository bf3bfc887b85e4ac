"""``hwgen train``: quantization-aware training on a dataset, written as a model file."""

from __future__ import annotations

import sys
from pathlib import Path

from ..train.names import NORMS, RECIPES
from ._common import (
    add_options,
    add_sparsity,
    command,
    emit,
    fraction_below_one,
    positive_float,
    positive_int,
    sized,
)


def add_model_args(p, *, dataset_required: bool = True) -> None:
    """Options shared by ``train`` and ``import`` (fine-tuning)."""
    add_options(p, "dataset", "seed", "bits", "input_quant", "head_quant",
                dataset=dict(required=dataset_required))
    p.add_argument("--epochs", type=positive_int, metavar="E",
                   help="passes over the training split (classification; character models: "
                        "E times the training text)")
    p.add_argument("--budget-chars", type=positive_int, metavar="N",
                   help="character models: train on N characters (random windows)")
    p.add_argument("--batch", type=positive_int, default=32, metavar="B",
                   help="sequences per step (default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=None, metavar="LR",
                   help="Adam learning rate (default: 0.002; train --recipe lm: 0.03 for "
                        "binary / ternary, 0.013 otherwise)")
    p.add_argument("--seq-len", type=positive_int, default=100, metavar="T",
                   help="character models: training window (default: %(default)s)")
    p.add_argument("--no-fake-quant", action="store_true",
                   help="train with float inputs and state (no fixed-point surrogate)")
    p.add_argument("--test-chars", type=positive_int, metavar="N",
                   help="character models: evaluate on the first N test characters only")
    add_sparsity(p)
    p.add_argument("--delta", metavar="THX,THH",
                   help="a delta network (trained, or fine-tuned, with its delta forward): a "
                        "column is processed only when it changed by at least THX input-format "
                        "codes (layer 0's inputs) or THH state codes (states, and the inputs of "
                        "deeper layers) since it was last processed; the model file stores the "
                        "thresholds (docs/training.md, \"Delta networks\") (default: dense)")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help="torch threads (default: %(default)s; more threads may change results)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="checkpoint file (default: MODEL.ckpt), written after every evaluation")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint if it exists (same settings required)")
    add_options(p, "quiet", "output", output=dict(metavar="MODEL", help="model file to write"))


def register(sub) -> None:
    p = command(sub, "train", "quantization-aware training on a dataset",
                "Train a low-precision RNN / GRU / LSTM quantization-aware (float shadow weights, "
                "straight-through estimator, fresh stochastic draw per forward pass, "
                "deterministic quantizer at evaluation), freeze it and write a model file. Prints "
                "the test metric of the float forward and of the integer golden model. --quant "
                "float trains without weight quantization and freezes the result as int8.", run,
                "cell", "quant", "stochastic",
                quant=dict(help="float, binary, ternary, pow2, exp[N], int[N] (default: "
                           "%(default)s)"),
                stochastic=dict(help="stochastic binary / ternary / exp quantizer during "
                                "training"))
    p.add_argument("--hidden", type=sized("hidden"), required=True, metavar="H")
    p.add_argument("--layers", type=sized("layers"), default=1, metavar="L",
                   help="(default: %(default)s)")
    p.add_argument("--embed", type=sized("dim"), default=16, metavar="D",
                   help="token inputs: embedding dimensions (default: %(default)s)")
    add_model_args(p)
    p.add_argument("--recipe", choices=RECIPES, default="reference",
                   help="presets: reference (the defaults below); lm (character models, "
                        "measured on PTB: cosine from 0.03 with a learned W0 for binary / "
                        "ternary, from 0.013 otherwise; int8 input and head matrices); lm-bn "
                        "(lm with --norm batch and the Glorot W0: a learned one drifts under "
                        "batch normalization); ardakani (--norm "
                        "batch, stochastic binary / ternary, Glorot W0, cosine); hou (--norm "
                        "weight, learned W0, cosine); options given explicitly win (default: "
                        "%(default)s; docs/training.md)")
    p.add_argument("--norm", choices=NORMS, default=None,
                   help="normalize each matrix product per row: batch (batch normalization, "
                        "statistics shared across timesteps) or weight (weight normalization "
                        "with a learned gain per row); folded into per-row multipliers and the "
                        "biases of the model file (default: none)")
    p.add_argument("--evals", type=positive_int, default=10, metavar="N",
                   help="character models: validations (and checkpoints) per run (default: "
                        "%(default)s)")
    p.add_argument("--time-limit", type=positive_float, metavar="SECONDS",
                   help="stop at the first evaluation after SECONDS with the checkpoint "
                        "written (exit status 3); the same command with --resume continues")
    p.add_argument("--weight-scale", choices=("glorot", "learned", "fitted"), default=None,
                   help="binary / ternary W0 per matrix: the Glorot bound, learned, or fitted to "
                        "the weights at every step (no clipping; frozen into the matrix's one "
                        "scale) (default: glorot)")
    p.add_argument("--no-shadow-clip", action="store_true",
                   help="do not clip the float shadow weights to +-W0 after each step")
    p.add_argument("--lr-scale", choices=("none", "w0", "1/w0"), default="none",
                   help="binary / ternary: each weight matrix's learning rate times (w0) or over "
                        "(1/w0) its Glorot W0 (default: %(default)s)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                   help="constant rate, or cosine decay to 0 over the run (default: constant)")
    p.add_argument("--recurrent-lr", type=positive_float, default=1.0, metavar="FACTOR",
                   help="the recurrent matrices' rate: FACTOR times the rate of every other "
                        "parameter, in every encoding (default: %(default)s)")
    p.add_argument("--quant-delay", type=fraction_below_one, default=0.0, metavar="FRACTION",
                   help="train the first FRACTION of the run (0 <= FRACTION < 1) with float "
                        "weights (clipped to the quantizer's range), then quantization-aware; "
                        "the best model is chosen among the quantized validations (default: "
                        "%(default)s)")
    p.add_argument("--warm-start", metavar="CKPT",
                   help="start from the parameters of an hwgen train checkpoint (MODEL.ckpt, e.g. "
                        "of a float run) or a PyTorch state dict in hwgen's layout")


def run(args) -> int:
    from .. import api
    from ..train.trainer import TrainPaused

    try:
        r = _train(api, args)
    except TrainPaused as e:
        print(f"hwgen: {e}", file=sys.stderr)
        return 3
    finish(args, r, Path(args.output))
    return 0


def _train(api, args):
    return api.train(
        args.dataset, cell=args.cell, hidden=args.hidden, layers=args.layers, quant=args.quant,
        stochastic=args.stochastic or None, epochs=args.epochs, budget_chars=args.budget_chars,
        seed=args.seed, batch=args.batch, lr=args.lr, seq_len=args.seq_len, embed=args.embed,
        bits=args.bits, fake_quant=not args.no_fake_quant, test_chars=args.test_chars,
        threads=args.threads, output=args.output, checkpoint=args.checkpoint,
        resume=args.resume, quiet=args.quiet or args.json, sparsity=args.sparsity,
        sparse_head=args.sparse_head, weight_scale=args.weight_scale,
        shadow_clip=not args.no_shadow_clip, lr_scale=args.lr_scale,
        lr_schedule=args.lr_schedule, recurrent_lr=args.recurrent_lr,
        quant_delay=args.quant_delay,
        warm_start=args.warm_start, input_quant=args.input_quant, head_quant=args.head_quant,
        recipe=args.recipe, delta=args.delta, norm=args.norm, time_limit=args.time_limit,
        evals=args.evals,
    )


def finish(args, r, out: Path) -> None:
    """The result of train / import: text or JSON, then what to do next."""
    from ..report import weights_summary

    m = r.model
    if r.metrics.saturated:  # issue 25: first, with what to do (was a note at the end)
        fmt = m.formats.input
        print(f"hwgen: warning: {r.metrics.saturated} test input values lie outside the input "
              f"format {fmt.describe()} range [{fmt.min_code * fmt.lsb:g}, "
              f"{fmt.max_code * fmt.lsb:g}] and were saturated (the hardware clips them too): "
              "standardize the features (mean 0, std 1) or scale them into that range and train "
              "again (docs/training.md)", file=sys.stderr)
    emit(args, {"model": out, "cell": m.cell.value, "hidden": m.hidden, "layers": m.num_layers,
                "weights": weights_summary(m),
                "weight_bits": m.weight_memory_bits,
                "sparsity": None if m.layers[0].wx.nm is None else str(m.layers[0].wx.nm),
                "metric": r.metrics.metric,
                "train_forward": r.torch_test, "float_forward": r.metrics.float_value,
                "golden": r.metrics.golden_value, "saturated": r.metrics.saturated,
                "seconds": r.seconds},
         None if args.json else report_text(r, out),
         next_=[f"hwgen estimate {out} --board icebreaker"])


def report_text(r, out: Path) -> str:
    from ..report import weights_summary, zero_fraction

    m = r.model
    note = m.meta.get("note")
    unit = "accuracy" if r.metrics.metric == "accuracy" else "bits/char"
    nm = m.layers[0].wx.nm
    return "\n".join([
        f"wrote {out}: {m.cell.value}, {m.hidden} hidden x {m.num_layers}, weights "
        f"{weights_summary(m)}"
        + (f", {nm} sparse ({zero_fraction(m):.1%} zeros)" if nm is not None else "")
        + f", {m.weight_memory_bits} bits of weight memory"
        + (f" ({note})" if note else ""),
        f"training forward (deterministic) test {unit}: {r.torch_test:.4f}",
        f"test: {r.metrics.describe()}",
        f"trained in {r.seconds:.1f} s",
    ])


def report(r, out: Path) -> None:
    print(report_text(r, out))
