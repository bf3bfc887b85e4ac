"""Weight quantizers of Ott et al. (arXiv:1608.06902), NumPy only, plus the int-N baseline.

Every quantizer returns a `QuantMatrix`: integer codes in a `WeightEncoding` and a `Scale`, such
that
``codes -> levels -> levels * scale`` reproduces the quantized values exactly. ../shared/PAPER.md
and
docs/numerics.md give the rules; the edges below are the paper's, and are tested at their exact
values.

Stochastic quantizers take ``rng`` (a `numpy.random.Generator` or an integer seed): the same seed
gives the same draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spec import (
    EncodingKind,
    HwgenError,
    QuantMatrix,
    Scale,
    WeightEncoding,
    did_you_mean,
    round_half_away,
)

__all__ = [
    "glorot_bound",
    "fit_ternary_scale",
    "quantize_binary",
    "quantize_ternary",
    "quantize_pow2",
    "quantize_exp",
    "quantize_int",
    "QuantConfig",
    "QUANT_NAMES",
]


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """sqrt(6 / (fan_in + fan_out)): the reference code's per-matrix ternary / binary scale W0."""
    return math.sqrt(6.0 / (fan_in + fan_out))


def fit_ternary_scale(w, *, iterations: int = 30) -> float:
    """The ternary scale s that fits ``w`` best under the rule of `quantize_ternary` (values
    {-s, 0, +s}, threshold s/2): the fixed point of s = mean(|w| where |w| > s/2) (Lloyd's
    iteration for three symmetric levels, started at max |w|), which lowers the squared
    quantization error at every step. A warm start from float weights sets learned scales with
    it. Returns a positive float (1.0 for an all-zero matrix)."""
    a = np.abs(_weights(w)).ravel()
    s = float(a.max()) if a.size else 0.0
    if s == 0.0:
        return 1.0
    for _ in range(iterations):
        kept = a[a > s / 2]
        new = float(kept.mean())
        if new == s:
            break
        s = new
    return s


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        if rng is None:
            raise HwgenError("a stochastic quantizer needs rng (a numpy Generator or a seed)")
        return np.random.default_rng(int(rng))
    raise HwgenError(f"rng must be a numpy Generator or an integer seed, not {rng!r}")


