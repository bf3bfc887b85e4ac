"""``hwgen inspect``: what a model file holds."""

from __future__ import annotations

from ..delta import modelfile as delta_section
from ..modelfile import load_model
from ..report import describe_model, model_json
from ._common import command, emit


def register(sub) -> None:
    command(sub, "inspect", "describe a model file",
            "Print cell, sizes, formats, encodings, sparsity, weight memory and accumulator widths "
            "of a model file.", run, "model")


def run(args) -> int:
    model = load_model(args.model)
    data, text = model_json(model), describe_model(model)
    delta = delta_section.describe(model)  # delta (issue 23): the thresholds, when any
    if delta is not None:
        data, text = {**data, "delta": delta_section.to_json(model)}, f"{text}\n{delta}"
    emit(args, data, text,
         next_=[f"hwgen estimate {args.model} --board icebreaker"])
    return 0
