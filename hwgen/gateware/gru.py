"""GRU cell unit (PyTorch gate order r, z, n).

r = sigmoid(x_r + h_r + b_r), u = sigmoid(x_z + h_z + b_z),
n = tanh(x_n + b_n + round_shift(r * (h_n + b_hn), sigmoid_frac)),
h' = n + round_shift(u * (h - n), sigmoid_frac). The two products are pipelined shift-and-add
multipliers (`PipelinedMul`); every adder and table lookup has its own register stage.

Stages of the n row (t = its recurrent event, M = multiplier latency, A = t + 1 + M): t+1 the
sum and r * (h_n + b_hn) starts; A the product; A+1 rounded; A+2 x_n + b_n added, tanh read and
the old h asked for; A+4 both arrive, n and h - n registered at A+5; u * (h - n) at A+5+M;
rounded A+6+M; h' = n + that at A+7+M, the write cycle: t + 8 + 2M.
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
    """See `CellUnit`. Latency (recurrent event of the n row to the h write): 8 + 2 * mul
    latency."""

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

        # S1: sigmoid of the r / z rows; the n row starts r * (h_n + b_hn).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, f.sigmoid_in_width, z1.shape().width
        )
        T = sig.LATENCY
        assert T == 2 and self.READ_LATENCY == 2
        m.d.comb += sig.z[0].eq(z1)
        r_reg, u_reg = Signal(sig.value_shape, name="r"), Signal(sig.value_shape, name="u")
        aw = sig.value_shape.width
        m.submodules.mul_r = mul_r = PipelinedMul(aw, hn1.shape().width)
        m.d.comb += [mul_r.a.eq(r_reg), mul_r.b.eq(hn1)]
        lat = mul_r.latency
        nrow1 = v1 & (g1 == 2)

        # S1 + T: the r / z rows latch their sigmoid. An n row's S1 comes at least 4 cycles after
        # its r row's event (r is visible from event + 2 + T); u is taken at the n row's S1 + 1.
        vt, gt = delay(m, v1, T, "vt"), delay(m, g1, T, "gt")
        with m.If(vt & (gt == 0)):
            m.d.sync += r_reg.eq(sig.y[0])
        with m.If(vt & (gt == 1)):
            m.d.sync += u_reg.eq(sig.y[0])

        # A = S1 + lat: the product; round it, then add x_n + b_n.
        xn_a = delay(m, xn1, lat, "xn")
        va, ja, la = delay(m, nrow1, lat, "vn"), delay(m, j1, lat, "jn"), delay(m, l1, lat, "ln")
        rp = reg(round_shift(mul_r.p, fs), "rp")
        npre = reg(reg(xn_a, "xn_b") + rp, "npre")
        # A+2: tanh lookup of npre, and the old h of this unit asked for (both arrive at A+4).
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, f.tanh_in_width, npre.shape().width
        )
        m.d.comb += [
            tanh.z[0].eq(npre),
            self.rd_layer.eq(delay(m, la, 2, "lr")), self.rd_unit.eq(delay(m, ja, 2, "jr")),
        ]

        # A+4: n and h - n.
        n_d = reg(tanh.y[0], "n")
        dm = reg(self.rd_h - tanh.y[0], "dm")

        # A+5: u * (h - n); u was captured at the n row's S1 + 1 = A + 5 - (lat + 4).
        m.submodules.mul_u = mul_u = PipelinedMul(aw, dm.shape().width)
        m.d.comb += [mul_u.a.eq(delay(m, u_reg, lat + 4, "u")), mul_u.b.eq(dm)]
        n_e = delay(m, n_d, lat, "ne")
        rq = reg(round_shift(mul_u.p, fs), "rq")
        n_f = reg(n_e, "nf")

        # A+7+lat: h' = n + round_shift(u * (h - n)), registered: the write cycle.
        hd = reg(n_f + rq, "hd")
        m.d.comb += [
            self.h_we.eq(delay(m, va, 7 + lat, "vw")),
            self.h_unit.eq(delay(m, ja, 7 + lat, "jw")),
            self.h_layer.eq(delay(m, la, 7 + lat, "lw")),
            self.h_data.eq(hd),
        ]
        return m
