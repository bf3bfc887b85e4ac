"""Fit check: refuse, before any tool runs, an accelerator that cannot fit its device.

`check_fit` compares the estimate (`hwgen.estimate`) with the target's capacities: RAM blocks for
the weight ROMs and tables (block counts after tiling, padding included), LUT4s and DSPs. A model
that does not fit raises `HwgenError` naming the numbers and what would fit instead: the most lanes
that fit this device, the smallest larger device that fits these lanes, and ternary weights when the
model uses wider codes. ``hwgen synth``, ``hwgen build`` (and ``hwgen generate``) call it first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .estimate import Estimate, estimate, logic_cells
from .spec import HwgenError, Model, QuantMatrix, WeightEncoding
from .targets import TARGETS, Family, Target, get_target

__all__ = ["LUT_LIMIT", "LUT_WARN", "ICE40_FULL_RAM_LC_LIMIT", "FitResult", "fit_result",
           "judge_estimate", "check_fit", "as_ternary"]

#: A design whose estimated LUT4 count exceeds this fraction of the device is refused.
LUT_LIMIT = 1.0
#: Above this fraction the fit check passes with a warning (nextpnr may fail to route).
LUT_WARN = 0.85
#: iCE40 with every block RAM in use: above this fraction of the logic cells (estimated) the
#: design is refused. Measured on the UP5K (iCEBreaker board builds, Yosys 0.69 / nextpnr
#: 0.11.1, docs/synthesis.md "UP5K: room for lanes"): GRU 16-64-10 ternary at 32 lanes, 30 of 30
#: EBR, estimated 87% never finished placement (five attempts, three seeds); with 30 of 30 EBR
#: the designs estimated at 74-81% placed in about two minutes (at 17-20 of 30 EBR, 85-87%
#: placed: a full RAM column is what leaves the placer no room).
ICE40_FULL_RAM_LC_LIMIT = 0.85


@dataclass(frozen=True)
class FitResult:
    """The verdict of a fit check: ``problems`` empty means it fits."""

    target: str
    lanes: int
    estimate: Estimate
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:  # issue 25: the verdict and the sizes, one line
        e = self.estimate
        verdict = "fits" if self.fits else "does not fit: " + "; ".join(self.problems)
        return (f"FitResult({self.target}, {self.lanes} lanes: {verdict}; {e.luts} LUT4, "
                f"{e.ffs} FF, {e.bram_blocks} RAM blocks, {e.dsp} DSP, "
                f"{e.cycles_per_timestep} cycles per timestep"
                + (f"; {len(self.warnings)} warning(s)" if self.warnings else "") + ")")


def _problems(e: Estimate, t: Target) -> tuple[list[str], list[str]]:
    problems, warnings = [], []
    if e.bram_blocks > t.bram_count:
        problems.append(
            f"weights and tables need {e.bram_blocks} {t.bram.name} blocks "
            f"({e.bram_bits} bits with padding; "
            + (f"the packed weight words alone are {e.weight_memory_bits} bits) "
               if e.zero_skipping else f"the weight codes alone are {e.weight_bits} bits) ")
            + f"but {t.name} has {t.bram_count} ({t.bram_bits} bits)"
        )
    if e.spram_blocks > t.spram_count:
        problems.append(
            f"the weights need {e.spram_blocks} {t.spram.name} blocks but {t.name} has "
            f"{t.spram_count}"
        )
    cells = "logic cells" if t.family is Family.ICE40 else "LUT4"
    if e.logic_cells >= LUT_LIMIT * t.luts:  # a design at 100% does not place
        problems.append(
            f"the logic needs about {e.logic_cells} {cells} ({e.luts} LUT4, {e.ffs} flip-flops) "
            f"but {t.name} has {t.luts}"
        )
    elif (t.family is Family.ICE40 and e.bram_blocks >= t.bram_count
          and e.logic_cells > ICE40_FULL_RAM_LC_LIMIT * t.luts):
        problems.append(
            f"the logic needs about {e.logic_cells} {cells} "
            f"({100 * e.logic_cells / t.luts:.0f}% of {t.name}) with all {t.bram_count} "
            f"{t.bram.name} blocks in use: above {100 * ICE40_FULL_RAM_LC_LIMIT:.0f}% nextpnr "
            f"does not finish placing such a design (measured)"
        )
    elif e.logic_cells > LUT_WARN * t.luts:
        warnings.append(
            f"the logic needs about {e.logic_cells} {cells}, "
            f"{100 * e.logic_cells / t.luts:.0f}% of {t.name}: place and route may fail"
        )
    if e.ffs >= t.ffs:
        problems.append(f"the design needs about {e.ffs} flip-flops but {t.name} has {t.ffs}")
    if e.dsp > t.dsp_count:
        problems.append(f"the design needs {e.dsp} DSP blocks but {t.name} has {t.dsp_count}")
    return problems, warnings


def fit_result(model: Model, lanes: int, target: str | Target,
               extra: tuple[int, int] = (0, 0), state: str = "auto",
               weights: str = "rom", sparse: str = "auto") -> FitResult:
    """Estimate and judge; never raises for a design that does not fit (see `check_fit`).
    ``extra``: (LUTs, flip-flops[, block RAMs]) of logic around the accelerator, e.g. a board's
    link (its frame buffers take block RAM); ``sparse``: the zero-skipping option
    (`hwgen.gateware.packing.SPARSE_MODES`)."""
    t = get_target(target)
    return judge_estimate(estimate(model, lanes, t, state=state, weights=weights,
                                   sparse=sparse), t, extra)


def judge_estimate(e: Estimate, target: str | Target,
                   extra: tuple[int, int] = (0, 0)) -> FitResult:
    """The verdict on an estimate ``e`` (the dense core's, `hwgen.estimate.estimate`, or the
    delta core's, `hwgen.delta.resources`) on ``target`` with ``extra`` (as `fit_result`)."""
    t = get_target(target)
    if tuple(extra) != (0, 0):
        bd = dict(e.luts_breakdown)
        bd["around the accelerator"] = extra[0]
        luts, ffs = e.luts + extra[0], e.ffs + extra[1]
        blocks = e.bram_blocks + (extra[2] if len(extra) > 2 else 0)
        e = dataclasses.replace(e, luts=luts, ffs=ffs, luts_breakdown=bd, bram_blocks=blocks,
                                logic_cells=logic_cells(luts, ffs, t.family))
    problems, warnings = _problems(e, t)
    return FitResult(t.name, e.lanes, e, tuple(problems), tuple(warnings))


def as_ternary(model: Model) -> Model:
    """The same model shape with every matrix stored as ternary codes (for what-if estimates)."""
    tern = WeightEncoding.ternary()

    def conv(m: QuantMatrix) -> QuantMatrix:
        return QuantMatrix(np.zeros(m.codes.shape, np.uint16), tern, m.scale, None, m.row_mult)

    layers = tuple(dataclasses.replace(x, wx=conv(x.wx), wh=conv(x.wh)) for x in model.layers)
    head = dataclasses.replace(model.head, w=conv(model.head.w))
    return dataclasses.replace(model, layers=layers, head=head)


def _suggestions(model: Model, lanes: int, t: Target, extra: tuple[int, int]) -> list[str]:
    out = []
    for p in range(lanes - 1, 0, -1):
        r = fit_result(model, p, t, extra)
        if r.fits:
            out.append(
                f"--lanes {p} fits {t.name} (about {r.estimate.luts} LUT4, "
                f"{r.estimate.bram_blocks} RAM blocks, {r.estimate.cycles_per_timestep} "
                "cycles per timestep)"
            )
            break
    bigger = sorted(
        (x for x in TARGETS.values() if x.name != t.name and x.luts >= t.luts),
        key=lambda x: (x.luts, x.bram_bits),
    )
    for x in bigger:
        r = fit_result(model, lanes, x, extra)
        if r.fits:
            out.append(
                f"--target {x.name} fits {lanes} lanes (about {r.estimate.luts} of {x.luts} "
                f"LUT4, {r.estimate.bram_blocks} of {x.bram_count} RAM blocks)"
            )
            break
    if any(not m.encoding.is_ternary_like or m.encoding.bits > 2 for _, m in model.matrices()):
        tern = as_ternary(model)
        r = fit_result(tern, lanes, t, extra)
        verdict = "fit" if r.fits else "still not fit"
        out.append(
            f"ternary weights (2 bits) would {verdict} {t.name} with {lanes} lanes "
            f"(about {r.estimate.luts} LUT4, {r.estimate.bram_blocks} RAM blocks)"
        )
        if not r.fits:
            for p in range(lanes - 1, 0, -1):
                r = fit_result(tern, p, t, extra)
                if r.fits:
                    out.append(f"ternary weights with --lanes {p} fit {t.name}")
                    break
    return out


def check_fit(model: Model, lanes: int, target: str | Target,
              extra: tuple[int, int] = (0, 0), state: str = "auto",
              sparse: str = "auto", weights: str = "rom") -> FitResult:
    """Raise `HwgenError` if ``model`` on ``lanes`` lanes (plus ``extra`` (LUTs, flip-flops) of
    surrounding logic) with its weights in ``weights`` (ROMs, or memories loaded at run time)
    cannot fit ``target``; else return the verdict (its ``warnings`` may be non-empty)."""
    t = get_target(target)
    r = fit_result(model, lanes, t, extra, state, weights=weights, sparse=sparse)
    if r.fits:
        return r
    hints = _suggestions(model, r.lanes, t, extra)
    if r.estimate.zero_skipping:
        dense = fit_result(model, lanes, t, extra, state, weights=weights, sparse="off")
        if dense.fits:
            hints.insert(0, f"--sparse off (the dense core: {dense.estimate.bram_blocks} RAM "
                         f"blocks, {dense.estimate.cycles_per_timestep} cycles per timestep) "
                         f"fits {t.name}; the sparse core's state words are twice as wide")
    msg = (
        f"this model does not fit {t.name} with {r.lanes} lanes: " + "; ".join(r.problems) + "."
    )
    if hints:
        msg += " What would fit: " + "; ".join(hints) + "."
    else:
        msg += " No smaller lane count, larger device or ternary encoding fits; use fewer units."
    raise HwgenError(msg)
