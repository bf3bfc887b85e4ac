"""The ``hwgen`` command line. Subcommands mirror the pipeline; each lives in
hwgen/commands/<name>.py with ``register(subparsers)`` (adds its parser, sets ``func``) and calls
the Python API (`hwgen.api`), so the CLI stays thin.

Bad arguments and bad files end with one line ``hwgen: error: ...`` and exit status 2 (usage
errors, with a did-you-mean suggestion for a mistyped option, command or choice) or 1 (everything
else); never a traceback for a `HwgenError` or a file-system error. Results go to stdout (one JSON
object with ``--json``); progress lines and the ``next:`` hint go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from . import __version__
from .spec import HwgenError, did_you_mean

__all__ = ["main", "COMMANDS", "HwgenParser", "build_parser"]

# Pipeline order; each name is a module under hwgen.commands.
COMMANDS = (
    "random_model", "inspect", "golden", "train", "import_", "eval", "dataset", "demo",
    "estimate", "generate", "sim", "prove", "synth", "build", "load", "run",
)
COMMANDS += ("explore",)  # issue 14: design-space exploration (hwgen/commands/explore.py)

_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")

#: Words a user types for a command (issue 25: 'simulate' suggested 'estimate').
SYNONYMS = {
    "simulate": "sim", "simulation": "sim", "cosim": "sim", "test": "sim", "verify": "sim",
    "synthesize": "synth", "synthesise": "synth", "synthesis": "synth", "pnr": "synth",
    "bitstream": "build", "flash": "build", "program": "build", "formal": "prove",
    "infer": "golden", "inference": "golden", "predict": "golden", "evaluate": "eval",
    "random": "random-model", "export": "dataset", "verilog": "generate", "rtl": "generate",
    "fit": "estimate", "info": "inspect", "show": "inspect", "fine-tune": "import",
}


def suggest_choice(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"``: a known synonym, else a choice that the word starts with (or
    that starts with the word, 'simulate' -> 'sim'), else the closest spelling."""
    w = word.lower()
    if SYNONYMS.get(w) in choices:
        return f"; did you mean {SYNONYMS[w]!r}?"
    prefix = [c for c in choices if len(c) >= 3 and len(w) >= 3
              and (w.startswith(c) or c.startswith(w))]
    if prefix:
        return f"; did you mean {max(prefix, key=len)!r}?"
    return did_you_mean(word, choices)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class HwgenParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``hwgen: error: ...``, exit status 2, with
    a did-you-mean suggestion for a mistyped choice or option."""

    argv: list[str] = []  # the command line being parsed (for suggestions)

    def option_strings(self) -> list[str]:
        return [s for s in self._option_string_actions if s.startswith("--")]

    def suggest(self, message: str) -> str:
        m = _CHOICE.search(message)
        if m:
            choices = [c.strip().strip("'") for c in m.group(2).split(",")]
            return suggest_choice(m.group(1), choices)
        # an unknown option, reported as such or as a missing required one it was meant to be
        known = self.option_strings()
        for word in HwgenParser.argv:
            word = word.split("=")[0]
            if word.startswith("--") and word not in known:
                hint = did_you_mean(word, known)
                if hint:
                    return hint
        return ""

    def error(self, message: str):
        where = self.prog.removeprefix("hwgen").strip()
        where = f"{where}: " if where else ""
        see = f" (see '{self.prog} --help')"
        print(f"hwgen: error: {where}{_one_line(message)}{self.suggest(message)}{see}",
              file=sys.stderr)
        sys.exit(2)


def build_parser() -> HwgenParser:
    parser = HwgenParser(
        prog="hwgen",
        description="Low-precision RNN / GRU / LSTM models to verified Verilog accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"hwgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hwgen.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    HwgenParser.argv = list(sys.argv[1:] if argv is None else argv)
    if not HwgenParser.argv:  # a bare 'hwgen': the commands and where to start, not an error
        parser.print_help()
        print("\nstart: hwgen demo (train, generate, simulate on digits), or hwgen random-model "
              "... then hwgen estimate; 'hwgen COMMAND --help' for a command's options")
        return 0
    try:
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "func", None) is None:  # options but no command, e.g. 'hwgen -q'
            parser.error("give a COMMAND (see the list with 'hwgen')")
        if extra:
            sub = parser._subparsers._group_actions[0].choices[args.command]
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # a usage error (2), --help or --version (0)
        return e.code if isinstance(e.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except HwgenError as e:
        print(f"hwgen: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:  # a file-system failure the command did not foresee: still one line
        name = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"hwgen: error: cannot access{name}: {_one_line(e.strerror or e)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("hwgen: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
