"""Delta networks (issue 23): recurrent layers that process only the input and state columns
that changed by at least a threshold since they were last processed.

- `hwgen.delta.thresholds`: `DeltaThresholds`, the model file's optional ``delta`` section;
- `hwgen.delta.golden`: `DeltaGolden`, the exact integer delta network (the golden model of a
  delta core), and `DeltaStats`, the columns it processed;
- `hwgen.delta.modelfile`: the hooks that read, write and show the ``delta`` section.
"""

from .golden import (
    DeltaGolden,
    DeltaResult,
    DeltaStats,
    DeltaWidths,
    delta_widths,
    run_delta,
    with_thresholds,
)
from .thresholds import DeltaThresholds, max_threshold, threshold_formats

__all__ = [
    "DeltaThresholds",
    "DeltaGolden",
    "DeltaResult",
    "DeltaStats",
    "DeltaWidths",
    "delta_widths",
    "max_threshold",
    "run_delta",
    "threshold_formats",
    "with_thresholds",
]
