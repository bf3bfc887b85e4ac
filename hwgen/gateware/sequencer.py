"""The sequencer: walks layers, rows, segments and chunks, one issued word per cycle.

Order of one timestep (`schedule` has the cycle counts): for each layer, for each unit, for each
gate row (unit-major): the input segment (ceil(I_l/P) chunks of the input buffer or of the lower
layer's new h), then the recurrent segment (ceil(H/P) chunks of the layer's old h); a gap until
the layer's last h is written; then the head's rows (ceil(H/P) chunks of the top layer's new h).

Every decision is taken from registers so that the next-state logic stays one or two LUTs deep:
the state is one-hot (``idle``, ``run``; a shift register times the gaps), a segment's end is
the registered ``last``, and the descriptor of the next segment is precomputed (``nxt``): at a
segment start the current registers (``cur``) copy it, so a segment of one chunk costs no extra
cycle. Each segment carries the operand source (``src_x``, ``op_layer``, ``op_bank``,
``op_zero``) that the operand fetch needs.

With paired input segments (`schedule.pairs_input_rows`), layer 0 runs, for rows r, r + 1: the
paired input segment (one chunk), row r's recurrent segment, then row r + 1's recurrent segment
marked ``defer`` (end action ``rrow``: the next row's recurrent segment follows at once); the
datapath turns the first chunk of a ``defer`` segment into row r + 1's input event.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, TokenInput
from .layouts import input_layout
from .plan import Plan
from .schedule import ISSUE_DELAY, READ_LATENCY

__all__ = ["Sequencer", "issue_shapes", "FORMAL_DATA_REGISTERS", "FORMAL_ISSUE_ONLY"]

#: Outputs that carry their decision's cycle; registered once on the way out (``ISSUE_DELAY``).
#: The first three are control flags and keep a reset; the others are reset-less.
_CONTROL = ("issue", "last", "output_start")

#: Formal-only (`hwgen.formal.whitebox`, nothing here changes the gateware): the sequencer's
#: registers with a reset that carry data, not control. The bank parity and the zero-state flags
#: follow the inputs (``sos``) and the chunk counter only addresses operands; the white-box
#: interface proofs leave them (and every reset-less register) out of the control state.
FORMAL_DATA_REGISTERS = ("bank_parity", "fresh", "seq_started", "cur_op_bank", "nxt_op_bank",
                         "cur_op_zero", "nxt_op_zero", "seq_chunk")
#: Formal-only: free-running between segments, read only while a segment issues (``seq_issue``).
FORMAL_ISSUE_ONLY = ("seq_left",)


def issue_shapes(plan: Plan) -> dict:
    """Shape of every output of the sequencer, by member name (see `Sequencer`). ``defer`` only
    with paired input segments, ``halve`` only in a sparse core with an unpacked matrix."""
    m = plan.model
    L, H, G = m.num_layers, m.hidden, m.cell.num_gates
    nmax = max(plan.chunks(i) for i in plan.matrices)
    shapes = {
        "issue": 1, "layer": range(L + 1), "unit": range(max(H, m.outputs, 2)),
        "gate": range(max(G, 2)), "part": 1, "head": 1, "chunk": range(max(nmax, 2)),
        "first": 1, "last": 1, "src_x": 1, "op_layer": range(max(L, 2)), "op_bank": 1,
        "op_zero": 1, "output_start": 1,
    }
    if plan.paired:
        shapes["defer"] = 1
    if plan.halved:
        shapes["halve"] = 1
    return shapes


class _Segment:
    """Registers describing one segment: what the datapath reads (the issue fields), how the
    segment ends (``act_*``: one-hot, what follows its last chunk; ``cont``: another segment
    follows at once) and registered comparisons that the next segment's descriptor needs."""

    ACTS = ("rec", "row", "gap", "hrow", "done")
    PAIRED_ACTS = ("rrow",)  # paired input segments: the next row's recurrent segment follows

    def __init__(self, plan: Plan, prefix: str, init: dict | None = None):
        m = plan.model
        L, H, G = m.num_layers, m.hidden, m.cell.num_gates
        nmax = max(plan.chunks(i) for i in plan.matrices)
        init = init or {}

        def sig(name, shape=1, **kw):
            return Signal(shape, name=f"{prefix}_{name}", init=int(init.get(name, 0)), **kw)

        self.layer = sig("layer", range(L + 1))
        self.unit = sig("unit", range(max(H, m.outputs, 2)))
        self.gate = sig("gate", range(max(G, 2)))
        self.part, self.head = sig("part"), sig("head")
        self.src_x, self.op_bank, self.op_zero = sig("src_x"), sig("op_bank"), sig("op_zero")
        self.op_layer = sig("op_layer", range(max(L, 2)))
        self.left0 = sig("left0", range(max(nmax, 2)))  # chunks - 1
        self.single = sig("single")  # one chunk: its first is its last
        self.first_layer, self.top = sig("first_layer"), sig("top")  # layer 0, layer L - 1
        self.unit_last, self.gate_last = sig("unit_last"), sig("gate_last")
        self.unit_penult, self.gate_penult = sig("unit_penult"), sig("gate_penult")
        acts = self.ACTS + (self.PAIRED_ACTS if plan.paired else ())
        self.acts = {a: sig(f"act_{a}") for a in acts}
        self.defer = sig("defer") if plan.paired else None
        self.cont = sig("cont")
        # ``unit`` advances after this segment (next: another unit's row, the head, a head row or
        # the next timestep): one registered flag, so that the counter's enable is one LUT.
        self.adv_unit = sig("adv_unit")

    def fields(self):
        extra = [self.defer] if self.defer is not None else []
        return [self.layer, self.unit, self.gate, self.part, self.head, self.src_x, self.op_bank,
                self.op_zero, self.op_layer, self.left0, self.single, self.first_layer,
                self.top, self.unit_last, self.gate_last, self.unit_penult, self.gate_penult,
                self.cont, *self.acts.values(), *extra]


