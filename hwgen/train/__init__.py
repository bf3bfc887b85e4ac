"""Quantization-aware training, import from PyTorch and dataset loaders (docs/training.md).

The dataset loaders (`hwgen.train.datasets`) and metrics (`hwgen.train.evaluate`) need only NumPy.
Everything else needs PyTorch (the ``train`` extra) and imports it lazily: call `require_torch`
first to turn a missing installation into a clear `HwgenError`.
"""

from __future__ import annotations

from ..spec import HwgenError

__all__ = ["require_torch", "TORCH_MISSING"]

TORCH_MISSING = (
    "PyTorch is not installed; install the train extra: pip install 'hwgen[train]' "
    "--extra-index-url https://download.pytorch.org/whl/cpu (the CPU build; without that index "
    "pip takes the multi-GB CUDA one)"
)


def require_torch():
    """Import and return ``torch``, or raise a `HwgenError` that says how to install it."""
    try:
        import torch
    except ImportError:
        raise HwgenError(TORCH_MISSING) from None
    return torch
