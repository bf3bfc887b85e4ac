"""Design-space exploration: from a dataset and a board to the best accelerator (docs/explore.md).

``hwgen explore`` trains every trial of a grid (cells x weight encodings x hidden sizes)
quantization-aware on Ray Tune, measures each with the golden model (valid split for selection,
test split reported), estimates every lane count of it on the device (cycles, LUT4, flip-flops,
RAM blocks, DSPs, fit; `hwgen.estimate`, `hwgen.fit`), draws the Pareto fronts and recommends a
design per objective with the commands that build it.

- `hwgen.explore.space`: trial configurations, hashes, the grid (NumPy only);
- `hwgen.explore.trial`: one trial (PyTorch);
- `hwgen.explore.designs`: estimates, fronts, recommendations (pure);
- `hwgen.explore.store`: the exploration folder and its cache;
- `hwgen.explore.report`: table, plots and summary from the folder alone;
- `hwgen.explore.runner`: Ray Tune (the ``explore`` extra; the only module that imports Ray,
  and only when an exploration runs).
"""

from .designs import Platform, make_platform, pareto_front, recommend
from .report import collect, render
from .space import TrialConfig, dataset_ref, grid, sample, trial_hash

__all__ = [
    "Platform",
    "make_platform",
    "pareto_front",
    "recommend",
    "collect",
    "render",
    "TrialConfig",
    "dataset_ref",
    "grid",
    "sample",
    "trial_hash",
]
