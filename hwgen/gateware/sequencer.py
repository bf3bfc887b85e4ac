"""The sequencer: walks layers, rows, segments and chunks, one issued word per cycle.

Order of one timestep (`schedule` has the cycle counts): for each layer, for each unit, for each
gate row (unit-major): the input segment (ceil(I_l/P) chunks of the input buffer or of the lower
layer's new h), then the recurrent segment (ceil(H/P) chunks of the layer's old h); a gap until
the layer's last h is written; then the head's rows (ceil(H/P) chunks of the top layer's new h).

Every decision is taken from registers so that the next-state logic stays one or two LUTs deep:
the state is one-hot (``idle``, ``run``; a shift register times the gaps), a segment's end is
the registered ``last``, and the descriptor of the next segment is precomputed (`build_sequencer`):
at a segment start the current registers copy it, so a segment of one chunk costs no extra cycle.
Each segment carries the operand source (`Issue.src_x`, ``op_layer``, ``op_bank``, ``op_zero``)
that the operand fetch needs.

With paired input segments (`schedule.pairs_input_rows`), layer 0 runs, for rows r, r + 1: the
paired input segment (one chunk), row r's recurrent segment, then row r + 1's recurrent segment
marked ``defer`` (end action ``rrow``: the next row's recurrent segment follows at once); the
datapath turns the first chunk of a ``defer`` segment into row r + 1's input event.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal

from ..spec import TokenInput
from .plan import Plan
from .schedule import READ_LATENCY

__all__ = ["Issue", "build_sequencer"]


class Issue:
    """The sequencer's registered outputs for the cycle being issued (``issue`` high)."""

    def __init__(self, plan: Plan):
        m = plan.model
        L, H, G = m.num_layers, m.hidden, m.cell.num_gates
        outs = m.outputs
        nmax = max(plan.chunks(i) for i in plan.matrices)
        self.issue = Signal(name="issue")  # the one-hot ``run`` state
        self.layer = Signal(range(L + 1), name="seq_layer")  # L while issuing the head
        self.unit = Signal(range(max(H, outs, 2)), name="seq_unit")
        self.gate = Signal(range(max(G, 2)), name="seq_gate")
        self.part = Signal(name="seq_part")  # 0: input segment, 1: recurrent (or head) segment
        self.head = Signal(name="seq_head")
        self.chunk = Signal(range(max(nmax, 2)), name="seq_chunk")
        self.first = Signal(name="seq_first")  # first chunk of a segment
        self.last = Signal(name="seq_last")  # last chunk of a segment
        self.src_x = Signal(name="op_src_x")  # operands from the input buffer
        self.op_layer = Signal(range(max(L, 2)), name="op_layer")
        self.op_bank = Signal(name="op_bank")
        self.op_zero = Signal(name="op_zero")  # old state after sos / reset: zero region
        self.parity = Signal(name="bank_parity")  # bank of this timestep's new h
        self.fresh = Signal(name="fresh")  # this timestep starts from zero state
        self.output_start = Signal(name="output_start")  # the head's last issue (combinational)
        self.layer_start = Signal(name="layer_start")  # a layer's first issue is next (comb.)
        self.start_layer = Signal(range(max(L, 2)), name="start_layer")  # ... of this layer
        # paired input segments: a recurrent segment whose first chunk is its row's input event
        self.defer = Signal(name="seq_defer") if plan.paired else None
        # sparse core: the segment's matrix takes two words a span (operand chunk = chunk / 2)
        halved = [i for i in plan.matrices if plan.repeat(i) == 2]
        self.halve = Signal(name="seq_halve") if halved else None
        self.halved = tuple(halved)

    @property
    def mid(self):
        """Matrix id of the issued word: 2 * layer + part (the head: 2L + 1)."""
        return Cat(self.part, self.layer)

    #: Fields copied by `registered` (``parity``, ``fresh``, ``layer_start`` and ``start_layer``
    #: concern whole layers or timesteps and are used as they are).
    FIELDS = ("issue", "layer", "unit", "gate", "part", "head", "chunk", "first", "last",
              "src_x", "op_layer", "op_bank", "op_zero", "output_start", "defer", "halve")

    def registered(self, m: Module) -> Issue:
        """A copy of these outputs one cycle later (``ISSUE_DELAY``): the datapath reads the copy,
        so the sequencer's own registers drive only the sequencer and one flip-flop each."""
        out = object.__new__(Issue)
        for name in self.FIELDS:
            sig = getattr(self, name)
            if sig is None:
                setattr(out, name, None)
                continue
            control = name in ("issue", "last", "output_start")
            reg = Signal(sig.shape(), name=f"iss_{name}", reset_less=not control)
            m.d.sync += reg.eq(sig)
            setattr(out, name, reg)
        for name in ("parity", "fresh", "layer_start", "start_layer", "halved"):
            setattr(out, name, getattr(self, name))
        return out


