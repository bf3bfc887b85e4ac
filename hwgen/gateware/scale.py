"""Constant scaling of a dot product: ``align(acc * mantissa, shift)`` (numerics.scaled_term).

The mantissa is a constant: the product is an explicit sum of shifted copies of ``acc`` (one per
set bit), added by a registered binary tree; then one registered stage aligns (shift left, or
round half up while shifting right). Extra registers pad the latency to the one asked for.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_int, check_positive_int
from .arith import align, register, registered_sum_tree
from .schedule import shift_add_depth

__all__ = ["ConstScaler"]


class ConstScaler(wiring.Component):
    """``term = align(acc * mantissa, shift)``, pipelined, no multiplier.

    Parameters (keyword-only)
    ----------
    mantissa : positive constant (a Scale's odd mantissa).
    shift : numerics.term_shift of the matrix (left for >= 0, rounding right for < 0).
    in_width : signed width of ``acc``.
    out_width : signed width of ``term`` (from the bound of the exact result: no overflow).
    latency : cycles from ``acc`` to ``term``; at least 1 + the adder-tree depth.

    Members
    -------
    acc : In(signed(in_width)).
    term : Out(signed(out_width)).
    """

    def __init__(self, *, mantissa: int, shift: int, in_width: int, out_width: int,
                 latency: int):
        mantissa = check_positive_int("Scale mantissa", mantissa)
        shift = check_int("Scale shift", shift)
        in_width = check_positive_int("Scaler input width", in_width)
        out_width = check_positive_int("Scaler output width", out_width)
        latency = check_int("Scaler latency", latency, minimum=1 + shift_add_depth(mantissa))
        self._mantissa, self._shift, self._latency = mantissa, shift, latency
        super().__init__({"acc": In(signed(in_width)), "term": Out(signed(out_width))})

    def elaborate(self, platform):
        m = Module()
        bits = [b for b in range(self._mantissa.bit_length()) if (self._mantissa >> b) & 1]
        terms = [self.acc << b for b in bits]
        value, level = registered_sum_tree(m, terms, "sa")
        for i in range(self._latency - 1 - level):
            value = register(m, value, f"pad{i}")
        term = Signal(self.term.shape(), name="term_reg", reset_less=True)
        m.d.sync += term.eq(align(value, self._shift))
        m.d.comb += self.term.eq(term)
        return m
