"""Inputs of a model, from what a user holds to the integer codes the hardware takes.

A vector model takes real-valued features ``(batch, time, features)``. Before they are quantized
by the model's input format (`hwgen.spec.FixedFormat.quantize`: round half up, saturate), they are
*normalized* with the model's stored input normalization when it has one: a model trained on a
dataset whose features were standardized (``vowels``) keeps that dataset's per-feature ``mean`` and
``std`` in ``meta["input_norm"]``, and raw features become ``float32((x - mean) / std)``, exactly
the values it was trained on. Pass ``normalize=False`` (CLI: ``--no-normalize``) for features that
are already normalized. A token model takes integer token ids ``(batch, time)``.

Integer codes (already quantized) go straight to `hwgen.golden.check_inputs`.
"""

from __future__ import annotations

import math

import numpy as np

from .golden import check_inputs
from .spec import HwgenError, Model, TokenInput

__all__ = ["input_norm", "normalize_features", "features_to_codes", "QuantizedInputs"]


def input_norm(model: Model) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's stored input normalization (mean, std), float64 (features,) each; None when it
    has none. Raises `HwgenError` for a malformed ``meta["input_norm"]``."""
    norm = model.meta.get("input_norm")
    if not norm:
        return None
    if isinstance(model.input, TokenInput):
        raise HwgenError("meta 'input_norm': a token model takes ids, it has no normalization")
    F = model.input.features
    out = []
    for key in ("mean", "std"):
        v = norm.get(key) if isinstance(norm, dict) else None
        ok = (isinstance(v, list) and len(v) == F
              and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                      and math.isfinite(x) for x in v))
        if not ok:
            raise HwgenError(
                f"meta 'input_norm.{key}' must be {F} finite numbers (one per feature), not {v!r}"
            )
        out.append(np.asarray(v, np.float64))
    if np.any(out[1] <= 0):
        raise HwgenError("meta 'input_norm.std' must be positive for every feature")
    return out[0], out[1]


def normalize_features(x, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``float32((x - mean) / std)`` over the last axis (the datasets' own normalization)."""
    return ((np.asarray(x, np.float64) - mean) / std).astype(np.float32)


class QuantizedInputs:
    """Codes ready for the golden model or the hardware, with what happened on the way:
    ``saturated`` (values clipped to the input format) and ``normalized`` (the model's stored
    normalization was applied)."""

    def __init__(self, codes: np.ndarray, saturated: int, normalized: bool):
        self.codes = codes
        self.saturated = saturated
        self.normalized = normalized

    def __repr__(self) -> str:  # issue 25: the shape, not every code
        c = np.asarray(self.codes)
        return (f"QuantizedInputs(codes {c.dtype} {tuple(c.shape)}, saturated {self.saturated}, "
                f"normalized {self.normalized})")

    def warning(self, model: Model, what: str = "inputs") -> str | None:
        """A one-line warning about saturated values, or None."""
        if not self.saturated:
            return None
        fmt = model.formats.input
        return (f"{what}: {self.saturated} input values lie outside the input format "
                f"{fmt.describe()} range [{fmt.min_code * fmt.lsb:g}, {fmt.max_code * fmt.lsb:g}]"
                " and were saturated")


def features_to_codes(model: Model, x, *, normalize: bool = True,
                      what: str = "inputs") -> QuantizedInputs:
    """What a model takes, from a user's array.

    Vector models: real features (batch, time, features), any real dtype, finite; normalized by the
    model's stored normalization unless ``normalize=False``, then quantized by its input format.
    Token models: integer ids (batch, time) in [0, vocab). Raises `HwgenError` (naming ``what``)
    for a wrong shape, dtype or value.
    """
    a = np.asarray(x)
    if isinstance(model.input, TokenInput):
        try:
            return QuantizedInputs(check_inputs(model, a), 0, False)
        except HwgenError as e:
            raise HwgenError(f"{what}: {e}") from None
    F = model.input.features
    if a.ndim != 3 or a.shape[2] != F:
        raise HwgenError(f"{what}: has shape {a.shape}; this model needs (batch, time, {F})")
    if a.size and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise HwgenError(f"{what}: features must be real numbers, not {a.dtype}")
    if a.size and not np.all(np.isfinite(a)):
        raise HwgenError(f"{what}: features contain NaN or infinity")
    norm = input_norm(model) if normalize else None
    if norm is not None:
        a = normalize_features(a, *norm)
    codes, saturated = model.formats.input.quantize(a)
    return QuantizedInputs(codes, saturated, norm is not None)
