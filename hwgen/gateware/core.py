"""The accelerator: sequencer, weight ROMs, MAC units, scalers, cell unit, head and streams.

Data flow of one timestep (docs/architecture.md):

1. ``i_stream`` delivers one input vector (or one token id, looked up in the embedding ROM) with a
   start-of-sequence flag ``sos`` that clears h (and c) first.
2. For each layer, unit-major: for unit j, for each gate row, ceil(I_l/P) cycles of input-matrix
   words then ceil(H/P) cycles of recurrent words. Each cycle one P-code word from the weight ROM
   of the matrix's encoding (words stored in exactly this order, so ROM addresses are counters)
   meets P operands, goes through the MAC unit of its encoding, is scaled by its matrix's
   constant scale and reaches the cell unit, which shifts the unit's new h into a scratch
   vector. After the layer drains, the scratch is copied into the layer's h (the next layer's
   input).
3. The head: O rows over the top layer's h; logits (+ bias), then a registered argmax tree.
4. The logits (and class) are loaded into the output register and offered on ``o_stream``; the
   next input is accepted meanwhile, so a slow consumer only stalls the core at the next load.

Every latency and wait comes from `schedule.schedule`; gateware never imports the golden model.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..numerics import align, derive_widths, signed_width, term_shift
from ..spec import CellKind, HwgenError, Model, TokenInput
from .arith import delay
from .gru import GruCell
from .lstm import LstmCell
from .mac import MacUnit
from .rnn import RnnCell
from .rom import Rom, signed_words, weight_words
from .scale import ConstScaler
from .schedule import check_lanes, schedule

__all__ = ["Accelerator", "input_layout", "output_layout"]

_CELLS = {CellKind.RNN: RnnCell, CellKind.GRU: GruCell, CellKind.LSTM: LstmCell}


def _uint_bits(n: int) -> int:
    """Bits of an unsigned index 0 .. n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def input_layout(model: Model) -> data.StructLayout:
    """i_stream payload: ``sos`` (bit 0) then ``x`` (I signed input-format codes, element k at
    bits 1 + k*width) or ``token`` (unsigned id)."""
    if isinstance(model.input, TokenInput):
        return data.StructLayout({"sos": 1, "token": unsigned(_uint_bits(model.input.vocab))})
    fmt = model.formats.input
    return data.StructLayout(
        {"sos": 1, "x": data.ArrayLayout(signed(fmt.width), model.input.features)}
    )


def output_layout(model: Model) -> data.StructLayout:
    """o_stream payload: ``logits`` (O signed codes, output_frac fraction bits, logit k at bits
    k*width) then, with argmax, ``argmax`` (unsigned class index, lowest index on ties)."""
    w = derive_widths(model).logit_width
    fields = {"logits": data.ArrayLayout(signed(w), model.outputs)}
    if model.head.argmax:
        fields["argmax"] = unsigned(_uint_bits(model.outputs))
    return data.StructLayout(fields)


def _switch(m: Module, index, values: dict, target) -> None:
    """target = values[index] (combinational; 0 when no key matches)."""
    with m.Switch(index):
        for key, v in values.items():
            with m.Case(key):
                m.d.comb += target.eq(v)


