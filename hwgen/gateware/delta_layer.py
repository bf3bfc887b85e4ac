"""One layer of the planned delta core (docs/delta.md, issue 23): encoder, column updates, cell.

`DeltaEncoder` (its hat store holds the layer's x_hat in chunk addresses 0 .. cx-1 and h_hat in
cx .. cx+ch-1, cx = ceil(I/P), ch = ceil(H/P)) -> a router (columns of the x region to M_x's
`DeltaColumnUpdate`, of the h region to M_h's; the end marker to both) -> when both have applied
every column, the `DeltaCellPass` reads M_x / M_h into the dense core's cell unit, which writes
the layer's new h (and c) in unit order.

What the core's sequencer does around it (and the tests' bench does now): at a start of sequence
pulse ``clear`` (M = 0, R cycles, while idle) and mark the timestep's chunks ``fresh``; per
timestep offer the x chunks (the input, or the layer below's new h) with theta_x, then the h
chunks (the layer's old h) with theta_h, the last one marked ``last``; answer the cell unit's
``rd_unit`` with the old h (and c) two cycles later; take ``h_we`` / ``h_data`` (and ``c_we`` /
``c_data``) into the new bank. ``busy`` stays high from the first chunk until the cell pass has
read its last row.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..numerics import derive_widths
from ..spec import CellKind, HwgenError, check_int
from .core import _CELLS
from .delta_cell import DeltaCellPass
from .delta_encoder import DeltaEncoder, encoder_input_layout
from .delta_update import DeltaColumnUpdate
from .delta_weights import image_name, tap_of
from .plan import Plan

__all__ = ["DeltaLayer"]


class DeltaLayer(wiring.Component):
    """One delta layer (module docstring).

    Parameters
    ----------
    plan : the dense core's `Plan` of the model (lanes, row order, widths).
    layer : which layer.
    enc_lanes : the encoder's lanes Pe, values per chunk (default: the plan's lanes P; the
        delta core with its state in block RAM uses fewer, `hwgen.delta.design.encoder_lanes`).
        The chunks are then ceil(I / Pe) and ceil(H / Pe); the update units keep P lanes.
    load : a loadable core's `delta_weights.LoadBus` (its weight and row memories written at run
        time), or None (default): ROMs.

    Members
    -------
    i_stream : In(stream.Signature(encoder_input_layout(P, value_width, cx + ch))).
    clear : In(1); busy : Out(1).
    column : Out(1), high in every cycle a processed column goes to its update unit (what the
        golden model's `DeltaStats` counts; for the cycle counters of ``hwgen sim``).
    rd_unit : Out(range(H)); rd_h : In(signed(state width)); h_we : Out(1); h_data : Out(...).
    LSTM also rd_c : In, c_we : Out(1), c_data : Out.
    """

    def __init__(self, plan: Plan, layer: int, enc_lanes: int | None = None, load=None):
        if not isinstance(plan, Plan):
            raise HwgenError(f"Plan must be a Plan, not {plan!r}")
        model = plan.model
        self._layer = check_int("Layer", layer, minimum=0, maximum=model.num_layers - 1)
        self._plan = plan
        self._load = load  # delta_weights.LoadBus of a loadable core, else None
        H, f = model.hidden, model.formats
        P = self._pe = plan.lanes if enc_lanes is None else check_int(
            "Encoder lanes", enc_lanes, minimum=1, maximum=plan.lanes)
        self._cx = -(-model.layer_input_width(layer) // P)
        self._ch = -(-H // P)
        self._vw = max(model.layer_input_format(layer).width, f.state.width)
        members = {
            "i_stream": In(stream.Signature(
                encoder_input_layout(P, self._vw, self._cx + self._ch))),
            "clear": In(1),
            "busy": Out(1),
            "column": Out(1),
            "rd_unit": Out(range(max(H, 2))),
            "rd_h": In(signed(f.state.width)),
            "h_we": Out(1),
            "h_data": Out(signed(f.state.width)),
        }
        if model.cell is CellKind.LSTM:
            members.update({"rd_c": In(signed(f.cell.width)), "c_we": Out(1),
                            "c_data": Out(signed(f.cell.width))})
        super().__init__(members)

    @property
    def chunks(self) -> tuple[int, int]:
        """(x chunks, h chunks): the hat-store regions [0, cx) and [cx, cx + ch)."""
        return self._cx, self._ch

    def elaborate(self, platform):
        m = Module()
        plan, model, i = self._plan, self._plan.model, self._layer
        P = plan.lanes
        lw = derive_widths(model).layers[i]
        dw = self._vw + 1
        m.submodules.enc = enc = DeltaEncoder(lanes=self._pe, value_width=self._vw,
                                              chunks=self._cx + self._ch)
        ups = []
        for name, mid, width in (("x", 2 * i, lw.acc_x_width), ("h", 2 * i + 1, lw.acc_h_width)):
            mp = plan.matrices[mid]
            load = tap_of(self._load, image_name(mp.name))  # delta_weights: ROM, or loaded
            up = DeltaColumnUpdate(matrix=mp.matrix, lanes=P, delta_width=dw, acc_width=width,
                                   row_order=mp.row_order, load=load)
            m.submodules[f"upd_{name}"] = up
            ups.append(up)
        ux, uh = ups
        m.submodules.cp = cp = DeltaCellPass(plan, i, acc_x_width=lw.acc_x_width,
                                             acc_h_width=lw.acc_h_width,
                                             load=tap_of(self._load, f"layer{i}_rows"))
        m.submodules.cell = cell = _CELLS[model.cell](model, term_width=plan.term_width,
                                                      bias_width=plan.bias_width)
        wiring.connect(m, wiring.flipped(self.i_stream), enc.i_stream)

        # router: x-region columns to M_x, h-region columns to M_h, the end marker to both
        o = enc.o_stream
        base = self._cx * self._pe
        is_x = o.p.column < base
        m.d.comb += [
            ux.i_stream.p.column.eq(o.p.column),
            uh.i_stream.p.column.eq(o.p.column - base),
            ux.i_stream.p.delta.eq(o.p.delta), uh.i_stream.p.delta.eq(o.p.delta),
            ux.i_stream.p.end.eq(o.p.end), uh.i_stream.p.end.eq(o.p.end),
        ]
        with m.If(o.p.end):
            m.d.comb += [ux.i_stream.valid.eq(o.valid & uh.i_stream.ready),
                         uh.i_stream.valid.eq(o.valid & ux.i_stream.ready),
                         o.ready.eq(ux.i_stream.ready & uh.i_stream.ready)]
        with m.Elif(is_x):
            m.d.comb += [ux.i_stream.valid.eq(o.valid), o.ready.eq(ux.i_stream.ready)]
        with m.Else():
            m.d.comb += [uh.i_stream.valid.eq(o.valid), o.ready.eq(uh.i_stream.ready)]
        m.d.comb += [ux.clear.eq(self.clear), uh.clear.eq(self.clear)]

        m.d.comb += self.column.eq(o.valid & o.ready & ~o.p.end)
        # the end marker reaches both units in one cycle, so their ``done`` pulses coincide
        m.d.comb += [
            cp.start.eq(ux.done & uh.done),
            ux.raddr.eq(cp.mx_addr), uh.raddr.eq(cp.mh_addr),
            cp.mx_data.eq(ux.rdata), cp.mh_data.eq(uh.rdata),
        ]
        for name in ("valid", "part", "gate", "unit", "layer", "term", "bias"):
            m.d.comb += getattr(cell, name).eq(getattr(cp, name))
        m.d.comb += [self.rd_unit.eq(cell.rd_unit), cell.rd_h.eq(self.rd_h),
                     self.h_we.eq(cell.h_we), self.h_data.eq(cell.h_data)]
        if model.cell is CellKind.LSTM:
            m.d.comb += [cell.rd_c.eq(self.rd_c), self.c_we.eq(cell.c_we),
                         self.c_data.eq(cell.c_data)]

        # busy: from the first chunk to the cell pass's last read
        active = Signal(name="active")
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += active.eq(1)
        with m.Elif(cp.start):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active | cp.busy | cp.start | ux.busy | uh.busy)
        return m
