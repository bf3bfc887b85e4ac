"""The accelerator: sequencer, operand fetch, weight ROMs, MAC units, scalers, cell unit, state
stores, head and output loader (docs/architecture.md).

Data flow of one timestep:

1. ``i_stream`` delivers one input vector (or one token id, looked up in the embedding ROM) with a
   start-of-sequence flag ``sos``; the bank parity flips (the previous timestep's h becomes the
   *old* bank) and, after ``sos`` or a reset, old-state reads go to the stores' zero region.
2. For each layer, unit-major: for unit j, for each gate row, ceil(I_l/P) cycles of input-matrix
   words, then ceil(H/P) cycles of recurrent words. Each cycle one P-code word from the weight ROM
   of the matrix's encoding (words stored in issue order, so ROM addresses are counters) meets one
   P-value operand word (the input buffer, the lower layer's new h, or the layer's old h: one read
   of the state store), goes through the MAC unit of its encoding, is scaled by its matrix's
   constant scale and reaches the cell unit, which writes the unit's new h into the new bank.
   The layer then waits ``layer_gap`` cycles until its last h is written.
3. The head: O rows over the top layer's new h. Right after its last issue the next input is
   accepted; the head's logits, argmax and output register finish meanwhile (the output loader).

Every latency and wait comes from `schedule`; every structure (ROM words, stores, widths) from
`plan`. Gateware never imports the golden model.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..numerics import derive_widths
from ..spec import CellKind, HwgenError, Model, forwarded
from .arith import delay, register
from .gru import GruCell
from .layouts import input_layout, output_layout
from .loadable import LoadableMemory, load_signature, register_load_port
from .lstm import LstmCell
from .mac import MacUnit
from .mult import PipelinedMul
from .plan import Plan, make_plan
from .rnn import RnnCell
from .rom import Rom
from .scale import ConstScaler
from .schedule import (
    CELL_INPUT_DELAY,
    ISSUE_DELAY,
    READ_LATENCY,
    WRITE_DELAY,
    row_scale_latency,
)
from .sequencer import Sequencer
from .store import StateStore

__all__ = ["Accelerator", "input_layout", "output_layout"]

_CELLS = {CellKind.RNN: RnnCell, CellKind.GRU: GruCell, CellKind.LSTM: LstmCell}

#: Formal-only (`hwgen.formal.whitebox`): the output loader's control registers (`_output`), by
#: name; with the sequencer's they are the state that decides both streams' handshakes.
LOADER_REGISTERS = ("out_busy", "out_due", "out_valid", "out_timer")


class _Tag:
    """One stage of the row-tag pipeline: control bits (reset) and row information (no reset)."""

    def __init__(self, ctrl, info):
        self.ctrl, self.info = ctrl, info
        self.valid, self.bias = ctrl.valid, ctrl.bias
        self.head, self.mid, self.gate, self.unit = info.head, info.mid, info.gate, info.unit


class Accelerator(wiring.Component):
    """A recurrent-network accelerator for one `Model` with ``lanes`` weights per cycle.

    ``Accelerator(plan)`` builds exactly a resolved plan (`hwgen.design.resolve`, or
    `plan.make_plan`); ``Accelerator(model, lanes, state, weights, sparse)`` plans the request
    here (the same `make_plan`), for callers that hold no plan.

    Parameters
    ----------
    model : a `Plan`, or the frozen Model (its codes, scales, biases and tables become ROMs and
        constants).
    lanes : P, weights consumed per cycle, 1 .. max(inputs, hidden) (not with a plan).
    state : where h (and c) live: ``ram`` (block RAM), ``registers`` or ``auto`` (the plan's
        choice, `plan.choose_state_mode`).
    weights : ``rom`` (the bitstream holds weights, biases and embedding) or loadable: ``ram``
        (block RAM) or ``spram`` (single-port weight memories, for iCE40 SPRAM), written through
        ``load`` (`plan.WEIGHT_MODES`).
    sparse : zero skipping (`packing`): ``on`` builds the sparse core (2:4 sparse matrices take
        half the cycles), ``off`` the dense one, ``auto`` (default) the sparse core when it takes
        fewer cycles per timestep (`schedule.choose_sparse`).

    Members
    -------
    i_stream : In(stream.Signature(input_layout(model))); one timestep per transfer.
    o_stream : Out(stream.Signature(output_layout(model))); one transfer per timestep.
    load : In(loadable.load_signature(plan.load_images())), loadable cores only. Write only
        while no timestep is in flight; a core computes with whatever its memories hold, so
        whoever drives it (the UART link) must accept inputs only after a complete load.

    Raises
    ------
    HwgenError : for a bad lane count, state option or a model the hardware does not support.
    """

    def __init__(self, model: Model | Plan, lanes: int | None = None, state: str = "auto",
                 weights: str = "rom", sparse: str = "auto"):
        if isinstance(model, Plan):
            if (lanes, state, weights, sparse) != (None, "auto", "rom", "auto"):
                self._MustUse__silence = True  # refused, not an unused design
                raise HwgenError("an Accelerator of a plan takes no other options: the plan "
                                 "holds them")
            self._plan = model
        else:
            self._plan = make_plan(model, lanes, state, weights, sparse)
        members = {
            "i_stream": In(stream.Signature(input_layout(self._plan.model))),
            "o_stream": Out(stream.Signature(output_layout(self._plan.model))),
        }
        if self._plan.loadable:
            members["load"] = In(load_signature(self._plan.load_images()))
        super().__init__(members)

    plan = forwarded("_plan", "The `Plan` this core builds.")
    model = forwarded("_plan.model", "The model (`Plan.model`).")
    lanes = forwarded("_plan.lanes", "P, weights consumed per cycle.")
    schedule = forwarded("_plan.timing", "The timing contract (`schedule.Schedule`).")

    # -- elaboration, one named stage per method ------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        self._loaders = self._load_port(m)
        # What the datapath sees: the sequencer's outputs (registered inside it, ISSUE_DELAY).
        iss = m.submodules.sequencer = Sequencer(plan)
        wiring.connect(m, wiring.flipped(self.i_stream), iss.i_stream)
        xbuf = [iss.x[k] for k in range(self.model.input.width)]
        stores = self._stores(m)
        ops = self._operands(m, iss, xbuf, stores["state"])
        accs, held = self._macs(m, iss, ops)
        stages = self._tags(m, iss)
        terms = self._scalers(m, accs, held, stages)
        term = self._select_term(m, stages, terms)
        bias = self._bias(m, stages)
        self._cell(m, iss, stages[-1], term, bias, stores)
        logits, best = self._head(m, stages[-1], term, bias)
        m.d.comb += iss.out_busy.eq(self._output(m, iss, logits, best))
        if plan.model.embedding is not None:
            emb = self._memory(m, "embedding", plan.embedding_words(),
                               self.model.formats.input.width * len(xbuf))
            m.d.comb += [emb.addr.eq(iss.emb_addr), iss.emb_data.eq(emb.data)]
        return m

    def _load_port(self, m: Module) -> dict:
        """Loadable cores: the load port registered once (its fan-out to every memory stays off
        the link's paths); returns memory name -> (its `plan.LoadImage`, write enable, address,
        data)."""
        if not self._plan.loadable:
            return {}
        return register_load_port(m, self.load, self._plan.load_images())

    def _memory(self, m: Module, name: str, words, width: int):
        """A memory read in READ_LATENCY cycles (``addr`` -> ``data``): a `Rom` holding ``words``,
        or, in a loadable core, a `LoadableMemory` of the same shape on the load port."""
        if name not in self._loaders:
            mem = Rom(words, width)
        else:
            im, en, addr, data = self._loaders[name]
            mem = LoadableMemory(width=width, depth=len(words), single_port=im.single_port,
                                 block=not im.single_port)
            m.d.comb += [mem.wr_en.eq(en), mem.wr_addr.eq(addr), mem.wr_data.eq(data[:width])]
        m.submodules[name] = mem
        return mem

    def _stores(self, m: Module) -> dict:
        plan = self._plan
        stores = {}
        for lay in (plan.state, plan.hprev, plan.cstore):
            if lay is not None:
                stores[lay.name] = m.submodules[f"store_{lay.name}"] = StateStore(lay)
        return stores

    def _operands(self, m: Module, iss: Sequencer, xbuf: list, state: StateStore) -> list:
        """``span`` operands (P, or 2P in a sparse core), valid READ_LATENCY cycles after the
        issue: the input buffer's chunk or one word of the state store. A sparse core issues a
        matrix it cannot pack as two words per operand word (`packing`): their chunk index is
        the issue counter halved."""
        plan, model = self._plan, self.model
        P, f = plan.span, model.formats
        iw, sw = f.input.width, f.state.width
        chunk = iss.chunk
        if plan.halved:  # decoded by the sequencer, registered with the issue
            chunk = Signal.like(iss.chunk, name="op_chunk")
            m.d.comb += chunk.eq(Mux(iss.halve, iss.chunk >> 1, iss.chunk))
        # State word address: Cat(chunk, bank, layer, zero).
        fields = [chunk[: plan.chunk_bits], iss.op_bank]
        if model.num_layers > 1:
            fields.append(iss.op_layer[: plan.layer_bits])
        fields.append(iss.op_zero)
        m.d.comb += state.raddr.eq(Cat(*fields))
        # Input chunk: selected with the chunk index one cycle late and registered once, so it
        # meets the store's data READ_LATENCY cycles after the issue.
        assert READ_LATENCY == 2
        nx = -(-len(xbuf) // P)
        chunk_d = delay(m, chunk, 1, "xchunk")
        x2 = [Signal(signed(iw), name=f"xw_{k}", reset_less=True) for k in range(P)]
        if plan.paired or nx == 1:
            # One chunk (in a paired word read by both halves; in a sparse core the right
            # half's lanes start at span column 2s): static wiring from the input buffer, no
            # register. The buffer holds the accepted input from the transfer (tokens: from
            # the embedding read, before the first issue) until the next transfer, which comes
            # after the head's last issue, long after layer 0's last input word is consumed.
            s = plan.pair_split * (2 if plan.sparse else 1) if plan.paired else P
            for k in range(P):
                e = k - s if k >= s else k
                m.d.comb += x2[k].eq(xbuf[e] if e < len(xbuf) else 0)
        else:
            with m.Switch(chunk_d):
                for c in range(nx):
                    with m.Case(c):
                        for k in range(P):
                            e = c * P + k
                            m.d.sync += x2[k].eq(xbuf[e] if e < len(xbuf) else 0)
        src_x = delay(m, iss.src_x, READ_LATENCY, "src_x")
        ow = plan.operand_width
        ops = []
        for k in range(P):
            word = state.rdata[k * sw : (k + 1) * sw].as_signed()
            op = Signal(signed(ow), name=f"op_{k}")
            m.d.comb += op.eq(Mux(src_x, x2[k], word))
            ops.append(op)
        return ops

    def _macs(self, m: Module, iss: Sequencer, ops: list):
        """One weight ROM and one MAC unit per weight encoding; returns (matrix id -> acc, the
        held right half of layer 0's last paired word or None)."""
        plan = self._plan
        first = delay(m, iss.first, READ_LATENCY, "first")
        accs, held = {}, None
        for rp in plan.weight_roms:
            rom = self._memory(m, rp.name, rp.words, rp.word_bits)
            sel = Signal(name=f"sel_{rp.name}")
            with m.Switch(iss.mid):
                for i in rp.matrix_ids:
                    with m.Case(i):
                        m.d.comb += sel.eq(1)
            cnt = Signal(range(rp.depth + 1), name=f"addr_{rp.name}")
            with m.If(iss.output_start):
                m.d.sync += cnt.eq(0)
            with m.Elif(iss.issue & sel):
                m.d.sync += cnt.eq(cnt + 1)
            m.d.comb += rom.addr.eq(cnt)
            split = plan.paired and 0 in rp.matrix_ids
            mac = m.submodules[f"mac_{rp.name}"] = MacUnit(
                rp.encoding, lanes=plan.lanes, operand_width=plan.operand_width,
                acc_width=plan.acc_widths[rp.encoding], split=split, sparse=plan.sparse)
            if split:  # every layer-0 input word is a pair
                m.d.comb += mac.split.eq(delay(m, iss.src_x, READ_LATENCY, "split"))
                held = mac.held
            m.d.comb += [
                mac.valid.eq(delay(m, iss.issue & sel, READ_LATENCY, f"valid_{rp.name}",
                                   reset=True)),
                mac.first.eq(first),
                mac.codes.eq(rom.data),
            ]
            m.d.comb += [mac.operands[k].eq(op) for k, op in enumerate(ops)]
            for i in rp.matrix_ids:
                accs[i] = mac.acc
        return accs, held

    def _scalers(self, m: Module, accs: dict, held, stages: list) -> dict:
        """One constant scaler per matrix: matrix id -> scaled term. With paired input
        segments, layer 0's input scaler reads the MAC's held half for a deferred event (the tag
        says so in the cycle the accumulator would carry the event's sum). With per-row scales
        (issue 26) every scaler reads the event's accumulator times its row's multiplier
        (`_row_products`) instead."""
        plan = self._plan
        ls = plan.timing.scale_latency - row_scale_latency(plan.model)
        products = self._row_products(m, accs, held, stages)
        terms = {}
        for i, mp in plan.matrices.items():
            width = accs[i].shape().width if products is None else mp.product_width
            sc = ConstScaler(mantissa=mp.matrix.scale.mantissa, shift=mp.shift,
                             in_width=width, out_width=mp.term_width, latency=ls - 1)
            m.submodules[f"scale_{mp.name.replace('.', '_')}"] = sc
            if products is not None:  # exact: this matrix's products fit its own width
                m.d.comb += sc.acc.eq(products[:width].as_signed())
            elif i == 0 and held is not None:
                deferred = stages[plan.timing.mac_latency].info.held
                m.d.comb += sc.acc.eq(Mux(deferred, held, accs[i]))
            else:
                m.d.comb += sc.acc.eq(accs[i])
            terms[i] = sc.term
        return terms

    def _row_products(self, m: Module, accs: dict, held, stages: list):
        """Per-row scales (issue 26): ``acc * row_mult`` of every event, `row_scale_latency`
        cycles after its accumulator, or None for a model without row multipliers. One shared
        multiplier (`PipelinedMul`): the event's accumulator (its matrix's, from the tag; the
        held half for a deferred paired event) times the next entry of the row-multiplier
        memory, which holds one multiplier per event in event order (`plan.row_events`) and is
        read, like the biases, by a counter of events READ_LATENCY stages early."""
        plan = self._plan
        if plan.row_mults is None:
            return None
        ml = plan.timing.mac_latency
        ev = stages[ml]
        width = max(a.shape().width for a in accs.values())
        acc = Signal(signed(width), name="row_acc")
        with m.Switch(ev.mid):
            for i, a in accs.items():
                with m.Case(i):
                    if i == 0 and held is not None:
                        m.d.comb += acc.eq(Mux(ev.info.held, held, a))
                    else:
                        m.d.comb += acc.eq(a)
        n = len(plan.row_mults)
        rmem = self._memory(m, "row_mult", plan.row_mult_words(), plan.row_mult_width)
        raddr = Signal(range(n + 1), name="row_mult_addr")
        rnext = Signal(range(n + 1), name="row_mult_next", init=1 % n)
        with m.If(stages[ml - READ_LATENCY].valid):
            m.d.sync += [raddr.eq(rnext), rnext.eq(Mux(rnext == n - 1, 0, rnext + 1))]
        m.d.comb += rmem.addr.eq(raddr)
        mul = m.submodules.row_mul = PipelinedMul(a_width=plan.row_mult_width, b_width=width)
        assert mul.latency == row_scale_latency(plan.model)
        m.d.comb += [mul.a.eq(rmem.data), mul.b.eq(acc)]
        return mul.p

    def _tags(self, m: Module, iss: Sequencer) -> list:
        """Row tags from issue to event (mac + scale latency later). ``bias``: the event consumes
        the next bias (every input segment, every head row, the GRU n row's recurrent segment).
        With paired input segments, the first chunk of a ``defer`` segment also has an event:
        its row's input part (``held``: the MAC's held half, not its accumulator)."""
        model, sched = self.model, self._plan.timing
        ctrl = data.StructLayout({"valid": 1, "bias": 1})  # reset: no stale event after a reset
        fields = {"head": 1, "mid": unsigned(len(iss.mid)), "gate": iss.gate.shape(),
                  "unit": iss.unit.shape()}
        if self._plan.paired:
            fields["held"] = 1
        info = data.StructLayout(fields)
        c_in, i_in = Signal(ctrl, name="tag_ctrl_issue"), Signal(info, name="tag_info_issue")
        part, end = iss.part, iss.issue & iss.last
        if self._plan.paired:
            deferred = iss.first & iss.defer
            part, end = iss.part & ~deferred, iss.issue & (iss.last | deferred)
            m.d.comb += i_in.held.eq(deferred)
        takes_bias = iss.head | ~part
        if model.cell is CellKind.GRU:
            takes_bias = takes_bias | (iss.gate == 2)
        m.d.comb += [c_in.valid.eq(end), c_in.bias.eq(end & takes_bias), i_in.head.eq(iss.head),
                     i_in.mid.eq(Cat(part, iss.layer)), i_in.gate.eq(iss.gate),
                     i_in.unit.eq(iss.unit)]
        stages = [_Tag(c_in, i_in)]
        for d in range(sched.mac_latency + sched.scale_latency):
            c = Signal(ctrl, name=f"tag_ctrl_d{d}")
            i = Signal(info, name=f"tag_info_d{d}", reset_less=True)
            m.d.sync += [c.eq(stages[-1].ctrl), i.eq(stages[-1].info)]
            stages.append(_Tag(c, i))
        return stages

    def _select_term(self, m: Module, stages: list, terms: dict) -> Signal:
        """The scaled term of the event's matrix, selected one stage early and registered."""
        term = Signal(signed(self._plan.term_width), name="term", reset_less=True)
        with m.Switch(stages[-2].mid):
            for i, t in terms.items():
                with m.Case(i):
                    m.d.sync += term.eq(t)
        return term

    def _bias(self, m: Module, stages: list):
        """Bias ROM read by a counter of consuming events, READ_LATENCY stages early."""
        plan = self._plan
        bw = plan.bias_width
        brom = self._memory(m, "biases", plan.bias_words(), bw)
        # The address and its successor are both registers, so the ROM's address logic is one
        # multiplexer (Yosys folds the address register into the ROM; no adder before it).
        n = len(plan.biases)
        baddr = Signal(range(n + 1), name="bias_addr")
        bnext = Signal(range(n + 1), name="bias_next", init=1 % n)
        with m.If(stages[-1 - READ_LATENCY].bias):
            m.d.sync += [baddr.eq(bnext), bnext.eq(Mux(bnext == n - 1, 0, bnext + 1))]
        m.d.comb += brom.addr.eq(baddr)
        return brom.data.as_signed()

    def _cell(self, m: Module, iss: Sequencer, ev, term, bias, stores: dict) -> None:
        """The cell unit and its state traffic: old-state reads, new h / c writes."""
        plan, model = self._plan, self.model
        L = model.num_layers
        cell = m.submodules.cell = _CELLS[model.cell](model, term_width=plan.term_width,
                                                      bias_width=plan.bias_width)
        # CELL_INPUT_DELAY: the event reaches the cell unit through its own registers.
        assert CELL_INPUT_DELAY == 1 and WRITE_DELAY == 1
        m.d.comb += [
            cell.valid.eq(register(m, ev.valid & ~ev.head, "cell_valid", reset=True)),
            cell.part.eq(register(m, ev.mid[0], "cell_part")),
            cell.gate.eq(register(m, ev.gate, "cell_gate")),
            cell.unit.eq(register(m, ev.unit, "cell_unit")),
            cell.layer.eq(register(m, ev.mid >> 1, "cell_layer")),
            cell.term.eq(register(m, term, "cell_term")),
            cell.bias.eq(register(m, bias, "cell_bias")),
        ]
        # Writes come in unit order within a layer: counters restarted when a layer starts
        # issuing address them; no unit index travels down the cell's pipeline. The restart
        # comes one cycle after the sequencer starts the layer, no earlier than the previous
        # layer's last store write (the datapath runs ISSUE_DELAY behind the sequencer; the
        # pointers move with the cell's write, WRITE_DELAY before the store's), and takes
        # effect after it; the new layer's first write comes much later.
        assert ISSUE_DELAY == 1
        restart = Signal(name="wr_restart")
        next_layer = Signal(range(max(L, 2)), name="wr_next_layer", reset_less=True)
        wr_layer = Signal(range(max(L, 2)), name="wr_layer", reset_less=True)
        m.d.sync += [restart.eq(iss.layer_start), next_layer.eq(iss.start_layer)]
        with m.If(restart):
            m.d.sync += wr_layer.eq(next_layer)
        self._narrow_traffic(m, iss, cell, stores, restart, wr_layer)
        self._h_writes(m, iss, cell, stores["state"], restart, wr_layer)

    def _narrow_traffic(self, m: Module, iss: Sequencer, cell, stores: dict, restart,
                        wr_layer) -> None:
        """The narrow stores (GRU h_prev, LSTM c): read by the cell's (layer, unit), written in
        unit order (a counter restarted with the layer) through registers (WRITE_DELAY)."""
        plan, model = self._plan, self.model

        def narrow(unit, layer):
            fields = [unit[: plan.unit_bits]]
            if model.num_layers > 1:
                fields.append(layer[: plan.layer_bits])
            return fields

        def counter(name, we):
            ptr = Signal(range(max(model.hidden, 2)), name=name, reset_less=True)
            with m.If(restart):
                m.d.sync += ptr.eq(0)
            with m.Elif(we):
                m.d.sync += ptr.eq(ptr + 1)
            return ptr

        narrow_ports = [("hprev", cell.rd_h, cell.h_we, cell.h_data)]
        if model.cell is CellKind.LSTM:
            narrow_ports.append(("cstate", cell.rd_c, cell.c_we, cell.c_data))
        for name, rdata, we, wdata in narrow_ports:
            if name not in stores:
                continue
            st = stores[name]
            waddr = Cat(*narrow(counter(f"wr_{name}", we), wr_layer))
            m.d.comb += [
                st.raddr.eq(Cat(*narrow(cell.rd_unit, cell.rd_layer), iss.fresh)),
                rdata.eq(st.rdata.as_signed()),
                st.waddr.eq(register(m, waddr, f"wr_{name}_addr")),
                st.wen.eq(register(m, we, f"wr_{name}_en", reset=True)),
                st.wdata.eq(register(m, wdata, f"wr_{name}_data")),
            ]

    def _h_writes(self, m: Module, iss: Sequencer, cell, st: StateStore, restart,
                  wr_layer) -> None:
        """New h into the new bank of the state store: a pointer (word, one-hot lane), no
        division by P; restarted with the layer."""
        plan = self._plan
        P = plan.span  # values per state word
        use_word = Signal(range(max(plan.state_chunks, 2)), name="wr_word", reset_less=True)
        # No domain reset (``restart`` sets both before a timestep's first write): the reset
        # would join the enable's logic.
        use_lane = Signal(P, name="wr_lane", init=1, reset_less=True)
        with m.If(restart):
            m.d.sync += [use_word.eq(0), use_lane.eq(1)]
        with m.Elif(cell.h_we):
            if P == 1:
                m.d.sync += use_word.eq(use_word + 1)
            else:
                with m.If(use_lane[P - 1]):
                    m.d.sync += [use_word.eq(use_word + 1), use_lane.eq(1)]
                with m.Else():
                    m.d.sync += use_lane.eq(use_lane << 1)
        fields = [use_word[: plan.chunk_bits], iss.parity]
        if self.model.num_layers > 1:
            fields.append(wr_layer[: plan.layer_bits])
        # WRITE_DELAY: one enable flip-flop per value, the address and the (narrow) data
        # registered; the data is replicated to the P values after its register.
        m.d.comb += [
            st.waddr.eq(register(m, Cat(*fields), "wr_state_addr")),
            st.wen.eq(register(m, Mux(cell.h_we, use_lane, 0), "wr_state_en", reset=True)),
            st.wdata.eq(Cat(*[register(m, cell.h_data, "wr_state_data")] * P)),
        ]

    def _head(self, m: Module, ev, term, bias):
        """Logit registers (term + bias per head row) and a registered argmax tree."""
        model = self.model
        O = model.outputs  # noqa: E741
        logits = [Signal(signed(derive_widths(model).logit_width), name=f"logit_{o}",
                         reset_less=True) for o in range(O)]
        best = Signal(range(max(O, 2)), name="argmax")
        # term + bias registered first (one adder, then a short path to the logit registers);
        # head rows come in order, O per timestep, so a rotating one-hot pointer enables the
        # logit register: no index decoder.
        lv = Signal.like(logits[0], name="logit_new", reset_less=True)
        hv = Signal(name="logit_we")
        m.d.sync += [lv.eq(term + bias), hv.eq(ev.valid & ev.head)]
        sel = Signal(O, name="logit_sel", init=1)
        with m.If(hv):
            m.d.sync += sel.eq(Cat(sel[-1], sel[:-1]) if O > 1 else sel)
            for o in range(O):
                with m.If(sel[o]):
                    m.d.sync += logits[o].eq(lv)
        if not model.head.argmax:
            return logits, best
        # Compare, then select with the registered result: the inputs hold still once the last
        # logit is written, so each level settles two cycles after the one below it. A right
        # entry (higher index) wins only when strictly greater: the lowest index wins ties.
        nodes = [(v, Const(o, best.shape())) for o, v in enumerate(logits)]
        level = 0
        while len(nodes) > 1:
            nxt = []
            for k in range(0, len(nodes) - 1, 2):
                (lv_, li), (rv, ri) = nodes[k], nodes[k + 1]
                name = f"amax{level}_{k // 2}"
                gt = Signal(name=f"{name}_gt", reset_less=True)
                # rv > lv as the sign of lv - rv (one bit wider, so exact): a carry chain and
                # its top bit, no equality detection (a strict ">" cost three more LUT levels
                # after the chain, the UP5K's critical path with argmax)
                m.d.sync += gt.eq((lv_ - rv)[-1])
                v = Signal(lv_.shape(), name=f"{name}_v", reset_less=True)
                i = Signal(best.shape(), name=f"{name}_i", reset_less=True)
                m.d.sync += [v.eq(Mux(gt, rv, lv_)), i.eq(Mux(gt, ri, li))]
                nxt.append((v, i))
            if len(nodes) % 2:
                name = f"amax{level}_pass"
                nxt.append((delay(m, nodes[-1][0], 2, f"{name}_v"),
                            delay(m, nodes[-1][1], 2, f"{name}_i")))
            nodes, level = nxt, level + 1
        m.d.comb += best.eq(nodes[0][1])
        return logits, best

    def _output(self, m: Module, iss: Sequencer, logits: list, best) -> Signal:
        """The output loader: started by the head's last issue, it loads the output register
        ``head_drain`` cycles later (or, under backpressure, once the previous output is taken).
        Returns its busy flag (the next head waits for it)."""
        model, sched = self.model, self._plan.timing
        busy = Signal(name="out_busy")
        due = Signal(name="out_due")  # the logits (and argmax) are ready: load when free
        valid = Signal(name="out_valid")
        payload = Signal(self.o_stream.payload.shape(), name="out_payload", reset_less=True)
        m.d.comb += [self.o_stream.valid.eq(valid), self.o_stream.payload.eq(payload)]
        # A shift register times the drain: a 1 enters with the head's last issue and leaves
        # ``head_drain`` cycles later, when ``due`` rises (each register: one assignment).
        hd = sched.head_drain
        assert hd >= 2
        timer = Signal(hd - 1, name="out_timer")
        load = Signal(name="out_load")
        m.d.comb += load.eq(due & (~valid | self.o_stream.ready))
        m.d.sync += [
            timer.eq(Cat(iss.output_start, timer[:-1])),
            due.eq(timer[-1] | (due & ~load)),
            busy.eq(iss.output_start | (busy & ~load)),
            valid.eq(load | (valid & ~self.o_stream.ready)),
        ]
        with m.If(load):
            m.d.sync += [payload.logits[o].eq(v) for o, v in enumerate(logits)]
            if model.head.argmax:
                m.d.sync += payload.argmax.eq(best)
        return busy
