"""A request for a delta network's hardware (issue 23): which options the delta core runs, and
its plan. `hwgen.design.resolve` hands a model with thresholds here.

The first delta core (`hwgen.gateware.delta_core.DeltaAccelerator`) keeps its weights in ROMs
(column-major) and h (and c) in registers, has no zero skipping, takes vector inputs and has no
argmax unit. A request for anything else is refused naming the option, before any hardware is
built; ``auto`` options resolve to what the core does.
"""

from __future__ import annotations

from ..gateware.plan import STATE_MODES, WEIGHT_MODES, Plan, make_plan
from ..spec import HwgenError, Model, TokenInput

__all__ = ["check_delta_model", "delta_plan"]


def _refuse(what: str) -> None:
    raise HwgenError(f"this model is a delta network; the delta core does not support {what} "
                     "(docs/delta.md): drop the option, or take the dense model "
                     "(hwgen.delta.with_thresholds(model, None)) for the dense core")


def check_delta_model(model: Model) -> None:
    """Raise `HwgenError` when the delta core cannot run ``model`` (token inputs, argmax,
    per-row scales)."""
    if isinstance(model.input, TokenInput):
        _refuse("token inputs (an embedding): it takes vector inputs")
    if model.head.argmax:
        _refuse("argmax: it outputs the logits (train or import without argmax)")
    if any(m.row_mult is not None for _, m in model.matrices()):  # issue 26
        _refuse("per-row scales (row_mult): the golden model runs such a delta network exactly; "
                "the dense core runs the model without its delta thresholds")


def delta_plan(model: Model, lanes: int, state: str = "auto", weights: str = "rom",
               sparse: str = "auto") -> Plan:
    """The dense core's `Plan` of ``model``'s weights (lanes, row order, widths) that the delta
    core is built from, after checking the request: ``weights`` ``rom``, ``state`` ``auto`` or
    ``registers``, ``sparse`` ``auto`` or ``off`` (module docstring)."""
    from ..gateware.packing import SPARSE_MODES
    from .golden import with_thresholds

    if not isinstance(weights, str) or weights not in WEIGHT_MODES:
        raise HwgenError(
            f"Weight storage must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    if weights != "rom":
        _refuse(f"loadable weights (--weights {weights}): its weights are ROMs")
    if not isinstance(state, str) or state not in STATE_MODES:
        raise HwgenError(f"State storage must be one of {', '.join(STATE_MODES)}, not {state!r}")
    if state == "ram":
        _refuse("--state ram: it keeps h (and c) in registers")
    if not isinstance(sparse, str) or sparse not in SPARSE_MODES:
        raise HwgenError(f"Zero skipping must be one of {', '.join(SPARSE_MODES)}, not "
                         f"{sparse!r}")
    if sparse == "on":
        _refuse("2:4 zero skipping (--sparse on): it reads weights column by column, where "
                "2:4 rows leave no regular pattern")
    check_delta_model(model)
    return make_plan(with_thresholds(model, None), lanes, "registers", "rom", "off")
