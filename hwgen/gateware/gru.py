"""GRU cell unit (PyTorch gate order r, z, n).

r = sigmoid(x_r + h_r + b_r), u = sigmoid(x_z + h_z + b_z),
n = tanh(x_n + b_n + round_shift(r * (h_n + b_hn), sigmoid_frac)),
h' = n + round_shift(u * (h - n), sigmoid_frac). The two products are pipelined shift-and-add
multipliers (`PipelinedMul`); every adder and table lookup has its own register stage.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from ..spec import CellKind
from .activation import ActivationTable
from .arith import delay, register, round_shift
from .cell import CellUnit
from .mult import PipelinedMul

__all__ = ["GruCell"]


class GruCell(CellUnit):
    """See `CellUnit`. Latency (recurrent event of the n row to readable h): 8 + 2 * mul latency."""

    kind = CellKind.GRU

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats
        fs = f.sigmoid_frac

        def reg(expr, name):
            return register(m, expr, name)

        # S0: an input-part event stores term + bias; a recurrent-part event forms the sums.
        zx_expr = self.term + self.bias
        zx = Signal(zx_expr.shape(), name="zx")
        with m.If(self.valid & ~self.part):
            m.d.sync += zx.eq(zx_expr)
        z1 = reg(zx + self.term, "z1")
        hn1 = reg(self.term + self.bias, "hn1")  # n row: h_n + b_hn
        xn1 = reg(zx, "xn1")  # n row: x_n + b_n
        v1 = reg(self.valid & self.part, "v1")
        g1, j1, l1 = reg(self.gate, "g1"), reg(self.unit, "j1"), reg(self.layer, "l1")

        # S1: sigmoid of the r / z rows; n row: r * (h_n + b_hn) starts, u is captured.
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        m.d.comb += sig.z[0].eq(z1)
        r_reg, u_reg = Signal(sig.value_shape), Signal(sig.value_shape)
        aw = sig.value_shape.width
        m.submodules.mul_r = mul_r = PipelinedMul(aw, hn1.shape().width)
        m.d.comb += [mul_r.a.eq(r_reg), mul_r.b.eq(hn1)]
        lat = mul_r.latency
        nrow1 = v1 & (g1 == 2)

        # S2: the r / z rows latch their sigmoid (read by the n row at its S1, >= 3 cycles on).
        v2, g2 = reg(v1, "v2"), reg(g1, "g2")
        with m.If(v2 & (g2 == 0)):
            m.d.sync += r_reg.eq(sig.y[0])
        with m.If(v2 & (g2 == 1)):
            m.d.sync += u_reg.eq(sig.y[0])

        # A = S1 + lat: the product; round it, then add x_n + b_n.
        u_a = delay(m, reg(u_reg, "u_cap"), lat - 1, "u")
        xn_a = delay(m, xn1, lat, "xn")
        va, ja, la = delay(m, nrow1, lat, "vn"), delay(m, j1, lat, "jn"), delay(m, l1, lat, "ln")
        # A+1: ask for the old h of this unit (it arrives at A+3, with tanh(n)).
        m.d.comb += [
            self.rd_layer.eq(delay(m, la, 1, "lr")), self.rd_unit.eq(delay(m, ja, 1, "jr")),
        ]
        assert self.READ_LATENCY == 2
        rp = reg(round_shift(mul_r.p, fs), "rp")
        npre = reg(reg(xn_a, "xn_b") + rp, "npre")
        v_b, j_b = delay(m, va, 2, "vb"), delay(m, ja, 2, "jb")
        u_b = delay(m, u_a, 2, "ub")

        # A+2: tanh lookup.
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, npre.shape().width
        )
        m.d.comb += tanh.z[0].eq(npre)
        v_c, j_c, u_c = reg(v_b, "vc"), reg(j_b, "jc"), reg(u_b, "uc")

        # A+3: n and h - n.
        n_d = reg(tanh.y[0], "n")
        dm = reg(self.rd_h - tanh.y[0], "dm")
        v_d, j_d, u_d = reg(v_c, "vd"), reg(j_c, "jd"), reg(u_c, "ud")

        # A+4: u * (h - n).
        m.submodules.mul_u = mul_u = PipelinedMul(aw, dm.shape().width)
        m.d.comb += [mul_u.a.eq(u_d), mul_u.b.eq(dm)]
        v_e, j_e, n_e = delay(m, v_d, lat, "ve"), delay(m, j_d, lat, "je"), delay(m, n_d, lat, "ne")
        rq = reg(round_shift(mul_u.p, fs), "rq")
        v_f, j_f, n_f = reg(v_e, "vf"), reg(j_e, "jf"), reg(n_e, "nf")

        # h' = n + round_shift(u * (h - n)), registered; the core registers it again.
        hd = reg(n_f + rq, "hd")
        m.d.comb += [self.h_we.eq(reg(v_f, "vg")), self.h_unit.eq(reg(j_f, "jg")),
                     self.h_data.eq(hd)]
        return m
