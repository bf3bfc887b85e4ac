"""GRU cell unit (PyTorch gate order r, z, n).

r = sigmoid(x_r + h_r + b_r), u = sigmoid(x_z + h_z + b_z),
n = tanh(x_n + b_n + round_shift(r * (h_n + b_hn), sigmoid_frac)),
h' = n + round_shift(u * (h - n), sigmoid_frac). The two products are pipelined shift-and-add
multipliers (`PipelinedMul`); every adder and table lookup has its own register stage.

Stages of the n row (t = its recurrent event, M = multiplier latency, T = table latency, A =
t + 2 + M): t+1 term + bias (one adder for every event), t+2 the sums, r * (h_n + b_hn) starts;
A the product; A+1 rounded; A+2 x_n + b_n added, tanh looked up; A+T the old h asked for; A+2+T
both arrive, n and h - n registered at A+3+T; u * (h - n) at A+3+T+M; rounded A+4+T+M; h' = n +
that at A+5+T+M, the write cycle: t + 7 + T + 2M.
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
    """See `CellUnit`. Latency (recurrent event of the n row to the h write): 7 + T + 2M
    (`schedule.cell_latency`)."""

    kind = CellKind.GRU

    def elaborate(self, platform):
        m = Module()
        f = self.model.formats

        def reg(expr, name):
            return register(m, expr, name)

        # S0 (event + 1): every event's term + bias, one adder (an input-part event's sum, and
        # the GRU n row's h_n + b_hn); an input-part event's sum is kept in zx a cycle later,
        # before the row's recurrent event + 1 at the earliest. S1 (event + 2): the r / z sums.
        s0 = reg(self.term + self.bias, "s0")
        t0 = reg(self.term, "t0")
        zx = Signal(s0.shape(), name="zx", reset_less=True)
        with m.If(register(m, self.valid & ~self.part, "vin0", reset=True)):
            m.d.sync += zx.eq(s0)
        z1 = reg(zx + t0, "z1")
        hn1 = reg(s0, "hn1")  # n row: h_n + b_hn
        xn1 = reg(zx, "xn1")  # n row: x_n + b_n
        v1 = delay(m, self.valid & self.part, 2, "v1", reset=True)
        g1, j1, l1 = (delay(m, self.gate, 2, "g1"), delay(m, self.unit, 2, "j1"),
                      delay(m, self.layer, 2, "l1"))

        # S1: sigmoid of the r / z rows; the n row starts r * (h_n + b_hn).
        m.submodules.sigmoid = sig = ActivationTable(
            self.model.sigmoid_table, index_width=f.sigmoid_in_width, z_width=z1.shape().width
        )
        T = sig.LATENCY
        m.d.comb += sig.z[0].eq(z1)
        r_reg = Signal(sig.value_shape, name="r", reset_less=True)
        u_reg = Signal(sig.value_shape, name="u", reset_less=True)
        aw = sig.value_shape.width
        m.submodules.mul_r = mul_r = PipelinedMul(a_width=aw, b_width=hn1.shape().width)
        m.d.comb += [mul_r.a.eq(r_reg), mul_r.b.eq(hn1)]
        lat = mul_r.latency
        nrow1 = v1 & (g1 == 2)

        # S1 + T: the r / z rows latch their sigmoid: r is visible from its event + 2 + T, at
        # most the n row's S1 (rows are >= 2 cycles apart: T <= 3); u is taken at the n row's
        # event + T, before the next unit's z row can overwrite it.
        assert T <= 3
        vt, gt = delay(m, v1, T, "vt", reset=True), delay(m, g1, T, "gt")
        with m.If(vt & (gt == 0)):
            m.d.sync += r_reg.eq(sig.y[0])
        with m.If(vt & (gt == 1)):
            m.d.sync += u_reg.eq(sig.y[0])

        # A = S1 + lat: the product; round it, then add x_n + b_n.
        xn_a = delay(m, xn1, lat, "xn")
        va = delay(m, nrow1, lat, "vn", reset=True)
        ja, la = delay(m, j1, lat, "jn"), delay(m, l1, lat, "ln")
        rp = reg(round_shift(mul_r.p, f.sigmoid_frac), "rp")
        npre = reg(reg(xn_a, "xn_b") + rp, "npre")
        # A+2: tanh lookup of npre; the old h of this unit asked for at A+T (both arrive at
        # A+2+T).
        m.submodules.tanh = tanh = ActivationTable(
            self.model.tanh_table, index_width=f.tanh_in_width, z_width=npre.shape().width
        )
        ahead = 2 + T - self.READ_LATENCY  # the old h arrives at A+2+T, as n does
        m.d.comb += [
            tanh.z[0].eq(npre),
            self.rd_layer.eq(delay(m, la, ahead, "lr")),
            self.rd_unit.eq(delay(m, ja, ahead, "jr")),
        ]

        # A+2+T: n and h - n.
        n_d = reg(tanh.y[0], "n")
        dm = reg(self.rd_h - tanh.y[0], "dm")

        # A+3+T: u * (h - n); u was captured at the n row's event + T = A + 3 + T - (lat + 4).
        m.submodules.mul_u = mul_u = PipelinedMul(a_width=aw, b_width=dm.shape().width)
        m.d.comb += [mul_u.a.eq(delay(m, u_reg, lat + 4, "u")), mul_u.b.eq(dm)]
        n_e = delay(m, n_d, lat, "ne")
        rq = reg(round_shift(mul_u.p, f.sigmoid_frac), "rq")
        n_f = reg(n_e, "nf")

        # A+5+T+lat: h' = n + round_shift(u * (h - n)), registered: the write cycle.
        hd = reg(n_f + rq, "hd")
        w = 5 + T + lat
        m.d.comb += [self.h_we.eq(delay(m, va, w, "vw", reset=True)), self.h_data.eq(hd)]
        return m
