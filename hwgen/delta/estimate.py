"""``hwgen estimate`` of a delta network (issue 23): the delta core's cycles per timestep, from
the manifest's formula (`hwgen.delta.schedule`) and, with a dataset, its measured column counts.

The bound per timestep (fixed + sos * clear + R * columns processed) is the core's exact cycle
count when no column is processed and within a few percent above it otherwise (measured by
``hwgen sim``); over a dataset's test split, its mean is the expected cycles per timestep. The
dense core's exact schedule of the same model and lanes stands beside it. Resources:
`hwgen.delta.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import HwgenError, Model

__all__ = ["DeltaEstimate", "delta_estimate", "format_delta_estimate"]


@dataclass(frozen=True)
class DeltaEstimate:
    """The delta core's cycles: worst case, none processed, per column; with a dataset the
    expected (mean bound) cycles per timestep and the fraction of columns processed."""

    lanes: int
    worst: int
    fixed: int
    per_column: int
    dense: int
    dataset: str | None = None
    timesteps: int = 0
    columns_fraction: float | None = None
    expected: float | None = None

    def to_json(self) -> dict:
        return {"core": "delta", "lanes": self.lanes, "cycles_per_timestep": self.worst,
                "fixed_cycles": self.fixed, "cycles_per_column": self.per_column,
                "dense_core_cycles_per_timestep": self.dense, "dataset": self.dataset,
                "timesteps": self.timesteps, "columns_processed_fraction": self.columns_fraction,
                "expected_cycles_per_timestep": self.expected,
                "expected_speedup": None if not self.expected else self.dense / self.expected}


def delta_estimate(model: Model, lanes: int, sequences=None, name: str | None = None
                   ) -> DeltaEstimate:
    """The delta core of ``model`` on ``lanes`` lanes; ``sequences`` (input codes, each (T, I),
    from a start of sequence; ``name`` the dataset's) give the expected cycles."""
    from ..design import resolve
    from .golden import DeltaGolden
    from .schedule import delta_schedule

    design = resolve(model, lanes)
    sched = delta_schedule(model, design.plan)
    if sequences is None:
        return DeltaEstimate(design.lanes, sched.cycles_per_timestep, sched.fixed,
                             sched.per_column, sched.dense_cycles)
    if not len(sequences):
        raise HwgenError(f"{name}: no sequences to measure")
    g = DeltaGolden(model)
    bounds, done, steps = [], 0, 0
    for s in sequences:
        st = g.run(np.asarray(s)[None]).columns
        n = (st.x_cols + st.h_cols)[0].sum(-1)
        bounds.append(sched.bound(n, np.arange(len(n)) == 0))
        done += int(n.sum())
        steps += len(n)
    expected = float(np.concatenate(bounds).mean())
    return DeltaEstimate(design.lanes, sched.cycles_per_timestep, sched.fixed, sched.per_column,
                         sched.dense_cycles, name, steps, done / (steps * sum(sched.columns)),
                         expected)


def format_delta_estimate(e: DeltaEstimate, target: str | None = None) -> str:
    """The lines ``hwgen estimate`` prints for a delta core."""
    lines = [f"core        delta (docs/delta.md), {e.lanes} lanes"
             + (f" on {target}" if target else ""),
             f"cycles      {e.worst} per timestep worst case (every column), {e.fixed} with no "
             f"column processed, at most {e.per_column} per processed column; the dense core: "
             f"{e.dense}"]
    if e.expected is not None:
        lines.append(f"expected    {e.expected:.1f} cycles per timestep on {e.dataset} "
                     f"({e.timesteps} timesteps, {e.columns_fraction:.1%} of columns processed):"
                     f" {e.dense / e.expected:.2f}x fewer than the dense core")
    return "\n".join(lines)
