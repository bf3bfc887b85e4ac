"""Choices of ``hwgen train`` options that the command line needs without importing PyTorch."""

from __future__ import annotations

__all__ = ["NORMS", "RECIPES"]

#: ``norm`` choices (`hwgen.train.qrnn.QRNN`): none, batch normalization of each matrix product
#: (statistics shared across timesteps), weight normalization of each quantized row with a
#: learned gain
NORMS = ("none", "batch", "weight")

#: ``recipe`` presets (`hwgen.train.trainer.recipe_settings`)
RECIPES = ("reference", "lm", "lm-bn", "ardakani", "hou")
