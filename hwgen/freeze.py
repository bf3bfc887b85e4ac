"""Freeze float parameters (PyTorch layout) into a quantized `Model`.

Float parameters follow PyTorch's nn.RNN / nn.GRU / nn.LSTM layout and gate order exactly
(weight_ih_l{k}: (G*H, I), weight_hh_l{k}: (G*H, H), bias_ih_l{k}, bias_hh_l{k}), plus an nn.Linear
head and, for token models, an nn.Embedding table. Training, import and `hwgen random-model` all
go through `freeze`, so a model file always means the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .quant import QuantConfig
from .spec import (
    LIMITS,
    CellKind,
    Formats,
    Head,
    HwgenError,
    Layer,
    Model,
    QuantMatrix,
    Sparsity,
    TokenInput,
    VectorInput,
    check_positive_int,
    round_half_up,
)
from .tables import sigmoid_table, tanh_table

__all__ = ["FloatLayer", "FloatParams", "fold_rows", "freeze", "random_float_params", "to_fixed"]


@dataclass
class FloatLayer:
    """One recurrent layer's float parameters. ``row_ih`` / ``row_hh``, when given, are per-row
    affine maps ``(factor, shift)`` (two (G*H,) arrays) of the input / recurrent matrix product:
    the layer computes ``factor * (W p) + shift`` for each product (a normalization in evaluation,
    `hwgen.train.qrnn.QRNN.row_affine`); `freeze` folds them into per-row multipliers and the
    biases."""

    w_ih: np.ndarray  # (G*H, I)
    w_hh: np.ndarray  # (G*H, H)
    b_ih: np.ndarray  # (G*H,)
    b_hh: np.ndarray  # (G*H,)
    row_ih: tuple[np.ndarray, np.ndarray] | None = None
    row_hh: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class FloatParams:
    """A float recurrent model in PyTorch layout (see the module docstring)."""

    cell: CellKind
    layers: list[FloatLayer]
    head_w: np.ndarray  # (O, H)
    head_b: np.ndarray  # (O,)
    embedding: np.ndarray | None = None  # (V, D) for token models
    features: int | None = None  # vector models: input features
    meta: dict = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return self.layers[0].w_hh.shape[1]

    def check(self) -> None:
        G, H = self.cell.num_gates, self.hidden
        if (self.embedding is None) == (self.features is None):
            raise HwgenError(
                "a model has either vector inputs (features) or an embedding, not both"
            )
        width = self.features if self.embedding is None else self.embedding.shape[1]
        for i, layer in enumerate(self.layers):
            in_w = width if i == 0 else H
            for name, arr, shape in (
                ("w_ih", layer.w_ih, (G * H, in_w)),
                ("w_hh", layer.w_hh, (G * H, H)),
                ("b_ih", layer.b_ih, (G * H,)),
                ("b_hh", layer.b_hh, (G * H,)),
                *((f"{n} {part}", arr, (G * H,)) for n, m in (("row_ih", layer.row_ih),
                                                             ("row_hh", layer.row_hh))
                  if m is not None for part, arr in zip(("factor", "shift"), m, strict=True)),
            ):
                if tuple(np.shape(arr)) != shape:
                    raise HwgenError(
                        f"layer {i} {name} has shape {tuple(np.shape(arr))}; a "
                        f"{self.cell.value} with {H} hidden units and {in_w} inputs needs "
                        f"{shape}"
                    )
        if self.head_w.ndim != 2 or self.head_w.shape[1] != H:
            raise HwgenError(f"head weight has shape {self.head_w.shape}; expected (outputs, {H})")
        if tuple(self.head_b.shape) != (self.head_w.shape[0],):
            raise HwgenError(
                f"head bias has shape {self.head_b.shape}; expected ({self.head_w.shape[0]},)"
            )


def to_fixed(x, frac: int) -> np.ndarray:
    """Round real values to integers with ``frac`` fraction bits, half up (biases: never saturated,
    their register widths are derived from them)."""
    return round_half_up(np.asarray(x, np.float64) * 2.0**frac).astype(np.int64)


def freeze(
    params: FloatParams,
    quant: QuantConfig,
    formats: Formats,
    *,
    head_quant: QuantConfig | None = None,
    input_quant: QuantConfig | None = None,
    argmax: bool = False,
    rng=None,
    meta: dict | None = None,
    sparsity: Sparsity | None = None,
    sparse_head: bool = False,
    scales: dict[str, float] | None = None,
) -> Model:
    """Quantize every matrix with ``quant`` (the head with ``head_quant`` and layer 0's input
    matrix with ``input_quant``, each by default the same: a mixed-precision model; the hardware
    builds one MAC unit per encoding),
    biases to fixed point at ``formats.gate_frac`` (the head's at ``output_frac``), the embedding to
    ``formats.input``, and build the activation tables.

    The GRU's n-gate recurrent bias (PyTorch b_hn, applied inside the reset product) is kept apart;
    every other input and recurrent bias pair is summed before rounding.

    ``sparsity`` (N:M, `hwgen.spec.Sparsity`) prunes every recurrent matrix (wx and wh of every
    layer; the head too with ``sparse_head``) by magnitude (`Sparsity.prune`) before quantizing
    it and records the format in the matrix (``QuantMatrix.nm``); every quantizer maps a pruned
    zero to a zero code, and may zero more weights. Binary weights (no zero) are refused.

    ``scales`` (binary / ternary only) gives the scale W0 of some matrices by their PyTorch names
    (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``head.weight``) instead of the Glorot bound: the
    learned scales of ``hwgen train --weight-scale learned``, each rounded to the quantizer's
    mantissa bits into the matrix's one `Scale` (a constant shift-and-add per matrix).
    """
    scales = dict(scales or {})
    unknown = sorted(set(scales) - {f"weight_{a}_l{k}" for a in ("ih", "hh")
                                    for k in range(len(params.layers))} - {"head.weight"})
    if unknown:
        raise HwgenError(f"scales for unknown matrices {unknown}; expected weight_ih_l<k>, "
                         "weight_hh_l<k> or head.weight")
    params.check()
    if sparse_head and sparsity is None:
        raise HwgenError("a sparse head needs a sparsity (N:M)")
    input_quant = input_quant or quant
    if sparsity is not None:
        sparsity.check_kind(quant.kind)
        sparsity.check_kind(input_quant.kind)
        if sparse_head:
            sparsity.check_kind((head_quant or quant).kind)
    cell, H = params.cell, params.hidden
    if (cell is CellKind.LSTM) != (formats.cell is not None):
        raise HwgenError("LSTM models need a cell-state format, and only LSTM models have one")
    if any(q is not None and q.stochastic for q in (quant, head_quant, input_quant)) \
            and rng is None:
        raise HwgenError("stochastic quantization needs a seed")
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)  # one stream for all matrices, not one seed each
    head_quant = head_quant or quant
    fg = formats.gate_frac
    layers = []
    for k, fl in enumerate(params.layers):
        in_w = fl.w_ih.shape[1]
        wx = _quantize(input_quant if k == 0 else quant, fl.w_ih, in_w, H, rng, sparsity,
                       scales.get(f"weight_ih_l{k}"))
        wh = _quantize(quant, fl.w_hh, H, H, rng, sparsity, scales.get(f"weight_hh_l{k}"))
        b_ih, b_hh = np.asarray(fl.b_ih, np.float64), np.asarray(fl.b_hh, np.float64)
        if fl.row_ih is not None:  # a normalization: factors into the rows, shifts into biases
            wx, b_ih = fold_rows(wx, fl.row_ih[0], f"layer {k} input matrix"), b_ih + fl.row_ih[1]
        if fl.row_hh is not None:  # GRU: the n gate's shift joins b_hn, inside the reset product
            wh = fold_rows(wh, fl.row_hh[0], f"layer {k} recurrent matrix")
            b_hh = b_hh + fl.row_hh[1]
        if cell is CellKind.GRU:
            bias = to_fixed(np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]), fg)
            bias_hn = to_fixed(b_hh[2 * H :], fg)
        else:
            bias, bias_hn = to_fixed(b_ih + b_hh, fg), None
        layers.append(Layer(wx, wh, bias, bias_hn))
    head_w = _quantize(head_quant, params.head_w, H, params.head_w.shape[0], rng,
                       sparsity if sparse_head else None, scales.get("head.weight"))
    head = Head(head_w, to_fixed(params.head_b, formats.output_frac), argmax)
    meta = dict(meta or {})
    if params.embedding is not None:
        emb, saturated = formats.input.quantize(params.embedding)
        if saturated:
            meta["embedding_saturated"] = saturated
        inp = TokenInput(params.embedding.shape[0], params.embedding.shape[1])
    else:
        emb, inp = None, VectorInput(params.features)
    mixed = [f"{what} {q.name}" for what, q in (("input matrix", input_quant), ("head", head_quant))
             if q != quant]
    meta.setdefault("quant", quant.name + (" (stochastic)" if quant.stochastic else "")
                    + (f" ({', '.join(mixed)})" if mixed else ""))
    return Model(
        cell=cell,
        input=inp,
        hidden=H,
        layers=tuple(layers),
        head=head,
        formats=formats,
        sigmoid_table=sigmoid_table(formats),
        tanh_table=tanh_table(formats),
        embedding=emb,
        meta=meta,
    )


def _quantize(quant: QuantConfig, w, fan_in: int, fan_out: int, rng,
              sparsity: Sparsity | None, scale: float | None = None) -> QuantMatrix:
    """One matrix: pruned to ``sparsity`` (if any) by magnitude, then quantized (with ``scale``
    as W0 when given)."""
    if sparsity is None:
        return quant.quantize(w, fan_in=fan_in, fan_out=fan_out, rng=rng, scale=scale)
    q = quant.quantize(sparsity.prune(w), fan_in=fan_in, fan_out=fan_out, rng=rng, scale=scale)
    return replace(q, nm=sparsity)  # QuantMatrix checks the codes satisfy it


#: significant bits of the per-row multipliers a folded normalization gets
#: (`hwgen.spec.row_multipliers`)
ROW_BITS = 8


def fold_rows(m: QuantMatrix, factor, what: str = "the matrix",
              bits: int = ROW_BITS) -> QuantMatrix:
    """Matrix ``m`` with its rows' real values multiplied by ``factor`` (one float per row): the
    row factors ``factor * m.scale`` become integer per-row multipliers and a common scale
    (`hwgen.spec.row_multipliers`, ``bits`` significant bits); a row with a negative factor has
    its levels negated (every encoding's levels are symmetric; checked), so its multiplier is
    |factor|. Rounding the factors to the multipliers is the one inexactness of a folded
    normalization (docs/training.md, "Normalization")."""
    from .spec import row_multipliers

    f = np.asarray(factor, np.float64) * m.scale.value
    if f.shape != (m.shape[0],) or not np.all(np.isfinite(f)):
        raise HwgenError(f"{what}: the per-row factors must be {m.shape[0]} finite numbers")
    levels = m.levels.astype(np.int64)
    neg = f < 0
    if neg.any():
        levels = np.where(neg[:, None], -levels, levels)
    try:
        codes = m.encoding.encode(levels)
    except HwgenError as e:  # an encoding without the negation of a level in use
        raise HwgenError(f"{what}: a row with a negative factor cannot be negated in "
                         f"{m.encoding.describe()} ({e})") from None
    row_mult, scale = row_multipliers(np.abs(f), bits=bits)
    return QuantMatrix(codes, m.encoding, scale, m.nm, row_mult=row_mult)


def random_float_params(
    cell: CellKind,
    inputs: int,
    hidden: int,
    outputs: int,
    *,
    layers: int = 1,
    tokens: int | None = None,
    seed: int = 0,
) -> FloatParams:
    """Random float parameters (PyTorch's default uniform(-1/sqrt(H), 1/sqrt(H)) init scaled up so
    that every encoding keeps non-zero weights); ``tokens`` makes an embedding of ``inputs``
    dims."""
    for name, v, limit in (("Input count", inputs, "features"), ("Hidden size", hidden, "hidden"),
                           ("Output count", outputs, "outputs"), ("Layer count", layers, "layers")):
        check_positive_int(name, v, LIMITS[limit])
    if tokens is not None:
        check_positive_int("Token count", tokens, LIMITS["vocab"])
    G = cell.num_gates
    weights = G * hidden * (inputs + hidden) + (layers - 1) * G * hidden * 2 * hidden
    if weights + outputs * hidden > LIMITS["weights"]:
        raise HwgenError(f"a model of {weights + outputs * hidden} weights is larger than the "
                         f"{LIMITS['weights']} hwgen supports")
    rng = np.random.default_rng(seed)
    k = 2.0 / np.sqrt(hidden)
    fl = []
    for i in range(layers):
        in_w = inputs if i == 0 else hidden
        fl.append(
            FloatLayer(
                rng.uniform(-k, k, (G * hidden, in_w)),
                rng.uniform(-k, k, (G * hidden, hidden)),
                rng.uniform(-k / 2, k / 2, G * hidden),
                rng.uniform(-k / 2, k / 2, G * hidden),
            )
        )
    head_w = rng.uniform(-k, k, (outputs, hidden))
    head_b = rng.uniform(-k / 2, k / 2, outputs)
    if tokens is not None:
        emb = rng.normal(0.0, 0.5, (tokens, inputs))
        return FloatParams(cell, fl, head_w, head_b, embedding=emb)
    return FloatParams(cell, fl, head_w, head_b, features=inputs)
