"""Amaranth gateware of the accelerator, one component per module (docs/architecture.md).

`core.Accelerator` is the top; `schedule` is its timing contract; `simulate` drives it in
amaranth.sim. Nothing here imports the golden model: tests compare the two.
"""

__all__ = []