class Sequencer(wiring.Component):
    """The control of one accelerator (`plan.Plan`): takes an input transfer, then issues the
    timestep's words, one a cycle, in `plan`'s issue order with `schedule`'s gaps.

    Parameters
    ----------
    plan : the accelerator's plan (its model, chunks per row, pairing, sparse words).

    Members
    -------
    i_stream : In(stream.Signature(layouts.input_layout(model))). ``ready`` is the ``idle``
        register: one transfer per timestep, accepted only once the previous timestep's head
        has issued its last word.
    out_busy : In(1). The output loader still holds the previous logits: the head waits.
    x : Out(ArrayLayout(signed(input width), I)). The accepted input's codes (vectors: loaded in
        every ready cycle, so they hold the accepted transfer's once ``ready`` falls; tokens: the
        embedding word, ``READ_LATENCY`` cycles after the transfer).
    emb_addr : Out(token shape), emb_data : In(I * input width); token models only: the
        embedding memory's read port (``emb_data`` = word ``emb_addr``, ``READ_LATENCY`` later).
    issue, layer, unit, gate, part, head, chunk, first, last, src_x, op_layer, op_bank, op_zero,
    output_start, defer (paired only), halve (sparse with an unpacked matrix only) : Out, shapes
        in `issue_shapes`. The word the datapath issues in this cycle, ``ISSUE_DELAY`` cycles
        after the sequencer decided it: ``issue`` high in an issuing cycle, matrix id
        ``Cat(part, layer)`` (`mid`; the head is layer L), the row (``unit``, ``gate``), the word
        index ``chunk`` within its segment, ``first`` / ``last`` of the segment, the operand
        source (``src_x``: input buffer; else the state store at ``op_layer``, bank
        ``op_bank``, its zero region when ``op_zero``), ``output_start`` at the head's last
        word, ``defer`` (a paired layer's second recurrent segment), ``halve`` (the matrix takes
        two words a span).
    parity : Out(1), the bank of this timestep's new h (flips at every accepted input).
    fresh : Out(1), this timestep starts from zero state (``sos`` or the first after reset).
    layer_start : Out(1), start_layer : Out(range(max(L, 2))): the sequencer starts issuing
        layer ``start_layer`` (one cycle before ``issue`` shows its first word).

    Timing (`schedule.Schedule`, both streams never stalling): ``ready`` to ``ready`` takes
    ``cycles_per_timestep``; each layer issues ``layer_issue[l]`` consecutive words, then
    pauses ``layer_gap`` cycles; the head issues ``head_issue`` words. A reset returns it to
    ``idle`` from any state; the next timestep starts from zero state.

    Raises
    ------
    HwgenError : ``plan`` is not a `plan.Plan`.
    """

    def __init__(self, plan: Plan):
        if not isinstance(plan, Plan):
            raise HwgenError(f"Plan must be a hwgen Plan, not {plan!r}")
        self._plan = plan
        model = plan.model
        self._token = isinstance(model.input, TokenInput)
        shapes = issue_shapes(plan)
        members = {
            "i_stream": In(stream.Signature(input_layout(model))),
            "out_busy": In(1),
            "x": Out(data.ArrayLayout(signed(model.formats.input.width), model.input.width)),
        }
        if self._token:
            tok = data.Layout.cast(input_layout(model))["token"].shape
            members["emb_addr"] = Out(tok)
            members["emb_data"] = In(model.formats.input.width * model.input.width)
        members.update({k: Out(v) for k, v in shapes.items()})
        members.update(parity=Out(1), fresh=Out(1), layer_start=Out(1),
                       start_layer=Out(range(max(model.num_layers, 2))))
        super().__init__(members)

    @property
    def mid(self):
        """Matrix id of the issued word: 2 * layer + part (the head: 2L + 1)."""
        return Cat(self.part, self.layer)

    # -- elaboration -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        plan, model = self._plan, self._plan.model
        G, H, L = model.cell.num_gates, model.hidden, model.num_layers
        nx0 = plan.chunks(0)
        # ``dec``: the decision of this cycle (the outputs before their ISSUE_DELAY register).
        dec = {k: Signal(v, name=f"seq_{k}") for k, v in issue_shapes(plan).items()}
        dec.update(parity=Signal(name="bank_parity"), fresh=Signal(name="fresh"))
        # The first segment of a timestep: layer 0, unit 0, gate 0, the input buffer. ``nxt``
        # holds it from reset, and `_advance` sets it again after the timestep's last segment, so
        # accepting an input touches no descriptor register (the input's valid, from outside,
        # enables only a few flip-flops).
        first = {"src_x": 1, "left0": nx0 - 1, "single": nx0 == 1, "first_layer": 1,
                 "top": L == 1, "unit_last": H == 1, "gate_last": G == 1,
                 "unit_penult": H == 2, "gate_penult": G == 2, "cont": 1, "act_rec": 1}
        cur = _Segment(plan, "cur")
        nxt = _Segment(plan, "nxt", init=first)
        # The current segment's descriptor is what the datapath reads.
        for name in ("layer", "unit", "gate", "part", "head", "src_x", "op_bank", "op_zero",
                     "op_layer", "defer"):
            if name in dec:
                m.d.comb += dec[name].eq(getattr(cur, name))
        if "halve" in dec:
            with m.Switch(Cat(cur.part, cur.layer)):
                for i in plan.halved:
                    with m.Case(i):
                        m.d.comb += dec["halve"].eq(1)
        idle = Signal(init=1, name="seq_idle")
        begin, begin_pre = self._take_input(m, dec, idle)
        fire = self._gap(m, dec, cur, nxt, begin)
        self._issue(m, dec, cur, nxt, begin_pre, fire, idle)
        self._outputs(m, dec)
        return m

    def _take_input(self, m: Module, dec: dict, idle):
        """Accepting an input: the transfer captures it and flips the bank (``nxt`` already holds
        the first segment); the issue starts from a registered ``begin`` one cycle later
        (vectors) or once the embedding word is read (tokens). Returns ``begin`` and its value
        one cycle early."""
        w, width = self._plan.model.formats.input.width, self._plan.model.input.width
        xbuf = [Signal(signed(w), name=f"x_{k}", reset_less=True) for k in range(width)]
        m.d.comb += self.x.eq(Cat(*xbuf))
        started = Signal(name="seq_started")
        payload = self.i_stream.payload
        m.d.comb += self.i_stream.ready.eq(idle)
        accept = idle & self.i_stream.valid
        with m.If(accept):
            m.d.sync += [idle.eq(0), dec["parity"].eq(~dec["parity"]), started.eq(1),
                         dec["fresh"].eq(payload.sos | ~started)]
        if not self._token:
            # Loaded in every ready cycle (enable: the ``idle`` register, not the input's valid):
            # the last load is the accepted input's, and it holds once ``idle`` falls.
            with m.If(idle):
                m.d.sync += [x.eq(payload.x[k]) for k, x in enumerate(xbuf)]
            begin = Signal(name="seq_begin")
            m.d.sync += begin.eq(accept)
            return begin, accept
        m.d.comb += self.emb_addr.eq(payload.token)
        begin = begin_pre = accept
        for i in range(READ_LATENCY):
            nb = Signal(name=f"seq_load{i}")
            m.d.sync += nb.eq(begin)
            begin_pre, begin = begin, nb
        with m.If(begin):
            m.d.sync += [x.eq(self.emb_data[k * w : (k + 1) * w].as_signed())
                         for k, x in enumerate(xbuf)]
        return begin, begin_pre

    def _gap(self, m: Module, dec: dict, cur: _Segment, nxt: _Segment, begin):
        """The gap after a layer: then the next layer, or the head (once the loader is free). A
        shift register times the gap: a 1 enters at the layer's last issue and reaches the end
        when the next issue may start; ``held`` keeps it while the loader is busy (head only).
        Drives ``layer_start`` / ``start_layer``; returns ``fire`` (the gap ends)."""
        lg = self._plan.timing.layer_gap
        assert lg >= 2
        timer = Signal(lg - 1, name="seq_gap_timer")
        held = Signal(name="seq_gap_held")
        go = Signal(name="seq_go")  # registered: the gap ends in this cycle
        ready = timer[-1] | held
        fire = ready & (~nxt.head | ~self.out_busy)
        m.d.sync += [timer.eq(Cat(dec["last"] & cur.acts["gap"], timer[:-1])),
                     held.eq(ready & ~fire), go.eq(fire)]
        m.d.comb += [self.layer_start.eq(begin | (go & ~nxt.head)),
                     self.start_layer.eq(Mux(begin, 0, nxt.layer))]
        return fire

    def _issue(self, m: Module, dec: dict, cur: _Segment, nxt: _Segment, begin_pre, fire,
               idle) -> None:
        """Issuing. ``last`` is only ever set while running, so a segment's end is ``last``
        itself; ``cont`` (registered with the descriptor) says another segment follows at once.
        Each register below has one assignment, so its next value is a single multiplexer.
        ``start`` (a segment starts: begin | go | last & cont) enables some 70 registers, so it
        is a register itself, loaded with the value that expression takes in the next cycle."""
        run, last = dec["issue"], dec["last"]
        left = Signal.like(dec["chunk"], name="seq_left")
        start = Signal(name="seq_start")
        last_next = Mux(start, nxt.single, run & ~last & (left == 1))
        cont_next = Mux(start, nxt.cont, cur.cont)
        m.d.sync += start.eq(begin_pre | fire | (last_next & cont_next))
        step = run & ~last
        m.d.sync += [last.eq(Mux(start, nxt.single, step & (left == 1))), dec["first"].eq(start)]
        # Free-running between segments (no enable): only read while a segment issues.
        with m.If(start):
            m.d.sync += [dec["chunk"].eq(0), left.eq(nxt.left0)]
        with m.Else():
            m.d.sync += [dec["chunk"].eq(dec["chunk"] + 1), left.eq(left - 1)]
        with m.If(start):
            m.d.sync += [a.eq(b) for a, b in zip(cur.fields(), nxt.fields(), strict=True)]
            self._advance(m, dec, nxt)
        m.d.sync += run.eq(start | (run & ~(last & ~cur.cont)))
        # The timestep's last issue (``last`` of the ``done`` segment), also a register loaded
        # with its next value: ``idle`` then rises from flip-flops only.
        end = Signal(name="seq_end")
        m.d.sync += end.eq(last_next & Mux(start, nxt.acts["done"], cur.acts["done"]))
        m.d.comb += dec["output_start"].eq(end)
        with m.If(end):
            m.d.sync += idle.eq(1)

    def _advance(self, m: Module, dec: dict, nxt: _Segment) -> None:
        """nxt <= the segment after the one nxt describes: each of its registers is a one- or
        two-LUT function of ``nxt``'s own registered flags (the one-hot end action says which
        kind of segment comes next); the counters are plain counters with a clear and an
        enable (`_advance_counters`)."""
        plan, model = self._plan, self._plan.model
        L, outs = model.num_layers, model.outputs
        # Segment lengths (issue words): layer 0's input rows, the other layer rows (recurrent
        # rows and upper layers' input rows: equal, `packing.word_repeats`), the head's rows.
        nh, nx0, nhd = plan.chunks(1), plan.chunks(0), plan.chunks(plan.head_id)
        rec, row, gapped, hrow = (nxt.acts[k] for k in ("rec", "row", "gap", "hrow"))
        done = nxt.acts["done"]  # after the timestep's last segment: the next one's first
        to_head = gapped & nxt.top
        row_last = nxt.unit_last & nxt.gate_last
        # the next segment is a row's input segment reading the input buffer
        x0 = (row & nxt.first_layer) | done
        a_rec, a_row = row | (gapped & ~nxt.top) | done, rec & ~row_last
        a_gap = rec & row_last
        a_hrow = (to_head if outs > 1 else 0) | (hrow & ~nxt.unit_penult)
        rrow = a_rrow = 0
        if plan.paired:
            # Layer 0: input segment (a pair) -> rec (row r) -> rrow (row r + 1) -> input ...
            rrow = nxt.acts["rrow"]
            # the row after nxt's is the layer's last
            G = model.cell.num_gates
            next_last = nxt.unit_penult if G == 1 else nxt.unit_last & nxt.gate_penult
            a_rrow = rec & ~row_last & nxt.first_layer
            a_row = (rec & ~row_last & ~nxt.first_layer) | (rrow & ~next_last)
            a_gap = a_gap | (rrow & next_last)
            m.d.sync += [nxt.acts["rrow"].eq(a_rrow), nxt.defer.eq(rrow)]
        rec_like = rec | rrow  # the next segment reads the layer's old h
        m.d.sync += [
            nxt.part.eq(rec_like | to_head | hrow),
            nxt.head.eq(to_head | hrow),
            nxt.src_x.eq(x0),
            nxt.op_bank.eq(Mux(rec_like, ~dec["parity"], dec["parity"])),
            nxt.op_zero.eq(rec_like & dec["fresh"]),
            # the lower layer for an input segment, the layer itself for a recurrent one, the
            # top layer for the head (kept from the first head row on)
            nxt.op_layer.eq(Mux(row, nxt.layer - 1, Mux(hrow, nxt.op_layer, nxt.layer))),
            nxt.left0.eq(Mux(x0, nx0 - 1, Mux(to_head | hrow, nhd - 1, nh - 1))),
            nxt.single.eq(Mux(x0, nx0 == 1, Mux(to_head | hrow, nhd == 1, nh == 1))),
            nxt.acts["rec"].eq(a_rec),
            nxt.acts["row"].eq(a_row),
            nxt.acts["gap"].eq(a_gap),
            nxt.acts["hrow"].eq(a_hrow),
            nxt.acts["done"].eq((to_head if outs == 1 else 0) | (hrow & nxt.unit_penult)),
            nxt.cont.eq(a_rec | a_row | a_rrow | a_hrow),
        ]
        with m.If(gapped):  # the next layer (or the head: layer L)
            m.d.sync += [nxt.layer.eq(nxt.layer + 1), nxt.first_layer.eq(0),
                         nxt.top.eq(nxt.layer == L - 2 if L > 1 else 0)]
        with m.Elif(done):
            m.d.sync += [nxt.layer.eq(0), nxt.first_layer.eq(1), nxt.top.eq(L == 1)]
        self._advance_counters(m, nxt, to_head, rrow)

    def _advance_counters(self, m: Module, nxt: _Segment, to_head, rrow) -> None:
        """``unit`` and ``gate`` of ``nxt``'s successor: a new layer, the head or the next
        timestep (``gap``, ``done``) come after a layer's (the head's) last row, so "clear" is
        always "the counter is at its last": each next value is one multiplexer on a registered
        flag (``top`` is 0 in the head)."""
        model = self._plan.model
        G, H, outs = model.cell.num_gates, model.hidden, model.outputs
        rec, row, gapped, hrow = (nxt.acts[k] for k in ("rec", "row", "gap", "hrow"))
        adv = (rec & nxt.gate_last) | to_head | hrow
        if self._plan.paired:  # nxt's successor is row r + 1: is its gate the last?
            adv = adv | (rrow & (1 if G == 1 else nxt.gate_penult))
        m.d.sync += nxt.adv_unit.eq(adv)
        with m.If(nxt.adv_unit):  # = gapped | done | (row & gate_last) | hrow
            m.d.sync += [
                nxt.unit.eq(Mux(nxt.unit_last, 0, nxt.unit + 1)),
                nxt.unit_last.eq(Mux(nxt.unit_last, Mux(to_head, outs == 1, H == 1),
                                     nxt.unit_penult)),
                nxt.unit_penult.eq(Mux(nxt.unit_last, Mux(to_head, outs == 2, H == 2),
                                       Mux(nxt.head, nxt.unit == outs - 3, nxt.unit == H - 3))),
            ]
        with m.If(gapped | row | rrow):
            m.d.sync += [
                nxt.gate.eq(Mux(nxt.gate_last, 0, nxt.gate + 1)),
                nxt.gate_last.eq(Mux(nxt.gate_last, G == 1, nxt.gate_penult)),
                nxt.gate_penult.eq(Mux(nxt.gate_last, G == 2, nxt.gate == G - 3)),
            ]

    def _outputs(self, m: Module, dec: dict) -> None:
        """The issue fields leave through one register each (``ISSUE_DELAY``), so the
        sequencer's own registers drive only the sequencer and one flip-flop each; the timestep
        fields (parity, fresh, layer start) leave as they are."""
        assert ISSUE_DELAY == 1
        for name in issue_shapes(self._plan):
            sig = dec[name]
            reg = Signal(sig.shape(), name=f"iss_{name}", reset_less=name not in _CONTROL)
            m.d.sync += reg.eq(sig)
            m.d.comb += getattr(self, name).eq(reg)
        m.d.comb += [self.parity.eq(dec["parity"]), self.fresh.eq(dec["fresh"])]
