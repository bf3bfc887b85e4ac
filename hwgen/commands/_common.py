"""Helpers shared by the subcommands: argument types and loading files with clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..spec import HwgenError

__all__ = ["positive_int", "nonnegative_int", "load_npy"]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {v}")
    return v


def nonnegative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {v}")
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
