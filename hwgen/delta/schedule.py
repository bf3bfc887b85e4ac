"""Cycles of the first delta accelerator (`hwgen.gateware.delta_core.DeltaAccelerator`): the
manifest's timing of a delta core (docs/delta.md, "Cycles of the delta core").

A delta core's cycles per timestep depend on the data: each processed column costs at most R =
ceil(G*H / P) cycles (its read-modify-write of the delta memory, R words of P rows), a skipped
one nothing but its share of a P-column encoder chunk. With n_l the columns layer l processes at
a timestep (input and recurrent, as `hwgen.delta.DeltaStats` counts them):

    cycles <= fixed + sos * clear + R * sum_l n_l

- ``fixed`` = 9 + s + sum_l [ceil(I_l / Pe) + ceil(H / Pe) + 2*G*H + c + s + 4]
  + ceil(O / P) + O - 3 when the head overlaps the top layer's cell pass (`head_overlaps`:
  ceil(O/P) <= 2G), else + 3 + ceil(O / P) + H * ceil(O / P) + O: the cycles of a timestep in
  which no column is processed (the accept cycle and the output's transfer cycle included). Per
  layer: one cycle per encoder chunk, the cell pass (two cycles per gate row: the dense cell
  unit takes a row's input and recurrent terms as two events), the cell unit's latency c and the
  scaler's s, and 4 cycles of hand-over (the skid buffer between the encoder and the update
  units one of them; one more for a layer above the first when the state is
  in block RAM: `hwgen.gateware.delta_core`'s GAP, the read of its first input word); Pe the
  encoder's values per chunk (`hwgen.delta.design.encoder_lanes`: P with the state in
  registers, 2 with it in block RAM); the head (Ph lanes, `hwgen.delta.design.head_lanes`: P,
  or fewer with the state in block RAM; read P as Ph in its terms): each new h of the top
  layer applied to its memory (ceil(O/P) cycles a column) as the cell unit writes it, or after
  the pass, the last column's ceil(O/P) cycles, one cycle per output read, and the scaler.
- ``clear`` = R + 2: after an input with ``sos`` the delta memories are cleared (all layers at
  once).
- R per processed column, an upper bound: the x and h memories are updated by two units, so a
  column may overlap the other kind's, and a processed column hides the chunk cycles after it.

The bound is exact for a timestep in which no column is processed (measured: tests/
test_delta_sim.py checks every timestep of every simulation against it, and ``hwgen sim``
reports a timestep above it as a failure). The worst case, ``cycles_per_timestep`` in the
manifest, processes every column at a start of sequence: fixed + clear + R * sum_l (I_l + H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gateware.plan import Plan
from ..gateware.schedule import schedule
from ..spec import Model

__all__ = ["DeltaSchedule", "delta_schedule", "head_overlaps"]


def head_overlaps(model: Model, lanes: int) -> bool:
    """Whether the delta core's head takes each new h of the top layer as the cell unit writes
    it (one column of ceil(O/P) cycles, new h every 2G cycles: it keeps up when ceil(O/P) <=
    2G), overlapping the cell pass; otherwise it applies the H columns after the pass."""
    return -(-model.outputs // lanes) <= 2 * model.cell.num_gates


@dataclass(frozen=True)
class DeltaSchedule:
    """The delta core's timing (module docstring)."""

    lanes: int
    fixed: int  # a timestep that processes no column
    clear: int  # extra cycles after a start of sequence
    per_column: int  # R: at most this many cycles per processed column
    columns: tuple[int, ...]  # per layer, the columns a dense core processes (I_l + H)
    dense_cycles: int  # the dense core's cycles per timestep, same model size and lanes
    thresholds: dict  # the model's thresholds (DeltaThresholds.to_json)

    @property
    def cycles_per_timestep(self) -> int:
        """The worst case: every column processed, at a start of sequence."""
        return self.fixed + self.clear + self.per_column * sum(self.columns)

    def bound(self, processed, sos) -> np.ndarray:
        """Upper bound of the cycles of timesteps that processed ``processed`` columns (all
        layers together; an array) with ``sos`` (bool array of the same shape)."""
        processed, sos = np.asarray(processed), np.asarray(sos, bool)
        return self.fixed + self.clear * sos + self.per_column * processed

    def expected(self, columns_fraction: float, sos_fraction: float) -> float:
        """The mean of `bound` over timesteps that process ``columns_fraction`` of the dense
        core's columns on average, ``sos_fraction`` of them starting a sequence (the bound is
        linear in both: what `hwgen.delta.estimate` averages over a dataset)."""
        return (self.fixed + self.clear * sos_fraction
                + self.per_column * columns_fraction * sum(self.columns))

    def to_json(self) -> dict:
        """The manifest's ``timing`` of a delta core (docs/manifest.md, "Delta cores")."""
        return {
            "lanes": self.lanes,
            "cycles_per_timestep": self.cycles_per_timestep,
            "ideal_cycles": self.fixed,
            "latency_cycles": self.cycles_per_timestep - 1,
            "zero_skipping": False,
            "delta": {
                "data_dependent": True,
                "cycles_formula": "fixed_cycles + sos * clear_cycles + cycles_per_column * "
                                  "columns_processed (an upper bound; exact with no column)",
                "fixed_cycles": self.fixed,
                "clear_cycles": self.clear,
                "cycles_per_column": self.per_column,
                "columns_per_layer": list(self.columns),
                "dense_core_cycles_per_timestep": self.dense_cycles,
                "thresholds": self.thresholds,
            },
        }


def delta_schedule(model: Model, plan: Plan) -> DeltaSchedule:
    """The timing of `DeltaAccelerator` (``model`` with thresholds, the dense ``plan`` of its
    weights)."""
    from .design import encoder_lanes, head_lanes, state_in_ram

    t = plan.timing
    P, G, H, NO = plan.lanes, model.cell.num_gates, model.hidden, model.outputs
    s, c = t.scale_latency, t.cell_latency
    pe = encoder_lanes(plan)
    ph = head_lanes(plan)
    R, Ro, ch = -(-G * H // P), -(-NO // ph), -(-H // pe)
    # the head: its clear pass, its H columns unless they overlap the cell pass, the readout
    fixed = 6 + s + Ro + NO if head_overlaps(model, ph) else 9 + s + Ro + H * Ro + NO
    columns = []
    for i in range(model.num_layers):
        width = model.layer_input_width(i)
        fixed += -(-width // pe) + ch + 2 * G * H + c + s + 4
        fixed += int(state_in_ram(plan) and i > 0)  # GAP{i}: the first word's read
        columns.append(width + H)
    dense = schedule(plan.model, P).cycles_per_timestep
    return DeltaSchedule(P, fixed, R + 2, R, tuple(columns), dense, model.delta.to_json())
