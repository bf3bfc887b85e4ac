"""Helpers shared by the subcommands: argument types (every numeric option is checked for type,
range and finiteness by the same validators as the Python API), ``--json`` output and the
``next:`` hint."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..fileio import load_npy
from ..progress import Progress
from ..spec import LIMITS, HwgenError, Sparsity, check_finite, check_int, check_positive_int

__all__ = [
    "positive_int", "nonnegative_int", "sized", "positive_float", "probability", "sparsity",
    "add_sparsity", "load_npy",
    "add_json", "emit", "next_step", "progress_for",
]


def _arg(fn):
    """An argparse type from a validator that raises HwgenError."""

    def parse(text: str):
        try:
            return fn(text)
        except HwgenError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = fn.__name__
    return parse


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HwgenError(f"expected {what}, not {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HwgenError(f"expected a number, not {text!r}") from None


@_arg
def positive_int(text: str) -> int:
    """An integer >= 1 (at most 2**31: no option needs more)."""
    return check_positive_int("the value", _int(text, "a positive integer"), maximum=1 << 31)


@_arg
def nonnegative_int(text: str) -> int:
    return check_int("the value", _int(text, "a non-negative integer"), minimum=0,
                     maximum=(1 << 32) - 1)


def sized(limit: str):
    """A positive integer at most `hwgen.spec.LIMITS[limit]` (a model size)."""

    @_arg
    def parse(text: str) -> int:
        return check_positive_int("the value", _int(text, "a positive integer"),
                                  maximum=LIMITS[limit])

    parse.__name__ = f"sized({limit})"
    return parse


@_arg
def sparsity(text: str) -> str:
    """An N:M structured sparsity, ``"2:4"`` (`hwgen.spec.Sparsity.parse`), kept as its text."""
    return Sparsity.parse(text).describe()


def add_sparsity(p) -> None:
    """``--sparsity N:M`` and ``--sparse-head`` (train, import, random-model)."""
    p.add_argument("--sparsity", type=sparsity, metavar="N:M",
                   help="structured sparsity of the recurrent matrices: at most N non-zero "
                        "weights in every M consecutive columns of a row, e.g. 2:4 "
                        "(default: dense)")
    p.add_argument("--sparse-head", action="store_true",
                   help="with --sparsity: the head matrix N:M sparse too")


@_arg
def positive_float(text: str) -> float:
    """A finite number > 0 (refuses nan and inf)."""
    return check_finite("the value", _float(text), minimum=0.0, strict_min=True)


@_arg
def probability(text: str) -> float:
    """A probability p in [0, 1)."""
    v = check_finite("a probability", _float(text), minimum=0.0)
    if v >= 1.0:
        raise HwgenError(f"expected a probability in [0, 1), not {v:g}")
    return v


def add_json(p) -> None:
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on stdout")


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None  # JSON has no NaN / infinity
    if hasattr(v, "__fspath__"):
        return str(v)
    return v


def emit(args, data: dict, text: str | None, *, next_: list[str] | None = None) -> None:
    """The result of a command: ``data`` as JSON with ``--json`` (plus ``"next"``), else ``text``
    on stdout; then the ``next:`` lines on stderr (human output only)."""
    if getattr(args, "json", False):
        d = dict(data)
        if next_:
            d["next"] = list(next_)
        print(json.dumps(_plain(d), indent=2, allow_nan=False))
        return
    if text:
        print(text)
    for line in next_ or []:
        next_step(line)


def next_step(command: str) -> None:
    print(f"next: {command}", file=sys.stderr)


def progress_for(args) -> Progress:
    """Progress lines on stderr unless ``--quiet`` (or ``--json``, which stays machine-only)."""
    return Progress(quiet=bool(getattr(args, "quiet", False)))