def _read2(m: Module, table, layer, unit, target, name: str) -> None:
    """target = table[layer][unit], two registered stages later (sqrt-split multiplexer)."""
    H = len(table[0])
    lo_bits = max(1, (H - 1).bit_length()) // 2
    size = 1 << lo_bits
    groups = -(-H // size)
    lo = unit[:lo_bits] if lo_bits else 0
    first = [[Signal(target.shape(), name=f"{name}_{i}_{q}") for q in range(groups)]
             for i in range(len(table))]
    for i, row in enumerate(table):
        for q in range(groups):
            with m.Switch(lo):
                for k in range(size):
                    if q * size + k < H:
                        with m.Case(k):
                            m.d.sync += first[i][q].eq(row[q * size + k])
    layer_d, hi_d = Signal.like(layer), Signal(range(max(groups, 2)))
    m.d.sync += [layer_d.eq(layer), hi_d.eq(unit >> lo_bits)]
    with m.Switch(layer_d):
        for i in range(len(table)):
            with m.Case(i):
                with m.Switch(hi_d):
                    for q in range(groups):
                        with m.Case(q):
                            m.d.sync += target.eq(first[i][q])


class Accelerator(wiring.Component):
    """A recurrent-network accelerator for one `Model` with ``lanes`` weights per cycle.

    Parameters
    ----------
    model : the frozen Model (its codes, scales, biases and tables become ROMs and constants).
    lanes : P, weights consumed per cycle, 1 .. max(inputs, hidden).

    Members
    -------
    i_stream : In(stream.Signature(input_layout(model))); one timestep per transfer.
    o_stream : Out(stream.Signature(output_layout(model))); one transfer per timestep.

    Raises
    ------
    HwgenError : for a bad lane count or a model the hardware does not support.
    """

    def __init__(self, model: Model, lanes: int):
        if not isinstance(model, Model):
            raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
        self._lanes = check_lanes(model, lanes)
        if model.outputs < 1:
            raise HwgenError("the model's head has no outputs; the accelerator needs at least one")
        self._model = model
        self._schedule = schedule(model, lanes)
        self._widths = derive_widths(model)
        super().__init__(
            {
                "i_stream": In(stream.Signature(input_layout(model))),
                "o_stream": Out(stream.Signature(output_layout(model))),
            }
        )

    @property
    def model(self) -> Model:
        return self._model

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def schedule(self):
        return self._schedule

    # -- static structure shared by elaborate() and the manifest ------------------------------
    def matrices(self) -> dict:
        """Matrix id -> (name, QuantMatrix, acc_bound, in_frac, out_frac, row order).

        Ids: layer l input matrix 2l, recurrent 2l+1, head 2L+1 (the id's bit 0 is the part)."""
        m, w, f = self._model, self._widths, self._model.formats
        G, H, L = m.cell.num_gates, m.hidden, m.num_layers
        unit_major = [g * H + j for j in range(H) for g in range(G)]
        out = {}
        for i, layer in enumerate(m.layers):
            in_frac = m.layer_input_format(i).frac
            out[2 * i] = (f"layer{i}.wx", layer.wx, w.layers[i].acc_x_bound, in_frac,
                          f.gate_frac, unit_major)
            out[2 * i + 1] = (f"layer{i}.wh", layer.wh, w.layers[i].acc_h_bound, f.state.frac,
                              f.gate_frac, unit_major)
        out[2 * L + 1] = ("head.w", m.head.w, w.head_acc_bound, f.state.frac, f.output_frac,
                          None)
        return out

    def bias_sequence(self) -> list[int]:
        """Biases in the order the core consumes them (one bias ROM read by a counter)."""
        m = self._model
        G, H = m.cell.num_gates, m.hidden
        seq = []
        for layer in m.layers:
            for j in range(H):
                for g in range(G):
                    seq.append(int(layer.bias[g * H + j]))
                    if m.cell is CellKind.GRU and g == 2:
                        seq.append(int(layer.bias_hn[j]))
        seq += [int(b) for b in m.head.bias]
        return seq

    def weight_groups(self) -> dict:
        """Encoding -> (matrix ids, ROM words): one weight ROM per encoding, its words in the
        exact order the sequencer issues them (unit-major rows, input part then recurrent part,
        then the head), each row padded to a multiple of P codes (`rom.weight_words`)."""
        m, P = self._model, self._lanes
        G, H, L = m.cell.num_gates, m.hidden, m.num_layers
        mats = self.matrices()
        words = {i: weight_words(q, P, order) for i, (_, q, _, _, _, order) in mats.items()}
        per_row = {i: -(-q.shape[1] // P) for i, (_, q, _, _, _, _) in mats.items()}
        seq = []  # (matrix id, row position in that matrix's ROM image)
        for layer in range(L):
            for r in range(G * H):
                seq += [(2 * layer, r), (2 * layer + 1, r)]
        seq += [(2 * L + 1, o) for o in range(m.outputs)]
        out = {}
        for i, r in seq:
            enc = mats[i][1].encoding
            ids, ws = out.setdefault(enc, ([], []))
            if i not in ids:
                ids.append(i)
            n = per_row[i]
            ws.extend(words[i][r * n : (r + 1) * n])
        return out

    def acc_widths(self) -> dict:
        """Encoding -> accumulator width of the MAC unit shared by the matrices of that encoding."""
        out = {}
        for _, q, bound, *_ in self.matrices().values():
            out[q.encoding] = max(out.get(q.encoding, 2), signed_width(bound))
        return out

    def term_width(self, mid: int) -> int:
        _, q, bound, in_frac, out_frac, _ = self.matrices()[mid]
        k = term_shift(q.scale, in_frac, out_frac)
        hi = max(abs(int(align(bound * q.scale.mantissa, k))),
                 abs(int(align(-bound * q.scale.mantissa, k))))
        return signed_width(hi)

    def elaborate(self, platform):
        m = Module()
        model, P, sched = self._model, self._lanes, self._schedule
        f = model.formats
        G, H, L, O = model.cell.num_gates, model.hidden, model.num_layers, model.outputs  # noqa: E741
        HEAD = 2 * L + 1
        token = isinstance(model.input, TokenInput)
        I0 = model.input.width
        mats = self.matrices()
        lm, ls = sched.mac_latency, sched.scale_latency

        # -- state -----------------------------------------------------------------------------
        iw, sw = f.input.width, f.state.width
        xbuf = [Signal(signed(iw), name=f"x_{k}") for k in range(I0)]
        h = [[Signal(signed(sw), name=f"h{i}_{j}") for j in range(H)] for i in range(L)]
        hnew = [Signal(signed(sw), name=f"hnew_{j}") for j in range(H)]
        lstm = model.cell is CellKind.LSTM
        c = (
            [[Signal(signed(f.cell.width), name=f"c{i}_{j}") for j in range(H)] for i in range(L)]
            if lstm else []
        )

        def source(mid):
            if mid == HEAD:
                return h[L - 1]
            layer, part = mid >> 1, mid & 1
            if part:
                return h[layer]
            return xbuf if layer == 0 else h[layer - 1]

        def chunks(mid):
            return -(-mats[mid][1].shape[1] // P)

        # -- sequencer -------------------------------------------------------------------------
        # Every decision reads registered flags (last chunk, last gate, last unit, head), so the
        # next-state logic stays shallow.
        nh = -(-H // P)
        lyr = Signal(range(L + 1), name="seq_layer")
        unit = Signal(range(max(H, O, 2)), name="seq_unit")
        gate = Signal(range(max(G, 2)), name="seq_gate")
        part = Signal(name="seq_part")
        chunk = Signal(range(max(max(chunks(i) for i in mats), 2)), name="seq_chunk")
        left = Signal.like(chunk, name="seq_left")
        last_c, first = Signal(name="seq_last_chunk"), Signal(name="seq_first")
        unit_last, gate_last = Signal(name="seq_unit_last"), Signal(name="seq_gate_last")
        at_head = Signal(name="seq_head")
        wait = Signal(range(max(sched.layer_drain, sched.head_drain) + 1), name="seq_wait")
        mid = Signal(range(HEAD + 1), name="seq_mid")
        m.d.comb += mid.eq(part | (lyr << 1))
        issue = Signal()
        # Registered housekeeping: ``idle`` (between an output load and the next input) holds the
        # ROM address counters at zero; ``clear`` zeroes h and c in the cycle after an input with
        # sos (no state is read before the second cycle of a timestep).
        idle = Signal(init=1, name="seq_idle")
        clear = Signal(name="seq_clear")
        m.d.sync += clear.eq(0)
        with m.If(clear):
            m.d.sync += [s.eq(0) for row in h + c for s in row]
        # ``copy[l]``: the last drain cycle of layer l copies the new h into h[l].
        copy = [Signal(name=f"seq_copy{i}") for i in range(L)]
        for i in range(L):
            m.d.sync += copy[i].eq(0)
            with m.If(copy[i]):
                m.d.sync += [a.eq(b) for a, b in zip(h[i], hnew, strict=True)]

        def segment(n):
            """Start a segment (row part) of n chunks."""
            m.d.sync += [chunk.eq(0), left.eq(n - 1), last_c.eq(n == 1)]

        def unit_is(k):
            return (unit == k) if k >= 0 else False

        out_valid = Signal()
        logits = [Signal(signed(self._widths.logit_width), name=f"logit_{o}") for o in range(O)]
        best_cls = Signal(range(max(O, 2)))
        payload = self.o_stream.payload
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += out_valid.eq(0)
        m.d.comb += self.o_stream.valid.eq(out_valid)

        if token:
            m.submodules.embedding = emb = Rom(
                signed_words(model.embedding, iw, per_word=I0), iw * I0
            )
            m.d.comb += emb.addr.eq(self.i_stream.payload.token)

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    m.d.sync += [
                        lyr.eq(0), unit.eq(0), gate.eq(0), part.eq(0), at_head.eq(0),
                        first.eq(1), unit_last.eq(H == 1), gate_last.eq(G == 1),
                    ]
                    segment(chunks(0))
                    if not token:
                        m.d.sync += [x.eq(self.i_stream.payload.x[k]) for k, x in enumerate(xbuf)]
                    m.d.sync += [idle.eq(0), clear.eq(self.i_stream.payload.sos)]
                    m.next = "LOAD" if token else "RUN"
            if token:
                with m.State("LOAD"):
                    m.d.sync += [x.eq(emb.data[k * iw : (k + 1) * iw].as_signed())
                                 for k, x in enumerate(xbuf)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += issue.eq(1)
                m.d.sync += first.eq(last_c)
                with m.If(~last_c):
                    m.d.sync += [chunk.eq(chunk + 1), left.eq(left - 1), last_c.eq(left == 1)]
                with m.Elif(at_head):
                    segment(nh)
                    with m.If(unit_last):
                        m.d.sync += [unit.eq(0), wait.eq(sched.head_drain - 2)]
                        m.next = "WAIT"
                    with m.Else():
                        m.d.sync += [unit.eq(unit + 1), unit_last.eq(unit_is(O - 2))]
                with m.Elif(~part):
                    m.d.sync += part.eq(1)
                    segment(nh)
                with m.Else():
                    m.d.sync += part.eq(0)
                    with m.Switch(lyr):
                        for i in range(L):
                            with m.Case(i):
                                segment(chunks(2 * i))
                    with m.If(gate_last):
                        m.d.sync += [gate.eq(0), gate_last.eq(G == 1)]
                        with m.If(unit_last):
                            m.d.sync += [unit.eq(0), wait.eq(sched.layer_drain - 1)]
                            m.next = "WAIT"
                        with m.Else():
                            m.d.sync += [unit.eq(unit + 1), unit_last.eq(unit_is(H - 2))]
                    with m.Else():
                        m.d.sync += [gate.eq(gate + 1), gate_last.eq(gate == G - 2)]
            with m.State("WAIT"):
                with m.If(wait == 0):
                    with m.If(at_head):
                        m.next = "OUT"
                    with m.Else():
                        m.d.sync += [lyr.eq(lyr + 1), first.eq(1)]
                        with m.Switch(lyr):
                            for i in range(L):
                                with m.Case(i):
                                    if i + 1 < L:
                                        m.d.sync += unit_last.eq(H == 1)
                                        segment(chunks(2 * i + 2))
                                    else:
                                        m.d.sync += [unit_last.eq(O == 1), at_head.eq(1),
                                                     part.eq(1)]
                                        segment(nh)
                        m.next = "RUN"
                with m.Else():
                    m.d.sync += wait.eq(wait - 1)
                    # Registered copy strobe for the layer's last drain cycle.
                    with m.If((wait == 1) & ~at_head):
                        with m.Switch(lyr):
                            for i in range(L):
                                with m.Case(i):
                                    m.d.sync += copy[i].eq(1)
            with m.State("OUT"):
                with m.If(~out_valid | self.o_stream.ready):
                    m.d.sync += [payload.logits[o].eq(v) for o, v in enumerate(logits)]
                    if model.head.argmax:
                        m.d.sync += payload.argmax.eq(best_cls)
                    m.d.sync += out_valid.eq(1)
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"

        # -- weight ROMs: one per encoding, words in exactly the order they are issued, so the
        # address is a counter and the MAC reads the ROM output directly (no multiplexer).
        groups = self.weight_groups()
        rom_data, group_sel = {}, {}
        for gi, (enc, (ids, words)) in enumerate(groups.items()):
            rom = Rom(words, P * enc.bits)
            m.submodules[f"weights{gi}"] = rom
            sel = Signal(name=f"issue_weights{gi}")
            _switch(m, mid, {i: 1 for i in ids}, sel)
            cnt = Signal(range(len(words) + 1), name=f"addr_weights{gi}")
            with m.If(idle):
                m.d.sync += cnt.eq(0)
            with m.Elif(issue & sel):
                m.d.sync += cnt.eq(cnt + 1)
            m.d.comb += rom.addr.eq(cnt)
            sel1 = Signal(name=f"valid_weights{gi}")
            m.d.sync += sel1.eq(issue & sel)
            rom_data[enc], group_sel[enc] = rom.data, sel1

        # -- operands (stage 1, aligned with the ROM data) --------------------------------------
        ow = max(iw, sw)
        ops = [Signal(signed(ow), name=f"op_{k}") for k in range(P)]
        first1 = Signal()
        m.d.sync += first1.eq(first)
        with m.Switch(mid):
            for i in mats:
                src = source(i)
                with m.Case(i):
                    with m.Switch(chunk):
                        for ci in range(chunks(i)):
                            with m.Case(ci):
                                for k in range(P):
                                    e = ci * P + k
                                    m.d.sync += ops[k].eq(src[e] if e < len(src) else 0)

        # -- MAC units, one per encoding --------------------------------------------------------
        acc_of = {}
        for gi, (enc, accw) in enumerate(self.acc_widths().items()):
            ids = [i for i in mats if mats[i][1].encoding == enc]
            mac = MacUnit(enc, P, ow, accw)
            m.submodules[f"mac{gi}"] = mac
            m.d.comb += [
                mac.valid.eq(group_sel[enc]), mac.first.eq(first1), mac.codes.eq(rom_data[enc]),
            ]
            m.d.comb += [mac.operands[k].eq(ops[k]) for k in range(P)]
            for i in ids:
                acc_of[i] = mac.acc

        # -- constant scalers, one per matrix ---------------------------------------------------
        tw = max(self.term_width(i) for i in mats)
        terms = {}
        for i, (name, q, _, in_frac, out_frac, _) in mats.items():
            sc = ConstScaler(q.scale.mantissa, term_shift(q.scale, in_frac, out_frac),
                             acc_of[i].shape().width, self.term_width(i), ls - 1)
            m.submodules[f"scale_{name.replace('.', '_')}"] = sc
            m.d.comb += sc.acc.eq(acc_of[i])
            terms[i] = sc.term

        # -- row tags: issue -> event, lm + ls cycles later -------------------------------------
        # The tag also carries decoded flags: ``head`` (a head row) and ``bias`` (the event
        # consumes the next bias: every input-part event, every head event, and the GRU n row's
        # recurrent event for b_hn).
        tag = data.StructLayout(
            {"valid": 1, "head": 1, "bias": 1, "mid": mid.shape(), "gate": gate.shape(),
             "unit": unit.shape()}
        )
        t_in = Signal(tag)
        takes_bias = at_head | ~part
        if model.cell is CellKind.GRU:
            takes_bias = takes_bias | (gate == 2)
        m.d.comb += [t_in.valid.eq(issue & last_c), t_in.head.eq(at_head),
                     t_in.bias.eq(issue & last_c & takes_bias), t_in.mid.eq(mid),
                     t_in.gate.eq(gate), t_in.unit.eq(unit)]
        stages = [t_in]
        for d in range(lm + ls):
            nxt = Signal(tag, name=f"tag_d{d}")
            m.d.sync += nxt.eq(stages[-1])
            stages.append(nxt)
        ev, pre = stages[-1], stages[-2]

        # The scaled term of the event's matrix, selected one stage early and registered.
        term = Signal(signed(tw))
        with m.Switch(pre.mid):
            for i, t in terms.items():
                with m.Case(i):
                    m.d.sync += term.eq(t)
        is_head = ev.head

        # Bias ROM read by a registered address: it counts the consuming events one stage early,
        # so the word an event needs is on the ROM's output in the event's cycle.
        biases = self.bias_sequence()
        bw = max(2, max(signed_width(abs(b)) for b in biases))
        m.submodules.bias_rom = brom = Rom(signed_words(biases + [0], bw), bw)
        baddr = Signal(range(len(biases) + 1))
        with m.If(idle):
            m.d.sync += baddr.eq(0)
        with m.Elif(pre.bias):
            m.d.sync += baddr.eq(baddr + 1)
        m.d.comb += brom.addr.eq(baddr)
        bias = brom.data.as_signed()

        # -- cell unit --------------------------------------------------------------------------
        cell = _CELLS[model.cell](model, tw, bw)
        m.submodules.cell = cell
        m.d.comb += [
            cell.valid.eq(ev.valid & ~is_head), cell.part.eq(ev.mid[0]), cell.gate.eq(ev.gate),
            cell.unit.eq(ev.unit), cell.layer.eq(ev.mid >> 1), cell.term.eq(term),
            cell.bias.eq(bias),
        ]
        # Old-state reads for the cell unit: a two-stage registered multiplexer (the cell asks
        # `cell.READ_LATENCY` = 2 cycles ahead): first within groups of units, then the group.
        _read2(m, h, cell.rd_layer, cell.rd_unit, cell.rd_h, "rd_h")
        if lstm:
            _read2(m, c, cell.rd_layer, cell.rd_unit, cell.rd_c, "rd_c")
        # New h values arrive in unit order, so the scratch vector is a shift register (no
        # address decoder): after a layer's H writes, hnew[j] holds unit j.
        with m.If(cell.h_we):
            m.d.sync += [a.eq(b) for a, b in zip(hnew, hnew[1:] + [cell.h_data], strict=True)]
        if lstm:
            with m.If(cell.c_we):
                with m.Switch(cell.c_layer):
                    for i in range(L):
                        with m.Case(i):
                            with m.Switch(cell.c_unit):
                                for j in range(H):
                                    with m.Case(j):
                                        m.d.sync += c[i][j].eq(cell.c_data)

        # -- head: logits and argmax ----------------------------------------------------
        hv = ev.valid & is_head
        lv = Signal(signed(self._widths.logit_width))
        m.d.comb += lv.eq(term + bias)
        with m.If(hv):
            with m.Switch(ev.unit):
                for o in range(O):
                    with m.Case(o):
                        m.d.sync += logits[o].eq(lv)
        if model.head.argmax:
            # Argmax as a registered comparison tree over the logit registers (no feedback loop):
            # a right entry (higher indices) wins only when strictly greater.
            nodes = [(v, Const(o, best_cls.shape())) for o, v in enumerate(logits)]
            level = 0
            while len(nodes) > 1:
                nxt = []
                for k in range(0, len(nodes) - 1, 2):
                    (lv_, li), (rv, ri) = nodes[k], nodes[k + 1]
                    name = f"amax{level}_{k // 2}"
                    # Compare, then select with the registered result: the inputs hold still
                    # once the last logit is written, so each level settles two cycles after
                    # the one below it (no copies of the inputs needed).
                    gt = Signal(name=f"{name}_gt")
                    m.d.sync += gt.eq(rv > lv_)
                    v = Signal.like(lv_, name=f"{name}_v")
                    i = Signal.like(best_cls, name=f"{name}_i")
                    m.d.sync += [v.eq(Mux(gt, rv, lv_)), i.eq(Mux(gt, ri, li))]
                    nxt.append((v, i))
                if len(nodes) % 2:
                    name = f"amax{level}_pass"
                    nxt.append((delay(m, nodes[-1][0], 1, f"{name}_v"),
                                delay(m, nodes[-1][1], 1, f"{name}_i")))
                nodes, level = nxt, level + 1
            m.d.comb += best_cls.eq(nodes[0][1])
        return m
