"""Designs of an exploration: trained trials on a device, their fronts and the recommendations.

A design is one trained model at one lane count on one device (`Platform`). Its hardware figures
come from hwgen's own estimator and fit check, called as they are (`hwgen.fit.fit_result`, which
runs `hwgen.estimate.estimate`): cycles per timestep (the gateware's exact schedule), LUT4,
flip-flops, logic cells, RAM blocks, DSPs and whether it fits. For a board the fit includes the
UART link a board build adds (`hwgen.boardfit.board_fit`, the check ``hwgen build`` makes).
Microseconds per timestep are the accelerator's: cycles / clock (on a board the PLL clock
``hwgen build --clock auto`` starts at, or ``--clock-mhz``); on a board the link's own time per
timestep (pipelined RUN frames at the board's fastest baud rate,
`hwgen.boardfit.BoardFit.link_us_per_timestep`) is reported beside it, and the latency
objective, its front and the latency bound use the slower of the two
(``board_us_per_timestep``: what the board delivers, the core and the link overlapping).

A design is **feasible** when its trial trained, it fits the device and (with a latency bound)
its microseconds per timestep are within the bound. Fronts and recommendations consider feasible
designs only and select on the **valid** golden metric; the test metric is reported, never used
to choose. Pure functions of the records (no Ray, no PyTorch, no tool runs).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..spec import HwgenError, Model
from ..targets import Family, get_target

__all__ = [
    "Platform",
    "make_platform",
    "COSTS",
    "OBJECTIVES",
    "design_rows",
    "failed_row",
    "TIE_BREAK",
    "pareto_front",
    "mark_fronts",
    "recommend",
    "train_command",
    "build_command",
]

#: Cost axes of the fronts: column and label.
COSTS = {
    "logic": ("logic_cells", "logic (iCE40 logic cells / ECP5 LUT4)"),
    "ram": ("bram", "RAM blocks"),
    # issue 25: on a board the link's time counts (24 us of compute behind ~3,000 us of UART
    # was "fastest"): the slower of the core and the link, what the board delivers
    "latency": ("board_us_per_timestep", "microseconds per timestep (the slower of the core "
                "and, on a board, its link)"),
}
#: Recommendation objectives, in the order they are printed.
OBJECTIVES = ("accuracy", "logic", "ram", "latency")


@dataclass(frozen=True)
class Platform:
    """Where the designs go: a device, optionally a board (whose clock and UART link count),
    and the clock at which microseconds per timestep are computed."""

    target: str
    board: str | None
    clock_mhz: float

    def to_json(self) -> dict:
        return {"target": self.target, "board": self.board, "clock_mhz": self.clock_mhz}


def make_platform(target: str | None = None, board: str | None = None,
                  clock_mhz: float | None = None) -> Platform:
    """A `Platform` from ``--board`` or ``--target`` (+ ``--clock-mhz``); one-line errors for a
    missing or contradictory choice."""
    if (target is None) == (board is None):
        raise HwgenError("give either --board or --target (not both)")
    if clock_mhz is not None and not clock_mhz > 0:
        raise HwgenError(f"the clock must be a positive frequency in MHz, not {clock_mhz!r}")
    if board is not None:
        from ..board.build import clock_mhz as build_clock
        from ..board.catalog import get_board

        b = get_board(board)
        mhz = build_clock(b, "auto", b.max_baud)
        if clock_mhz is not None:
            raise HwgenError(
                f"--clock-mhz goes with --target; on {b.name} the core runs at the PLL clock "
                f"'hwgen build --clock auto' starts at ({mhz:g} MHz)"
            )
        return Platform(b.target, b.name, mhz)
    t = get_target(target)
    if clock_mhz is None:
        raise HwgenError(
            f"--target {t.name} needs --clock-mhz (the clock for microseconds per timestep), "
            "or give --board"
        )
    return Platform(t.name, None, float(clock_mhz))


def _base_row(record: dict) -> dict:
    c = record["config"]
    return {
        "trial": record["hash"],
        "label": f"{c['cell']} h{c['hidden']}" + ("" if c.get("layers", 1) == 1
                                                 else f"x{c['layers']}") + f" {c['quant']}"
        + ("" if c.get("delta") is None else f" delta {c['delta']}"),  # issue 23
        "status": record["status"],
        "cell": c["cell"],
        "quant": c["quant"],
        "hidden": c["hidden"],
        "layers": c.get("layers", 1),
        "budget": c["budget"],
        "seed": c.get("seed", 0),
    }


def failed_row(record: dict) -> dict:
    """The table row of a trial that produced no model (error or early-stopped)."""
    row = _base_row(record)
    row.update(error=record.get("error"), seconds=record.get("seconds"),
               feasible=False, lanes=None)
    return row


def _delta_expected(record: dict, model: Model, lanes: int, worst: int) -> float:
    """Cycles per timestep of a design: the delta core's expected cycles on the trial's valid
    split (its measured fraction of columns processed, issue 23) for a delta network whose
    record has them, else ``worst`` (the estimate's, every column processed for a delta core)."""
    v = record.get("delta_valid")
    if model.delta is None or not v:
        return worst
    from ..delta.schedule import delta_schedule
    from ..design import resolve

    sched = delta_schedule(model, resolve(model, lanes).plan)
    return round(sched.expected(v["columns"], v["sos_fraction"]), 1)


def design_rows(record: dict, model: Model, plat: Platform, lanes: list[int],
                max_latency_us: float | None = None) -> list[dict]:
    """One row per lane count in ``lanes`` that the model can use (at most its widest matrix
    row, `hwgen.gateware.schedule.max_lanes`): the trial's metrics and the design's estimate,
    fit and speed."""
    from ..boardfit import board_fit
    from ..fit import fit_result
    from ..gateware.schedule import max_lanes

    rows = []
    for p in lanes:
        if p > max_lanes(model):
            continue
        if plat.board is not None:
            bf = board_fit(model, plat.board, p)
            fit, link, link_us = bf.fit, bf.link, round(bf.link_us_per_timestep, 4)
        elif model.delta is not None:  # a delta network (issue 23): the delta core's fit
            from ..boardfit import judge

            fit, link, link_us = judge(model, p, plat.target).fit, (0, 0), None
        else:
            fit, link, link_us = fit_result(model, p, plat.target), (0, 0), None
        e = fit.estimate
        cycles = _delta_expected(record, model, p, e.cycles_per_timestep)
        us = cycles / plat.clock_mhz
        step_us = max(us, link_us or 0.0)  # the core and the link overlap (pipelined frames)
        fast = max_latency_us is None or step_us <= max_latency_us
        row = _base_row(record)
        row.update({
            "lanes": p,
            "metric": record["metric"],
            "valid": record["valid"],
            "test": record["test"],
            "test_float": record["test_float"],
            "train_seconds": record["train_seconds"],
            "weight_bits": record["weight_bits"],
            "zero_fraction": record["zero_fraction"],
            "cycles": cycles,
            "cycles_worst": e.cycles_per_timestep,
            "clock_mhz": plat.clock_mhz,
            "us_per_timestep": round(us, 4),
            "luts": e.luts,
            "ffs": e.ffs,
            "link_luts": link[0],
            "link_ffs": link[1],
            "uart_us_per_timestep": link_us,
            "board_us_per_timestep": round(step_us, 4),
            "logic_cells": e.logic_cells,
            "bram": e.bram_blocks,
            "dsp": e.dsp,
            "fits": fit.fits,
            "fast_enough": fast,
            "feasible": fit.fits and fast,
            "problems": "; ".join(fit.problems + fit.warnings),
            "error": None,
        })
        rows.append(row)
    return rows


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


#: The second cost that settles exact ties on a front (equal metric and equal cost).
TIE_BREAK = {"logic_cells": "us_per_timestep", "bram": "logic_cells",
             "us_per_timestep": "logic_cells", "board_us_per_timestep": "logic_cells"}


def pareto_front(rows: list[dict], cost: str, higher_is_better: bool = True) -> list[int]:
    """Indices of the feasible rows no other feasible row dominates on (valid metric, ``cost``):
    at least as good in both and better in one. Among rows equal in both, those worse in the
    second cost `TIE_BREAK` [``cost``] are dominated too (of eight lane counts with the same RAM
    blocks, the one with the least logic stays); rows equal in all three are all kept."""
    tie = TIE_BREAK.get(cost)
    cand = [i for i, r in enumerate(rows) if r.get("feasible")]

    def key(r):
        return (r["valid"] if higher_is_better else -r["valid"], -r[cost],
                -r[tie] if tie else 0)

    front = []
    for i in cand:
        ki = key(rows[i])
        dominated = False
        for j in cand:
            kj = key(rows[j])
            if kj[0] >= ki[0] and kj[1] >= ki[1] and (kj[:2] != ki[:2] or kj[2] > ki[2]):
                dominated = True
                break
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (rows[i][cost], rows[i]["lanes"]))


