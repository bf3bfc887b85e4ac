"""Activation tables: the exact sigmoid and tanh of the hardware, computed once at freeze time.

A table is stored in the model file (it is part of the arithmetic contract); these functions only
build the default ones. Entry ``i`` of a table with input width W holds f(x) for the pre-activation
code t = i - 2**(W-1), x = t * 2**-gate_frac, rounded half up to the output format.
"""

from __future__ import annotations

import numpy as np

from .spec import Formats, round_half_up

__all__ = ["table_inputs", "sigmoid_table", "tanh_table"]


def table_inputs(width: int, frac: int) -> np.ndarray:
    """Real pre-activation of every entry of a table with ``width`` index bits."""
    half = 1 << (width - 1)
    return np.arange(-half, half, dtype=np.float64) * 2.0**-frac


def sigmoid_table(formats: Formats) -> np.ndarray:
    """Unsigned codes 0 .. 2**sigmoid_frac (2**sigmoid_frac is exactly 1.0)."""
    x = table_inputs(formats.sigmoid_in_width, formats.gate_frac)
    one = formats.sigmoid_one
    y = round_half_up(one / (1.0 + np.exp(-x)))
    return np.clip(y, 0, one).astype(np.int64)


def tanh_table(formats: Formats) -> np.ndarray:
    """State-format codes, symmetric: within +-(2**frac - 1)."""
    x = table_inputs(formats.tanh_in_width, formats.gate_frac)
    top = formats.state.max_code
    y = round_half_up(np.tanh(x) * 2.0**formats.state.frac)
    return np.clip(y, -top, top).astype(np.int64)
