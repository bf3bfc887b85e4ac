"""Vanilla RNN cell unit: h_j = tanh(term_x + term_h + bias)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .arith import delay, register
from .cell import CellUnit

__all__ = ["RnnCell"]


class RnnCell(CellUnit):
    """See `CellUnit`. Latency: the new h is written 1 + table latency = 3 cycles after the
    recurrent event (sum registered, then the tanh table)."""

    kind = CellKind.RNN

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        zx_expr = self.term + self.bias
        zx = Signal(zx_expr.shape(), name="zx", reset_less=True)
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z1 = register(m, zx + self.term, "z1")
        v1 = register(m, self.valid & self.part, "v1", reset=True)
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, index_width=f.tanh_in_width, z_width=z1.shape().width
        )
        m.d.comb += tanh.z[0].eq(z1)
        lat = tanh.LATENCY
        m.d.comb += [self.h_we.eq(delay(m, v1, lat, "v", reset=True)),
                     self.h_data.eq(tanh.y[0])]
        return m
