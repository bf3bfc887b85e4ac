"""``hwgen inspect``: what a model file holds."""

from __future__ import annotations

from ..modelfile import load_model
from ..report import describe_model, model_json
from ._common import command, emit


def register(sub) -> None:
    command(sub, "inspect", "describe a model file",
            "Print cell, sizes, formats, encodings, sparsity, weight memory and accumulator widths "
            "of a model file.", run, "model")


def run(args) -> int:
    model = load_model(args.model)
    emit(args, model_json(model), describe_model(model),
         next_=[f"hwgen estimate {args.model} --board icebreaker"])
    return 0
