"""LSTM cell unit (PyTorch gate order i, f, g, o).

i, f, o = sigmoid(.), g = tanh(.);
c' = saturate(round_shift(f * c, sf) + round_shift(i * g, sf + state_frac - cell_frac));
h' = round_shift(o * tanh(align(c', gate_frac - cell_frac)), sf). The three products are
pipelined shift-and-add multipliers (`PipelinedMul`).

Stages of the o row (t = its recurrent event, M = multiplier latency, T = table latency 2):
t+1 the sum, the tables and the old c asked for; t+3 (S3) i, f, g latched by their rows, the o
row starts f * c and i * g; B = S3 + M the products; B+3 c' (written); B+5 tanh(c'); o * tanh(c')
at B+5+M; h' rounded at B+6+M, the write cycle: t + 9 + 2M.
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
    """See `CellUnit`. Latency (recurrent event of the o row to the h write): 9 + 2 * mul
    latency; c is written at o-row event + 6 + mul latency."""

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
        v1 = reg(self.valid & self.part, "v1")
        g1, j1, l1 = reg(self.gate, "g1"), reg(self.unit, "j1"), reg(self.layer, "l1")
        # S1: ask for the old c of this unit: it arrives at S3, where the o row needs it.
        assert self.READ_LATENCY == 2
        m.d.comb += [self.rd_layer.eq(l1), self.rd_unit.eq(j1)]

        # S1: both tables look up z (the gate picks one at S3).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        cw = f.cell.width + max(0, f.gate_frac - fc) + 1
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, max(z1.shape().width, cw), ports=2
        )
        T = sig.LATENCY
        assert T == 2
        m.d.comb += [sig.z[0].eq(z1), tanh.z[0].eq(z1)]
        v3, g3, j3, l3 = (delay(m, v1, T, "v3"), delay(m, g1, T, "g3"), delay(m, j1, T, "j3"),
                          delay(m, l1, T, "l3"))

        # S3: i / f / g rows latch; the o row starts f * c and i * g.
        i_reg, f_reg = Signal(sig.value_shape, name="i"), Signal(sig.value_shape, name="f")
        g_reg = Signal(tanh.value_shape, name="g")
        with m.If(v3 & (g3 == 0)):
            m.d.sync += i_reg.eq(sig.y[0])
        with m.If(v3 & (g3 == 1)):
            m.d.sync += f_reg.eq(sig.y[0])
        with m.If(v3 & (g3 == 2)):
            m.d.sync += g_reg.eq(tanh.y[0])
        aw = sig.value_shape.width
        m.submodules.mul_f = mul_f = PipelinedMul(aw, f.cell.width)
        m.submodules.mul_i = mul_i = PipelinedMul(aw, tanh.value_shape.width)
        m.d.comb += [
            mul_f.a.eq(f_reg), mul_f.b.eq(self.rd_c), mul_i.a.eq(i_reg), mul_i.b.eq(g_reg),
        ]
        lat = mul_f.latency
        orow = v3 & (g3 == 3)
        o_cap = reg(sig.y[0], "o_cap")  # visible at S3 + 1; used at B + 5
        v_b, j_b, l_b = delay(m, orow, lat, "vb"), delay(m, j3, lat, "jb"), delay(m, l3, lat, "lb")

        # B = S3 + lat: round both products, add, saturate.
        rf = reg(round_shift(mul_f.p, fs), "rf")
        ri = reg(round_shift(mul_i.p, fs + f.state.frac - fc), "ri")
        s = reg(rf + ri, "csum")
        c_new = Signal.like(self.c_data, name="c_new")
        m.d.sync += c_new.eq(saturate(s, f.cell.width))
        v_c, j_c, l_c = delay(m, v_b, 3, "vc"), delay(m, j_b, 3, "jc"), delay(m, l_b, 3, "lc")

        # B+3: write c, look up tanh(c) (arrives at B+5).
        m.d.comb += [
            self.c_we.eq(v_c), self.c_layer.eq(l_c), self.c_unit.eq(j_c), self.c_data.eq(c_new),
            tanh.z[1].eq(align(c_new, f.gate_frac - fc)),
        ]

        # B+5: o * tanh(c).
        m.submodules.mul_o = mul_o = PipelinedMul(aw, tanh.value_shape.width)
        m.d.comb += [mul_o.a.eq(delay(m, o_cap, lat + 4, "o")), mul_o.b.eq(tanh.y[1])]

        # h' = round_shift(o * tanh(c)), registered at B+6+lat: the write cycle.
        hd = reg(round_shift(mul_o.p, fs), "hd")
        m.d.comb += [
            self.h_we.eq(delay(m, v_c, 3 + lat, "vw")),
            self.h_unit.eq(delay(m, j_c, 3 + lat, "jw")),
            self.h_layer.eq(delay(m, l_c, 3 + lat, "lw")),
            self.h_data.eq(hd),
        ]
        return m
