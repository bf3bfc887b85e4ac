"""GRU cell unit (PyTorch gate order r, z, n).

r = sigmoid(x_r + h_r + b_r), u = sigmoid(x_z + h_z + b_z),
n = tanh(x_n + b_n + round_shift(r * (h_n + b_hn), sigmoid_frac)),
h' = n + round_shift(u * (h - n), sigmoid_frac). The two products are real multipliers.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .arith import round_shift
from .cell import CellUnit

__all__ = ["GruCell"]


class GruCell(CellUnit):
    """See `CellUnit`. The n row's recurrent event writes h six cycles later."""

    kind = CellKind.GRU

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        fs = f.sigmoid_frac
        unit, layer = self.unit, self.layer

        def reg(shape_of, name):
            return Signal(shape_of.shape(), name=name)

        # S0: input-part event stores term + bias; recurrent-part event forms the sums.
        zx_expr = self.term + self.bias
        zx = reg(zx_expr, "zx")
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z_expr, hn_expr = zx + self.term, self.term + self.bias
        z1, hn1, xn1 = reg(z_expr, "z1"), reg(hn_expr, "hn1"), reg(zx, "xn1")
        v1, g1 = Signal(), Signal.like(self.gate)
        j1, l1 = Signal.like(unit), Signal.like(layer)
        m.d.sync += [
            z1.eq(z_expr), hn1.eq(hn_expr), xn1.eq(zx),
            v1.eq(self.valid & self.part), g1.eq(self.gate), j1.eq(unit), l1.eq(layer),
        ]
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        r_reg, u_reg = Signal(sig.value_shape), Signal(sig.value_shape)

        # S1: sigmoid lookup of r / z rows; n row: r * (h_n + b_hn).
        m.d.comb += sig.z[0].eq(z1)
        p_expr = r_reg * hn1
        p2, xn2, u2 = reg(p_expr, "p2"), reg(xn1, "xn2"), Signal(sig.value_shape)
        v2, g2, j2, l2 = Signal(), Signal.like(g1), Signal.like(unit), Signal.like(layer)
        m.d.sync += [
            p2.eq(p_expr), xn2.eq(xn1), u2.eq(u_reg),
            v2.eq(v1), g2.eq(g1), j2.eq(j1), l2.eq(l1),
        ]

        # S2: r / z rows latch their sigmoid; n row: pre-activation of n.
        with m.If(v2 & (g2 == 0)):
            m.d.sync += r_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 1)):
            m.d.sync += u_reg.eq(sig.y[0])
        npre_expr = xn2 + round_shift(p2, fs)
        npre3, u3 = reg(npre_expr, "npre3"), Signal(sig.value_shape)
        v3, j3, l3 = Signal(), Signal.like(unit), Signal.like(layer)
        m.d.sync += [
            npre3.eq(npre_expr), u3.eq(u2), v3.eq(v2 & (g2 == 2)), j3.eq(j2), l3.eq(l2),
        ]

        # S3: tanh lookup.
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, npre3.shape().width
        )
        m.d.comb += tanh.z[0].eq(npre3)
        u4, v4, j4, l4 = Signal(sig.value_shape), Signal(), Signal.like(unit), Signal.like(layer)
        m.d.sync += [u4.eq(u3), v4.eq(v3), j4.eq(j3), l4.eq(l3)]

        # S4: n arrives; read the old h of this unit.
        m.d.comb += [self.rd_layer.eq(l4), self.rd_unit.eq(j4)]
        dm_expr = self.rd_h - tanh.y[0]
        n5, dm5 = Signal.like(tanh.y[0]), reg(dm_expr, "dm5")
        u5, v5, j5 = Signal(sig.value_shape), Signal(), Signal.like(unit)
        m.d.sync += [n5.eq(tanh.y[0]), dm5.eq(dm_expr), u5.eq(u4), v5.eq(v4), j5.eq(j4)]

        # S5: u * (h - n).
        q_expr = u5 * dm5
        q6, n6, v6, j6 = reg(q_expr, "q6"), Signal.like(n5), Signal(), Signal.like(unit)
        m.d.sync += [q6.eq(q_expr), n6.eq(n5), v6.eq(v5), j6.eq(j5)]

        # S6: h' = n + round_shift(u * (h - n)); the core registers it.
        m.d.comb += [
            self.h_we.eq(v6),
            self.h_unit.eq(j6),
            self.h_data.eq(n6 + round_shift(q6, fs)),
        ]
        return m
