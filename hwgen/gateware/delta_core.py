"""A first delta accelerator (docs/delta.md, issue 23): the dense core's stream interface around
`DeltaLayer` s, for vector-input models without argmax.

One timestep: accept ``i_stream`` (``sos``, ``x``: `layouts.input_layout`); after ``sos`` clear
the layers' delta memories (R cycles) and mark the chunks ``fresh``; for each layer, offer its x
chunks (the input, or the layer below's new h) and its h chunks (its old h), wait for the cell
unit's H writes (h, and c for LSTM, into the new state); then the head: its own
`DeltaColumnUpdate` is cleared and fed every column of the top layer's new h (a dense head:
M_o = levels(W_o) h exactly), read word by word, scaled by the head's constant scaler and added
to the head biases into the logits register, which ``o_stream`` offers (`layouts.output_layout`).

h (and c) of every layer live in flip-flops (``--state registers``: `_RegisterState`) or in
block RAM (``--state ram``: `_RamState`, two banks swapped per timestep, the encoder two values a
chunk), as the plan says (`hwgen.delta.design.state_in_ram`).

A sequencer written for clarity, not speed: the phases one after another (no overlap of the head
with the next timestep, one cycle per chunk offered). Its cycles per
timestep are measured in simulation (tests/test_delta_core.py) against the planned core's
formula (`hwgen.delta.cycles`). Arithmetic: exactly `hwgen.delta.DeltaGolden`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..delta.design import check_delta_model, delta_plan, encoder_lanes, head_lanes, state_in_ram
from ..delta.schedule import head_overlaps
from ..numerics import derive_widths, term_shift
from ..spec import CellKind, HwgenError, Model
from .arith import delay, register
from .delta_layer import DeltaLayer
from .delta_update import DeltaColumnUpdate, advance_word_lane
from .delta_weights import LoadBus, head_biases, tap_of
from .layouts import input_layout, output_layout
from .loadable import load_signature
from .plan import uint_bits
from .scale import ConstScaler

__all__ = ["DeltaAccelerator"]


class DeltaAccelerator(wiring.Component):
    """Delta network accelerator for a `Model` with delta thresholds (module docstring).

    Parameters
    ----------
    model : a Model with ``delta`` thresholds (`hwgen.delta.DeltaThresholds`), vector inputs,
        no argmax.
    lanes : P, memory rows updated per cycle (at most the widest matrix row, as the dense core).
    plan : the dense core's `Plan` of the model's weights on ``lanes`` lanes and where the
        state lives (`hwgen.delta.design.delta_plan`; default: made here, state ``auto``).

    Members
    -------
    i_stream : In(stream.Signature(input_layout(model))).
    o_stream : Out(stream.Signature(output_layout(model))).
    load : In(`loadable.load_signature`), loadable cores only (``--weights ram``): the
        dense core's load port, writing the memories of `hwgen.delta.loadable.delta_load_images`
        (docs/manifest.md, "load"). Write only while no input is in flight.
    columns : Out(32), processed columns (those entering an update unit) since the last reset,
        wrapping: a debug counter the simulation checks against the golden model's `DeltaStats`.
    cycles : Out(32), working cycles since the last reset, wrapping: every cycle but those in
        which the core waits for an input or for its output to be taken (the input's accept
        cycle and the output's transfer cycle count); read in an output's transfer cycle it
        lacks that cycle. Per timestep it is the interval between inputs of a producer and a
        consumer that never wait (docs/delta.md, "Cycles of the delta core").

    Raises
    ------
    HwgenError : a model without thresholds, with token inputs or argmax, or a bad lane count.
    """

    def __init__(self, model: Model, lanes: int, plan=None):
        if not isinstance(model, Model) or model.delta is None:
            raise HwgenError("the delta accelerator needs a model with delta thresholds "
                             "(hwgen train --delta THX,THH)")
        check_delta_model(model)
        self._model = model
        self._plan = plan if plan is not None else delta_plan(model, lanes)
        members = {
            "i_stream": In(stream.Signature(input_layout(model))),
            "o_stream": Out(stream.Signature(output_layout(model))),
            "columns": Out(32),
            "cycles": Out(32),
        }
        if self._plan.loadable:  # delta_weights: the dense core's load port
            members["load"] = In(load_signature(self._plan.load_images()))
        super().__init__(members)

    @property
    def model(self) -> Model:
        """The delta model (with its thresholds)."""
        return self._model

    @property
    def plan(self):
        """The dense core's `Plan` of the same weights (lanes, row order, widths)."""
        return self._plan

    @property
    def lanes(self) -> int:
        return self._plan.lanes

    @property
    def schedule(self):
        """The core's timing (`hwgen.delta.schedule.DeltaSchedule`): worst case and formula."""
        from ..delta.schedule import delta_schedule

        return delta_schedule(self._model, self._plan)

    def elaborate(self, platform):
        m = Module()
        model, plan = self._model, self._plan
        H, L, NO = model.hidden, model.num_layers, model.outputs
        f = model.formats
        widths = derive_widths(model)
        pe = encoder_lanes(plan)
        # delta_weights: a loadable core's memories are written through its load port
        bus = LoadBus(m, self.load, plan.load_images()) if plan.loadable else None
        layers = []
        for i in range(L):
            layer = DeltaLayer(plan, i, enc_lanes=pe, load=bus)
            m.submodules[f"layer{i}"] = layer
            layers.append(layer)

        # the input register, and h (c) of every layer, old and new (`_RegisterState`,
        # `_RamState`), which answers each layer's old-state reads two cycles later
        x = Signal(data.ArrayLayout(signed(f.input.width), model.input.features), name="x",
                   reset_less=True)
        sos = Signal(name="sos_seen")
        st = (_RamState if state_in_ram(plan) else _RegisterState)(m, model, layers, pe)
        m.d.sync += self.columns.eq(self.columns + sum(ly.column for ly in layers))

        # the head: a column update fed every column of the top h, then scale + bias per output
        hw = widths.head_acc_width
        ph = head_lanes(plan)
        head = DeltaColumnUpdate(matrix=model.head.w, lanes=ph, delta_width=f.state.width + 1,
                                 acc_width=hw, load=tap_of(bus, "head_w"))
        m.submodules.head = head
        Ro = head.words_per_column
        lw = widths.logit_width
        sc = ConstScaler(mantissa=model.head.w.scale.mantissa,
                         shift=term_shift(model.head.w.scale, f.state.frac, f.output_frac),
                         in_width=hw, out_width=lw, latency=plan.timing.scale_latency)
        m.submodules.head_scale = sc
        logits = Signal(data.ArrayLayout(signed(lw), NO), name="logits", reset_less=True)
        head_bias = head_biases(m, model.head.bias, plan.bias_width, tap_of(bus, "head_bias"))
        out_valid = Signal(name="out_valid")
        m.d.comb += [self.o_stream.valid.eq(out_valid), self.o_stream.p.logits.eq(logits)]
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += out_valid.eq(0)

        cx = [ly.chunks[0] for ly in layers]
        ch = [ly.chunks[1] for ly in layers]
        # chunk and col take their next values through ``*_next`` (read addresses look ahead)
        chunk = Signal(range(max(max(cx) + max(ch), 2)), name="chunk")
        chunk_next = Signal.like(chunk, name="chunk_next")
        col = Signal(range(max(H, 2)), name="col")
        col_next = Signal.like(col, name="col_next")
        m.d.comb += [chunk_next.eq(chunk), col_next.eq(col)]
        m.d.sync += [chunk.eq(chunk_next), col.eq(col_next)]
        unit = Signal(range(max(H, 2)), name="unit")
        cunit = Signal(range(max(H, 2)), name="cunit")
        loaded = Signal(range(max(NO + 1, 2)), name="loaded")

        # the head overlaps the top layer's cell pass when it takes each new h as it is written
        # (`hwgen.delta.schedule.head_overlaps`): its memory is cleared at the accept
        overlap = head_overlaps(model, ph)
        if overlap:
            top = layers[L - 1]
            m.d.comb += [head.clear.eq(self.i_stream.valid & self.i_stream.ready),
                         head.i_stream.p.column.eq(unit), head.i_stream.p.delta.eq(top.h_data)]
        with m.FSM(name="seq") as fsm:
            with m.State("IDLE"):
                m.d.comb += self.i_stream.ready.eq(~out_valid)
                with m.If(self.i_stream.valid & ~out_valid):
                    m.d.sync += [x.eq(self.i_stream.p.x), sos.eq(self.i_stream.p.sos)]
                    m.d.comb += chunk_next.eq(0)
                    with m.If(self.i_stream.p.sos):
                        st.zero_old(m)
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
                after = (("HEADEND" if overlap else "HEADCLEAR") if i == L - 1
                         else f"GAP{i + 1}" if st.gap(i + 1) else f"FEED{i + 1}")
                self._layer_states(m, st, i, ly, x, chunk, chunk_next, unit, cunit, sos,
                                   (model.delta.theta_x[i], model.delta.theta_h[i]),
                                   head if overlap and i == L - 1 else None, after)
            with m.State("HEADCLEAR"):
                m.d.comb += head.clear.eq(1)
                m.next = "HEADCLEARWAIT"
            with m.State("HEADCLEARWAIT"):
                with m.If(~head.busy):
                    m.d.comb += col_next.eq(0)
                    m.next = "HEADFEED"
                st.head_read(m, col_next)
            with m.State("HEADFEED"):
                m.d.comb += [head.i_stream.valid.eq(1), head.i_stream.p.column.eq(col),
                             head.i_stream.p.delta.eq(st.head_value(col))]
                with m.If(head.i_stream.ready):
                    m.d.comb += col_next.eq(col + 1)
                    with m.If(col == H - 1):
                        m.next = "HEADEND"
                st.head_read(m, col_next)
            with m.State("HEADEND"):
                m.d.comb += [head.i_stream.valid.eq(1), head.i_stream.p.end.eq(1),
                             head.i_stream.p.column.eq(0), head.i_stream.p.delta.eq(0)]
                with m.If(head.i_stream.ready):
                    m.next = "HEADWAIT"
            with m.State("HEADWAIT"):
                with m.If(head.done):
                    m.d.sync += loaded.eq(0)
                    m.next = "HEADREAD"
            with m.State("HEADREAD"):
                with m.If(loaded == NO):
                    st.swap(m)
                    m.d.sync += out_valid.eq(1)
                    m.next = "IDLE"

        working = (~fsm.ongoing("IDLE") | (self.i_stream.valid & self.i_stream.ready)
                   | (self.o_stream.valid & self.o_stream.ready))
        m.d.sync += self.cycles.eq(self.cycles + working)

        # head readout, started by ``done``: output k at word k // P, lane k % P, one per cycle;
        # the word arrives a cycle after its address, the term scale_latency cycles later
        k = Signal(range(max(NO, 2)), name="k")
        kw, kl = Signal(range(max(Ro, 2)), name="kw"), Signal(range(max(ph, 2)), name="kl")
        reading = Signal(name="reading")
        with m.If(head.done):
            m.d.sync += [k.eq(0), kw.eq(0), kl.eq(0), reading.eq(1)]
        with m.Elif(reading):
            m.d.sync += k.eq(k + 1)
            advance_word_lane(m, kw, kl, ph)
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
                        m.d.sync += logits[o].eq(sc.term + head_bias[o])
            m.d.sync += loaded.eq(loaded + 1)
        return m

    @staticmethod
    def _layer_states(m, st, i, ly, x, chunk, chunk_next, unit, cunit, sos, thetas, head,
                      after):
        """GAP{i} (when `st` needs it): one cycle before FEED{i}; FEED{i}: offer layer i's x
        chunks (the input ``x``, or the layer below's new h) and h chunks (its old h), one per
        cycle; CELL{i}: take its H new h (and c) values in unit order, then go to ``after``."""
        cx, ch = ly.chunks
        n = cx + ch
        if st.gap(i):
            with m.State(f"GAP{i}"):
                st.feed_read(m, i, chunk, first=True)
                m.next = f"FEED{i}"
        with m.State(f"FEED{i}"):
            p = ly.i_stream.p
            m.d.comb += [ly.i_stream.valid.eq(1), p.chunk.eq(chunk), p.fresh.eq(sos),
                         p.last.eq(chunk == n - 1),
                         p.theta.eq(Mux(chunk < cx, thetas[0], thetas[1]))]
            st.feed(m, i, x, chunk, p.values, ly.i_stream.ready)
            with m.If(ly.i_stream.ready):
                m.d.comb += chunk_next.eq(chunk + 1)
                with m.If(chunk == n - 1):
                    m.d.sync += [unit.eq(0), cunit.eq(0)]
                    m.next = f"CELL{i}"
            st.feed_read(m, i, chunk)
        with m.State(f"CELL{i}"):
            if st.lstm:  # an LSTM writes a unit's c before its h
                with m.If(ly.c_we):
                    st.write(m, "c", i, cunit, ly.c_data)
                    m.d.sync += cunit.eq(cunit + 1)
            with m.If(ly.h_we):
                st.write(m, "h", i, unit, ly.h_data)
                m.d.sync += unit.eq(unit + 1)
                if head is not None:  # the head takes the new h column as it is written
                    m.d.comb += head.i_stream.valid.eq(1)
                with m.If(unit == st.hidden - 1):
                    m.d.comb += chunk_next.eq(0)
                    m.next = after


def _chunk_mux(m, chunk, vec, dst, first, chunks):
    """Combinationally, for ``chunk`` in first .. first + chunks - 1: value k of ``dst`` is
    ``vec[(chunk - first) * len(dst) + k]`` (zero past the end of ``vec``)."""
    n = len(dst)
    with m.Switch(chunk):
        for c in range(chunks):
            with m.Case(first + c):
                m.d.comb += [dst[k].eq(vec[c * n + k] if c * n + k < len(vec) else 0)
                             for k in range(n)]


class _RegisterState:
    """h (and c) of every layer, old and new, in flip-flops (``--state registers``): the
    encoder's chunks through a multiplexer over the chunk index, the cell unit's old-state read
    through an H:1 multiplexer (two cycles, as the state stores answer), the head's column
    through another; at a timestep's end the new values are copied into the old ones."""

    def __init__(self, m, model, layers, pe):
        H, L, f = model.hidden, model.num_layers, model.formats
        self.hidden, self.lstm = H, model.cell is CellKind.LSTM
        sw = f.state.width
        self.h_old = [Signal(data.ArrayLayout(signed(sw), H), name=f"h_old{i}")
                      for i in range(L)]
        self.h_new = [Signal(data.ArrayLayout(signed(sw), H), name=f"h_new{i}", reset_less=True)
                      for i in range(L)]
        if self.lstm:
            cw = f.cell.width
            self.c_old = [Signal(data.ArrayLayout(signed(cw), H), name=f"c_old{i}")
                          for i in range(L)]
            self.c_new = [Signal(data.ArrayLayout(signed(cw), H), name=f"c_new{i}",
                                 reset_less=True) for i in range(L)]
        for i, ly in enumerate(layers):
            u1 = Signal.like(ly.rd_unit, name=f"rd_u1_{i}")
            u2 = Signal.like(ly.rd_unit, name=f"rd_u2_{i}")
            m.d.sync += [u1.eq(ly.rd_unit), u2.eq(u1)]
            m.d.comb += ly.rd_h.eq(self.h_old[i][u2])
            if self.lstm:
                m.d.comb += ly.rd_c.eq(self.c_old[i][u2])

    def gap(self, i) -> bool:
        return False

    def zero_old(self, m):
        for i, h in enumerate(self.h_old):
            m.d.sync += h.eq(0)
            if self.lstm:
                m.d.sync += self.c_old[i].eq(0)

    def swap(self, m):
        for i, h in enumerate(self.h_old):
            m.d.sync += h.eq(self.h_new[i])
            if self.lstm:
                m.d.sync += self.c_old[i].eq(self.c_new[i])

    def feed(self, m, i, x, chunk, values, ready):
        src = x if i == 0 else self.h_new[i - 1]
        P, H = len(values), self.hidden
        cx = -(-len(src) // P)
        _chunk_mux(m, chunk, src, values, 0, cx)
        _chunk_mux(m, chunk, self.h_old[i], values, cx, -(-H // P))

    def feed_read(self, m, i, chunk, first=False):
        pass

    def write(self, m, what, i, unit, value):
        m.d.sync += (self.h_new if what == "h" else self.c_new)[i][unit].eq(value)

    def head_read(self, m, col_next):
        pass

    def head_value(self, col):
        return self.h_new[-1][col]


class _RamState:
    """h (and c) of every layer in block RAM (``--state ram``, `hwgen.delta.design`): per layer
    a memory of two banks of ceil(H / Pe) words, Pe values a word (value k of word w: unit
    w*Pe + k), one read port (an asynchronous read and a register: the word a cycle after its
    address, so the readers address it a cycle ahead: ``chunk_next``, ``col_next``) and one
    write port with an enable per value. ``bank`` is the old bank; a timestep's end swaps the
    banks instead of copying, and ``zero`` (set by a start of sequence and by reset) makes the
    old bank read as zeros for one timestep.

    Who reads when (one port is enough): FEED{i} the old bank of layer i (its h chunks) and the
    new bank of layer i-1 (its x chunks); the cell unit of layer i the old bank at its
    ``rd_unit`` (the default address, between feeds); HEADFEED the new bank of the top layer.
    FEED{i} addresses the word of the chunk after the one it offers (``chunk + 1``, from the
    chunk register: no path from the encoder's ``ready`` into the RAM address, which limited the
    UP5K clock to 25 MHz when the address looked ahead through ``ready``), and offers the RAM's
    word after an accepted chunk, the word it held after a stall. A layer above the first starts
    with a cycle GAP{i} that reads the first word of the layer below's new bank (written up to
    the cycle before: a word is never read in the cycle it is written)."""

    def __init__(self, m, model, layers, pe):
        H, f = model.hidden, model.formats
        self.hidden, self.lstm, self.pe = H, model.cell is CellKind.LSTM, pe
        self.words = -(-H // pe)
        self.cx = [ly.chunks[0] for ly in layers]
        self.wb = uint_bits(self.words)  # word address bits below the bank bit
        self.lb = uint_bits(pe) if pe > 1 else 0  # lane bits of a unit index
        self.bank = Signal(name="bank")
        self.zero = Signal(name="zero_old", init=1)
        self.mems = {"h": [], "c": []}
        for i, ly in enumerate(layers):
            u1 = Signal.like(ly.rd_unit, name=f"rd_u1_{i}")
            u2 = Signal.like(ly.rd_unit, name=f"rd_u2_{i}")
            m.d.sync += [u1.eq(ly.rd_unit), u2.eq(u1)]
            kinds = (("h", f.state.width, ly.rd_h),) + (
                (("c", f.cell.width, ly.rd_c),) if self.lstm else ())
            for what, width, rd in kinds:
                mem = self._memory(m, f"{what}_state{i}", width)
                self.mems[what].append(mem)
                m.d.comb += [mem["raddr"].eq(self.addr(u1[self.lb:], self.bank)),
                             rd.eq(Mux(self.zero, 0, self.lane(mem["q"], u2)))]

    def _memory(self, m, name, width):
        pe = self.pe
        mem = Memory(shape=unsigned(pe * width), depth=2 << self.wb, init=[],
                     attrs={"no_rw_check": 1, "ram_style": "block"})
        m.submodules[name] = mem
        rp = mem.read_port(domain="comb")
        wp = mem.write_port(granularity=width)
        q = Signal(data.ArrayLayout(signed(width), pe), name=f"{name}_q", reset_less=True)
        m.d.sync += q.eq(rp.data)
        return {"raddr": rp.addr, "q": q, "wp": wp, "width": width}

    def addr(self, word, bank):
        """The RAM address of ``word`` (its low `wb` bits) in ``bank``."""
        return Cat(Cat(word, Const(0, self.wb))[:self.wb], bank)  # ``word`` may be narrower

    def lane(self, q, unit):
        """Value ``unit`` of the word ``q`` that holds it."""
        return q[unit[:self.lb]] if self.lb else q[0]

    def gap(self, i) -> bool:
        return i > 0

    def zero_old(self, m):
        m.d.sync += self.zero.eq(1)

    def swap(self, m):
        m.d.sync += [self.bank.eq(~self.bank), self.zero.eq(0)]

    def feed(self, m, i, x, chunk, values, ready):
        pe, H, cx = self.pe, self.hidden, self.cx[i]
        if i == 0:  # the input register's chunks
            xs = Signal(data.ArrayLayout(values.shape().elem_shape, pe), name="x_chunk")
            _chunk_mux(m, chunk, x, xs, 0, cx)
        else:
            xs = self.mems["h"][i - 1]["q"]
        hs = self.mems["h"][i]["q"]
        last = chunk == cx + self.words - 1
        fresh = Signal(values.shape(), name=f"fresh{i}")
        for k in range(pe):
            # padding lanes of the last word of h (never written) and of the input's last
            # chunk read as zero
            pad = H % pe != 0 and k >= H % pe
            xv = Mux(chunk == cx - 1, 0, xs[k]) if i > 0 and pad else xs[k]
            hv = Mux(self.zero | last, 0, hs[k]) if pad else Mux(self.zero, 0, hs[k])
            m.d.comb += fresh[k].eq(Mux(chunk < cx, xv, hv))
        # after a stall the RAM's register holds the next chunk's word: offer the held chunk
        held = Signal(values.shape(), name=f"held{i}", reset_less=True)
        stalled = Signal(name=f"stalled{i}")
        m.d.comb += values.eq(Mux(stalled, held, fresh))
        m.d.sync += [held.eq(values), stalled.eq(~ready)]

    def feed_read(self, m, i, chunk, first=False):
        """Within FEED{i}: address the words of the chunk after ``chunk``; ``first`` (GAP{i}):
        the first word of the layer below's new bank."""
        if i > 0:
            word = 0 if first else chunk + 1
            m.d.comb += self.mems["h"][i - 1]["raddr"].eq(self.addr(Const(word) if first
                                                                    else word, ~self.bank))
        if not first:
            m.d.comb += self.mems["h"][i]["raddr"].eq(self.addr(chunk + 1 - self.cx[i],
                                                                self.bank))

    def write(self, m, what, i, unit, value):
        mem = self.mems[what][i]
        wp = mem["wp"]
        m.d.comb += [wp.addr.eq(self.addr(unit[self.lb:], ~self.bank)),
                     wp.data.eq(Cat(*([value.as_unsigned()] * self.pe))),
                     wp.en.eq(Const(1, self.pe) << unit[:self.lb] if self.lb else 1)]

    def head_read(self, m, col_next):
        m.d.comb += self.mems["h"][-1]["raddr"].eq(self.addr(col_next[self.lb:], ~self.bank))

    def head_value(self, col):
        return self.lane(self.mems["h"][-1]["q"], col)
