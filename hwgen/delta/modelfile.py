"""The ``delta`` section of a model file (docs/model-file.md): hooks for `hwgen.modelfile` and
``hwgen inspect``. The section is written only for a model with thresholds, so a dense model's
file is byte for byte what it was before delta networks existed."""

from __future__ import annotations

from dataclasses import replace

from ..spec import HwgenError, Model
from .golden import delta_widths
from .thresholds import DeltaThresholds

__all__ = ["header_section", "attach_section", "describe", "to_json"]


def header_section(model: Model) -> dict:
    """The header entries for ``model``: ``{"delta": {...}}`` or nothing."""
    d = getattr(model, "delta", None)
    return {} if d is None else {"delta": d.to_json()}


def attach_section(section, model: Model) -> Model:
    """``model`` with the header's ``delta`` section (None: absent), validated: integers, one per
    layer, each within its format's range. Raises `HwgenError` naming the entry."""
    if section is None:
        return model
    th = DeltaThresholds.from_json(section)
    th.check(model)
    return replace(model, delta=th)


def to_json(model: Model) -> dict | None:
    """``inspect --json``'s delta entry: thresholds and register widths (None for dense)."""
    d = getattr(model, "delta", None)
    if d is None:
        return None
    return {**d.to_json(),
            "widths": [w.__dict__ for w in delta_widths(model)]}


def describe(model: Model) -> str | None:
    """``inspect``'s delta line (None for a dense model)."""
    d = getattr(model, "delta", None)
    if d is None:
        return None
    if not isinstance(d, DeltaThresholds):
        raise HwgenError(f"model.delta must be DeltaThresholds, not {d!r}")
    w = delta_widths(model)[0]
    return (f"delta network: {d.describe()}; delta memories M_x / M_h {w.mx_width} / "
            f"{w.mh_width} bits (the dense accumulators' widths, no overflow)")
