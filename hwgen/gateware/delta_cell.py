"""The cell pass of the planned delta core (docs/delta.md, issue 23): delta memories -> cell.

After a layer's column updates, its memories M_x and M_h hold the unscaled sums of every gate
row (`hwgen.delta.golden`). The cell pass reads them row by row in the dense core's issue order
(unit-major: the plan's ``row_order``, which is also the order the memories are laid out in,
`delta_update.column_words`), scales each with its matrix's constant scaler and hands the dense
core's cell unit the same events the dense core would: per row an input-part event (term_x, the
gate bias) and, the next cycle, a recurrent-part event (term_h; the GRU n row carries b_hn). Two
cycles per row (the cell units need a row's recurrent events two cycles apart): 2*G*H cycles per
layer (`hwgen.delta.cycles` with ``row_cycles=2``).

Timing: ``start`` (one cycle, while the memories are idle) begins the pass; the memories are
read through their one-cycle ports (``mx_addr`` -> ``mx_data`` a cycle later, likewise M_h); the
events leave ``1 + scale_latency`` cycles after their row's read; ``busy`` is high from the
cycle after ``start`` until the last read.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_int
from .arith import delay, register
from .delta_update import advance_word_lane
from .delta_weights import read_port, row_words
from .plan import Plan
from .scale import ConstScaler

__all__ = ["DeltaCellPass", "row_layout"]


def row_layout(plan: Plan) -> data.StructLayout:
    """A word of the cell pass's row ROM: the row's input-part bias, its recurrent-part bias
    (the GRU n rows' b_hn, else 0), its gate and its unit."""
    m = plan.model
    bw = plan.bias_width
    return data.StructLayout({"bias_x": signed(bw), "bias_h": signed(bw),
                              "gate": range(max(m.cell.num_gates, 2)),
                              "unit": range(max(m.hidden, 2))})


class DeltaCellPass(wiring.Component):
    """Reads one layer's delta memories and emits the cell unit's events (module docstring).

    Parameters
    ----------
    plan : the dense core's `Plan` of the model (matrices, row order, widths, scale latency).
    layer : the layer whose memories are read.
    acc_x_width, acc_h_width : signed widths of the M_x / M_h entries.
    load : the row memory's load tap (`delta_weights.LoadBus.tap`, a loadable core), or None
        (default): a ROM of `delta_weights.row_words`.

    Members
    -------
    start : In(1); busy : Out(1).
    mx_addr, mh_addr : Out(range(R)); mx_data, mh_data : In(ArrayLayout(signed(acc), P)).
    valid, part, gate, unit, layer, term, bias : Out, the cell unit's event inputs (`CellUnit`).
    """

    def __init__(self, plan: Plan, layer: int, *, acc_x_width: int, acc_h_width: int,
                 load=None):
        if not isinstance(plan, Plan):
            raise HwgenError(f"Plan must be a Plan, not {plan!r}")
        m = plan.model
        self._layer = check_int("Layer", layer, minimum=0, maximum=m.num_layers - 1)
        self._plan = plan
        self._load = load  # delta_weights: the row memory, ROM (None) or loadable
        P, G, H = plan.lanes, m.cell.num_gates, m.hidden
        self._R = -(-G * H // P)
        self._aw = (acc_x_width, acc_h_width)
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "mx_addr": Out(range(max(self._R, 2))),
            "mh_addr": Out(range(max(self._R, 2))),
            "mx_data": In(data.ArrayLayout(signed(acc_x_width), P)),
            "mh_data": In(data.ArrayLayout(signed(acc_h_width), P)),
            "valid": Out(1),
            "part": Out(1),
            "gate": Out(range(max(G, 2))),
            "unit": Out(range(max(H, 2))),
            "layer": Out(range(max(m.num_layers, 2))),
            "term": Out(signed(plan.term_width)),
            "bias": Out(signed(plan.bias_width)),
        })

    @property
    def latency(self) -> int:
        """Cycles from a row's memory read to its input-part event."""
        return 1 + self._plan.timing.scale_latency

    def elaborate(self, platform):
        m = Module()
        plan, model = self._plan, self._plan.model
        P, G, H = plan.lanes, model.cell.num_gates, model.hidden
        rows = G * H
        mpx, mph = plan.matrices[2 * self._layer], plan.matrices[2 * self._layer + 1]
        # one ROM of the rows' descriptors in issue order (four ROMs of one address before: two
        # went to block RAM, two to logic, as Yosys judged them), `row_layout`; delta_weights:
        # a ROM, or a loadable RAM
        port = read_port(m, "rows", row_layout(plan), row_words(plan, self._layer), self._load,
                         block=False)
        ports = [port.data.bias_x, port.data.bias_h, port.data.gate, port.data.unit]

        # the row counter: p = word * P + lane, each row two cycles (x, then h)
        run = Signal(name="run")
        p = Signal(range(max(rows, 2)), name="p")
        word = Signal(range(max(self._R, 2)), name="word")
        lane = Signal(range(max(P, 2)), name="lane")
        phase = Signal(name="phase")
        m.d.comb += [self.busy.eq(run), self.mx_addr.eq(word), self.mh_addr.eq(word)]
        m.d.comb += port.addr.eq(p)
        with m.If(self.start & ~run):
            m.d.sync += [run.eq(1), p.eq(0), word.eq(0), lane.eq(0), phase.eq(0)]
        with m.Elif(run):
            m.d.sync += phase.eq(~phase)
            with m.If(phase):
                m.d.sync += p.eq(p + 1)
                advance_word_lane(m, word, lane, P)
                with m.If(p == rows - 1):
                    m.d.sync += run.eq(0)

        # read stage (memory data one cycle later), then the two scalers
        v1 = register(m, run, "v1", reset=True)
        part1 = register(m, phase, "part1")
        lane1 = register(m, lane, "lane1")
        b1 = register(m, Mux(phase, ports[1], ports[0]), "b1")
        g1, u1 = register(m, ports[2], "g1"), register(m, ports[3], "u1")
        ls = plan.timing.scale_latency
        terms = []
        for name, mp, src, width in (("x", mpx, self.mx_data, self._aw[0]),
                                     ("h", mph, self.mh_data, self._aw[1])):
            sc = ConstScaler(mantissa=mp.matrix.scale.mantissa, shift=mp.shift, in_width=width,
                             out_width=plan.term_width, latency=ls)
            m.submodules[f"scale_{name}"] = sc
            m.d.comb += sc.acc.eq(src[lane1])
            terms.append(sc.term)
        part = delay(m, part1, ls, "part")
        m.d.comb += [
            self.valid.eq(delay(m, v1, ls, "valid", reset=True)),
            self.part.eq(part),
            self.gate.eq(delay(m, g1, ls, "gate")),
            self.unit.eq(delay(m, u1, ls, "unit")),
            self.layer.eq(self._layer),
            self.term.eq(Mux(part, terms[1], terms[0])),
            self.bias.eq(delay(m, b1, ls, "bias")),
        ]
        return m