def mark_fronts(rows: list[dict], higher_is_better: bool = True) -> None:
    """Set ``front_logic``, ``front_ram`` and ``front_latency`` on every row (in place)."""
    for name, (col, _) in COSTS.items():
        on = set(pareto_front(rows, col, higher_is_better))
        for i, r in enumerate(rows):
            r[f"front_{name}"] = i in on


def recommend(rows: list[dict], higher_is_better: bool = True,
              tolerance: float = 0.0) -> dict[str, dict | None]:
    """The recommended feasible design per objective (None when nothing is feasible):

    - ``accuracy``: the best valid metric; ties go to less logic, fewer RAM blocks, less time;
    - ``logic`` / ``ram`` / ``latency``: among designs within ``tolerance`` of that best valid
      metric (absolute: 0.02 = 2 points of accuracy, or 0.02 bits per character), the fewest
      logic cells / RAM blocks / microseconds per timestep; ties go to the better valid metric.
    """
    feas = [r for r in rows if r.get("feasible")]
    if not feas:
        return dict.fromkeys(OBJECTIVES)
    sign = -1.0 if higher_is_better else 1.0
    best = min(feas, key=lambda r: (sign * r["valid"], r["logic_cells"], r["bram"],
                                    r["us_per_timestep"], r["lanes"]))
    bound = best["valid"] - tolerance if higher_is_better else best["valid"] + tolerance
    near = [r for r in feas if (r["valid"] >= bound if higher_is_better else r["valid"] <= bound)]
    out = {"accuracy": best}
    for name, (col, _) in COSTS.items():
        out[name] = min(near, key=lambda r, col=col: (r[col], sign * r["valid"], r["logic_cells"],
                                                      r["us_per_timestep"], r["lanes"]))
    return out


