"""``hwgen import``: a PyTorch state dict to a model file (post-training quantization, optionally
followed by quantization-aware fine-tuning on a dataset)."""

from __future__ import annotations

from pathlib import Path

from ..fileio import check_distinct_output, check_output_file
from ..report import weights_summary
from ._common import command, emit, row_scale_bits
from .train import add_model_args, finish


def register(sub) -> None:
    p = command(sub, "import", "import a PyTorch nn.RNN / nn.GRU / nn.LSTM state dict",
                "Read a PyTorch state dict (torch.save(model.state_dict())) holding an nn.RNN / "
                "nn.GRU / nn.LSTM, an nn.Linear head and, for token models, an nn.Embedding, "
                "loaded with torch.load(weights_only=True). Quantize it post-training, or with "
                "--epochs / --budget-chars fine-tune it quantization-aware on --dataset first. "
                "With --dataset the test metric of the float forward and of the golden model is "
                "printed. From Python, api.from_torch takes the module itself.", run,
                "cell", "quant", "stochastic", cell=dict(required=True, default=None, help=None),
                quant=dict(default="int8", help="binary, ternary, pow2, exp[N], int[N] "
                           "(default: %(default)s)"),
                stochastic=dict(help="fine-tuning: stochastic quantizer (the model file is "
                                "deterministic)"))
    p.add_argument("state_dict", metavar="STATE_DICT.pt", help="PyTorch state dict file")
    p.add_argument("--rnn-key", metavar="PREFIX",
                   help="module owning weight_ih_l0 (default: found)")
    p.add_argument("--head-key", metavar="PREFIX",
                   help="nn.Linear head module, e.g. fc "
                        "(default: the one 2-D weight with H columns)")
    p.add_argument("--embed-key", metavar="PREFIX", help="nn.Embedding module (token models)")
    p.add_argument("--row-scales", type=row_scale_bits, nargs="?", const=8, metavar="BITS",
                   help="a scale per output row of every matrix (issue 26), fitted to the float "
                        "weights by least squares: integer multipliers of BITS bits (1-16, "
                        "default 8); post-training quantization only")
    add_model_args(p, dataset_required=False)


def _check_row_scales(args, fine_tune: bool) -> None:
    """``--row-scales`` fits scales in post-training quantization only (issue 26)."""
    if fine_tune and args.row_scales is not None:
        from ..spec import HwgenError

        raise HwgenError("--row-scales fits row scales in post-training quantization; it does "
                         "not combine with fine-tuning (--epochs / --budget-chars) yet")


def run(args) -> int:
    from ..train import require_torch

    require_torch()
    from ..modelfile import save_model
    from ..quant import QuantConfig
    from ..spec import CellKind, HwgenError
    from ..train.datasets import load_dataset
    from ..train.importer import load_state_dict, params_from_state_dict
    from ..train.trainer import TrainConfig, resolve_settings, set_threads, train

    out = check_output_file(args.output, "model file")
    if args.checkpoint:
        check_output_file(args.checkpoint, "checkpoint")
    check_distinct_output(out, args.state_dict, args.dataset, args.checkpoint,
                          what="model file")
    cell = CellKind(args.cell)
    sd = load_state_dict(args.state_dict)
    params = params_from_state_dict(
        sd, cell, rnn_key=args.rnn_key, head_key=args.head_key, embed_key=args.embed_key,
        where=args.state_dict,
    )
    if args.quant == "float":
        raise HwgenError("import quantizes weights: pick binary, ternary, pow2, exp[N] or int[N]")
    QuantConfig.parse(args.quant, args.stochastic)  # refuses e.g. a stochastic pow2
    fine_tune = args.epochs is not None or args.budget_chars is not None
    ds = load_dataset(args.dataset) if args.dataset else None
    G = cell.num_gates
    say = (lambda *a, **k: None) if args.json else print
    say(f"read {args.state_dict}: {cell.value}, {params.hidden} hidden x {len(params.layers)}"
        f" ({G} gates), {params.head_w.shape[0]} outputs, "
        + (f"embedding {params.embedding.shape}" if params.embedding is not None
           else f"{params.features} input features"))
    _check_row_scales(args, fine_tune)
    if fine_tune:
        if ds is None:
            raise HwgenError("fine-tuning (--epochs / --budget-chars) needs --dataset")
        cfg = TrainConfig(
            dataset=args.dataset, cell=args.cell, hidden=params.hidden,
            layers=len(params.layers), quant=args.quant, stochastic=args.stochastic,
            epochs=args.epochs, budget_chars=args.budget_chars if args.epochs is None else None,
            seed=args.seed, batch=args.batch, seq_len=args.seq_len,
            embed=params.embedding.shape[1] if params.embedding is not None else 16,
            bits=args.bits, fake_quant=not args.no_fake_quant, test_chars=args.test_chars,
            sparsity=args.sparsity, sparse_head=args.sparse_head, delta=args.delta,
            **resolve_settings("reference", args.quant, lr=args.lr,
                               input_quant=args.input_quant, head_quant=args.head_quant),
        )
        set_threads(args.threads)
        ckpt = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
        r = train(cfg, ds, checkpoint=ckpt, resume=args.resume, quiet=args.quiet or args.json,
                  output=out, init=params)
        r.model.meta["imported_from"] = str(args.state_dict)
        save_model(r.model, out)
        finish(args, r, out)
        return 0
    return _post_training(args, params, ds, out)


def _post_training(args, params, ds, out) -> int:
    """``hwgen import`` without fine-tuning: the deterministic quantizer (``--sparsity`` prunes
    by magnitude first), the test metric with ``--dataset``, the model file written."""
    from ..modelfile import save_model
    from ..train.evaluate import evaluate
    from ..train.from_torch import quantize_imported

    model = quantize_imported(params, args.quant, bits=args.bits, sparsity=args.sparsity,
                              sparse_head=args.sparse_head, input_quant=args.input_quant,
                              head_quant=args.head_quant, row_scales=args.row_scales,
                              delta=args.delta, meta={"imported_from": str(args.state_dict)})
    nm = model.layers[0].wx.nm
    m = None
    if ds is not None:
        m = evaluate(model, ds, "test", max_chars=args.test_chars)
        model.meta["test"] = {"metric": m.metric, "float_forward": m.float_value,
                              "golden": m.golden_value}
    save_model(model, out)
    text = (f"wrote {out}: weights {weights_summary(model)}"
            + (f", {nm} sparse" if nm is not None else "")
            + (f", delta thresholds {model.delta.describe()}" if model.delta is not None else "")
            + f", formats Formats.standard({args.bits}), {model.weight_memory_bits} bits of "
            "weight memory")
    if m is not None:
        text = f"test (post-training quantization): {m.describe()}\n" + text
    emit(args, {"model": out, "weights": weights_summary(model),
                "weight_bits": model.weight_memory_bits, "test": model.meta.get("test")},
         text, next_=[f"hwgen estimate {out} --board icebreaker"])
    return 0
