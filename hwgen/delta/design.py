"""A request for a delta network's hardware (issue 23): which options the delta core runs, and
its plan. `hwgen.design.resolve` hands a model with thresholds here.

The delta core (`hwgen.gateware.delta_core.DeltaAccelerator`) keeps its weights in ROMs
(column-major) or, loadable (``--weights ram``), in RAMs written at run time
(`hwgen.delta.loadable`), has no zero skipping, takes vector inputs and has no argmax unit. A
request for anything else is refused naming the option, before any hardware is built; ``auto``
options resolve to what the core does.

State (``--state``): ``registers`` keeps h (and c) of every layer, old and new, in flip-flops
read through multiplexers, and the encoder compares P values a chunk; ``ram`` keeps them in
block RAM (per layer two banks, `RAM_ENCODER_LANES` values a word, swapped at every timestep)
and the encoder compares that many values a chunk, read one word a cycle (its hat store then
fits one RAM block too): fewer LUTs, flip-flops and RAM blocks, ceil(I/Pe) + ceil(H/Pe) encoder
cycles per layer instead of ceil(I/P) + ceil(H/P) (`hwgen.delta.schedule`); its head takes
`head_lanes` lanes, not P. ``auto``: registers
only for a tiny state (`hwgen.gateware.plan.choose_state_mode`, as the dense core), else ram.
"""

from __future__ import annotations

import dataclasses

from ..gateware.plan import STATE_MODES, WEIGHT_MODES, Plan, choose_state_mode, make_plan
from ..spec import CellKind, HwgenError, Model, TokenInput

__all__ = ["RAM_ENCODER_LANES", "check_delta_model", "delta_plan", "delta_state_mode",
           "encoder_lanes", "head_lanes", "state_in_ram"]

#: Values a word of the block-RAM state (and a chunk of its encoder) holds: one 16-bit RAM
#: block word of 8-bit codes, one read a cycle (module docstring).
RAM_ENCODER_LANES = 2


def delta_state_mode(model: Model, lanes: int, state: str) -> str:
    """``registers`` or ``ram``: where the delta core of ``model`` on ``lanes`` lanes keeps h
    (and c) for the ``state`` option (module docstring; ``auto`` as the dense core judges a
    store: one layer's two banks)."""
    if not isinstance(state, str) or state not in STATE_MODES:
        raise HwgenError(f"State storage must be one of {', '.join(STATE_MODES)}, not {state!r}")
    H, f = model.hidden, model.formats
    width = f.state.width + (f.cell.width if model.cell is CellKind.LSTM else 0)
    words = 2 * -(-H // min(int(lanes), RAM_ENCODER_LANES))
    return choose_state_mode(2 * H * width, words, state)


def state_in_ram(plan: Plan) -> bool:
    """Whether the delta core of ``plan`` (`delta_plan`) keeps its state in block RAM."""
    return plan.state.mode == "ram"


def head_lanes(plan: Plan) -> int:
    """Lanes of the delta core's head (its column update over the O outputs): P with the state
    in registers; with it in block RAM the fewest that still take a new h column within the 2G
    cycles the cell pass spends per unit and keep the head's memory at most 4 words (flip-flops,
    `hwgen.delta.resources.LOGIC_DEPTH`): ceil(O / min(2G, 4)), at most P. The head's lanes
    were a third of the FSDD GRU core's update logic at 8 lanes for its 10 outputs."""
    if not state_in_ram(plan):
        return plan.lanes
    m = plan.model
    return min(plan.lanes, -(-m.outputs // min(2 * m.cell.num_gates, 4)))


def encoder_lanes(plan: Plan) -> int:
    """Pe, the values per encoder chunk of the delta core of ``plan``: P with the state in
    registers, `RAM_ENCODER_LANES` (at most P) with it in block RAM."""
    return min(plan.lanes, RAM_ENCODER_LANES) if state_in_ram(plan) else plan.lanes


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
    core is built from (its ``delta`` flag set), after checking the request: ``weights``
    ``rom`` or ``ram`` (a loadable core: ``model`` is then its shape's capacity model,
    `hwgen.delta.loadable`; ``spram`` is refused), ``state`` ``auto``,
    ``registers`` or ``ram`` (resolved: the plan's ``state_option`` and store modes say which,
    `state_in_ram`), ``sparse`` ``auto`` or ``off`` (module docstring)."""
    from ..gateware.packing import SPARSE_MODES
    from .golden import with_thresholds
    from .loadable import check_delta_weights

    if not isinstance(weights, str) or weights not in WEIGHT_MODES:
        raise HwgenError(
            f"Weight storage must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    check_delta_weights(weights)  # rom, or loadable in block RAM (hwgen.delta.loadable)
    if not isinstance(state, str) or state not in STATE_MODES:
        raise HwgenError(f"State storage must be one of {', '.join(STATE_MODES)}, not {state!r}")
    if not isinstance(sparse, str) or sparse not in SPARSE_MODES:
        raise HwgenError(f"Zero skipping must be one of {', '.join(SPARSE_MODES)}, not "
                         f"{sparse!r}")
    if sparse == "on":
        _refuse("2:4 zero skipping (--sparse on): it reads weights column by column, where "
                "2:4 rows leave almost no all-zero word (measured: it would not pay, docs/"
                "results.md \"Zero skipping in the delta core\")")
    check_delta_model(model)
    dense = with_thresholds(model, None)
    plan = make_plan(dense, lanes, "registers", weights, "off")  # validates the lanes
    mode = delta_state_mode(model, plan.lanes, state)
    if mode != "registers":
        plan = make_plan(dense, plan.lanes, mode, weights, "off")
    return dataclasses.replace(plan, delta=True)
