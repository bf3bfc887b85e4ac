"""The ``hwgen`` command line. Subcommands mirror the pipeline; each lives in
hwgen/commands/<name>.py
with ``register(subparsers)`` (adds its parser, sets ``func``) and only calls library functions.

Bad arguments and bad files end with a one-line ``hwgen: error: ...`` and exit status 2 (argparse
usage errors) or 1 (everything else); never a traceback for a `HwgenError`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .spec import HwgenError

__all__ = ["main", "COMMANDS"]

# Pipeline order; each name is a module under hwgen.commands.
COMMANDS = (
    "random_model", "inspect", "golden", "train", "import_", "eval", "demo",
    "estimate", "generate", "sim", "synth", "build", "run",
)
COMMANDS += ("explore",)  # issue 14: design-space exploration (hwgen/commands/explore.py)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwgen",
        description="Low-precision RNN / GRU / LSTM models to verified Verilog accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"hwgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"hwgen.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HwgenError as e:
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
