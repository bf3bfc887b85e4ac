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
    "add_sparsity", "load_npy", "command", "add_options", "OPTIONS",
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


@_arg
def row_scale_bits(text: str) -> int:
    """The bits of ``--row-scales`` (per-row scales, issue 26): an integer 1..16."""
    return check_int("row-scale bits", _int(text, "an integer 1..16"), minimum=1, maximum=16)


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


def _below_one(what: str, text: str) -> float:
    v = check_finite(what, _float(text), minimum=0.0)
    if v >= 1.0:
        raise HwgenError(f"expected {what} in [0, 1), not {v:g}")
    return v


@_arg
def probability(text: str) -> float:
    """A probability p in [0, 1)."""
    return _below_one("a probability", text)


@_arg
def fraction_below_one(text: str) -> float:
    """A fraction f in [0, 1) (of a run, of a budget)."""
    return _below_one("a fraction", text)


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


# -- the options several commands share, declared once ---------------------------------------------
def _boards() -> tuple[str, ...]:
    from ..board.catalog import BOARDS

    return tuple(BOARDS)


def _targets() -> tuple[str, ...]:
    from ..targets import target_names

    return target_names()


def _quant_help() -> str:
    return "binary, ternary, pow2, exp, expN (N exponents) or intN, e.g. int8"


#: name -> (flags, keyword arguments of ``add_argument``); a callable value is called when the
#: option is added (choices that need imports). `add_options` adds them by name, with overrides.
OPTIONS: dict[str, tuple[tuple[str, ...], dict]] = {
    "model": (("model",), dict(metavar="MODEL", help="model file (.hwgm)")),
    "rtl_dir": (("rtl_dir",), dict(metavar="RTL_DIR", help="folder written by 'hwgen generate'")),
    "inputs": (("--inputs",), dict(required=True, metavar="X.npy",
                                   help="real features (batch, time, features), normalized and "
                                   "quantized like the model's inputs, or token ids (batch, "
                                   "time)")),
    "no_normalize": (("--no-normalize",), dict(
        action="store_true", help="the features are already normalized: do not apply the "
        "model's stored input normalization (docs/api.md)")),
    "dataset": (("--dataset",), dict(required=True, metavar="NAME|PATH",
                                     help="digits, vowels, ptb, or an .npz / text file "
                                     "(docs/training.md)")),
    "split": (("--split",), dict(choices=("train", "valid", "test"), default="test",
                                 help="(default: %(default)s)")),
    "output": (("-o", "--output"), dict(required=True, metavar="OUT", help="output file")),
    "seed": (("--seed",), dict(type=nonnegative_int, default=0, metavar="S",
                               help="(default: %(default)s)")),
    "quiet": (("-q", "--quiet"), dict(action="store_true", help="no progress lines")),
    "lanes": (("--lanes",), dict(type=positive_int, metavar="P", help="multiply-accumulate "
                                 "lanes (default: the most of 16, 8, 4, 2, 1 that fit)")),
    "board": (("--board",), dict(choices=_boards, metavar="BOARD", help=lambda: "board: "
                                 + ", ".join(_boards()))),
    "target": (("--target",), dict(choices=_targets, metavar="T", help=lambda: "device: "
                                   + ", ".join(_targets()))),
    "sparse": (("--sparse",), dict(choices=lambda: __import__(
        "hwgen.gateware.packing", fromlist=["SPARSE_MODES"]).SPARSE_MODES, default="auto",
                                   help="zero skipping: on builds the sparse core (2:4 sparse "
                                   "matrices, e.g. trained with --sparsity 2:4, take half the "
                                   "cycles; needs an even lane count), off the dense one, auto "
                                   "the sparse core when it is faster (default: %(default)s)")),
    "port": (("--port",), dict(required=True, metavar="DEVICE",
                               help="serial device of the board (e.g. /dev/ttyUSB1)")),
    "baud": (("--baud",), dict(type=positive_int, default=None, metavar="B",
                               help="baud rate (default: the build folder's, else 3000000, what "
                               "'hwgen build' uses on the iCEBreaker and ULX3S)")),
    "timeout": (("--timeout",), dict(type=positive_float, default=2.0, metavar="S",
                                     help="seconds to wait for each reply, at most 3600 "
                                     "(default: %(default)s)")),
    "cell": (("--cell",), dict(choices=("rnn", "gru", "lstm"), default="gru",
                               help="(default: %(default)s)")),
    "quant": (("--quant",), dict(default="ternary", metavar="Q",
                                 help=lambda: _quant_help() + " (default: %(default)s)")),
    "input_quant": (("--input-quant",), dict(
        metavar="Q", help="layer 0's input matrix: another quantizer than --quant (e.g. int8; "
        "the hardware adds a MAC unit of that encoding) (default: --quant)")),
    "head_quant": (("--head-quant",), dict(
        metavar="Q", help="the head matrix: another quantizer than --quant (default: --quant)")),
    "bits": (("--bits",), dict(type=positive_int, default=8, metavar="N",
                               help="fixed-point formats: Formats.standard(N), 3..14 (default: "
                               "%(default)s)")),
    "stochastic": (("--stochastic",), dict(
        action="store_true", help="stochastic binary / ternary / exp quantizer (default: "
        "deterministic)")),
}


def add_options(p, *names: str, **overrides: dict) -> None:
    """Add the shared `OPTIONS` called ``names`` to parser (or group) ``p``; ``overrides``
    (option name -> keyword arguments) change a command's default, help or requiredness."""
    for name in names:
        flags, kw = OPTIONS[name]
        kw = {k: (v() if callable(v) and k in ("choices", "help") else v)
              for k, v in {**kw, **overrides.get(name, {})}.items()}
        if flags[0][0] != "-":
            kw.pop("required", None)  # a positional is always required
        p.add_argument(*flags, **kw)


def command(sub, name: str, summary: str, description: str, func, *names: str,
            **overrides: dict):
    """A subcommand: its parser (``summary`` in the command list, ``description`` in its
    --help), the shared options ``names`` (`add_options`, with ``overrides``), ``--json`` and
    ``func`` run with the parsed arguments. Returns the parser for the command's own options."""
    p = sub.add_parser(name, help=summary, description=description)
    add_options(p, *names, **overrides)
    add_json(p)
    p.set_defaults(func=func)
    return p
