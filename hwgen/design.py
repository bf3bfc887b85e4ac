"""One resolver: a request becomes a concrete, immutable `Design` once, and every stage reads it.

A request names a model, a lane count and the storage and zero-skipping options, some of them
``auto``; for a board build also the board, and the lanes may be left to the fit. `resolve` (a
lane count given) and `resolve_board` (a board) turn it into a `Design`: the model, the `Plan` of
the core as built (every option concrete: `Plan.state_option` as asked, each store's mode,
`Plan.weights`, `Plan.sparse`), and for a loadable core its shape. `hwgen.export.generate`,
`hwgen.api.build` and the core (`Accelerator(design.plan)`) read that one plan; nothing
downstream resolves an option again.

What ``auto`` means, one meaning per option, and the one place that resolves it:

- ``state``: per store, registers when it holds at most 256 bits in at most 8 words
  (`plan.REGISTER_STATE_MAX_BITS`), else block RAM. Resolved in `make_plan`
  (`plan.choose_state_mode`).
- ``sparse``: the fastest core that fits: the sparse core when it takes fewer cycles per
  timestep (an even lane count, a 2:4 packable matrix); where a device is judged (a board),
  the dense core when only it fits. Resolved in `make_plan` (`schedule.choose_sparse`) and,
  for a board, by its fit (`resolve_board`).
- ``weights`` (boards only): ROMs when they fit, else loadable memories (SPRAM where the
  device has it, else block RAM). Resolved by the board's fit (`resolve_board`).
- ``lanes`` (``None``; a board or a target): the most of 16, 8, 4, 2, 1 that fit. Resolved by
  the fit (`resolve_board`, `boardfit.choose_lanes`).

A fit check (`hwgen.boardfit.judge`) judges candidate designs made by `resolve`, so the design
`resolve_board` returns is the one the fit judged: its core planned once (a loadable core's too:
its shape's core, and the load images the link is sized by, come from that one plan).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .gateware.plan import WEIGHT_MODES, LoadImage, Plan, make_plan
from .spec import HwgenError, Model, forwarded

__all__ = ["Design", "resolve", "resolve_board", "manifest_options"]


@dataclass(frozen=True)
class Design:
    """A resolved request.

    Members
    -------
    model : the model the request named (a ROM core's contents, or what a loadable core loads).
    plan : the core as built, every option concrete; for a loadable core, the plan of its
        shape's capacity model (`hwgen.shape.capacity_model`).
    shape : a loadable core's shape (`hwgen.shape.shape_of`), else None.
    fit : a board request's `hwgen.boardfit.BoardFit` (the estimate the choices came from).
    """

    model: Model
    plan: Plan
    shape: dict | None = None
    fit: object = None

    lanes = forwarded("plan.lanes", "P, weights consumed per cycle.")
    weights = forwarded("plan.weights", "Where the weights live (`plan.WeightMode`).")
    sparse = forwarded("plan.sparse", "The core skips zeros (`hwgen.gateware.packing`).")

    @property
    def sparse_option(self) -> str:
        """``on`` / ``off``: the resolved zero-skipping option, as a request would name it."""
        return "on" if self.plan.sparse else "off"

    def load_images(self) -> list[LoadImage]:
        """What a loadable core loads to compute `model` (`hwgen.shape.load_images`)."""
        if self.shape is None:
            raise HwgenError("a ROM accelerator has no load port")
        from .shape import load_images

        return load_images(self.shape, self.model, self.plan)

    @property
    def core_model(self) -> Model:
        """The model the core is built from: `model`, or for a loadable core its shape's
        capacity model (`hwgen.shape.shape_core`; a delta core's with the shape's thresholds),
        whose widths the hardware has."""
        if self.shape is None:
            return self.model
        from .shape import shape_core

        return shape_core(self.shape, self.model)[0]

    def accelerator(self):
        """The core: `hwgen.gateware.core.Accelerator` of `plan` (a delta network's:
        `hwgen.gateware.delta_core.DeltaAccelerator`)."""
        if self.model.delta is not None:  # delta networks (issue 23)
            from .gateware.delta_core import DeltaAccelerator

            return DeltaAccelerator(self.core_model, self.plan.lanes, self.plan)
        from .gateware.core import Accelerator

        return Accelerator(self.plan)


def resolve(model: Model, lanes: int, *, state: str = "auto", weights: str = "rom",
            sparse: str = "auto") -> Design:
    """The design of ``model`` on ``lanes`` lanes with the ``state``, ``weights`` and ``sparse``
    options (module docstring: what ``auto`` means); plans the core once. A loadable core
    (``weights`` ``ram`` / ``spram``) is built for the model's shape. Raises `HwgenError` for a
    bad option or a model the hardware does not support, before building anything."""
    if not isinstance(model, Model):
        raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
    if not isinstance(weights, str) or weights not in WEIGHT_MODES:
        raise HwgenError(
            f"Weight storage must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    if model.delta is not None:  # delta networks (issue 23): the delta core, hwgen.delta.design
        from .delta.design import delta_plan

        plan = delta_plan(model, lanes, state, weights, sparse)  # checks the request first
        if weights == "rom":
            return Design(model, plan)
        from .shape import shape_core, shape_of  # a loadable delta core (hwgen.delta.loadable)

        shape = shape_of(model, plan.lanes, state, weights)
        core = shape_core(shape, model)[0]
        return Design(model, delta_plan(core, plan.lanes, state, weights, sparse), shape)
    if weights == "rom":
        return Design(model, make_plan(model, lanes, state, weights, sparse))
    from .shape import shape_core, shape_of

    shape = shape_of(model, lanes, state, weights, sparse=sparse)
    core, core_sparse = shape_core(shape, model)
    return Design(model, make_plan(core, lanes, state, weights, core_sparse), shape)


def resolve_board(model: Model, board, lanes: int | None = None, *, baud: int | None = None,
                  weights: str = "auto", sparse: str = "auto", clock="auto",
                  link: str = "uart") -> Design:
    """The design a board build makes of ``model`` on ``board``: lanes (``None``: the most that
    fit), weights and zero skipping as `hwgen.boardfit.check_board_fit` chose them (module
    docstring), the state option ``auto``; ``fit`` holds that fit. Raises `HwgenError`, naming
    what would fit, when the build cannot fit the board."""
    from .boardfit import check_board_fit

    fit = check_board_fit(model, board, lanes, baud, weights, sparse, clock, link)
    return dataclasses.replace(fit.design, fit=fit)  # the design the fit judged is the build


def manifest_options(manifest: dict) -> dict:
    """The resolved options of generated hardware, read back from its manifest: ``lanes``,
    ``state`` (the option as asked), ``weights`` and ``sparse`` (``on`` / ``off``); a
    `resolve` of the folder's model with them plans the same core."""
    memory = manifest.get("memory", {}).get("state", {})
    return {"lanes": manifest.get("lanes"),
            "state": memory.get("state_option", "auto"),
            "weights": memory.get("weights", "rom"),
            "sparse": "on" if manifest.get("timing", {}).get("zero_skipping") else "off"}
