"""LSTM cell unit (PyTorch gate order i, f, g, o).

i, f, o = sigmoid(.), g = tanh(.);
c' = saturate(round_shift(f * c, sf) + round_shift(i * g, sf + state_frac - cell_frac));
h' = round_shift(o * tanh(align(c', gate_frac - cell_frac)), sf). The three products are
pipelined shift-and-add multipliers (`PipelinedMul`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .arith import align, delay, register, round_shift, saturate
from .cell import CellUnit
from .mult import PipelinedMul

__all__ = ["LstmCell"]


class LstmCell(CellUnit):
    """See `CellUnit`. Latency (recurrent event of the o row to readable h): 8 + 2 * mul latency;
    c is written at o-row + 5 + mul latency."""

    kind = CellKind.LSTM

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        fs, fc = f.sigmoid_frac, f.cell.frac

        def reg(expr, name):
            return register(m, expr, name)

        # S0
        zx_expr = self.term + self.bias
        zx = Signal(zx_expr.shape(), name="zx")
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z1 = reg(zx + self.term, "z1")
        # Ask for the old c of this unit now: it arrives at S2, where the o row needs it.
        assert self.READ_LATENCY == 2
        m.d.comb += [self.rd_layer.eq(self.layer), self.rd_unit.eq(self.unit)]
        v1 = reg(self.valid & self.part, "v1")
        g1, j1, l1 = reg(self.gate, "g1"), reg(self.unit, "j1"), reg(self.layer, "l1")

        # S1: both tables look up z (the gate picks one at S2).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        cw = f.cell.width + max(0, f.gate_frac - fc) + 1
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, max(z1.shape().width, cw), ports=2
        )
        m.d.comb += [sig.z[0].eq(z1), tanh.z[0].eq(z1)]
        v2, g2, j2, l2 = reg(v1, "v2"), reg(g1, "g2"), reg(j1, "j2"), reg(l1, "l2")

        # S2: i / f / g rows latch; the o row starts f * c and i * g.
        i_reg, f_reg = Signal(sig.value_shape), Signal(sig.value_shape)
        g_reg = Signal(tanh.value_shape)
        with m.If(v2 & (g2 == 0)):
            m.d.sync += i_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 1)):
            m.d.sync += f_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 2)):
            m.d.sync += g_reg.eq(tanh.y[0])
        aw = sig.value_shape.width
        m.submodules.mul_f = mul_f = PipelinedMul(aw, f.cell.width)
        m.submodules.mul_i = mul_i = PipelinedMul(aw, tanh.value_shape.width)
        m.d.comb += [
            mul_f.a.eq(f_reg), mul_f.b.eq(self.rd_c), mul_i.a.eq(i_reg), mul_i.b.eq(g_reg),
        ]
        lat = mul_f.latency
        orow = v2 & (g2 == 3)
        o_b = delay(m, reg(sig.y[0], "o_cap"), lat - 1, "o")
        v_b, j_b, l_b = delay(m, orow, lat, "vb"), delay(m, j2, lat, "jb"), delay(m, l2, lat, "lb")

        # B = S2 + lat: round both products, add, saturate.
        rf = reg(round_shift(mul_f.p, fs), "rf")
        ri = reg(round_shift(mul_i.p, fs + f.state.frac - fc), "ri")
        s = reg(rf + ri, "csum")
        c_new = Signal.like(self.c_data, name="c_new")
        m.d.sync += c_new.eq(saturate(s, f.cell.width))
        v_c, j_c, l_c = delay(m, v_b, 3, "vc"), delay(m, j_b, 3, "jc"), delay(m, l_b, 3, "lc")
        o_c = delay(m, o_b, 3, "oc")

        # B+3: write c, look up tanh(c).
        m.d.comb += [
            self.c_we.eq(v_c), self.c_layer.eq(l_c), self.c_unit.eq(j_c), self.c_data.eq(c_new),
            tanh.z[1].eq(align(c_new, f.gate_frac - fc)),
        ]
        v_d, j_d, o_d = reg(v_c, "vd"), reg(j_c, "jd"), reg(o_c, "od")

        # B+4: o * tanh(c).
        m.submodules.mul_o = mul_o = PipelinedMul(aw, tanh.value_shape.width)
        m.d.comb += [mul_o.a.eq(o_d), mul_o.b.eq(tanh.y[1])]
        v_e, j_e = delay(m, v_d, lat + 1, "ve"), delay(m, j_d, lat + 1, "je")

        # h' = round_shift(o * tanh(c)), registered; the core registers it again.
        hd = reg(round_shift(mul_o.p, fs), "hd")
        m.d.comb += [self.h_we.eq(v_e), self.h_unit.eq(j_e), self.h_data.eq(hd)]
        return m
