"""Delta-network thresholds: what a model file's optional ``delta`` section holds (issue 23).

One pair per layer, integer codes of the formats the compared values have:

- ``theta_x[l]``: layer l's input columns. Layer 0: codes of the input format (``formats.input``,
  also for a token model's embedding entries); layer l > 0: codes of the state format (its input
  is layer l-1's hidden state).
- ``theta_h[l]``: layer l's recurrent columns, state-format codes.

A column j is processed at a timestep when its value differs from the last processed value by at
least theta (|v_j - v_hat_j| >= theta), otherwise skipped (`hwgen.delta.golden`). Since the codes
are integers, theta 0 and theta 1 both process exactly the columns that changed: the dense
network's outputs, bit for bit. The largest meaningful theta is the largest possible change of a
code, ``max_code - min_code`` of its format; anything above it is refused.

Header layout (JSON): ``"delta": {"theta_x": [int per layer], "theta_h": [int per layer]}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import FixedFormat, Formats, HwgenError, Model

__all__ = ["DeltaThresholds", "max_threshold", "threshold_formats"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def max_threshold(fmt: FixedFormat) -> int:
    """The largest threshold for values of format ``fmt``: the largest change of one code."""
    return fmt.max_code - fmt.min_code


def threshold_formats(model: Model, layer: int) -> tuple[FixedFormat, FixedFormat]:
    """The formats of layer ``layer``'s (input, recurrent) columns, the units of its thresholds."""
    return model.layer_input_format(layer), model.formats.state


@dataclass(frozen=True)
class DeltaThresholds:
    """Per-layer delta thresholds (module docstring). Integers >= 0, one of each per layer."""

    theta_x: tuple[int, ...]
    theta_h: tuple[int, ...]

    def __post_init__(self):
        for name in ("theta_x", "theta_h"):
            v = getattr(self, name)
            if not isinstance(v, (tuple, list)) or not v:
                raise HwgenError(f"delta {name} must be a non-empty list of integers (one per "
                                 f"layer), not {v!r}")
            for i, t in enumerate(v):
                if not _is_int(t) or t < 0:
                    raise HwgenError(f"delta {name}[{i}] must be a non-negative integer code, "
                                     f"not {t!r}")
            object.__setattr__(self, name, tuple(v))
        if len(self.theta_x) != len(self.theta_h):
            raise HwgenError(f"delta theta_x has {len(self.theta_x)} entries and theta_h "
                             f"{len(self.theta_h)}; give one of each per layer")

    @property
    def layers(self) -> int:
        return len(self.theta_x)

    @classmethod
    def uniform(cls, theta_x: int, theta_h: int, layers: int) -> DeltaThresholds:
        """``theta_x`` for layer 0's inputs; ``theta_h`` for every state column, including the
        inputs of layers > 0 (those are states: the same values, the same units)."""
        return cls((theta_x,) + (theta_h,) * (layers - 1), (theta_h,) * layers)

    @classmethod
    def parse(cls, text: str, layers: int) -> DeltaThresholds:
        """``"THX,THH"`` (the ``--delta`` option) -> `uniform` thresholds for ``layers``."""
        parts = str(text).split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            tx, th = (int(p.strip()) for p in parts)
        except ValueError:
            raise HwgenError(f"--delta takes two integer codes THX,THH (e.g. 8,4), not "
                             f"{text!r}") from None
        return cls.uniform(tx, th, layers)

    def check(self, model: Model) -> None:
        """Raise `HwgenError` unless these thresholds fit ``model``: one pair per layer, each
        within [0, `max_threshold`] of its format."""
        self.check_formats(model.formats, model.num_layers)

    def check_formats(self, formats: Formats, layers: int) -> None:
        """`check` for a model of ``layers`` layers with these ``formats`` (before it exists)."""
        if self.layers != layers:
            raise HwgenError(f"delta thresholds are given for {self.layers} layers; the model "
                             f"has {layers}")
        for i in range(self.layers):
            fx = formats.input if i == 0 else formats.state
            for name, fmt in zip(("theta_x", "theta_h"), (fx, formats.state), strict=True):
                t, top = getattr(self, name)[i], max_threshold(fmt)
                if t > top:
                    raise HwgenError(
                        f"delta {name}[{i}] is {t}; a {fmt.describe()} code changes by at most "
                        f"{top}, so the threshold must lie in [0, {top}]"
                    )

    def to_json(self) -> dict:
        return {"theta_x": list(self.theta_x), "theta_h": list(self.theta_h)}

    @classmethod
    def from_json(cls, d) -> DeltaThresholds:
        if not isinstance(d, dict):
            raise HwgenError(f"must be an object with theta_x and theta_h, not {d!r}")
        extra = sorted(set(d) - {"theta_x", "theta_h"})
        if extra:
            raise HwgenError(f"unknown key {extra[0]!r}; expected theta_x and theta_h")
        for key in ("theta_x", "theta_h"):
            if key not in d:
                raise HwgenError(f"{key!r} is missing")
            if not isinstance(d[key], list):
                raise HwgenError(f"{key!r} must be a list of integers, not {d[key]!r}")
        return cls(tuple(d["theta_x"]), tuple(d["theta_h"]))

    def describe(self) -> str:
        if len(set(self.theta_x[1:]) | set(self.theta_h)) == 1 and (
                self.layers == 1 or self.theta_x[1] == self.theta_h[0]):
            return f"theta_x {self.theta_x[0]}, theta_h {self.theta_h[0]} (codes)"
        return ", ".join(f"layer {i}: theta_x {x}, theta_h {h}"
                         for i, (x, h) in enumerate(zip(self.theta_x, self.theta_h, strict=True)))
