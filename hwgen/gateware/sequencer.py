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

from amaranth.hdl import Cat, Module, Signal

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


def build_sequencer(m: Module, plan: Plan, iss: Issue, i_stream, xbuf: list, out_busy) -> None:
    """Add the sequencer to ``m``: it drives ``iss``, ``i_stream.ready`` and loads ``xbuf``
    (vectors from the payload, tokens from the embedding ROM). ``out_busy``: the output loader
    still holds the previous logits, so the head must not start yet."""
    model, sched = plan.model, plan.timing
    G, H, L = model.cell.num_gates, model.hidden, model.num_layers
    outs = model.outputs
    token = isinstance(model.input, TokenInput)
    nh = plan.state_chunks

    idle = Signal(init=1, name="seq_idle")
    run = iss.issue
    gap = Signal(name="seq_gap")
    left = Signal.like(iss.chunk, name="seq_left")
    gate_last = Signal(name="seq_gate_last")
    unit_last = Signal(name="seq_unit_last")
    row_last = Signal(name="seq_row_last")  # gate_last & unit_last of a layer row
    top = Signal(name="seq_top_layer")  # layer == L - 1
    wait = Signal(range(sched.layer_gap + 1), name="seq_wait")
    wait_done = Signal(name="seq_wait_done")
    started = Signal(name="seq_started")

    def segment(n, *, src_x=False, layer=0, bank=None, zero=0):
        """Start a segment of n chunks reading the input buffer or one bank of a layer's h."""
        m.d.sync += [iss.chunk.eq(0), left.eq(n - 1), iss.last.eq(n == 1), iss.first.eq(1),
                     iss.src_x.eq(src_x), iss.op_layer.eq(layer),
                     iss.op_bank.eq(iss.parity if bank is None else bank), iss.op_zero.eq(zero)]

    def input_segment(layer):
        if layer == 0:
            segment(plan.chunks(0), src_x=True)
        else:  # the lower layer's new h
            segment(nh, layer=layer - 1)

    def per_layer(action):
        with m.Switch(iss.layer):
            for i in range(L):
                with m.Case(i):
                    action(i)

    # -- accepting an input ------------------------------------------------------------------
    m.d.comb += i_stream.ready.eq(idle)
    accept = idle & i_stream.valid
    # The transfer itself only captures the input and flips the bank; the sequencer starts from
    # a registered ``begin`` one cycle later (vectors) or once the embedding word is read
    # (tokens), so the input handshake does not fan out into the whole sequencer.
    with m.If(accept):
        m.d.sync += [idle.eq(0), iss.parity.eq(~iss.parity), started.eq(1),
                     iss.fresh.eq(i_stream.payload.sos | ~started)]
        if not token:
            m.d.sync += [x.eq(i_stream.payload.x[k]) for k, x in enumerate(xbuf)]
    if token:
        # The embedding word arrives READ_LATENCY cycles after the transfer; load it into xbuf.
        emb = m.submodules.embedding = Rom(
            signed_words(model.embedding, model.formats.input.width, per_word=len(xbuf)),
            model.formats.input.width * len(xbuf),
        )
        m.d.comb += emb.addr.eq(i_stream.payload.token)
        begin = accept
        for i in range(READ_LATENCY):
            nxt = Signal(name=f"seq_load{i}")
            m.d.sync += nxt.eq(begin)
            begin = nxt
        w = model.formats.input.width
        with m.If(begin):
            m.d.sync += [x.eq(emb.data[k * w : (k + 1) * w].as_signed())
                         for k, x in enumerate(xbuf)]
    else:
        begin = Signal(name="seq_begin")
        m.d.sync += begin.eq(accept)
    with m.If(begin):
        m.d.sync += [
            run.eq(1), iss.layer.eq(0), iss.unit.eq(0), iss.gate.eq(0), iss.part.eq(0),
            iss.head.eq(0), unit_last.eq(H == 1), gate_last.eq(G == 1),
            row_last.eq((H == 1) and (G == 1)), top.eq(L == 1),
        ]

    # -- issuing: chunks, then what follows the segment's last chunk ---------------------------
    # The action at a segment's end is registered when the segment starts (one-hot): the end of
    # a segment is then ``run & last & act``, one LUT.
    act_rec = Signal(name="act_rec")  # input segment: the recurrent segment follows
    act_row = Signal(name="act_row")  # a row's recurrent segment: the next row follows
    act_gap = Signal(name="act_gap")  # a layer's last row: wait for its h
    act_hrow = Signal(name="act_hrow")  # a head row: the next head row follows
    act_done = Signal(name="act_done")  # the head's last row: accept the next input
    acts = (act_rec, act_row, act_gap, act_hrow, act_done)

    def then(**flags):
        m.d.sync += [a.eq(flags.get(a.name, 0)) for a in acts]

    with m.If(begin):
        m.d.comb += iss.layer_start.eq(1)
        input_segment(0)
        then(act_rec=1)
    # ``last`` is only ever set while running, so a segment's end is ``last`` itself.
    with m.If(run & ~iss.last):
        m.d.sync += [iss.chunk.eq(iss.chunk + 1), left.eq(left - 1), iss.last.eq(left == 1),
                     iss.first.eq(0)]
    with m.If(iss.last & act_rec):
        m.d.sync += iss.part.eq(1)
        per_layer(lambda i: segment(nh, layer=i, bank=~iss.parity, zero=iss.fresh))
        then(act_row=~row_last, act_gap=row_last)
    with m.If(iss.last & act_row):
        m.d.sync += iss.part.eq(0)
        per_layer(input_segment)
        then(act_rec=1)
        with m.If(gate_last):
            m.d.sync += [iss.gate.eq(0), gate_last.eq(G == 1), iss.unit.eq(iss.unit + 1),
                         unit_last.eq(iss.unit == H - 2 if H > 1 else 0),
                         row_last.eq((iss.unit == H - 2 if H > 1 else 0) & (G == 1))]
        with m.Else():
            last_gate = iss.gate == G - 2 if G > 1 else 0
            m.d.sync += [iss.gate.eq(iss.gate + 1), gate_last.eq(last_gate),
                         row_last.eq(unit_last & last_gate)]
    with m.If(iss.last & act_gap):
        m.d.sync += [run.eq(0), gap.eq(1), iss.last.eq(0), wait.eq(sched.layer_gap - 1),
                     wait_done.eq(0)]
    with m.If(iss.last & act_hrow):
        head_last = iss.unit == outs - 2 if outs > 1 else 0
        m.d.sync += iss.unit.eq(iss.unit + 1)
        segment(nh, layer=L - 1)
        then(act_hrow=~head_last, act_done=head_last)
    with m.If(iss.last & act_done):
        m.d.comb += iss.output_start.eq(1)
        m.d.sync += [run.eq(0), idle.eq(1), iss.last.eq(0)]

    # -- the gap after a layer: then the next layer, or the head (once the loader is free) -----
    # ``go_layer`` / ``go_head`` are registered a cycle ahead where they depend on the counter.
    assert sched.layer_gap >= 2
    go_layer = Signal(name="seq_go_layer")
    m.d.sync += go_layer.eq(0)
    with m.If(gap & ~wait_done):
        m.d.sync += [wait.eq(wait - 1), wait_done.eq(wait == 1), go_layer.eq((wait == 1) & ~top)]
    # The head starts once the loader holds no older logits (a registered decision: under
    # output backpressure it starts one cycle after the loader frees, never earlier).
    go_head = Signal(name="seq_go_head")
    m.d.sync += go_head.eq(gap & top & ~out_busy & ~go_head
                           & (wait_done | ((wait == 1) & ~wait_done)))
    with m.If(go_layer):
        m.d.comb += iss.layer_start.eq(1)
        m.d.sync += [gap.eq(0), run.eq(1), iss.unit.eq(0), iss.gate.eq(0), iss.part.eq(0),
                     unit_last.eq(H == 1), gate_last.eq(G == 1),
                     row_last.eq((H == 1) and (G == 1)), iss.layer.eq(iss.layer + 1)]
        then(act_rec=1)
        with m.Switch(iss.layer):
            for i in range(L - 1):
                with m.Case(i):
                    input_segment(i + 1)
                    m.d.sync += top.eq(i + 1 == L - 1)
    with m.If(go_head):
        m.d.sync += [gap.eq(0), run.eq(1), iss.layer.eq(L), iss.head.eq(1), iss.part.eq(1),
                     iss.unit.eq(0), unit_last.eq(outs == 1)]
        segment(nh, layer=L - 1)
        then(act_hrow=outs != 1, act_done=outs == 1)
