"""Vanilla RNN cell unit: h_j = tanh(term_x + term_h + bias)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .cell import CellUnit

__all__ = ["RnnCell"]


class RnnCell(CellUnit):
    """See `CellUnit`. Latency: the new h is written two cycles after the recurrent event."""

    kind = CellKind.RNN

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        zx_expr = self.term + self.bias
        zx = Signal(zx_expr.shape())
        z_expr = zx + self.term
        z1, v1, j1 = Signal(z_expr.shape()), Signal(), Signal.like(self.unit)
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, z1.shape().width
        )
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        m.d.sync += [z1.eq(z_expr), v1.eq(self.valid & self.part), j1.eq(self.unit)]
        v2, j2 = Signal(), Signal.like(self.unit)
        m.d.comb += tanh.z[0].eq(z1)
        m.d.sync += [v2.eq(v1), j2.eq(j1)]
        m.d.comb += [self.h_we.eq(v2), self.h_unit.eq(j2), self.h_data.eq(tanh.y[0])]
        return m
