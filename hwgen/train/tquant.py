"""PyTorch versions of the quantizers in `hwgen.quant`, for quantization-aware training.

The rules are those of `hwgen.quant` (the NumPy quantizers that `hwgen.freeze` uses): the same
per-matrix scales (`Scale` objects built by the same code), the same edges and the same rounding,
evaluated in float64, so a deterministic quantizer gives exactly the values that freezing the same
shadow weights gives (tests/test_train_quant.py checks it). Stochastic quantizers draw from a
`torch.Generator`; training uses a fresh draw per forward pass.

`ste` is the straight-through estimator: the forward value is the quantized one, the gradient goes
to the float shadow weight unchanged.
"""

from __future__ import annotations

import math

import torch

from ..quant import QuantConfig, glorot_bound
from ..spec import EncodingKind, FixedFormat, Scale, WeightEncoding

__all__ = [
    "ste",
    "quantize_tensor",
    "shadow_limit",
    "fake_fixed",
    "fake_frac",
]


def ste(w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward: ``q``; backward: identity to ``w``."""
    return w + (q.to(w.dtype) - w).detach()


def _glorot_scale(cfg: QuantConfig, fan_in: int, fan_out: int,
                  scale: float | None = None) -> float:
    """W0 as the model file stores it: the Glorot bound (or the given ``scale``) rounded to the
    quantizer's mantissa bits."""
    w0 = glorot_bound(fan_in, fan_out) if scale is None else float(scale)
    return Scale.from_float(w0, cfg.mantissa_bits).value


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def _rand(shape, generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64)


def _exp_values(w, cfg: QuantConfig, stochastic: bool, generator) -> torch.Tensor:
    a = torch.abs(w)
    top = float(a.max()) if a.numel() else 0.0
    if top == 0.0:
        kmax = cfg.exponents - 1
    else:
        _, e = math.frexp(top)
        k = e - 1
        kmax = k + 1 if top > 1.5 * 2.0**k else k
    kmin = kmax - cfg.exponents + 1
    _, e = torch.frexp(a)
    k = e.to(torch.int64) - 1
    pk = torch.ldexp(torch.ones_like(a), k)
    low, high = math.ldexp(1.0, kmin), math.ldexp(1.0, kmax)
    if stochastic:
        u = _rand(a.shape, generator)
        up = u < a / pk - 1.0
        below_up = u < a / low
    else:
        up = a > 1.5 * pk
        below_up = a > low / 2
    mag_exp = torch.full(a.shape, -1, dtype=torch.int64)
    in_range = (a >= low) & (a < high)
    mag_exp = torch.where(in_range, k - kmin + up.to(torch.int64), mag_exp)
    mag_exp = torch.where(a >= high, torch.full_like(mag_exp, kmax - kmin), mag_exp)
    mag_exp = torch.where((a < low) & (a > 0) & below_up, torch.zeros_like(mag_exp), mag_exp)
    mag = torch.where(mag_exp < 0, 0.0, torch.ldexp(torch.ones_like(a), mag_exp.clamp(min=0)))
    return torch.where(w < 0, -mag, mag) * low


def _int_values(w, cfg: QuantConfig) -> torch.Tensor:
    enc = WeightEncoding.int_n(cfg.bits)
    top = float(torch.abs(w).max()) if w.numel() else 0.0
    if top == 0.0:
        return torch.zeros_like(w)
    target = top / enc.max_level
    e = math.floor(math.log2(target)) - (cfg.mantissa_bits - 1)
    m = math.ceil(target / 2.0**e)
    s = Scale.normalised(m, e).value
    return _round_half_away(w / s) * s


def quantize_tensor(
    w: torch.Tensor,
    cfg: QuantConfig,
    *,
    fan_in: int,
    fan_out: int,
    stochastic: bool | None = None,
    generator: torch.Generator | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Quantized real values (float64, no gradient) of matrix ``w`` under ``cfg``.

    ``stochastic`` overrides ``cfg.stochastic`` (False: the deterministic rule, used at
    evaluation and by `hwgen.freeze`). ``fan_in`` / ``fan_out`` set the Glorot scale exactly as
    `QuantConfig.quantize` does; ``scale`` (binary / ternary) replaces it, as in
    `QuantConfig.quantize`.
    """
    w = w.detach().to(torch.float64)
    stoch = cfg.stochastic if stochastic is None else stochastic
    k = cfg.kind
    if k is EncodingKind.BINARY:
        s = _glorot_scale(cfg, fan_in, fan_out, scale)
        if stoch:
            p = torch.clamp((w / s + 1.0) / 2.0, 0.0, 1.0)
            return torch.where(_rand(w.shape, generator) < p, s, -s)
        return torch.where(w >= 0, s, -s)
    if k is EncodingKind.TERNARY:
        s = _glorot_scale(cfg, fan_in, fan_out, scale)
        if stoch:
            p = torch.clamp(torch.abs(w) / s, 0.0, 1.0)
            return torch.where(_rand(w.shape, generator) < p, torch.sign(w) * s, 0.0)
        return torch.where(w > s / 2, s, torch.where(w <= -s / 2, -s, 0.0))
    if k is EncodingKind.POW2:
        enc = WeightEncoding.pow2(cfg.int_bits, cfg.frac_bits)
        v = torch.clamp(w, -(2.0**cfg.int_bits), 2.0**cfg.int_bits)
        lv = torch.clamp(_round_half_away(v * 2.0**cfg.frac_bits), -enc.max_level, enc.max_level)
        return lv * 2.0**-cfg.frac_bits
    if k is EncodingKind.EXP:
        return _exp_values(w, cfg, stoch, generator)
    return _int_values(w, cfg)


def shadow_limit(cfg: QuantConfig | None, fan_in: int, fan_out: int,
                 scale: float | None = None) -> float | None:
    """Where the float shadow weights are clipped after each update (BinaryConnect practice): at
    the scale W0 (the Glorot bound, or the given learned ``scale``) for binary / ternary (beyond
    it the quantizer no longer changes), at 2**int_bits for pow2; None (no clipping)
    otherwise."""
    if cfg is None:
        return None
    if cfg.kind in (EncodingKind.BINARY, EncodingKind.TERNARY):
        return _glorot_scale(cfg, fan_in, fan_out, scale)
    if cfg.kind is EncodingKind.POW2:
        return 2.0**cfg.int_bits
    return None


def fake_frac(x: torch.Tensor, frac: int) -> torch.Tensor:
    """Round to ``frac`` fraction bits, half up (as `hwgen.freeze.to_fixed`), in float64, with
    STE."""
    q = torch.floor(x.detach().to(torch.float64) * 2.0**frac + 0.5) * 2.0**-frac
    return ste(x, q)


def fake_fixed(x: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Round half up to ``fmt`` and saturate (as `FixedFormat.quantize`), with STE.

    Evaluated in the tensor's own dtype: this is the training surrogate of the state and input
    formats, not a bit-exact model (that is `hwgen.golden`)."""
    s = 2.0**fmt.frac
    q = torch.clamp(torch.floor(x.detach() * s + 0.5), fmt.min_code, fmt.max_code) / s
    return x + (q - x.detach())
