"""The sequencer: walks layers, rows, segments and chunks, one issued word per cycle.

Order of one timestep (`schedule` has the cycle counts): for each layer, for each unit, for each
gate row (unit-major): the input segment (ceil(I_l/P) chunks of the input buffer or of the lower
layer's new h), then the recurrent segment (ceil(H/P) chunks of the layer's old h); a gap until
the layer's last h is written; then the head's rows (ceil(H/P) chunks of the top layer's new h).

Every decision is taken from registers so that the next-state logic stays one or two LUTs deep:
the state is one-hot (``idle``, ``load``, ``run``, ``gap``), the end of a segment is the
registered ``last``, and what follows it is one of five *actions* decoded from registered row
flags (``head``, ``part``, ``row_last``, ``unit_last``). Each segment start loads the operand
source (`Issue.src_x`, ``op_layer``, ``op_bank``, ``op_zero``) the operand fetch needs.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal

from ..spec import TokenInput
from .plan import Plan, signed_words
from .rom import Rom
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

    @property
    def mid(self):
        """Matrix id of the issued word: 2 * layer + part (the head: 2L + 1)."""
        return Cat(self.part, self.layer)

    #: Fields copied by `registered` (``parity``, ``fresh`` and ``layer_start`` change only
    #: between layers or timesteps and are used as they are).
    FIELDS = ("issue", "layer", "unit", "gate", "part", "head", "chunk", "first", "last",
              "src_x", "op_layer", "op_bank", "op_zero", "output_start")

    def registered(self, m: Module) -> Issue:
        """A copy of these outputs one cycle later (``ISSUE_DELAY``): the datapath reads the copy,
        so the sequencer's own registers drive only the sequencer and one flip-flop each."""
        out = object.__new__(Issue)
        for name in self.FIELDS:
            sig = getattr(self, name)
            control = name in ("issue", "last", "output_start")
            reg = Signal(sig.shape(), name=f"iss_{name}", reset_less=not control)
            m.d.sync += reg.eq(sig)
            setattr(out, name, reg)
        for name in ("parity", "fresh", "layer_start"):
            setattr(out, name, getattr(self, name))
        return out


class _Segment:
    """Registers describing one segment: what the datapath reads (``Issue`` fields) and how the
    segment ends (``act_*``: one-hot, what follows its last chunk)."""

    ACTS = ("rec", "row", "gap", "hrow", "done")

    def __init__(self, plan: Plan, prefix: str):
        m = plan.model
        L, H, G = m.num_layers, m.hidden, m.cell.num_gates
        nmax = max(plan.chunks(i) for i in plan.matrices)

        def sig(name, shape=1, **kw):
            return Signal(shape, name=f"{prefix}_{name}", **kw)

        self.layer = sig("layer", range(L + 1))
        self.unit = sig("unit", range(max(H, m.outputs, 2)))
        self.gate = sig("gate", range(max(G, 2)))
        self.part, self.head = sig("part"), sig("head")
        self.src_x, self.op_bank, self.op_zero = sig("src_x"), sig("op_bank"), sig("op_zero")
        self.op_layer = sig("op_layer", range(max(L, 2)))
        self.left0 = sig("left0", range(max(nmax, 2)))  # chunks - 1
        self.single = sig("single")  # one chunk: its first is its last
        self.unit_last, self.gate_last = sig("unit_last"), sig("gate_last")
        self.acts = {a: sig(f"act_{a}") for a in self.ACTS}
        self.cont = sig("cont")  # act rec, row or hrow: the next segment follows at once

    def fields(self):
        return [self.layer, self.unit, self.gate, self.part, self.head, self.src_x, self.op_bank,
                self.op_zero, self.op_layer, self.left0, self.single, self.unit_last,
                self.gate_last, self.cont, *self.acts.values()]