class _Segment:
    """Registers describing one segment: what the datapath reads (``Issue`` fields), how the
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


def build_sequencer(m: Module, plan: Plan, iss: Issue, i_stream, xbuf: list, out_busy,
                    emb=None) -> None:
    """Add the sequencer to ``m``: it drives ``iss``, ``i_stream.ready`` and loads ``xbuf``
    (vectors from the payload, tokens from ``emb``, the embedding memory: ``addr`` -> ``data``
    in READ_LATENCY cycles). ``out_busy``: the output loader still holds the previous logits, so
    the head must not start yet.

    Structure: ``nxt`` holds the descriptor of the segment after the current one. At a segment
    start the current registers copy ``nxt`` (no logic on that path) while ``nxt`` advances to
    the segment after it: each of its registers is a one- or two-LUT function of ``nxt``'s own
    registered flags (the one-hot end action says which kind of segment comes next), and the
    counters are plain counters with a clear and an enable."""
    model, sched = plan.model, plan.timing
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    outs = model.outputs
    token = isinstance(model.input, TokenInput)
    # Segment lengths (issue words): layer 0's input rows, the other layer rows (recurrent rows
    # and upper layers' input rows: equal, `packing.word_repeats`), the head's rows.
    nh, nx0, nhd = plan.chunks(1), plan.chunks(0), plan.chunks(plan.head_id)

    idle = Signal(init=1, name="seq_idle")
    run = iss.issue
    left = Signal.like(iss.chunk, name="seq_left")
    started = Signal(name="seq_started")
    # The first segment of a timestep: layer 0, unit 0, gate 0, the input buffer. ``nxt`` holds
    # it from reset, and `advance` sets it again after the timestep's last segment, so accepting
    # an input touches no descriptor register (the input's valid, from outside, enables only a
    # few flip-flops).
    first = {"src_x": 1, "left0": nx0 - 1, "single": nx0 == 1, "first_layer": 1, "top": L == 1,
             "unit_last": H == 1, "gate_last": G == 1, "unit_penult": H == 2,
             "gate_penult": G == 2, "cont": 1, "act_rec": 1}
    cur = _Segment(plan, "cur")
    nxt = _Segment(plan, "nxt", init=first)
    # The current segment's descriptor is what the datapath reads.
    for name in ("layer", "unit", "gate", "part", "head", "src_x", "op_bank", "op_zero",
                 "op_layer"):
        m.d.comb += getattr(iss, name).eq(getattr(cur, name))
    paired = plan.paired
    if paired:
        m.d.comb += iss.defer.eq(cur.defer)
    if iss.halve is not None:
        with m.Switch(Cat(cur.part, cur.layer)):
            for i in iss.halved:
                with m.Case(i):
                    m.d.comb += iss.halve.eq(1)

    def advance():
        """nxt <= the segment after the one nxt describes (see the module docstring)."""
        rec, row, gapped, hrow = (nxt.acts[k] for k in ("rec", "row", "gap", "hrow"))
        done = nxt.acts["done"]  # after the timestep's last segment: the next one's first
        to_head, to_layer = gapped & nxt.top, gapped & ~nxt.top
        row_last = nxt.unit_last & nxt.gate_last
        # the next segment is a row's input segment reading the input buffer
        x0 = (row & nxt.first_layer) | done
        a_rec, a_row = row | to_layer | done, rec & ~row_last
        a_gap = rec & row_last
        a_hrow = (to_head if outs > 1 else 0) | (hrow & ~nxt.unit_penult)
        rrow = a_rrow = 0
        if paired:
            # Layer 0: input segment (a pair) -> rec (row r) -> rrow (row r + 1) -> input ...
            rrow = nxt.acts["rrow"]
            # the row after nxt's is the layer's last
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
            nxt.op_bank.eq(Mux(rec_like, ~iss.parity, iss.parity)),
            nxt.op_zero.eq(rec_like & iss.fresh),
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
        # unit and gate: a new layer, the head or the next timestep (``gapped``, ``done``) come
        # after a layer's (the head's) last row, so "clear" is always "the counter is at its
        # last": each next value is one multiplexer on a registered flag (``top`` is 0 in the
        # head).
        adv = (rec & nxt.gate_last) | to_head | hrow
        if paired:  # nxt's successor is row r + 1: is its gate the last?
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

    # -- accepting an input ------------------------------------------------------------------
    # The transfer captures the input and flips the bank (``nxt`` already holds the first
    # segment); the issue starts from a registered ``begin`` one cycle later (vectors) or once
    # the embedding word is read (tokens).
    m.d.comb += i_stream.ready.eq(idle)
    accept = idle & i_stream.valid
    with m.If(accept):
        m.d.sync += [idle.eq(0), iss.parity.eq(~iss.parity), started.eq(1),
                     iss.fresh.eq(i_stream.payload.sos | ~started)]
    if not token:
        # Loaded in every ready cycle (enable: the ``idle`` register, not the input's valid):
        # the last load is the accepted input's, and it holds once ``idle`` falls.
        with m.If(idle):
            m.d.sync += [x.eq(i_stream.payload.x[k]) for k, x in enumerate(xbuf)]
    if token:
        m.d.comb += emb.addr.eq(i_stream.payload.token)
        begin = accept
        for i in range(READ_LATENCY):
            nb = Signal(name=f"seq_load{i}")
            m.d.sync += nb.eq(begin)
            begin_pre, begin = begin, nb
        w = model.formats.input.width
        with m.If(begin):
            m.d.sync += [x.eq(emb.data[k * w : (k + 1) * w].as_signed())
                         for k, x in enumerate(xbuf)]
    else:
        begin = Signal(name="seq_begin")
        m.d.sync += begin.eq(accept)

    # -- the gap after a layer: then the next layer, or the head (once the loader is free) -----
    # A shift register times the gap: a 1 enters at the layer's last issue and reaches the end
    # when the next issue may start; ``held`` keeps it while the loader is busy (head only).
    lg = sched.layer_gap
    assert lg >= 2
    timer = Signal(lg - 1, name="seq_gap_timer")
    held = Signal(name="seq_gap_held")
    go = Signal(name="seq_go")  # registered: the gap ends in this cycle
    ready = timer[-1] | held
    fire = ready & (~nxt.head | ~out_busy)
    m.d.sync += [timer.eq(Cat(iss.last & cur.acts["gap"], timer[:-1])),
                 held.eq(ready & ~fire), go.eq(fire)]
    m.d.comb += [iss.layer_start.eq(begin | (go & ~nxt.head)),
                 iss.start_layer.eq(Mux(begin, 0, nxt.layer))]

    # -- issuing -------------------------------------------------------------------------------
    # ``last`` is only ever set while running, so a segment's end is ``last`` itself; ``cont``
    # (registered with the descriptor) says another segment follows at once. Each register below
    # has one assignment, so its next value is a single multiplexer.
    # ``start`` (a segment starts: begin | go | last & cont) enables some 70 registers, so it is
    # a register itself, loaded with the value that expression takes in the next cycle.
    start = Signal(name="seq_start")
    begin_next = accept if not token else begin_pre
    last_next = Mux(start, nxt.single, run & ~iss.last & (left == 1))
    cont_next = Mux(start, nxt.cont, cur.cont)
    m.d.sync += start.eq(begin_next | fire | (last_next & cont_next))
    step = run & ~iss.last
    m.d.sync += [
        iss.last.eq(Mux(start, nxt.single, step & (left == 1))),
        iss.first.eq(start),
    ]
    # Free-running between segments (no enable): only read while a segment issues.
    with m.If(start):
        m.d.sync += [iss.chunk.eq(0), left.eq(nxt.left0)]
    with m.Else():
        m.d.sync += [iss.chunk.eq(iss.chunk + 1), left.eq(left - 1)]
    with m.If(start):
        m.d.sync += [a.eq(b) for a, b in zip(cur.fields(), nxt.fields(), strict=True)]
        advance()
    m.d.sync += run.eq(start | (run & ~(iss.last & ~cur.cont)))
    # The timestep's last issue (``last`` of the ``done`` segment), also a register loaded with
    # its next value: ``idle`` then rises from flip-flops only.
    end = Signal(name="seq_end")
    m.d.sync += end.eq(last_next & Mux(start, nxt.acts["done"], cur.acts["done"]))
    m.d.comb += iss.output_start.eq(end)
    with m.If(end):
        m.d.sync += idle.eq(1)
