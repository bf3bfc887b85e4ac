"""Metrics of a frozen model on a dataset: float forward and integer golden model (NumPy only).

Classification: accuracy of the argmax of the logits at each sequence's last valid timestep.
Character model: bits per character of the next-character prediction; the split's stream is cut
into windows of ``window`` characters, each run from the zero state (the state is reset every
``window`` characters, which costs a little at each window's start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..floatref import float_forward
from ..golden import GoldenModel, quantize_inputs
from ..spec import HwgenError, Model, TokenInput
from .datasets import Dataset, Split, char_windows

__all__ = ["Metrics", "check_compatible", "evaluate", "bits_per_char", "accuracy_at_lengths"]


@dataclass
class Metrics:
    """``metric`` is ``"accuracy"`` (higher is better) or ``"bpc"`` (lower is better)."""

    metric: str
    float_value: float
    golden_value: float
    count: int  # sequences or characters evaluated
    saturated: int = 0  # input values saturated by the input format (vector models)
    #: delta networks (issue 23): the golden model's fraction of columns processed (None: dense)
    columns: float | None = None

    def describe(self) -> str:
        unit = "accuracy" if self.metric == "accuracy" else "bits/char"
        what = "sequences" if self.metric == "accuracy" else "characters"
        s = (f"float forward {unit} {self.float_value:.4f}, golden (integer) {unit} "
             f"{self.golden_value:.4f} on {self.count} {what}")
        if self.saturated:
            s += f"; {self.saturated} input values saturated"
        if self.columns is not None:
            s += f"; delta network: {self.columns:.1%} of the columns processed"
        return s


def check_compatible(model: Model, ds: Dataset) -> None:
    """A clear error when a model cannot read a dataset (inputs or outputs do not match)."""
    tokens = isinstance(model.input, TokenInput)
    if tokens != ds.tokens:
        want = "token ids" if tokens else "feature vectors"
        raise HwgenError(f"the model takes {want} but dataset {ds.name} does not provide them")
    if tokens and ds.vocab > model.input.vocab:
        raise HwgenError(
            f"dataset {ds.name} has {ds.vocab} tokens; "
            f"the model's embedding has {model.input.vocab}"
        )
    if not tokens and ds.features != model.input.features:
        raise HwgenError(
            f"dataset {ds.name} has {ds.features} features; the model takes {model.input.features}"
        )
    if ds.classes != model.outputs:
        raise HwgenError(
            f"dataset {ds.name} has {ds.classes} classes; the model has {model.outputs} outputs"
        )


def bits_per_char(logits: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
    """Summed cross-entropy in bits and the count of targets >= 0 (-1 marks padding)."""
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    t = targets.reshape(-1)
    keep = t >= 0
    z, t = z[keep], t[keep]
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    nll = lse - z[np.arange(len(t)), t]
    return float(nll.sum() / np.log(2.0)), int(len(t))


def accuracy_at_lengths(logits: np.ndarray, y: np.ndarray, lengths: np.ndarray) -> float:
    last = logits[np.arange(len(y)), lengths - 1]
    return float(np.mean(np.argmax(last, axis=-1) == y))


def _classify(model: Model, split: Split, batch: int) -> Metrics:
    g = GoldenModel(model)
    outf = model.formats.output_frac
    fl, gl, sat = [], [], 0
    cols = [0, 0]  # delta networks: columns processed, columns of a dense network
    for s in range(0, len(split.y), batch):
        x = split.X[s : s + batch]
        fl.append(float_forward(model, x))
        if isinstance(model.input, TokenInput):
            codes = x
        else:
            codes, n = quantize_inputs(model, x)
            sat += n
        r = g.run(codes)
        gl.append(r.logits * 2.0**-outf)
        if getattr(r, "columns", None) is not None:
            done, total = r.columns.processed(split.lengths[s : s + batch])
            cols = [cols[0] + done, cols[1] + total]
    f, gv = np.concatenate(fl), np.concatenate(gl)
    return Metrics(
        "accuracy",
        accuracy_at_lengths(f, split.y, split.lengths),
        accuracy_at_lengths(gv, split.y, split.lengths),
        len(split.y),
        sat,
        cols[0] / cols[1] if cols[1] else None,
    )


def _charlm(model: Model, split: Split, batch: int, window: int, max_chars: int | None):
    stream = split.stream if max_chars is None else split.stream[: max_chars + 1]
    x, t = char_windows(stream, window)
    g = GoldenModel(model)
    outf = model.formats.output_frac
    fb = gb = 0.0
    n = 0
    for s in range(0, len(x), batch):
        xb, tb = x[s : s + batch], t[s : s + batch]
        b1, k = bits_per_char(float_forward(model, xb), tb)
        b2, _ = bits_per_char(g.run(xb).logits * 2.0**-outf, tb)
        fb, gb, n = fb + b1, gb + b2, n + k
    return Metrics("bpc", fb / n, gb / n, n)


def evaluate(
    model: Model,
    ds: Dataset,
    split: str = "test",
    *,
    batch: int = 256,
    window: int = 1000,
    max_chars: int | None = None,
) -> Metrics:
    """The metric of the float forward (`hwgen.floatref`) and of the golden model on a split."""
    check_compatible(model, ds)
    sp = ds.split(split)
    if ds.kind == "charlm":
        return _charlm(model, sp, max(1, batch // 4), window, max_chars)
    return _classify(model, sp, batch)
