"""A first delta accelerator (docs/delta.md, issue 23): the dense core's stream interface around
`DeltaLayer` s, for vector-input models without argmax.

One timestep: accept ``i_stream`` (``sos``, ``x``: `layouts.input_layout`); after ``sos`` clear
the layers' delta memories (R cycles) and mark the chunks ``fresh``; for each layer, offer its x
chunks (the input, or the layer below's new h) and its h chunks (its old h), wait for the cell
unit's H writes (h, and c for LSTM, into flip-flop state registers); then the head: its own
`DeltaColumnUpdate` is cleared and fed every column of the top layer's new h (a dense head:
M_o = levels(W_o) h exactly), read word by word, scaled by the head's constant scaler and added
to the head biases into the logits register, which ``o_stream`` offers (`layouts.output_layout`).

A sequencer written for clarity, not speed: state in flip-flops, the phases one after another
(no overlap of the head with the next timestep, one cycle per chunk offered). Its cycles per
timestep are measured in simulation (tests/test_delta_core.py) against the planned core's
formula (`hwgen.delta.cycles`). Arithmetic: exactly `hwgen.delta.DeltaGolden`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..delta.golden import with_thresholds
from ..numerics import derive_widths, term_shift
from ..spec import CellKind, HwgenError, Model, TokenInput
from .arith import delay, register
from .delta_layer import DeltaLayer
from .delta_update import DeltaColumnUpdate, advance_word_lane
from .layouts import input_layout, output_layout
from .plan import make_plan
from .scale import ConstScaler

__all__ = ["DeltaAccelerator"]


class DeltaAccelerator(wiring.Component):
    """Delta network accelerator for a `Model` with delta thresholds (module docstring).

    Parameters
    ----------
    model : a Model with ``delta`` thresholds (`hwgen.delta.DeltaThresholds`), vector inputs,
        no argmax.
    lanes : P, memory rows updated per cycle (at most the widest matrix row, as the dense core).

    Members
    -------
    i_stream : In(stream.Signature(input_layout(model))).
    o_stream : Out(stream.Signature(output_layout(model))).
    columns : Out(1), high in every cycle a processed column enters an update unit.

    Raises
    ------
    HwgenError : a model without thresholds, with token inputs or argmax, or a bad lane count.
    """

    def __init__(self, model: Model, lanes: int):
        if not isinstance(model, Model) or model.delta is None:
            raise HwgenError("the delta accelerator needs a model with delta thresholds "
                             "(hwgen train --delta THX,THH)")
        if isinstance(model.input, TokenInput):
            raise HwgenError("the delta accelerator takes vector inputs; token models are not "
                             "supported yet")
        if model.head.argmax:
            raise HwgenError("the delta accelerator has no argmax unit yet; use a model without "
                             "argmax")
        if any(m.row_mult is not None for _, m in model.matrices()):  # issue 26 (rowscale)
            raise HwgenError("the delta accelerator does not apply per-row scales (row_mult) "
                             "yet; the golden model runs such a delta network exactly, the dense "
                             "accelerator runs the model without its delta thresholds")
        self._model = model
        self._plan = make_plan(with_thresholds(model, None), lanes)
        super().__init__({
            "i_stream": In(stream.Signature(input_layout(model))),
            "o_stream": Out(stream.Signature(output_layout(model))),
            "columns": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        model, plan = self._model, self._plan
        P, H, L, NO = plan.lanes, model.hidden, model.num_layers, model.outputs
        f = model.formats
        lstm = model.cell is CellKind.LSTM
        widths = derive_widths(model)
        layers = []
        for i in range(L):
            layer = DeltaLayer(plan, i)
            m.submodules[f"layer{i}"] = layer
            layers.append(layer)

        # state registers: the input, and h (c) of every layer, old and new
        sw = f.state.width
        x = Signal(data.ArrayLayout(signed(f.input.width), model.input.features), name="x",
                   reset_less=True)
        sos = Signal(name="sos_seen")
        h_old = [Signal(data.ArrayLayout(signed(sw), H), name=f"h_old{i}") for i in range(L)]
        h_new = [Signal(data.ArrayLayout(signed(sw), H), name=f"h_new{i}", reset_less=True)
                 for i in range(L)]
        c_old = c_new = None
        if lstm:
            cw = f.cell.width
            c_old = [Signal(data.ArrayLayout(signed(cw), H), name=f"c_old{i}") for i in range(L)]
            c_new = [Signal(data.ArrayLayout(signed(cw), H), name=f"c_new{i}", reset_less=True)
                     for i in range(L)]

        # each layer's old-state reads (two cycles, as the state stores answer)
        for i, ly in enumerate(layers):
            u1 = Signal.like(ly.rd_unit, name=f"rd_u1_{i}")
            u2 = Signal.like(ly.rd_unit, name=f"rd_u2_{i}")
            m.d.sync += [u1.eq(ly.rd_unit), u2.eq(u1)]
            m.d.comb += ly.rd_h.eq(h_old[i][u2])
            if lstm:
                m.d.comb += ly.rd_c.eq(c_old[i][u2])
        m.d.comb += self.columns.eq(sum(ly.column for ly in layers) != 0)

        # the head: a column update fed every column of the top h, then scale + bias per output
        hw = widths.head_acc_width
        head = DeltaColumnUpdate(matrix=model.head.w, lanes=P, delta_width=sw + 1, acc_width=hw)
        m.submodules.head = head
        Ro = head.words_per_column
        lw = widths.logit_width
        sc = ConstScaler(mantissa=model.head.w.scale.mantissa,
                         shift=term_shift(model.head.w.scale, f.state.frac, f.output_frac),
                         in_width=hw, out_width=lw, latency=plan.timing.scale_latency)
        m.submodules.head_scale = sc
        logits = Signal(data.ArrayLayout(signed(lw), NO), name="logits", reset_less=True)
        out_valid = Signal(name="out_valid")
        m.d.comb += [self.o_stream.valid.eq(out_valid), self.o_stream.p.logits.eq(logits)]
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += out_valid.eq(0)

        cx = [ly.chunks[0] for ly in layers]
        ch = [ly.chunks[1] for ly in layers]
        chunk = Signal(range(max(max(cx) + max(ch), 2)), name="chunk")
        unit = Signal(range(max(H, 2)), name="unit")
        cunit = Signal(range(max(H, 2)), name="cunit")
        col = Signal(range(max(H, 2)), name="col")
        loaded = Signal(range(max(NO + 1, 2)), name="loaded")

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += self.i_stream.ready.eq(~out_valid)
                with m.If(self.i_stream.valid & ~out_valid):
                    m.d.sync += [x.eq(self.i_stream.p.x), sos.eq(self.i_stream.p.sos),
                                 chunk.eq(0)]
                    with m.If(self.i_stream.p.sos):
                        for i in range(L):
                            m.d.sync += h_old[i].eq(0)
                            if lstm:
                                m.d.sync += c_old[i].eq(0)
                        m.next = "CLEAR"
                    with m.Else():
                        m.next = "FEED0"
            with m.State("CLEAR"):
                for ly in layers:
                    m.d.comb += ly.clear.eq(1)
                m.next = "CLEARWAIT"
            with m.State("CLEARWAIT"):
                with m.If(~Cat(*(ly.busy for ly in layers)).any()):
                    m.next = "FEED0"
            for i, ly in enumerate(layers):
                self._layer_states(m, i, ly, x if i == 0 else h_new[i - 1], h_old[i], h_new[i],
                                   c_new[i] if lstm else None, chunk, unit, cunit, sos, cx[i],
                                   ch[i], (model.delta.theta_x[i], model.delta.theta_h[i]),
                                   "HEADCLEAR" if i == L - 1 else f"FEED{i + 1}")
            with m.State("HEADCLEAR"):
                m.d.comb += head.clear.eq(1)
                m.next = "HEADCLEARWAIT"
            with m.State("HEADCLEARWAIT"):
                with m.If(~head.busy):
                    m.d.sync += col.eq(0)
                    m.next = "HEADFEED"
            with m.State("HEADFEED"):
                m.d.comb += [head.i_stream.valid.eq(1), head.i_stream.p.column.eq(col),
                             head.i_stream.p.delta.eq(h_new[L - 1][col])]
                with m.If(head.i_stream.ready):
                    m.d.sync += col.eq(col + 1)
                    with m.If(col == H - 1):
                        m.next = "HEADEND"
            with m.State("HEADEND"):
                m.d.comb += [head.i_stream.valid.eq(1), head.i_stream.p.end.eq(1)]
                with m.If(head.i_stream.ready):
                    m.next = "HEADWAIT"
            with m.State("HEADWAIT"):
                with m.If(head.done):
                    m.d.sync += loaded.eq(0)
                    m.next = "HEADREAD"
            with m.State("HEADREAD"):
                with m.If(loaded == NO):
                    for i in range(L):
                        m.d.sync += h_old[i].eq(h_new[i])
                        if lstm:
                            m.d.sync += c_old[i].eq(c_new[i])
                    m.d.sync += out_valid.eq(1)
                    m.next = "IDLE"

        # head readout, started by ``done``: output k at word k // P, lane k % P, one per cycle;
        # the word arrives a cycle after its address, the term scale_latency cycles later
        k = Signal(range(max(NO, 2)), name="k")
        kw, kl = Signal(range(max(Ro, 2)), name="kw"), Signal(range(max(P, 2)), name="kl")
        reading = Signal(name="reading")
        with m.If(head.done):
            m.d.sync += [k.eq(0), kw.eq(0), kl.eq(0), reading.eq(1)]
        with m.Elif(reading):
            m.d.sync += k.eq(k + 1)
            advance_word_lane(m, kw, kl, P)
            with m.If(k == NO - 1):
                m.d.sync += reading.eq(0)
        m.d.comb += head.raddr.eq(kw)
        k1, kl1 = register(m, k, "k1"), register(m, kl, "kl1")
        v1 = register(m, reading, "hv1", reset=True)
        m.d.comb += sc.acc.eq(head.rdata[kl1])
        ls = plan.timing.scale_latency
        kd, vd = delay(m, k1, ls, "kd"), delay(m, v1, ls, "vd", reset=True)
        with m.If(vd):
            with m.Switch(kd):
                for o in range(NO):
                    with m.Case(o):
                        m.d.sync += logits[o].eq(sc.term + int(model.head.bias[o]))
            m.d.sync += loaded.eq(loaded + 1)
        return m

    @staticmethod
    def _layer_states(m, i, ly, src, h_old, h_new, c_new, chunk, unit, cunit, sos, cx, ch,
                      thetas, after):
        """FEED{i}: offer layer i's x chunks (from ``src``) and h chunks (its old h), one per
        cycle; CELL{i}: take its H new h (and c) values in unit order, then go to ``after``."""
        H, P = len(h_old), ly.i_stream.p.values.shape().length
        n = cx + ch
        with m.State(f"FEED{i}"):
            p = ly.i_stream.p
            m.d.comb += [ly.i_stream.valid.eq(1), p.chunk.eq(chunk), p.fresh.eq(sos),
                         p.last.eq(chunk == n - 1)]
            with m.Switch(chunk):
                for c in range(n):
                    with m.Case(c):
                        xs = c < cx
                        vec, lim = (src, len(src)) if xs else (h_old, H)
                        m.d.comb += p.theta.eq(thetas[0] if xs else thetas[1])
                        for k in range(P):
                            j = (c if xs else c - cx) * P + k
                            m.d.comb += p.values[k].eq(vec[j] if j < lim else 0)
            with m.If(ly.i_stream.ready):
                m.d.sync += chunk.eq(chunk + 1)
                with m.If(chunk == n - 1):
                    m.d.sync += [unit.eq(0), cunit.eq(0)]
                    m.next = f"CELL{i}"
        with m.State(f"CELL{i}"):
            if c_new is not None:  # an LSTM writes a unit's c before its h
                with m.If(ly.c_we):
                    m.d.sync += [c_new[cunit].eq(ly.c_data), cunit.eq(cunit + 1)]
            with m.If(ly.h_we):
                m.d.sync += [h_new[unit].eq(ly.h_data), unit.eq(unit + 1)]
                with m.If(unit == H - 1):
                    m.d.sync += chunk.eq(0)
                    m.next = after
