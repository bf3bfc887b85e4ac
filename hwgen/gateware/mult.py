"""Pipelined shift-and-add multiplier for the gate products of GRU / LSTM cells.

One operand ``a`` is an unsigned sigmoid code (a few bits); the other ``b`` is signed. Each bit
of ``a`` gates a shifted copy of ``b``; a binary adder tree, every level registered, sums them:
no LUT multiplier in one cycle (slow on iCE40), no DSP inference.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_positive_int
from .arith import register, registered_sum_tree
from .schedule import product_latency

__all__ = ["PipelinedMul"]


class PipelinedMul(wiring.Component):
    """``p = a * b``, ``latency`` = 1 + ceil(log2(a_width)) cycles later, one per cycle.

    Parameters (keyword-only)
    ----------
    a_width : bits of the unsigned operand ``a``.
    b_width : bits of the signed operand ``b``.

    Members
    -------
    a : In(unsigned(a_width)).
    b : In(signed(b_width)).
    p : Out(signed(a_width + b_width + 1)).
    """

    def __init__(self, *, a_width: int, b_width: int):
        a_width = check_positive_int("Operand a width", a_width)
        b_width = check_positive_int("Operand b width", b_width)
        self._a_width, self._b_width = a_width, b_width
        super().__init__(
            {
                "a": In(unsigned(a_width)),
                "b": In(signed(b_width)),
                "p": Out(signed(a_width + b_width + 1)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from ``a``, ``b`` to ``p`` (`schedule.product_latency`)."""
        return product_latency(self._a_width)

    def elaborate(self, platform):
        m = Module()
        # Gated partial products are registered (on iCE40 a gate in front of a carry chain is a
        # LUT plus routing in the adder's path), then every level of the tree is registered.
        terms = [register(m, Mux(self.a[i], self.b, 0), f"pp{i}") << i
                 for i in range(self._a_width)]
        total, _ = registered_sum_tree(m, terms, "s")
        m.d.comb += self.p.eq(total)
        return m
