"""LSTM cell unit (PyTorch gate order i, f, g, o).

i, f, o = sigmoid(.), g = tanh(.);
c' = saturate(round_shift(f * c, sf) + round_shift(i * g, sf + state_frac - cell_frac));
h' = round_shift(o * tanh(align(c', gate_frac - cell_frac)), sf). Three real multipliers.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .arith import align, clamp, round_shift
from .cell import CellUnit

__all__ = ["LstmCell"]


class LstmCell(CellUnit):
    """See `CellUnit`. The o row's recurrent event writes c four and h six cycles later."""

    kind = CellKind.LSTM

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        fs, fc = f.sigmoid_frac, f.cell.frac
        unit, layer = self.unit, self.layer

        def reg(shape_of, name):
            return Signal(shape_of.shape(), name=name)

        # S0
        zx_expr = self.term + self.bias
        zx = reg(zx_expr, "zx")
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z_expr = zx + self.term
        z1 = reg(z_expr, "z1")
        v1, g1, j1, l1 = Signal(), Signal.like(self.gate), Signal.like(unit), Signal.like(layer)
        m.d.sync += [
            z1.eq(z_expr), v1.eq(self.valid & self.part),
            g1.eq(self.gate), j1.eq(unit), l1.eq(layer),
        ]

        # S1: both tables look up z (the gate picks one at S2).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        cw = f.cell.width + max(0, f.gate_frac - fc) + 1
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, max(z1.shape().width, cw), ports=2
        )
        m.d.comb += [sig.z[0].eq(z1), tanh.z[0].eq(z1)]
        v2, g2, j2, l2 = Signal(), Signal.like(g1), Signal.like(unit), Signal.like(layer)
        m.d.sync += [v2.eq(v1), g2.eq(g1), j2.eq(j1), l2.eq(l1)]

        # S2: i / f / g rows latch; o row forms the products with the old c.
        i_reg, f_reg = Signal(sig.value_shape), Signal(sig.value_shape)
        g_reg = Signal(tanh.value_shape)
        with m.If(v2 & (g2 == 0)):
            m.d.sync += i_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 1)):
            m.d.sync += f_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 2)):
            m.d.sync += g_reg.eq(tanh.y[0])
        m.d.comb += [self.rd_layer.eq(l2), self.rd_unit.eq(j2)]
        fc_expr, ig_expr = f_reg * self.rd_c, i_reg * g_reg
        fc3, ig3, o3 = reg(fc_expr, "fc3"), reg(ig_expr, "ig3"), Signal(sig.value_shape)
        v3, j3, l3 = Signal(), Signal.like(unit), Signal.like(layer)
        m.d.sync += [
            fc3.eq(fc_expr), ig3.eq(ig_expr), o3.eq(sig.y[0]),
            v3.eq(v2 & (g2 == 3)), j3.eq(j2), l3.eq(l2),
        ]

        # S3: the new cell state, saturated.
        c_expr = clamp(
            round_shift(fc3, fs) + round_shift(ig3, fs + f.state.frac - fc),
            f.cell.min_code, f.cell.max_code,
        )
        c4, o4 = Signal.like(self.c_data), Signal(sig.value_shape)
        v4, j4, l4 = Signal(), Signal.like(unit), Signal.like(layer)
        m.d.sync += [c4.eq(c_expr), o4.eq(o3), v4.eq(v3), j4.eq(j3), l4.eq(l3)]

        # S4: write c, look up tanh(c).
        m.d.comb += [
            self.c_we.eq(v4), self.c_layer.eq(l4), self.c_unit.eq(j4), self.c_data.eq(c4),
            tanh.z[1].eq(align(c4, f.gate_frac - fc)),
        ]
        o5, v5, j5 = Signal(sig.value_shape), Signal(), Signal.like(unit)
        m.d.sync += [o5.eq(o4), v5.eq(v4), j5.eq(j4)]

        # S5: o * tanh(c).
        p_expr = o5 * tanh.y[1]
        p6, v6, j6 = reg(p_expr, "p6"), Signal(), Signal.like(unit)
        m.d.sync += [p6.eq(p_expr), v6.eq(v5), j6.eq(j5)]

        # S6
        m.d.comb += [
            self.h_we.eq(v6), self.h_unit.eq(j6), self.h_data.eq(round_shift(p6, fs)),
        ]
        return m
