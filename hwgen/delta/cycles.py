"""Cycles per timestep of the planned delta core (docs/delta.md), from measured column counts.

**A model of a core that does not exist yet** (issue 23, item 3), not a measurement: it turns the
columns a delta network processed (`DeltaStats`) into the cycles a column-wise datapath with P
lanes would spend, so thresholds can be compared with the dense core's exact schedule
(`hwgen.gateware.schedule`). Per timestep:

    cycles = A + sum_l [ max(ceil((I_l + H) / P), n_l * ceil(G*H / P)) + G*H + gap ]
             + O*ceil(H/P)

- A: the dense core's input transfer and start (2 for vectors);
- ceil((I_l + H) / P): the delta encoder compares P columns per cycle, queueing the non-zero
  ones; the updates overlap it, so a layer costs the larger of the two;
- n_l * ceil(G*H / P): every processed column (n_l of layer l: input and recurrent) reads its
  weight column and updates the G*H memory rows, P lanes across rows, read-modify-write;
- G*H: the cell pass, one gate row per cycle (its M_x and M_h entries, both scaled, into a cell
  unit taking both terms of a row at once); the gates are final only after the last column, so
  the pass cannot overlap the updates as the dense core's cell does. ``row_cycles`` = 2 models
  the dense core's cell units unchanged (the input and the recurrent term of a row arrive as two
  events, at least two cycles apart): 2*G*H;
- gap: the dense core's layer gap (MAC, scaler and cell latency), kept as the pipeline latency;
- O*ceil(H/P): the head, dense, as in the dense core.

At theta 0 a delta core processes every changed column, so it is not the dense core's cycle
count: the comparison is always against `dense_cycles` (the real dense core's schedule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gateware.schedule import schedule
from ..spec import Model
from .golden import DeltaStats

__all__ = ["DeltaCycles", "delta_cycles"]


@dataclass(frozen=True)
class DeltaCycles:
    """Mean cycles per timestep of the planned delta core and of the dense core (P lanes)."""

    lanes: int
    delta: float  # mean over the counted timesteps
    worst: int  # every column of every layer processed
    dense: int  # the dense core's exact cycles per timestep

    @property
    def speedup(self) -> float:
        return self.dense / self.delta if self.delta else float("inf")

    def to_json(self) -> dict:
        return {"lanes": self.lanes, "delta": self.delta, "worst": self.worst,
                "dense": self.dense, "speedup": self.speedup}


def delta_cycles(model: Model, lanes: int, stats: DeltaStats, lengths=None, *,
                 row_cycles: int = 1) -> DeltaCycles:
    """The module docstring's cycles, averaged over the timesteps before each sequence's length
    (all timesteps without ``lengths``); ``row_cycles``: cycles of the cell pass per gate row."""
    sched = schedule(model, lanes)
    G, H, P = model.cell.num_gates, model.hidden, sched.lanes
    per_col = -(-G * H // P)
    fixed = sched.accept_cycles + sched.head_issue
    per_step = np.full(stats.x_cols.shape[:2], fixed, np.int64)
    worst = fixed
    for i in range(model.num_layers):
        width = model.layer_input_width(i)
        encode = -(-(width + H) // P)
        n = stats.x_cols[:, :, i] + stats.h_cols[:, :, i]
        cell = row_cycles * G * H
        per_step += np.maximum(encode, n * per_col) + cell + sched.layer_gap
        worst += max(encode, (width + H) * per_col) + cell + sched.layer_gap
    mask = stats.mask(lengths)
    mean = float(per_step[mask].mean()) if mask.any() else 0.0
    return DeltaCycles(P, mean, int(worst), sched.cycles_per_timestep)
