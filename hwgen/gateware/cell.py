"""What every cell unit shares: its ports and its parameters (see rnn.py, gru.py, lstm.py).

A cell unit turns the stream of scaled dot products of one layer into new state, one unit at a
time. Rows arrive unit-major (for unit j: gate 0 input part, gate 0 recurrent part, gate 1 ...),
each dot product as one *event*: ``valid`` with ``part`` 0 (input matrix) or 1 (recurrent),
``gate``, ``unit``, ``layer``, the scaled ``term`` (gate_frac fraction bits) and the ``bias`` the
core read for it (the gate bias on input-part events; PyTorch's b_hn on the GRU n gate's recurrent
event). Consecutive recurrent events are at least two cycles apart (one input and one recurrent
chunk per row at least), which the units rely on.

The unit reads old state through ``rd_layer`` / ``rd_unit`` -> ``rd_h`` (GRU) / ``rd_c`` (LSTM),
answered by the core's state stores `CellUnit.READ_LATENCY` = 2 cycles later (registered; zero
after a start of sequence), and writes through ``h_we`` / ``h_data`` and ``c_we`` / ``c_data``:
the store takes the write at the end of that cycle, which comes `schedule.cell_latency` cycles
after the recurrent event of the unit's last row. A layer's new h (and c) values come in unit
order, so the core addresses them with counters.
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import CellKind, HwgenError, Model, check_positive_int
from .schedule import READ_LATENCY

__all__ = ["CellUnit"]


def _index(n: int):
    return range(max(n, 2))


class CellUnit(wiring.Component):
    """Base of the per-cell units.

    Parameters (all but ``model`` keyword-only)
    ----------
    model : the Model whose formats and tables the unit implements.
    term_width : signed width of ``term``.
    bias_width : signed width of ``bias``.
    """

    kind: CellKind = None
    #: Cycles from ``rd_layer`` / ``rd_unit`` to ``rd_h`` / ``rd_c``.
    READ_LATENCY = READ_LATENCY

    def __init__(self, model: Model, *, term_width: int, bias_width: int):
        if not isinstance(model, Model):
            raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
        if model.cell is not self.kind:
            raise HwgenError(f"a {type(self).__name__} implements {self.kind.value} cells, "
                             f"not {model.cell.value}")
        term_width = check_positive_int("Term width", term_width)
        bias_width = check_positive_int("Bias width", bias_width)
        self._model = model
        f, H, L, G = model.formats, model.hidden, model.num_layers, model.cell.num_gates
        members = {
            "valid": In(1),
            "part": In(1),
            "gate": In(_index(G)),
            "unit": In(_index(H)),
            "layer": In(_index(L)),
            "term": In(signed(term_width)),
            "bias": In(signed(bias_width)),
            "rd_layer": Out(_index(L)),
            "rd_unit": Out(_index(H)),
            "rd_h": In(signed(f.state.width)),
            "h_we": Out(1),
            "h_data": Out(signed(f.state.width)),
        }
        if model.cell is CellKind.LSTM:
            members.update(
                {
                    "rd_c": In(signed(f.cell.width)),
                    "c_we": Out(1),
                    "c_data": Out(signed(f.cell.width)),
                }
            )
        super().__init__(members)

    @property
    def model(self) -> Model:
        return self._model