def _weights(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise HwgenError("weights contain NaN or infinity")
    return w


def _scale(scale, w: np.ndarray, mantissa_bits: int) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale is None:
        if w.ndim != 2:
            raise HwgenError("the default (Glorot) scale needs a 2-D matrix; pass scale=")
        scale = glorot_bound(w.shape[1], w.shape[0])
    return Scale.from_float(scale, mantissa_bits)


def _matrix(levels: np.ndarray, encoding: WeightEncoding, scale: Scale) -> QuantMatrix:
    return QuantMatrix(encoding.encode(levels), encoding, scale)


def quantize_binary(w, *, stochastic=False, rng=None, scale=None, mantissa_bits=8) -> QuantMatrix:
    """BinaryConnect: values +-W0.

    Deterministic: +W0 if w >= 0 else -W0. Stochastic: +W0 with probability
    hard_sigmoid(w / W0) = clip((w / W0 + 1) / 2, 0, 1). W0 defaults to the Glorot bound.
    """
    w = _weights(w)
    s = _scale(scale, w, mantissa_bits)
    if stochastic:
        p = np.clip((w / s.value + 1.0) / 2.0, 0.0, 1.0)
        levels = np.where(_rng(rng).random(w.shape) < p, 1, -1)
    else:
        levels = np.where(w >= 0, 1, -1)
    return _matrix(levels, WeightEncoding.binary(), s)


def quantize_ternary(w, *, stochastic=False, rng=None, scale=None, mantissa_bits=8) -> QuantMatrix:
    """TernaryConnect: values in {-W0, 0, +W0}.

    Deterministic (the paper's edges, scaled by W0): +W0 if w > W0/2, -W0 if w <= -W0/2, else 0.
    Stochastic: sign(w) * W0 with probability clip(|w| / W0, 0, 1), else 0 (unbiased for |w| <= W0).
    W0 defaults to the Glorot bound sqrt(6 / (fan_in + fan_out)) rounded to ``mantissa_bits``
    significant bits (1 gives a power of two: a pure shift in hardware).
    """
    w = _weights(w)
    s = _scale(scale, w, mantissa_bits)
    w0 = s.value
    if stochastic:
        p = np.clip(np.abs(w) / w0, 0.0, 1.0)
        levels = np.where(_rng(rng).random(w.shape) < p, np.sign(w), 0)
    else:
        levels = np.where(w > w0 / 2, 1, np.where(w <= -w0 / 2, -1, 0))
    return _matrix(levels.astype(np.int64), WeightEncoding.ternary(), s)


def quantize_pow2(w, *, int_bits: int = 0, frac_bits: int = 1) -> QuantMatrix:
    """Fixed-point "dual-copy rounding": clip w to [-2**int_bits, 2**int_bits], then
    round(2**frac_bits * w) * 2**-frac_bits (half away from zero), saturating at
    +-(2**(int_bits + frac_bits) - 1) * 2**-frac_bits as the reference code does.

    The default (0, 1) gives {-0.5, 0, +0.5}: ternary with a power-of-two scale.
    """
    w = _weights(w)
    enc = WeightEncoding.pow2(int_bits, frac_bits)
    v = np.clip(w, -(2.0**int_bits), 2.0**int_bits)
    levels = round_half_away(v * 2.0**frac_bits)
    levels = np.clip(levels, -enc.max_level, enc.max_level).astype(np.int64)
    return _matrix(levels, enc, Scale.normalised(1, -frac_bits))


def quantize_exp(
    w, *, exponents: int = 7, max_exponent: int | None = None, stochastic=False, rng=None
) -> QuantMatrix:
    """Exponential quantization: values sign(w) * 2**k with k in [max_exponent - exponents + 1,
    max_exponent], or zero.

    In range, |w| in [2**k, 2**(k+1)) rounds up to 2**(k+1) iff |w| > 1.5 * 2**k (deterministic) or
    with probability |w| / 2**k - 1 (stochastic, unbiased). Above the range |w| saturates to
    2**max_exponent. Below it (|w| < 2**k_min) the two neighbours are 0 and 2**k_min: deterministic
    rounding goes up iff |w| > 2**(k_min - 1), stochastic with probability |w| / 2**k_min. So an
    exact
    zero (and every tiny weight) flushes to a zero code: the hardware skips it. The paper's
    reference
    code instead maps 0 to -2**-22 and never produces a zero.

    ``max_exponent`` defaults to the exponent that max |w| rounds to deterministically.
    Levels are +-2**(k - k_min) with scale 2**k_min.
    """
    w = _weights(w)
    enc = WeightEncoding.exp(exponents)
    a = np.abs(w)
    if max_exponent is None:
        top = float(a.max()) if a.size else 0.0
        if top == 0.0:
            max_exponent = exponents - 1
        else:
            _, e = math.frexp(top)
            k = e - 1
            max_exponent = k + 1 if top > 1.5 * 2.0**k else k
    kmax = int(max_exponent)
    kmin = kmax - exponents + 1
    g = _rng(rng) if stochastic else None
    # Floor of log2 |w|, exactly, from the float's own exponent (frexp: |w| = f * 2**e, f in [.5,
    # 1)).
    _, e = np.frexp(a)
    k = e.astype(np.int64) - 1
    low, high = np.ldexp(1.0, kmin), np.ldexp(1.0, kmax)
    if stochastic:
        u = g.random(a.shape)
        up = u < a / np.ldexp(1.0, k) - 1.0  # in range: p = |w| / 2**k - 1
        below_up = u < a / low  # below range: p = |w| / 2**k_min
    else:
        up = a > 1.5 * np.ldexp(1.0, k)
        below_up = a > low / 2
    mag_exp = np.full(a.shape, -1, dtype=np.int64)  # -1 means zero, else k - k_min
    in_range = (a >= low) & (a < high)
    mag_exp = np.where(in_range, k - kmin + up.astype(np.int64), mag_exp)
    mag_exp = np.where(a >= high, kmax - kmin, mag_exp)
    mag_exp = np.where((a < low) & (a > 0) & below_up, 0, mag_exp)
    mag = np.where(mag_exp < 0, 0, np.left_shift(1, np.maximum(mag_exp, 0)))
    levels = np.where(w < 0, -mag, mag).astype(np.int64)
    return _matrix(levels, enc, Scale.normalised(1, kmin))


def quantize_int(w, *, bits: int = 8, mantissa_bits: int = 8) -> QuantMatrix:
    """Symmetric signed int-N: levels round(w / s) (half away from zero) in [-(2**(N-1)-1), ...],
    with s = max|w| / (2**(N-1) - 1) rounded *up* to ``mantissa_bits`` significant bits (so no
    weight saturates)."""
    w = _weights(w)
    enc = WeightEncoding.int_n(bits)
    top = float(np.abs(w).max()) if w.size else 0.0
    if top == 0.0:
        return _matrix(np.zeros(w.shape, np.int64), enc, Scale(1, 0))
    target = top / enc.max_level
    e = math.floor(math.log2(target)) - (mantissa_bits - 1)
    m = math.ceil(target / 2.0**e)
    s = Scale.normalised(m, e)
    levels = round_half_away(w / s.value)
    if np.any(np.abs(levels) > enc.max_level):  # cannot happen: s >= max|w| / max_level
        raise AssertionError("int quantizer scale too small")
    return _matrix(levels.astype(np.int64), enc, s)


QUANT_NAMES = ("binary", "ternary", "pow2", "exp", "int8")


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize every weight matrix of a model (one configuration for all of them).

    ``kind`` is an `EncodingKind`; ``bits`` applies to INT, ``exponents`` to EXP, ``int_bits`` /
    ``frac_bits`` to POW2, ``mantissa_bits`` to the scales of BINARY / TERNARY / INT.
    """

    kind: EncodingKind
    stochastic: bool = False
    bits: int = 8
    exponents: int = 7
    int_bits: int = 0
    frac_bits: int = 1
    mantissa_bits: int = 8

    def __post_init__(self):
        if self.stochastic and self.kind in (EncodingKind.POW2, EncodingKind.INT):
            raise HwgenError(f"{self.kind.value} quantization is deterministic only")

    @classmethod
    def parse_optional(cls, name: str | None) -> QuantConfig | None:
        """`parse` (deterministic), or None for None (an option not given)."""
        return None if name is None else cls.parse(name)

    @classmethod
    def parse(cls, name: str, stochastic: bool = False) -> QuantConfig:
        """From a command-line name: binary, ternary, pow2, exp, exp<N> (N exponents), int<N>."""
        n = name.strip().lower()
        if n in ("binary", "ternary", "pow2", "exp"):
            return cls(EncodingKind(n), stochastic)
        if n.startswith("exp") and n[3:].isdigit():
            return cls(EncodingKind.EXP, stochastic, exponents=int(n[3:]))
        if n.startswith("int") and n[3:].isdigit():
            return cls(EncodingKind.INT, stochastic, bits=int(n[3:]))
        raise HwgenError(
            f"unknown quantization {name!r}; expected binary, ternary, pow2, exp, expN or intN"
            + did_you_mean(n, ("binary", "ternary", "pow2", "exp", "int8", "int4", "exp4"))
        )

    @property
    def name(self) -> str:
        if self.kind is EncodingKind.INT:
            return f"int{self.bits}"
        if self.kind is EncodingKind.EXP and self.exponents != 7:
            return f"exp{self.exponents}"
        return self.kind.value

    def quantize(self, w, *, fan_in: int, fan_out: int, rng=None,
                 scale: float | None = None) -> QuantMatrix:
        """Quantize matrix ``w``; ``fan_in`` / ``fan_out`` set the Glorot scale (one gate's
        matrix). ``scale`` (binary / ternary only) replaces the Glorot bound with a given W0 (a
        learned scale), rounded to ``mantissa_bits`` significant bits like the Glorot one."""
        k = self.kind
        if scale is not None and k not in (EncodingKind.BINARY, EncodingKind.TERNARY):
            raise HwgenError(f"a given weight scale is for binary or ternary weights, not "
                             f"{self.name} (whose scale follows from the weights)")
        if k is EncodingKind.BINARY or k is EncodingKind.TERNARY:
            fn = quantize_binary if k is EncodingKind.BINARY else quantize_ternary
            return fn(
                w,
                stochastic=self.stochastic,
                rng=rng,
                scale=glorot_bound(fan_in, fan_out) if scale is None else float(scale),
                mantissa_bits=self.mantissa_bits,
            )
        if k is EncodingKind.POW2:
            return quantize_pow2(w, int_bits=self.int_bits, frac_bits=self.frac_bits)
        if k is EncodingKind.EXP:
            return quantize_exp(w, exponents=self.exponents, stochastic=self.stochastic, rng=rng)
        return quantize_int(w, bits=self.bits, mantissa_bits=self.mantissa_bits)
