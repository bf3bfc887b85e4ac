"""LSTM cell unit (PyTorch gate order i, f, g, o).

i, f, o = sigmoid(.), g = tanh(.);
c' = saturate(round_shift(f * c, sf) + round_shift(i * g, sf + state_frac - cell_frac));
h' = round_shift(o * tanh(align(c', gate_frac - cell_frac)), sf). The three products are
pipelined shift-and-add multipliers (`PipelinedMul`).

Stages of the o row (t = its recurrent event, M = multiplier latency, T = table latency): t+1
the sum and the tables; S = t+1+T: i, f, g latched by their rows, the old c arrives, the o row
starts f * c and i * g; B = S + M the products; B+3 c' (written), tanh(c') looked up; o *
tanh(c') at B+3+T+M; h' rounded at B+4+T+M, the write cycle: t + 5 + 2T + 2M.
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
    """See `CellUnit`. Latency (recurrent event of the o row to the h write): 5 + 2T + 2M
    (`schedule.cell_latency`); c is written at the o row's event + 4 + T + M."""

    kind = CellKind.LSTM

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        fs, fc = f.sigmoid_frac, f.cell.frac

        def reg(expr, name):
            return register(m, expr, name)

        # S0
        zx_expr = self.term + self.bias
        zx = Signal(zx_expr.shape(), name="zx", reset_less=True)
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z1 = reg(zx + self.term, "z1")
        v1 = register(m, self.valid & self.part, "v1", reset=True)
        g1, j1, l1 = reg(self.gate, "g1"), reg(self.unit, "j1"), reg(self.layer, "l1")
        # S1: both tables look up z (the gate picks one at S = S1 + T).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, index_width=f.sigmoid_in_width, z_width=z1.shape().width
        )
        cw = f.cell.width + max(0, f.gate_frac - fc) + 1
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, index_width=f.tanh_in_width,
            z_width=max(z1.shape().width, cw), ports=2
        )
        T, R = sig.LATENCY, self.READ_LATENCY
        m.d.comb += [sig.z[0].eq(z1), tanh.z[0].eq(z1)]
        # Ask for the old c of this unit so that it arrives at S, where the o row needs it.
        assert T >= R
        m.d.comb += [self.rd_layer.eq(delay(m, l1, T - R, "lr")),
                     self.rd_unit.eq(delay(m, j1, T - R, "jr"))]
        v3 = delay(m, v1, T, "v3", reset=True)
        g3 = delay(m, g1, T, "g3")

        # S: i / f / g rows latch; the o row starts f * c and i * g (an i / f row is at least 4
        # cycles, a g row 2 cycles before its o row, so their values are visible by then).
        i_reg = Signal(sig.value_shape, name="i", reset_less=True)
        f_reg = Signal(sig.value_shape, name="f", reset_less=True)
        g_reg = Signal(tanh.value_shape, name="g", reset_less=True)
        with m.If(v3 & (g3 == 0)):
            m.d.sync += i_reg.eq(sig.y[0])
        with m.If(v3 & (g3 == 1)):
            m.d.sync += f_reg.eq(sig.y[0])
        with m.If(v3 & (g3 == 2)):
            m.d.sync += g_reg.eq(tanh.y[0])
        aw = sig.value_shape.width
        m.submodules.mul_f = mul_f = PipelinedMul(a_width=aw, b_width=f.cell.width)
        m.submodules.mul_i = mul_i = PipelinedMul(a_width=aw, b_width=tanh.value_shape.width)
        m.d.comb += [
            mul_f.a.eq(f_reg), mul_f.b.eq(self.rd_c), mul_i.a.eq(i_reg), mul_i.b.eq(g_reg),
        ]
        lat = mul_f.latency
        orow = v3 & (g3 == 3)
        o_cap = reg(sig.y[0], "o_cap")  # visible at S + 1; used at B + 3 + T
        v_b = delay(m, orow, lat, "vb", reset=True)

        # B = S + lat: round both products, add, saturate.
        rf = reg(round_shift(mul_f.p, fs), "rf")
        ri = reg(round_shift(mul_i.p, fs + f.state.frac - fc), "ri")
        s = reg(rf + ri, "csum")
        c_new = Signal(self.c_data.shape(), name="c_new", reset_less=True)
        m.d.sync += c_new.eq(saturate(s, f.cell.width))
        v_c = delay(m, v_b, 3, "vc", reset=True)

        # B+3: write c, look up tanh(c) (arrives at B+3+T).
        m.d.comb += [
            self.c_we.eq(v_c), self.c_data.eq(c_new),
            tanh.z[1].eq(align(c_new, f.gate_frac - fc)),
        ]

        # B+3+T: o * tanh(c).
        m.submodules.mul_o = mul_o = PipelinedMul(a_width=aw, b_width=tanh.value_shape.width)
        m.d.comb += [mul_o.a.eq(delay(m, o_cap, lat + 2 + T, "o")), mul_o.b.eq(tanh.y[1])]

        # h' = round_shift(o * tanh(c)), registered at B+4+T+lat: the write cycle.
        hd = reg(round_shift(mul_o.p, fs), "hd")
        w = 1 + T + lat
        m.d.comb += [self.h_we.eq(delay(m, v_c, w, "vw", reset=True)), self.h_data.eq(hd)]
        return m
