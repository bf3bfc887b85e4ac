"""What ``hwgen sim`` checks and reports for a delta core (issue 23), from the debug counters
the bench reads at every output transfer (manifest ``delta.counters``).

Per output, in each reset epoch: the columns the core processed for that timestep (the
difference of the ``columns`` counter) must equal the golden model's count (`DeltaStats`, every
layer), and its working cycles (the difference of the ``cycles`` counter; the first output of an
epoch adds its own transfer cycle, which the counter lacks when it is read) must not exceed the
manifest's bound (``timing.delta``: fixed + sos * clear + per_column * columns). The report: the
mean and largest measured cycles per timestep, the fraction of columns processed, the dense
core's cycles per timestep beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DeltaSimReport", "counter_ports", "check_delta_counters", "with_columns"]

_WRAP = 1 << 32


@dataclass(frozen=True)
class DeltaSimReport:
    """Measured on a delta core: per-timestep cycles (mean, max) over the outputs delivered,
    the fraction of columns processed (the golden model's count, which the core's counter
    equalled), the manifest's worst case and the dense core's cycles per timestep."""

    timesteps: int
    mean_cycles: float
    max_cycles: int
    columns_fraction: float
    worst_cycles: int
    dense_cycles: int

    def to_json(self) -> dict:
        return {"timesteps": self.timesteps, "mean_cycles_per_timestep": self.mean_cycles,
                "max_cycles_per_timestep": self.max_cycles,
                "columns_processed_fraction": self.columns_fraction,
                "worst_cycles_per_timestep": self.worst_cycles,
                "dense_core_cycles_per_timestep": self.dense_cycles}

    def summary(self) -> str:
        return (f"delta core: {self.mean_cycles:.1f} cycles/timestep measured (max "
                f"{self.max_cycles}, worst case {self.worst_cycles}; dense core "
                f"{self.dense_cycles}: {self.dense_cycles / self.mean_cycles:.2f}x), "
                f"{self.columns_fraction:.1%} of columns processed")


def counter_ports(manifest: dict) -> list[str]:
    """The counter ports the bench reads ([columns, cycles]), or [] for a dense core."""
    ports = manifest.get("delta", {}).get("counters", {}).get("ports")
    return [] if ports is None else [ports["columns"], ports["cycles"]]


def with_columns(manifest: dict, model, sequences, expected) -> list:
    """``expected`` (golden results per sequence), or, when the reference ``model`` is dense
    (a check that theta 0 is the dense network), the delta golden model's results under the
    RTL's thresholds (manifest ``delta.thresholds``), which count the columns."""
    if all(getattr(r, "columns", None) is not None for r in expected):
        return expected
    from . import DeltaGolden, DeltaThresholds

    g = DeltaGolden(model, DeltaThresholds.from_json(manifest["delta"]["thresholds"]))
    return [g.run(np.asarray(s)[None]) for s in sequences]


def check_delta_counters(manifest: dict, expected, epochs, outputs_by_epoch, counters):
    """(first violation as (sequence, timestep, what, expected, got, note) or None, a
    `DeltaSimReport`). ``expected``: the golden `DeltaResult` per sequence; ``epochs``: per
    reset epoch the (sequence, timestep) of each input; ``outputs_by_epoch``: per epoch the
    indices into ``counters`` (one [columns, cycles] per output, in order)."""
    d = manifest["timing"]["delta"]
    cycles, cols, worst_cols, bad = [], [], 0, None
    for e, inputs in enumerate(epochs):
        prev_cols, prev_cyc = 0, -1
        for (n, t), k in zip(inputs, outputs_by_epoch.get(e, []), strict=False):
            c, y = counters[k]
            got_cols, got_cyc = (c - prev_cols) % _WRAP, (y - prev_cyc) % _WRAP
            prev_cols, prev_cyc = c, y
            st = expected[n].columns
            want = int(st.x_cols[0, t].sum() + st.h_cols[0, t].sum())
            bound = (d["fixed_cycles"] + d["clear_cycles"] * (t == 0)
                     + d["cycles_per_column"] * want)
            if bad is None and got_cols != want:
                bad = (n, t, "columns processed", want, got_cols, "")
            if bad is None and got_cyc > bound:
                bad = (n, t, "cycles", bound, got_cyc, " (above the manifest's bound)")
            cycles.append(got_cyc)
            cols.append(want)
            worst_cols += sum(d["columns_per_layer"])
    arr = np.asarray(cycles, np.int64)
    report = DeltaSimReport(len(cycles), float(arr.mean()) if len(arr) else 0.0,
                            int(arr.max()) if len(arr) else 0,
                            sum(cols) / worst_cols if worst_cols else 0.0,
                            manifest["timing"]["cycles_per_timestep"],
                            d["dense_core_cycles_per_timestep"])
    return bad, report
