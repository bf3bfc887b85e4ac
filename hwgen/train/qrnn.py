"""The quantization-aware recurrent network trained by ``hwgen train`` (PyTorch).

Parameters use PyTorch's nn.RNN / nn.GRU / nn.LSTM names, shapes and gate order
(``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``), an nn.Linear ``head``
and, for token inputs, an nn.Embedding ``embedding``: `QRNN.float_params` hands them to
`hwgen.freeze.freeze` unchanged.

Forward pass (the co-design surrogate of the hardware; docs/training.md):

- every weight matrix (input, recurrent, head) goes through the quantizer with the straight-through
  estimator: a fresh stochastic draw per forward pass in training, the deterministic rule in eval;
  while ``float_weights`` is set (the first part of a run with ``--quant-delay``) the shadow
  weights (still clipped to the quantizer's range) pass unquantized;
- with N:M ``sparsity`` the recurrent matrices (and the head with ``sparse_head``) are first
  pruned by magnitude (`hwgen.spec.Sparsity.mask`, recomputed from the shadow weights on every
  forward pass, so a pruned weight that grows back re-enters); the gradient still reaches every
  shadow weight unchanged (straight-through for the mask too, as in SR-STE without its decay);
  `freeze` prunes the same shadow weights with the same function, so the frozen model is the
  eval forward's;
- every matrix uses ``quant``, except layer 0's input matrix with ``input_quant`` and the head
  with ``head_quant`` (mixed precision: e.g. ternary recurrent matrices with int8 input and head
  matrices; the model file records each matrix's encoding, the hardware builds one MAC unit per
  encoding); the overrides are deterministic quantizers;
- binary / ternary matrices use the per-matrix scale W0: the Glorot bound (``weight_scale``
  "glorot", the reference code's), or a learned scale (``"learned"``: one trainable log-scale per
  matrix, started at the Glorot bound, or fitted to the weights by `load_float_params`; forward
  value W0 * levels with W0 rounded to the quantizer's mantissa bits, so it freezes into the
  matrix's one `Scale`; its gradient is sum(dL/dWq * levels), as in trained ternary quantization);
  after each step the shadow weights are clipped to +-W0 unless ``shadow_clip`` is False;
  ``"fitted"``: W0 = `fit_w0` of the shadow weights at every forward pass (ternary: the
  three-level Lloyd fit, as TWN's threshold; binary: mean |w|), rounded like a learned one,
  no gradient of its own and no clipping: the quantized matrix then depends only on the
  direction of the shadow weights, so under normalization their norm grows as a float
  matrix's does, and Adam's step shrinks against it as it does for float (docs/training.md);
- biases are combined as `freeze` combines them (GRU b_hn kept inside the reset product) and
  rounded to ``gate_frac`` (head: ``output_frac``) fraction bits;
- inputs (or embedding rows) are fake-quantized to the input format, the hidden state after each
  step to the state format, the LSTM cell state to the cell format (round half up, saturate, STE);
- with ``delta`` thresholds (`hwgen.delta.DeltaThresholds`, ``hwgen train --delta``), the
  delta network of `hwgen.delta.golden`: each layer's matrix products read held values x_hat /
  h_hat, a column taking its new (fake-quantized) value only when it changed by at least theta
  codes since it was last taken (compared at theta - 1/2 codes, robust to float rounding; theta 0
  is the dense forward); M = W x_hat is what the delta memories hold, so the products are
  computed from the held values directly. The gradient flows through the held values to the
  step that was last taken (the threshold decision itself is a constant, as in DeltaGRU
  training); the cell's state update uses the true h, as the golden model does;
- with ``norm`` (`NORMS`, ``hwgen train --norm``) every layer's two matrix products W_x x and
  W_h h are normalized per row (output unit of each gate) before the biases are added:
  "batch" is batch normalization without a shift (the biases are the shift): training divides
  W_x x by its per-row batch statistics over batch and time, W_h h by its per-row batch
  statistics at each step (from step 1; the step-0 product of the zero state is zero), and keeps
  running averages of each product's statistics pooled over batch and time; evaluation uses the
  running averages, so each product becomes a constant per-row affine map gamma (p - mean) /
  sqrt(var + eps). "weight" is weight normalization of the quantized rows: gain_r * p_r / ||q_r||
  with a learned gain per row (started at ||q_r||: the same forward as without it). In
  evaluation both are the per-row affine map of `row_affine`, which `freeze` folds into per-row
  multipliers and the biases (docs/training.md, "Normalization");
- sigmoid and tanh are the float functions (the hardware's tables round them to the sigmoid / state
  formats; the gap is what `hwgen eval` measures as float forward vs golden).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..delta import DeltaThresholds, with_thresholds
from ..freeze import FloatLayer, FloatParams, freeze
from ..quant import QuantConfig, fit_ternary_scale, glorot_bound
from ..spec import (
    CellKind,
    EncodingKind,
    Formats,
    HwgenError,
    Model,
    Scale,
    Sparsity,
    check_finite,
)
from .names import NORMS
from .tquant import fake_fixed, fake_frac, quantize_tensor, shadow_limit, ste

__all__ = ["QRNN", "WEIGHT_SCALES", "LR_SCALES", "NORMS"]

#: ``weight_scale`` choices: the Glorot bound (the reference code's W0), a learned W0 per matrix,
#: or W0 fitted to the shadow weights at every forward pass (`fit_w0`; scale-invariant)
WEIGHT_SCALES = ("glorot", "learned", "fitted")
#: ``lr_scale`` choices (`QRNN.param_groups`): one learning rate, the rate times each matrix's
#: Glorot W0, or divided by it (BinaryConnect's W_LR_scale).
LR_SCALES = ("none", "w0", "1/w0")
#: batch normalization: the epsilon under the square root, the running averages' momentum and
#: the gamma every row starts at (0.1, as recurrent batch normalization recommends: the gates
#: start in their linear range)
BN_EPS, BN_MOMENTUM, BN_GAMMA0 = 1e-5, 0.1, 0.1


class QRNN(nn.Module):
    """A quantization-aware RNN / GRU / LSTM with a linear head.

    ``quant`` None trains without weight quantization (float). ``fake_quant`` False drops the
    fixed-point surrogate of inputs and state (plain float activations).
    """

    def __init__(
        self,
        cell: CellKind,
        hidden: int,
        outputs: int,
        *,
        layers: int = 1,
        features: int | None = None,
        vocab: int | None = None,
        embed: int = 16,
        quant: QuantConfig | None = None,
        formats: Formats | None = None,
        fake_quant: bool = True,
        seed: int = 0,
        sparsity: Sparsity | None = None,
        sparse_head: bool = False,
        weight_scale: str = "glorot",
        shadow_clip: bool = True,
        input_quant: QuantConfig | None = None,
        head_quant: QuantConfig | None = None,
        delta: DeltaThresholds | None = None,
        norm: str = "none",
    ):
        super().__init__()
        if norm not in NORMS:
            raise HwgenError(f"unknown normalization {norm!r}; expected " + ", ".join(NORMS))
        if norm != "none" and delta is not None:
            raise HwgenError("a delta network with normalization is not supported: the delta "
                             "memories hold unnormalized products (drop --norm or --delta)")
        self.norm = norm
        if delta is not None:
            if formats is None:
                raise HwgenError("delta thresholds are codes of the fixed-point formats; a "
                                 "delta network needs formats")
            delta.check_formats(formats, layers)
        self.delta = delta
        if weight_scale not in WEIGHT_SCALES:
            raise HwgenError(f"unknown weight scale {weight_scale!r}; expected "
                             + " or ".join(WEIGHT_SCALES))
        if weight_scale != "glorot" and (
                quant is None or quant.kind not in (EncodingKind.BINARY, EncodingKind.TERNARY)):
            what = "float" if quant is None else quant.name
            raise HwgenError(f"a {weight_scale} weight scale is for binary or ternary weights, "
                             f"not {what} (use --quant ternary or drop --weight-scale "
                             f"{weight_scale})")
        self.weight_scale, self.shadow_clip = weight_scale, bool(shadow_clip)
        if sparse_head and sparsity is None:
            raise HwgenError("a sparse head needs a sparsity (N:M)")
        if quant is None and (input_quant is not None or head_quant is not None):
            raise HwgenError("an input-matrix or head quantizer needs a weight quantizer: a float "
                             "model freezes every matrix as int8")
        if sparsity is not None and quant is not None:
            sparsity.check_kind(quant.kind)
            sparsity.check_kind((input_quant or quant).kind)
            if sparse_head:
                sparsity.check_kind((head_quant or quant).kind)
        self.sparsity, self.sparse_head = sparsity, sparse_head
        if (features is None) == (vocab is None):
            raise HwgenError("a model takes either feature vectors or tokens")
        if (cell is CellKind.LSTM) != (formats is not None and formats.cell is not None):
            raise HwgenError("LSTM models need a cell-state format, and only LSTM models have one")
        self.cell, self.hidden, self.num_layers = cell, hidden, layers
        self.quant, self.formats, self.fake_quant = quant, formats, fake_quant
        self.generator = torch.Generator().manual_seed(seed + 7919)
        G, H = cell.num_gates, hidden
        init = torch.Generator().manual_seed(seed)
        width = features if vocab is None else embed
        self.embedding = None
        if vocab is not None:
            self.embedding = nn.Embedding(vocab, embed)
            with torch.no_grad():
                self.embedding.weight.copy_(torch.randn(vocab, embed, generator=init))
        self.features = features

        def uniform(shape, bound):
            return nn.Parameter((torch.rand(shape, generator=init) * 2 - 1) * bound)

        self._fans = {}
        for k in range(layers):
            in_w = width if k == 0 else H
            in_q = (input_quant or quant) if k == 0 else quant
            setattr(self, f"weight_ih_l{k}",
                    uniform((G * H, in_w), self._init_bound(in_w, H, in_q)))
            setattr(self, f"weight_hh_l{k}", uniform((G * H, H), self._init_bound(H, H, quant)))
            b_ih = torch.zeros(G * H)
            if cell is CellKind.LSTM:
                b_ih[H : 2 * H] = 1.0  # forget-gate bias 1
            setattr(self, f"bias_ih_l{k}", nn.Parameter(b_ih))
            setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.zeros(G * H)))
            self._fans[f"weight_ih_l{k}"] = (in_w, H)
            self._fans[f"weight_hh_l{k}"] = (H, H)
        self.head = nn.Linear(H, outputs)
        with torch.no_grad():
            self.head.weight.copy_(
                (torch.rand(outputs, H, generator=init) * 2 - 1)
                * self._init_bound(H, outputs, head_quant or quant)
            )
            self.head.bias.zero_()
        self._fans["head.weight"] = (H, outputs)
        #: the quantizer of every matrix (None: float): ``quant``, except layer 0's input matrix
        #: (``input_quant``) and the head (``head_quant``) when given
        self._quants = {n: quant for n in self._fans}
        if input_quant is not None:
            self._quants["weight_ih_l0"] = input_quant
        if head_quant is not None:
            self._quants["head.weight"] = head_quant
        self._sparse = set()  # parameters pruned to self.sparsity in the forward pass
        if sparsity is not None:
            self._sparse = {n for n in self._fans if n != "head.weight" or sparse_head}
        if weight_scale == "learned":
            for name, (fan_in, fan_out) in self._fans.items():
                if not self._has_w0(name):
                    continue
                log_w0 = math.log(glorot_bound(fan_in, fan_out))
                setattr(self, _scale_param(name), nn.Parameter(torch.tensor(log_w0)))
        #: True while ``hwgen train --quant-delay`` keeps the weights in float (the clipped shadow
        #: weights pass unquantized: `_Run.begin_step` sets it per step); False otherwise
        self.float_weights = False
        self._init_norm()

    def _init_norm(self) -> None:
        """The normalization's parameters and buffers for every layer's products ``ih`` / ``hh``
        (``norm_gamma_*``, ``norm_mean_*``, ``norm_var_*`` for batch; ``norm_gain_*`` for
        weight)."""
        GH = self.cell.num_gates * self.hidden
        for k in range(self.num_layers):
            for a in ("ih", "hh"):
                if self.norm == "batch":
                    setattr(self, f"norm_gamma_{a}_l{k}", nn.Parameter(torch.full((GH,),
                                                                                  BN_GAMMA0)))
                    self.register_buffer(f"norm_mean_{a}_l{k}", torch.zeros(GH))
                    self.register_buffer(f"norm_var_{a}_l{k}", torch.ones(GH))
                elif self.norm == "weight":  # the deterministic rule: no stochastic draw
                    was, self.training = self.training, False
                    with torch.no_grad():
                        q = self.quantized_weight(f"weight_{a}_l{k}")
                    self.training = was
                    setattr(self, f"norm_gain_{a}_l{k}", nn.Parameter(
                        torch.linalg.vector_norm(q, dim=1).to(torch.float32)))

    @staticmethod
    def _init_bound(fan_in: int, fan_out: int, quant: QuantConfig | None) -> float:
        """Uniform initialization bound: the Glorot bound, except for pow2, whose fixed step
        2**-frac_bits may exceed twice the Glorot bound: then every weight would start at zero,
        and with an all-zero head the straight-through gradient never reaches the recurrent
        layers (training never starts). pow2 starts within +-2**-frac_bits instead, so that about
        half the weights are non-zero."""
        bound = glorot_bound(fan_in, fan_out)
        if quant is not None and quant.kind is EncodingKind.POW2:
            bound = max(bound, 2.0**-quant.frac_bits)
        return bound

    # -- quantized parameters -------------------------------------------------------------------
    def _has_w0(self, name: str) -> bool:
        """Whether matrix ``name`` is binary / ternary (values +-W0: a scale to learn)."""
        q = self._quants[name]
        return q is not None and q.kind in (EncodingKind.BINARY, EncodingKind.TERNARY)

    def _source(self, name: str, w: torch.Tensor) -> torch.Tensor:
        """What the quantizer reads of matrix ``name``: ``w``, pruned to N:M when sparse."""
        if name not in self._sparse:
            return w
        keep = self.sparsity.mask(w.detach().to(torch.float64).numpy())
        return torch.where(torch.from_numpy(keep), w.detach().to(torch.float64), 0.0)

    def _q(self, name: str, w: torch.Tensor) -> torch.Tensor:
        src = self._source(name, w)
        qc = self._quants[name]
        if qc is None or self.float_weights:
            return w if src is w else ste(w, src)
        fan_in, fan_out = self._fans[name]
        stochastic = qc.stochastic and self.training
        if self.weight_scale != "learned" or not self._has_w0(name):
            fitted = None
            if self.weight_scale == "fitted" and self._has_w0(name):
                fitted = self._fitted_w0(name, src)
            q = quantize_tensor(
                src, qc, fan_in=fan_in, fan_out=fan_out,
                stochastic=stochastic, generator=self.generator, scale=fitted,
            )
            return ste(w, q)
        w0 = torch.exp(self.get_parameter(_scale_param(name)))
        s = float(w0.detach())
        q = quantize_tensor(src, qc, fan_in=fan_in, fan_out=fan_out,
                            stochastic=stochastic, generator=self.generator, scale=s)
        levels = (q / Scale.from_float(s, qc.mantissa_bits).value).to(w.dtype)
        # forward: q exactly (the added term is zero); backward: dL/dW0 = sum(dL/dq * levels)
        return ste(w, q) + (w0 - w0.detach()).to(w.dtype) * levels

    def _fitted_w0(self, name: str, src: torch.Tensor) -> float:
        """``weight_scale`` "fitted": the W0 of matrix ``name`` fitted to what the quantizer
        reads of it (``src``, from `_source`)."""
        return fit_w0(self._quants[name].kind, src.detach().to(torch.float64).numpy())

    def learned_scales(self) -> dict[str, float] | None:
        """The learned (or fitted) W0 of every binary / ternary matrix by PyTorch name (None
        with the Glorot W0): what `freeze` rounds into each matrix's `Scale`."""
        if self.weight_scale == "glorot":
            return None
        if self.weight_scale == "fitted":
            return {n: self._fitted_w0(n, self._source(n, self.get_parameter(n)))
                    for n in self._fans if self._has_w0(n)}
        return {n: float(torch.exp(self.get_parameter(_scale_param(n))).detach())
                for n in self._fans if self._has_w0(n)}

    def param_groups(self, lr: float, lr_scale: str = "none",
                     recurrent_lr: float = 1.0) -> list[dict]:
        """Optimizer parameter groups: every parameter at ``lr``, except that with ``lr_scale``
        "w0" ("1/w0") each binary / ternary weight matrix's rate is multiplied (divided) by its
        Glorot W0, and each recurrent matrix's (``weight_hh_l*``, any encoding) is multiplied by
        ``recurrent_lr`` (> 0; 1: unchanged). The parameters with a rate of their own get a
        group each, after the group of the others (the order of earlier checkpoints)."""
        if lr_scale not in LR_SCALES:
            raise HwgenError(f"unknown learning-rate scaling {lr_scale!r}; expected "
                             + ", ".join(LR_SCALES))
        check_finite("the recurrent matrices' rate multiplier", recurrent_lr, minimum=0.0,
                     strict_min=True)
        scaled = {n for n in self._fans if lr_scale != "none" and self._has_w0(n)}
        scaled |= {n for n in self._fans if recurrent_lr != 1.0 and n.startswith("weight_hh_l")}
        if not scaled:
            return [{"params": list(self.parameters()), "lr": lr}]
        named = list(self.named_parameters())
        groups = [{"params": [p for n, p in named if n not in scaled], "lr": lr}]
        for n, p in named:
            if n not in scaled:
                continue
            rate = lr
            if lr_scale != "none" and self._has_w0(n):
                w0 = glorot_bound(*self._fans[n])
                rate = lr * w0 if lr_scale == "w0" else lr / w0
            if n.startswith("weight_hh_l"):
                rate *= recurrent_lr
            groups.append({"params": [p], "lr": rate})
        return groups

    def quantized_weight(self, name: str) -> torch.Tensor:
        """The values the forward pass uses for parameter ``name`` (a fresh draw when training)."""
        return self._q(name, self.get_parameter(name))

    def _bias(self, b: torch.Tensor, frac: int) -> torch.Tensor:
        return fake_frac(b, frac) if self.formats is not None else b

    @torch.no_grad()
    def clip_shadow(self) -> None:
        """Clip shadow weights to the quantizer's range (after each optimizer step; nothing
        with ``shadow_clip`` False): +-W0 (the learned one with a learned scale)."""
        if not self.shadow_clip:
            return
        # only a learned W0 is a clip limit (a fitted one follows the weights: not clipped, and
        # not fitted here, after every step, for nothing)
        scales = self.learned_scales() if self.weight_scale == "learned" else {}
        for name, (fan_in, fan_out) in self._fans.items():
            if self.weight_scale == "fitted" and self._has_w0(name):
                continue  # the fit follows the weights: nothing to clip to
            lim = shadow_limit(self._quants[name], fan_in, fan_out, scales.get(name))
            if lim is not None:
                self.get_parameter(name).clamp_(-lim, lim)

    # -- forward --------------------------------------------------------------------------------
    def _fq(self, x: torch.Tensor, fmt) -> torch.Tensor:
        return fake_fixed(x, fmt) if self.fake_quant and self.formats is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, O) from features (B, T, F) or token ids (B, T)."""
        f = self.formats
        v = self.embedding(x) if self.embedding is not None else x
        if f is not None:
            v = self._fq(v, f.input)
        for k in range(self.num_layers):
            v = self._layer(k, v)
        hw = self.quantized_weight("head.weight")
        hb = self.head.bias
        if f is not None:
            hb = self._bias(hb, f.output_frac)
        return torch.matmul(v, hw.t()) + hb

    def row_affine(self, k: int, wx: torch.Tensor | None = None, wh: torch.Tensor | None = None):
        """The per-row affine maps p -> factor * p + shift of layer ``k``'s input and recurrent
        products in evaluation, as ``(fx, dx, fh, dh)`` tensors of G*H rows (None without
        ``norm``). batch: factor gamma / sqrt(running var + eps), shift -factor * running
        mean; weight: factor gain / ||q_r|| (0 for an all-zero row), shift 0. ``wx`` / ``wh``:
        the quantized matrices (default: the deterministic ones)."""
        if self.norm == "none":
            return None
        out = []
        for a, w in (("ih", wx), ("hh", wh)):
            if self.norm == "batch":
                var, mean = (self.get_buffer(f"norm_{s}_{a}_l{k}") for s in ("var", "mean"))
                fac = self.get_parameter(f"norm_gamma_{a}_l{k}") / torch.sqrt(var + BN_EPS)
                out += [fac, -fac * mean]
            else:
                if w is None:
                    w = self.quantized_weight(f"weight_{a}_l{k}")
                n = torch.linalg.vector_norm(w, dim=1).to(torch.float32)
                gain = self.get_parameter(f"norm_gain_{a}_l{k}")
                fac = torch.where(n > 0, gain / torch.where(n > 0, n, 1.0), 0.0)
                out += [fac, torch.zeros_like(fac)]
        return tuple(out)

    def _layer_bias(self, k: int, affine) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Layer ``k``'s combined bias and (GRU) the n gate's recurrent bias b_hn, with the
        shifts of ``affine`` (`row_affine`) folded in as `freeze` folds them, rounded to the gate
        format."""
        H = self.hidden
        b_ih, b_hh = self.get_parameter(f"bias_ih_l{k}"), self.get_parameter(f"bias_hh_l{k}")
        if affine is not None:
            _, dx, _, dh = affine
            b_ih, b_hh = b_ih + dx, b_hh + dh
        bhn = None
        if self.cell is CellKind.GRU:
            bias = torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
            bhn = b_hh[2 * H :]
        else:
            bias = b_ih + b_hh
        if self.formats is not None:
            gf = self.formats.gate_frac
            bias = self._bias(bias, gf)
            bhn = None if bhn is None else self._bias(bhn, gf)
        return bias, bhn

    def _layer(self, k: int, v: torch.Tensor) -> torch.Tensor:
        """Layer ``k`` over the sequence ``v`` (B, T, I): its hidden states (B, T, H)."""
        f = self.formats
        H, B, T = self.hidden, v.shape[0], v.shape[1]
        wx = self.quantized_weight(f"weight_ih_l{k}")
        wh = self.quantized_weight(f"weight_hh_l{k}")
        batch_stats = self.norm == "batch" and self.training
        affine = None if batch_stats else self.row_affine(k, wx, wh)
        bias, bhn = self._layer_bias(k, affine)
        held = v if self.delta is None else self._held(
            v, self.delta.theta_x[k], f.input if k == 0 else f.state)
        ax = torch.matmul(held, wx.t())
        if batch_stats:
            ax = self._bn_train(ax.reshape(B * T, -1), k, "ih").reshape(B, T, -1)
        elif affine is not None:
            ax = ax * affine[0]
        ax = ax + bias
        h = v.new_zeros(B, H)
        c = v.new_zeros(B, H)
        h_hat = h
        out, pooled = [], []
        wht = wh.t()
        for t in range(T):
            if self.delta is not None:
                h_hat = self._hold(h, h_hat, self.delta.theta_h[k], f.state)
            a, r_ = ax[:, t], h_hat @ wht if self.delta is not None else h @ wht
            if batch_stats and t > 0:
                r_ = self._bn_train(r_, k, "hh", pooled)
            elif batch_stats:
                r_ = r_ * self.get_parameter(f"norm_gamma_hh_l{k}")
            elif affine is not None:
                r_ = r_ * affine[2]
            h, c = self._cell_step(a, r_, h, c, bhn)
            out.append(h)
        if pooled:
            self._update_running(k, "hh", pooled, B * (T - 1))
        return torch.stack(out, dim=1)

    def _cell_step(self, a, r_, h, c, bhn):
        """One step of the cell from the input term ``a`` (bias included) and the recurrent
        term ``r_``: the new (h, c), fake-quantized to the state / cell formats."""
        f, H = self.formats, self.hidden
        if self.cell is CellKind.RNN:
            h = torch.tanh(a + r_)
        elif self.cell is CellKind.GRU:
            rz = torch.sigmoid(a[:, : 2 * H] + r_[:, : 2 * H])
            r, z = rz[:, :H], rz[:, H:]
            n = torch.tanh(a[:, 2 * H :] + r * (r_[:, 2 * H :] + bhn))
            if f is not None:
                n = self._fq(n, f.state)
            h = n + z * (h - n)
        else:
            s = torch.sigmoid(a + r_)
            g = torch.tanh(a[:, 2 * H : 3 * H] + r_[:, 2 * H : 3 * H])
            c = s[:, H : 2 * H] * c + s[:, :H] * g
            if f is not None:
                c = self._fq(c, f.cell)
            h = s[:, 3 * H :] * torch.tanh(c)
        if f is not None:
            h = self._fq(h, f.state)
        return h, c

    def _bn_train(self, p: torch.Tensor, k: int, a: str, pooled: list | None = None):
        """Batch normalization (no shift) of the products ``p`` (N, G*H) with their own per-row
        statistics over the N rows; the running averages are updated here (``pooled`` None: the
        input product, over batch and time) or collected into ``pooled`` (the recurrent
        product, one step at a time) for `_update_running`."""
        mean = p.mean(dim=0)
        var = p.var(dim=0, unbiased=False)
        if pooled is None:
            self._update_running(k, a, [(mean.detach(), (var + mean * mean).detach())],
                                 p.shape[0])
        else:
            pooled.append((mean.detach(), (var + mean * mean).detach()))
        gamma = self.get_parameter(f"norm_gamma_{a}_l{k}")
        return (p - mean) * (gamma / torch.sqrt(var + BN_EPS))

    @torch.no_grad()
    def _update_running(self, k: int, a: str, pooled: list, n: int) -> None:
        """Move product ``a``'s running mean / variance towards the statistics pooled over
        ``pooled`` (per-step (mean, mean of squares) pairs, ``n`` products in all; the variance
        unbiased, as nn.BatchNorm1d keeps it)."""
        mean = torch.stack([m for m, _ in pooled]).mean(dim=0)
        var = torch.stack([q for _, q in pooled]).mean(dim=0) - mean * mean
        var = var.clamp(min=0.0) * (n / max(n - 1, 1))
        for name, value in (("mean", mean), ("var", var)):
            buf = self.get_buffer(f"norm_{name}_{a}_l{k}")
            buf.mul_(1.0 - BN_MOMENTUM).add_(BN_MOMENTUM * value)

    @staticmethod
    def _hold(v: torch.Tensor, v_hat: torch.Tensor, theta: int, fmt) -> torch.Tensor:
        """The delta encoder's held values: ``v`` where it moved at least ``theta`` codes of
        ``fmt`` from ``v_hat``, else ``v_hat``."""
        keep = torch.abs(v - v_hat).detach() >= (theta - 0.5) * fmt.lsb
        return torch.where(keep, v, v_hat)

    @staticmethod
    def _held(v: torch.Tensor, theta: int, fmt) -> torch.Tensor:
        """`_hold` along the time axis of ``v`` (B, T, I) from x_hat = 0."""
        hat, out = v.new_zeros(v.shape[0], v.shape[2]), []
        for t in range(v.shape[1]):
            hat = QRNN._hold(v[:, t], hat, theta, fmt)
            out.append(hat)
        return torch.stack(out, dim=1)

    # -- export ---------------------------------------------------------------------------------
    def float_params(self) -> FloatParams:
        """The float shadow parameters in PyTorch layout (float64 NumPy arrays)."""

        def a(name):
            return self.get_parameter(name).detach().to(torch.float64).numpy().copy()

        def affine(k):  # the normalization's per-row maps in evaluation (None without)
            with torch.no_grad():
                m = self.row_affine(k)
            if m is None:
                return None, None
            fx, dx, fh, dh = (t.detach().to(torch.float64).numpy().copy() for t in m)
            return (fx, dx), (fh, dh)

        layers = [
            FloatLayer(a(f"weight_ih_l{k}"), a(f"weight_hh_l{k}"), a(f"bias_ih_l{k}"),
                       a(f"bias_hh_l{k}"), *affine(k))
            for k in range(self.num_layers)
        ]
        emb = a("embedding.weight") if self.embedding is not None else None
        return FloatParams(
            self.cell, layers, a("head.weight"), a("head.bias"), embedding=emb,
            features=self.features,
        )

    @torch.no_grad()
    def load_float_params(self, params: FloatParams) -> None:
        """Start from ``params`` (PyTorch layout; shapes must match this network)."""
        params.check()
        if params.cell is not self.cell or len(params.layers) != self.num_layers:
            raise HwgenError("the parameters do not match this network's cell or layer count")
        named = {"head.weight": params.head_w, "head.bias": params.head_b}
        if params.embedding is not None:
            named["embedding.weight"] = params.embedding
        for k, fl in enumerate(params.layers):
            named.update({f"weight_ih_l{k}": fl.w_ih, f"weight_hh_l{k}": fl.w_hh,
                          f"bias_ih_l{k}": fl.b_ih, f"bias_hh_l{k}": fl.b_hh})
        for name, value in named.items():
            p = self.get_parameter(name)
            v = torch.as_tensor(np.asarray(value), dtype=p.dtype)
            if v.shape != p.shape:
                raise HwgenError(f"{name} has shape {tuple(v.shape)}; this network needs "
                                 f"{tuple(p.shape)}")
            p.copy_(v)
        if self.weight_scale == "learned":  # start each W0 at the best fit to the given weights
            for name in filter(self._has_w0, self._fans):
                fit = fit_w0(self._quants[name].kind, np.asarray(named[name], np.float64))
                if fit > 0:
                    self.get_parameter(_scale_param(name)).fill_(math.log(fit))

    def freeze_quant(self) -> QuantConfig:
        """The quantizer the frozen model uses: the deterministic rule of the training quantizer,
        or int8 for a float-trained model."""
        return self._frozen_quant("weight_hh_l0")

    def _frozen_quant(self, name: str) -> QuantConfig:
        q = self._quants[name]
        return QuantConfig.parse("int8") if q is None else replace(q, stochastic=False)

    def freeze(self, formats: Formats | None = None, meta: dict | None = None) -> Model:
        f = formats or self.formats
        if f is None:
            raise HwgenError("freezing needs fixed-point formats")
        frozen = freeze(self.float_params(), self.freeze_quant(), f, meta=meta,
                        input_quant=self._frozen_quant("weight_ih_l0"),
                        head_quant=self._frozen_quant("head.weight"),
                        sparsity=self.sparsity, sparse_head=self.sparse_head,
                        scales=self.learned_scales())
        return frozen if self.delta is None else with_thresholds(frozen, self.delta)


