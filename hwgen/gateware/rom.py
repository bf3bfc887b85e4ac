"""Read-only memories: weight, bias and embedding ROMs (`memory.RegisteredMemory`, read-only).

The words (weights in issue order, biases in consumption order) come from `plan`.
"""

from __future__ import annotations

from .memory import RegisteredMemory

__all__ = ["Rom"]


class Rom(RegisteredMemory):
    """A ROM read in ``LATENCY`` = 2 cycles: ``data`` is ``words[addr]`` two cycles after ``addr``
    (a read-only `memory.RegisteredMemory` of ``len(words)`` words).

    Parameters
    ----------
    words : the contents (at least one; non-negative integers below 2**width).
    width : bits per word.

    Members
    -------
    addr : In(range(len(words))).
    data : Out(width), registered.
    """

    def __init__(self, words, width: int):
        super().__init__(width=width, init=words)