def train_command(dataset_source: str, charlm: bool, config: dict, model_path: str) -> str:
    """The ``hwgen train`` command that reproduces a trial's model file (one torch thread, the
    same seed: the same bytes)."""
    budget = f"--budget-chars {config['budget']}" if charlm else f"--epochs {config['budget']}"
    return (
        f"hwgen train --dataset {shlex.quote(dataset_source)} --cell {config['cell']} "
        f"--hidden {config['hidden']} --layers {config.get('layers', 1)} "
        f"--quant {config['quant']} {budget} --batch {config.get('batch', 32)} "
        f"--lr {config.get('lr', 2e-3):g} --bits {config.get('bits', 8)} "
        f"--seed {config.get('seed', 0)} "
        + ("" if config.get("delta") is None else f"--delta {config['delta']} ")  # issue 23
        + f"-o {shlex.quote(model_path)}"
    )


def build_command(plat: Platform, model_path: str, lanes: int, name: str) -> str:
    """The command that builds a design: ``hwgen build`` for a board, ``hwgen generate`` +
    ``hwgen synth`` for a bare device."""
    m = shlex.quote(model_path)
    if plat.board is not None:
        return f"hwgen build {m} --board {plat.board} --lanes {lanes} -o build/{name}"
    rtl = f"rtl_out/{name}"
    return (f"hwgen generate {m} --lanes {lanes} -o {rtl} && "
            f"hwgen synth {rtl} --target {plat.target}")


def logic_label(target: str) -> str:
    """What the logic axis counts on ``target``."""
    return "logic cells" if get_target(target).family is Family.ICE40 else "LUT4"


__all__ += ["logic_label"]