def fit_w0(kind: EncodingKind, w: np.ndarray) -> float:
    """The W0 that fits weights ``w`` best as binary (mean |w|) or ternary
    (`hwgen.quant.fit_ternary_scale`) values: a learned W0's start from given weights, and
    ``weight_scale`` "fitted"'s W0 at every forward pass. Scale-covariant: fit_w0(c w) =
    c fit_w0(w) for c > 0."""
    return float(np.abs(w).mean()) if kind is EncodingKind.BINARY else fit_ternary_scale(w)


def _scale_param(name: str) -> str:
    """The name of matrix ``name``'s learned log-scale parameter (``scale_weight_hh_l0``,
    ``scale_head_weight``)."""
    return "scale_" + name.replace(".", "_")


def check_layout_matches(model: QRNN, frozen: Model) -> None:
    """Raise if the frozen model's weights differ from the deterministic forward's (a self-check
    that the torch quantizers and `hwgen.quant` agree). With a normalization the frozen rows
    carry multipliers (and negated levels where a row's factor is negative): then the zeros and,
    in each row, the level signs up to the row's sign must agree."""
    was = model.training
    model.eval()
    try:
        for k, layer in enumerate(frozen.layers):
            affine = model.row_affine(k)
            for i, (name, m) in enumerate(((f"weight_ih_l{k}", layer.wx),
                                           (f"weight_hh_l{k}", layer.wh))):
                q = model.quantized_weight(name).detach().to(torch.float64).numpy()
                if affine is None:
                    same = np.array_equal(q, m.values)
                else:
                    sign = np.where(affine[2 * i].detach().numpy() < 0, -1, 1)[:, None]
                    same = np.array_equal(np.sign(q) * sign, np.sign(m.levels))
                if model.quant is not None and not same:
                    raise HwgenError(f"{name}: torch and NumPy quantizers disagree")
                if m.nm != model.sparsity:
                    raise HwgenError(f"{name}: frozen with sparsity {m.nm}, trained with "
                                     f"{model.sparsity}")
    finally:
        model.train(was)
