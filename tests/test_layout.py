"""The package's shape: no function in hwgen/ over `MAX_LINES` lines, except the ones listed
(literal tables, and functions whose split belongs to another piece of work), so that a new one
is split when it is written."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "hwgen"

#: Longest function body (def line to last line), as issue 24 asks.
MAX_LINES = 80

#: (file, function) allowed longer, with why. Remove an entry once it is split.
KNOWN_LONG = {(path, name) for path, name, _why in (
    ("formal/interface.py", "interface_properties", "a literal list of properties"),
    ("train/qrnn.py", "__init__", "issue 23's module"),
    ("gateware/delta_core.py", "elaborate", "the first delta core, issue 23 (docs/delta.md: the "
     "faster design replaces it)"),
    ("gateware/delta_encoder.py", "elaborate", "the first delta core, issue 23"),
    ("netlist.py", "retime_ice40_read_registers", "issue 22's module"),
    ("uart/receiver.py", "elaborate", "the link gateware, issue 22"),
    ("uart/executor.py", "elaborate", "the link gateware, issue 22"),
    ("uart/replier.py", "elaborate", "the link gateware, issue 22"),
    ("uart/engine.py", "elaborate", "the link gateware, issue 22"),
    ("freeze.py", "freeze", "not split yet"),
)}


def long_functions(root: Path = ROOT, limit: int = MAX_LINES) -> dict[tuple[str, str], int]:
    """(file relative to hwgen/, function name) -> lines, for every function over ``limit``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out[(path.relative_to(root).as_posix(), node.name)] = n
    return out


def test_no_new_long_function():
    new = {k: n for k, n in long_functions().items() if k not in KNOWN_LONG}
    assert not new, f"split these functions (over {MAX_LINES} lines): {new}"


def test_the_counter_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def f():\n{body}\n\ndef g():\n    return 1\n")
    assert long_functions(tmp_path) == {("m.py", "f"): MAX_LINES + 1}


def test_every_listed_long_function_is_still_long():
    """An entry of `KNOWN_LONG` goes once its function is split."""
    longs = long_functions()
    assert not [k for k in KNOWN_LONG if k not in longs]
