"""One layer of the planned delta core (docs/delta.md, issue 23): encoder, column updates, cell.

`DeltaEncoder` (its hat store holds the layer's x_hat in chunk addresses 0 .. cx-1 and h_hat in
cx .. cx+ch-1, cx = ceil(I/P), ch = ceil(H/P)) -> a skid buffer (`_Skid`: registered ready, one
cycle) -> a router (columns of the x region to M_x's
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

        # a skid buffer between the encoder and the router: its ready is a register, so no
        # combinational path runs from the update units' ready back into the encoder and the
        # sequencer; the router's x / h choice is made on the way in and registered
        o = enc.o_stream
        x_columns = self._cx * self._pe  # columns below this are x's, the rest h's
        s = _Skid(m, o, x_columns)
        m.d.comb += [
            ux.i_stream.p.column.eq(s.column),
            uh.i_stream.p.column.eq(s.column - x_columns),
            ux.i_stream.p.delta.eq(s.delta), uh.i_stream.p.delta.eq(s.delta),
            ux.i_stream.p.end.eq(s.end), uh.i_stream.p.end.eq(s.end),
        ]
        with m.If(s.end):
            m.d.comb += [ux.i_stream.valid.eq(s.valid & uh.i_stream.ready),
                         uh.i_stream.valid.eq(s.valid & ux.i_stream.ready),
                         s.ready.eq(ux.i_stream.ready & uh.i_stream.ready)]
        with m.Elif(s.is_x):
            m.d.comb += [ux.i_stream.valid.eq(s.valid), s.ready.eq(ux.i_stream.ready)]
        with m.Else():
            m.d.comb += [uh.i_stream.valid.eq(s.valid), s.ready.eq(uh.i_stream.ready)]
        m.d.comb += [ux.clear.eq(self.clear), uh.clear.eq(self.clear)]

        m.d.comb += self.column.eq(s.valid & s.ready & ~s.end)
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


class _Skid:
    """A two-entry skid buffer on the encoder's output ``o`` inside module ``m``: ``o.ready`` is
    a register (the second entry empty), the output (``valid``, ``column``, ``delta``, ``end``,
    ``is_x``: column < ``x_columns``) a register, taken when the caller's ``ready`` is high.
    Full rate with a consumer that never stalls; one cycle of latency. The control fields have
    a reset (the core's white-box proof keys on them), the payload none."""

    def __init__(self, m, o, x_columns: int):
        lay = o.p.shape()
        self.ready = Signal(name="skid_ready")
        self.valid, skid_valid = Signal(name="out_valid"), Signal(name="skid_valid")
        self.end, skid_end = Signal(name="out_end"), Signal(name="skid_end")
        self.is_x, skid_x = Signal(name="out_x"), Signal(name="skid_x")
        self.column = Signal(lay["column"].shape, name="out_column", reset_less=True)
        self.delta = Signal(lay["delta"].shape, name="out_delta", reset_less=True)
        skid_col = Signal.like(self.column, name="skid_column")
        skid_delta = Signal.like(self.delta, name="skid_delta")
        take_in = o.valid & ~skid_valid
        m.d.comb += o.ready.eq(~skid_valid)
        fields = (o.p.end, o.p.column < x_columns, o.p.column, o.p.delta)
        with m.If(~self.valid | self.ready):
            with m.If(skid_valid):
                m.d.sync += [self.valid.eq(1), skid_valid.eq(0), self.end.eq(skid_end),
                             self.is_x.eq(skid_x), self.column.eq(skid_col),
                             self.delta.eq(skid_delta)]
            with m.Else():
                m.d.sync += [self.valid.eq(take_in), self.end.eq(fields[0]),
                             self.is_x.eq(fields[1]), self.column.eq(fields[2]),
                             self.delta.eq(fields[3])]
        with m.Elif(take_in):
            m.d.sync += [skid_valid.eq(1), skid_end.eq(fields[0]), skid_x.eq(fields[1]),
                         skid_col.eq(fields[2]), skid_delta.eq(fields[3])]
