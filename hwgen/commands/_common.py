"""Helpers shared by the subcommands: argument types and loading files with clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..spec import HwgenError

__all__ = ["positive_int", "nonnegative_int", "positive_float", "probability", "load_npy"]


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, not {v}")
        return v

    return parse


positive_int = _int_at_least(1, "a positive integer")
nonnegative_int = _int_at_least(0, "a non-negative integer")


def positive_float(text: str) -> float:
    """A finite number > 0 (NaN and infinity refused)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}") from None
    if not (v > 0.0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, not {text}")
    return v


def probability(text: str) -> float:
    """A probability p in [0, 1)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, not {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), not {v}")
    return v


def load_npy(path) -> np.ndarray:
    """Load a .npy array without pickle; a clear HwgenError for a missing or unreadable file."""
    p = Path(path)
    if not p.is_file():
        raise HwgenError(f"{p}: no such file")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise HwgenError(f"{p}: not a readable .npy array ({e})") from None