def build_sequencer(m: Module, plan: Plan, iss: Issue, i_stream, xbuf: list, out_busy) -> None:
    """Add the sequencer to ``m``: it drives ``iss``, ``i_stream.ready`` and loads ``xbuf``
    (vectors from the payload, tokens from the embedding ROM). ``out_busy``: the output loader
    still holds the previous logits, so the head must not start yet.

    Structure: ``nxt`` holds the descriptor of the segment after the current one. At a segment
    start the current registers copy ``nxt`` (no logic on that path) while ``nxt`` advances to
    the segment after it (`_advance`, from ``nxt``'s own registers): every decision is one or
    two LUTs from registers."""
    model, sched = plan.model, plan.timing
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    outs = model.outputs
    token = isinstance(model.input, TokenInput)
    nh = plan.state_chunks

    idle = Signal(init=1, name="seq_idle")
    run = iss.issue
    gap = Signal(name="seq_gap")
    left = Signal.like(iss.chunk, name="seq_left")
    wait = Signal(range(sched.layer_gap + 1), name="seq_wait")
    started = Signal(name="seq_started")
    cur = _Segment(plan, "cur")
    nxt = _Segment(plan, "nxt")
    # The current segment's descriptor is what the datapath reads.
    for name in ("layer", "unit", "gate", "part", "head", "src_x", "op_bank", "op_zero",
                 "op_layer"):
        m.d.comb += getattr(iss, name).eq(getattr(cur, name))

    def load(seg: _Segment, *, layer, unit, gate, part, head, n, src_x=0, op_layer=0,
             op_bank=0, op_zero=0, unit_last=0, gate_last=0, act):
        m.d.sync += [seg.layer.eq(layer), seg.unit.eq(unit), seg.gate.eq(gate),
                     seg.part.eq(part), seg.head.eq(head), seg.src_x.eq(src_x),
                     seg.op_layer.eq(op_layer), seg.op_bank.eq(op_bank),
                     seg.op_zero.eq(op_zero), seg.left0.eq(n - 1), seg.single.eq(n == 1),
                     seg.unit_last.eq(unit_last), seg.gate_last.eq(gate_last)]
        flags = {k: int(k == act) for k in seg.acts} if isinstance(act, str) else act
        m.d.sync += [v.eq(flags.get(k, 0)) for k, v in seg.acts.items()]
        m.d.sync += seg.cont.eq(flags.get("rec", 0) | flags.get("row", 0) | flags.get("hrow", 0))

    def input_segment(seg, layer, unit, gate, unit_last, gate_last):
        """An input segment: the input buffer (layer 0) or the lower layer's new h."""
        n = plan.chunks(2 * layer)
        load(seg, layer=layer, unit=unit, gate=gate, part=0, head=0, n=n, src_x=layer == 0,
             op_layer=max(layer - 1, 0), op_bank=iss.parity, unit_last=unit_last,
             gate_last=gate_last, act="rec")

    def head_segment(seg, unit, last):
        load(seg, layer=L, unit=unit, gate=0, part=1, head=1, n=nh, op_layer=L - 1,
             op_bank=iss.parity, unit_last=last, act={"done": last, "hrow": ~last})

    def advance():
        """nxt <= the segment after the one nxt describes, chosen by nxt's own (one-hot,
        registered) end action."""
        a = nxt.acts
        with m.If(a["hrow"]):
            last = nxt.unit == outs - 2 if outs > 1 else 0
            head_segment(nxt, nxt.unit + 1, last)
        with m.If(a["rec"]):  # input segment -> the recurrent segment of the same row
            row_last = nxt.unit_last & nxt.gate_last
            with m.Switch(nxt.layer):
                for i in range(L):
                    with m.Case(i):
                        load(nxt, layer=i, unit=nxt.unit, gate=nxt.gate, part=1, head=0, n=nh,
                             op_layer=i, op_bank=~iss.parity, op_zero=iss.fresh,
                             unit_last=nxt.unit_last, gate_last=nxt.gate_last,
                             act={"gap": row_last, "row": ~row_last})
        with m.If(a["row"]):  # the next row of the layer
            with m.Switch(nxt.layer):
                for i in range(L):
                    with m.Case(i):
                        with m.If(nxt.gate_last):
                            ul = nxt.unit == H - 2 if H > 1 else 0
                            input_segment(nxt, i, nxt.unit + 1, 0, ul, G == 1)
                        with m.Else():
                            gl = nxt.gate == G - 2 if G > 1 else 0
                            input_segment(nxt, i, nxt.unit, nxt.gate + 1, nxt.unit_last, gl)
        with m.If(a["gap"]):  # a layer's last row: the next layer's first row, or the head
            with m.Switch(nxt.layer):
                for i in range(L):
                    with m.Case(i):
                        if i + 1 < L:
                            input_segment(nxt, i + 1, 0, 0, H == 1, G == 1)
                        else:
                            head_segment(nxt, 0, outs == 1)

    # -- accepting an input ------------------------------------------------------------------
    # The transfer captures the input, flips the bank and sets up the first segment in ``nxt``;
    # the issue starts from a registered ``begin`` one cycle later (vectors) or once the
    # embedding word is read (tokens).
    m.d.comb += i_stream.ready.eq(idle)
    accept = idle & i_stream.valid
    with m.If(accept):
        m.d.sync += [idle.eq(0), iss.parity.eq(~iss.parity), started.eq(1),
                     iss.fresh.eq(i_stream.payload.sos | ~started)]
        input_segment(nxt, 0, 0, 0, H == 1, G == 1)
        if not token:
            m.d.sync += [x.eq(i_stream.payload.x[k]) for k, x in enumerate(xbuf)]
    if token:
        emb = m.submodules.embedding = Rom(
            signed_words(model.embedding, model.formats.input.width, per_word=len(xbuf)),
            model.formats.input.width * len(xbuf),
        )
        m.d.comb += emb.addr.eq(i_stream.payload.token)
        begin = accept
        for i in range(READ_LATENCY):
            nb = Signal(name=f"seq_load{i}")
            m.d.sync += nb.eq(begin)
            begin = nb
        w = model.formats.input.width
        with m.If(begin):
            m.d.sync += [x.eq(emb.data[k * w : (k + 1) * w].as_signed())
                         for k, x in enumerate(xbuf)]
    else:
        begin = Signal(name="seq_begin")
        m.d.sync += begin.eq(accept)

    # -- the gap after a layer: then the next layer, or the head (once the loader is free) -----
    go = Signal(name="seq_go")  # registered: the gap ends in this cycle
    due = Signal(name="seq_due")  # registered: the gap's length has passed (wait reached 1)
    assert sched.layer_gap >= 2
    m.d.sync += go.eq(0)
    with m.If(gap & ~go & ~due):
        m.d.sync += [wait.eq(wait - 1), due.eq(wait == 1)]
    with m.If(due & ~go & (~nxt.head | ~out_busy)):
        m.d.sync += [go.eq(1), due.eq(0)]
    m.d.comb += iss.layer_start.eq(begin | (go & ~nxt.head))

    # -- issuing -------------------------------------------------------------------------------
    # ``last`` is only ever set while running, so a segment's end is ``last`` itself; ``cont``
    # (registered with the descriptor) says another segment follows at once. Each register below
    # has one assignment, so its next value is a single multiplexer.
    kick = begin | go
    start = Signal(name="seq_start")
    m.d.comb += start.eq(kick | (iss.last & cur.cont))
    step = run & ~iss.last
    m.d.sync += [
        iss.last.eq(Mux(start, nxt.single, step & (left == 1))),
        iss.first.eq(start),
    ]
    with m.If(start):
        m.d.sync += [iss.chunk.eq(0), left.eq(nxt.left0)]
    with m.Elif(step):
        m.d.sync += [iss.chunk.eq(iss.chunk + 1), left.eq(left - 1)]
    with m.If(start):
        m.d.sync += [a.eq(b) for a, b in zip(cur.fields(), nxt.fields(), strict=True)]
        advance()
    m.d.sync += run.eq(start | (run & ~(iss.last & ~cur.cont)))
    with m.If(kick):
        m.d.sync += gap.eq(0)
    with m.If(iss.last & cur.acts["gap"]):
        m.d.sync += [gap.eq(1), wait.eq(sched.layer_gap - 2), due.eq(sched.layer_gap == 2)]
    with m.If(iss.last & cur.acts["done"]):
        m.d.comb += iss.output_start.eq(1)
        m.d.sync += idle.eq(1)
