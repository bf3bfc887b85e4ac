"""hwgen: low-precision recurrent neural networks to verified Verilog accelerators for FPGAs.

The Python API is `hwgen.api` (``from hwgen import api``; docs/api.md); the command line is
``hwgen`` (`hwgen.cli`).
"""

__version__ = "0.1.0"

from . import api  # noqa: E402
from .spec import HwgenError, Model  # noqa: E402

__all__ = ["__version__", "api", "HwgenError", "Model"]
