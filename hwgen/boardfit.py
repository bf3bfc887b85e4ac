"""Sizing for a board: the fit check and speed of an accelerator *as a board build makes it*.

A board build (`hwgen.board.build.build_board`) wraps the accelerator in a UART link, so it needs
more logic than the bare accelerator that ``hwgen estimate --target`` judges. This module is a thin
layer over the public estimate and fit functions (`hwgen.estimate.estimate`,
`hwgen.estimate.uart_link_cost`, `hwgen.fit.fit_result`): it adds the link's cost, chooses the lane
count the same way ``hwgen build`` does, phrases what would fit in the options of ``hwgen build``
(``--lanes``, ``--board``), and gives the time per timestep at the board's clock and over its
link (RUN frames of many timesteps, pipelined, docs/uart.md "Throughput").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .board.top import LINKS
from .estimate import LINK_BUFFER_BLOCKS, uart_link_cost
from .fit import FitResult, fit_result
from .spec import HwgenError, Model
from .targets import Family, get_target

__all__ = ["LANE_CHOICES", "BOARD_WEIGHTS", "BoardFit", "Judged", "judge", "judge_lanes",
           "link_bytes", "link_cost", "choose_lanes", "loadable_storage", "board_fit",
           "check_board_fit"]

#: Accepted values of ``hwgen build --weights``: `plan.WEIGHT_MODES` and ``auto`` (ROMs when they
#: fit, else loadable weights: SPRAM on iCE40 UP5K, block RAM elsewhere).
BOARD_WEIGHTS = ("auto", "rom", "ram", "spram")

#: Lane counts tried when none is given, most first (``hwgen build``, ``hwgen demo``).
LANE_CHOICES = (16, 8, 4, 2, 1)


def link_bytes(model: Model) -> tuple[int, int]:
    """(input, output) payload bytes of one timestep on the UART link."""
    from amaranth.hdl import Shape

    from .gateware.core import input_layout, output_layout

    return (-(-Shape.cast(input_layout(model)).width // 8),
            -(-Shape.cast(output_layout(model)).width // 8))


#: What a loadable iCE40 board build (core + link) has beyond the estimate of its core and
#: link, from Yosys 0.69 runs of the board tops (flip-flops before the netlist passes): GRU
#: 16-64-10 int8 --weights spram at 4 lanes +344 LUT4 / +459 FF, at 8 lanes +370 / +602 (that
#: build then needed 6123 logic cells of 5280, estimated 5157); GRU 16-256-10 ternary spram at 16
#: lanes +314 / +777. A line through those: LUTs +345, flip-flops +350 + 27 per lane (the 8-lane
#: point 6% above it). Less what issue 22's smaller link saves, measured on the GRU 16-256-10
#: ternary spram board top at 4 lanes (Yosys 0.69, flat, before the passes: 2533 -> 2490 LUT4,
#: 3601 -> 3378 FF; the link does not depend on the lanes): LUTs +302, flip-flops +127 + 27 per
#: lane. The iCE40 delay-line pass (`hwgen.netlist.ice40_delay_lines_to_ram`) is not counted:
#: placed designs have fewer logic cells than this estimate where block RAM is free.
ICE40_LOADABLE_EXCESS = {"lut": 302, "ff": 127, "ff_lane": 27}


class Judged(NamedTuple):
    """A candidate design and its verdict: ``design`` (`hwgen.design.Design`, planned once),
    ``link`` (LUTs, flip-flops, RAM blocks counted around it: (0, 0) for a bare core) and ``fit``
    (`hwgen.fit.FitResult` of ``design.plan`` with ``link``)."""

    design: object
    link: tuple
    fit: FitResult


def judge(model: Model, lanes: int, target, weights: str = "rom", sparse: str = "auto", *,
          link: bool = False) -> Judged:
    """The design a request of these options makes (`hwgen.design.resolve`: its core planned
    once, a loadable core for the model's shape) judged on ``target``; ``link``: with the cost
    of a board build's link around it (`link_cost`). The one place a fit check plans a core."""
    from .design import resolve

    design = resolve(model, lanes, weights=weights, sparse=sparse)
    around = link_cost(design.plan, target) if link else (0, 0)
    if model.delta is not None:  # delta networks (issue 23): the delta core's own estimate
        from .delta.resources import delta_resources
        from .fit import judge_estimate

        e = delta_resources(design.core_model, design.plan, target)  # loadable: its capacity
        return Judged(design, around, judge_estimate(e, target, around))
    return Judged(design, around, fit_result(design.plan, lanes, target, around))


def choose_lanes(model: Model, target, weights: str = "rom", sparse: str = "auto",
                 judged: dict | None = None, *, link: bool = False) -> int:
    """The most lanes of `LANE_CHOICES` (at most the model's widest matrix allows) whose design
    fits ``target`` without a warning (above `hwgen.fit.LUT_WARN` of the logic place and route
    may fail: the 8-lane int8 board build picked at an estimated 98% needed 116%), else the most
    that fit with one, each judged by `judge` (``link``: with a board build's link around it)
    with the zero-skipping option ``sparse`` (``auto``: the dense core counts too where the
    sparse one does not fit); the fewest when none fits (the fit check then says why).
    ``judged``: a dict that keeps every `Judged` made, by (lanes, sparse), for the caller to
    reuse."""
    from .gateware.schedule import max_lanes

    options = (sparse, "off") if sparse == "auto" else (sparse,)
    judged = {} if judged is None else judged

    def verdict(p, s):  # each design planned and judged once, and only when needed
        if (p, s) not in judged:
            judged[p, s] = judge(model, p, target, weights, s, link=link)
        return judged[p, s].fit

    candidates = [p for p in LANE_CHOICES if p <= max_lanes(model)] or [1]
    for clean in (True, False):
        for p in candidates:
            if any((f := verdict(p, s)).fits and (not clean or not f.warnings)
                   for s in options):
                return p
    return candidates[-1]


def judge_lanes(model: Model, lanes: int | None, target, weights: str = "rom",
                sparse: str = "auto", judged: dict | None = None, *,
                link: bool = False) -> Judged:
    """`judge` at ``lanes`` (None: `choose_lanes`), reusing a verdict ``judged`` already holds
    (by (lanes, sparse)) instead of planning it again."""
    judged = {} if judged is None else judged
    if lanes is None:
        lanes = choose_lanes(model, target, weights, sparse, judged, link=link)
    if (lanes, sparse) not in judged:
        judged[lanes, sparse] = judge(model, lanes, target, weights, sparse, link=link)
    return judged[lanes, sparse]


def loadable_storage(target) -> str:
    """Where ``--weights auto`` puts weights that ROMs cannot hold: SPRAM where the device has it
    (iCE40 UP5K), else block RAM."""
    return "spram" if get_target(target).spram_count else "ram"


def link_cost(plan, target: str) -> tuple[int, int, int]:
    """(LUTs, flip-flops, block RAMs) of the link a board build puts around the core ``plan``
    (`hwgen.gateware.plan.Plan`): a loadable core's load engine is sized by its load images;
    for a loadable iCE40 build also the measured excess of such builds over their estimates
    (`ICE40_LOADABLE_EXCESS`), which the fit check reports with the link."""
    payload = link_bytes(plan.model)
    if not plan.loadable:
        return (*uart_link_cost(*payload, target), LINK_BUFFER_BLOCKS)
    images = plan.load_images()
    word_bytes = -(-max(im.width for im in images) // 8)
    luts, ffs = uart_link_cost(*payload, target, load=(len(images), word_bytes))
    if get_target(target).family is Family.ICE40:
        c = ICE40_LOADABLE_EXCESS
        luts, ffs = luts + c["lut"], ffs + round(c["ff"] + c["ff_lane"] * plan.lanes)
    return luts, ffs, LINK_BUFFER_BLOCKS


@dataclass(frozen=True)
class BoardFit:
    """The estimate of a board build: ``fit`` counts the UART link (``link`` = its LUTs and
    flip-flops); times per timestep at the core clock the build starts at (``clock_mhz``: the
    PLL frequency of ``clock`` = ``auto`` / MHz, or the oscillator for ``board``; compute) and
    over the UART (link). ``weights``: where the build keeps the weights (`BOARD_WEIGHTS`,
    never ``auto``); ``design``: the `hwgen.design.Design` judged (what the build builds)."""

    board: str
    target: str
    clock_mhz: float
    baud: int
    link: tuple[int, int]
    payload_bytes: tuple[int, int]
    fit: FitResult
    weights: str = "rom"
    clock: str = "auto"
    link_type: str = "uart"
    design: object = field(default=None, compare=False, repr=False)

    @property
    def lanes(self) -> int:
        return self.fit.lanes

    def __repr__(self) -> str:  # issue 25: what a board build gives, one line
        e = self.fit.estimate
        verdict = "fits" if self.fits else "does not fit: " + "; ".join(self.fit.problems)
        link = (f"SPI {self.sclk_mhz:g} MHz" if self.link_type == "spi"
                else f"UART {self.baud} baud")
        return (f"BoardFit({self.board} ({self.target}), {self.lanes} lanes at "
                f"{self.clock_mhz:g} MHz, {self.weights} weights: {verdict}; {e.luts} LUT4, "
                f"{e.ffs} FF, {e.bram_blocks} RAM blocks; {self.us_per_timestep:.2f} us compute "
                f"+ {self.link_us_per_timestep:.2f} us {link} per timestep, "
                f"{self.board_timesteps_per_second:,.0f} timesteps/s)")

    @property
    def fits(self) -> bool:
        return self.fit.fits

    @property
    def us_per_timestep(self) -> float:
        """Accelerator time per timestep at the board clock (cycles / MHz)."""
        return self.fit.estimate.cycles_per_timestep / self.clock_mhz

    @property
    def link_us_per_timestep(self) -> float:
        """Link time per timestep with RUN frames of the build's most steps, pipelined (what
        ``hwgen run`` sends; docs/uart.md "Throughput"): the longer direction, every logit
        answered (mode all); UART at 10 bits per byte, SPI at 8 bits per byte slot at the fastest
        SCLK (a quarter of the core clock)."""
        from .uart.engine import default_max_steps
        from .uart.protocol import HEADER_BYTES, RUN_HEADER_BYTES, TRAILER_BYTES

        in_b, out_b = self.payload_bytes
        count = default_max_steps(in_b, out_b)
        frame = HEADER_BYTES + TRAILER_BYTES
        per_step = max(in_b + (frame + RUN_HEADER_BYTES) / count, out_b + frame / count)
        if self.link_type == "spi":
            return per_step * 8 / self.sclk_mhz
        return per_step * 10 / self.baud * 1e6

    @property
    def sclk_mhz(self) -> float:
        """The fastest SPI clock the target follows at this core clock (`SpiPhy`)."""
        from .uart.spi import MIN_CLOCK_RATIO

        return self.clock_mhz / MIN_CLOCK_RATIO

    @property
    def board_timesteps_per_second(self) -> float:
        """What the board delivers: the slower of the core and the link (they overlap)."""
        return 1e6 / max(self.us_per_timestep, self.link_us_per_timestep)

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "target": self.target,
            "clock_mhz": self.clock_mhz,
            "clock": self.clock,
            "link": self.link_type,
            "baud": self.baud,
            "lanes": self.lanes,
            "weights": self.weights,
            "uart_link": {"luts": self.link[0], "ffs": self.link[1],
                          "bram_blocks": self.link[2] if len(self.link) > 2 else 0,
                          "input_bytes": self.payload_bytes[0],
                          "output_bytes": self.payload_bytes[1]},
            "us_per_timestep": self.us_per_timestep,
            "link_us_per_timestep": self.link_us_per_timestep,
            "board_timesteps_per_second": self.board_timesteps_per_second,
            "estimate": self.fit.estimate.to_json(),
            "fits": self.fits,
            "problems": list(self.fit.problems),
            "warnings": list(self.fit.warnings),
        }


def board_fit(model: Model, board, lanes: int | None = None, baud: int | None = None,
              weights: str = "rom", sparse: str = "auto", clock="auto",
              link: str = "uart") -> BoardFit:
    """Estimate ``model`` built for ``board`` (a name or `hwgen.board.catalog.Board`) with ``lanes``
    lanes (default: `choose_lanes`), ``weights`` storage (`BOARD_WEIGHTS`; ``auto``: ROMs if
    they fit, else loadable) and zero skipping ``sparse`` (`hwgen.gateware.packing`; ``auto``:
    the sparse core when it is faster and fits, else the dense one; the estimate's
    ``zero_skipping`` says which); never raises for a design that does not fit."""
    from .board.build import check_baud, clock_mhz
    from .board.catalog import get_board

    b = get_board(board)
    baud = check_baud(b, baud)
    if link not in LINKS:
        raise HwgenError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    mhz = clock_mhz(b, clock, baud if link == "uart" else None)
    if weights not in BOARD_WEIGHTS:
        raise HwgenError(f"Weight storage must be one of {', '.join(BOARD_WEIGHTS)}, "
                         f"not {weights!r}")
    if weights == "auto":
        r = board_fit(model, b, lanes, baud, "rom", sparse, clock, link)
        if r.fits or model.delta is not None:  # the delta core has ROM weights only (issue 23)
            return r
        # ROMs do not fit: the loadable design is the one to fit (its problems are the ones
        # left to fix when it does not fit either)
        return board_fit(model, b, lanes, baud, loadable_storage(b.target), sparse, clock,
                         link)
    judged: dict = {}
    chosen = judge_lanes(model, lanes, b.target, weights, sparse, judged, link=True)
    if sparse == "auto" and not chosen.fit.fits and chosen.fit.estimate.zero_skipping:
        dense = judge_lanes(model, chosen.fit.lanes, b.target, weights, "off", judged,
                            link=True)
        if dense.fit.fits:
            chosen = dense
    return BoardFit(b.name, b.target, mhz, baud, chosen.link, link_bytes(model), chosen.fit,
                    weights, str(clock), link, chosen.design)


def check_board_fit(model: Model, board, lanes: int | None = None,
                    baud: int | None = None, weights: str = "rom", sparse: str = "auto",
                    clock="auto", link: str = "uart") -> BoardFit:
    """`board_fit`, raising `HwgenError` when the build cannot fit; the message names what
    would, in ``hwgen build`` options: fewer ``--lanes``, ``--weights spram`` or another
    ``--board``."""
    from .board.catalog import BOARDS

    r = board_fit(model, board, lanes, baud, weights, sparse, clock, link)
    baud = r.baud
    if r.fits:
        return r
    hints = []
    if r.fit.estimate.zero_skipping:
        alt = board_fit(model, board, r.lanes, baud, r.weights, "off", clock, link)
        if alt.fits:
            hints.append(f"--sparse off fits {r.lanes} lanes (the dense core: "
                         f"{alt.fit.estimate.cycles_per_timestep} cycles per timestep)")
    for p in range(r.lanes - 1, 0, -1):
        if sparse == "on" and p % 2:
            continue  # the sparse core needs an even lane count
        alt = judge(model, p, r.target, r.weights, sparse, link=True).fit
        if alt.fits:
            hints.append(f"--lanes {p} fits (about {alt.estimate.luts} LUT4, "
                         f"{alt.estimate.cycles_per_timestep} cycles per timestep)")
            break
    if r.weights == "rom" and weights != "auto" and model.delta is None:
        loadable = loadable_storage(r.target)
        alt = board_fit(model, board, lanes, baud, loadable, sparse, clock, link)
        if alt.fits:
            hints.append(f"--weights {loadable} fits {alt.lanes} lanes (weights loaded at run "
                         "time with 'hwgen load')")
    for other in BOARDS.values():
        if other.name != r.board and get_target(other.target).luts >= get_target(r.target).luts:
            alt = board_fit(model, other, r.lanes, min(baud, other.max_baud), r.weights,
                            sparse, clock, link)
            if alt.fits:
                hints.append(f"--board {other.name} fits {r.lanes} lanes")
                break
    if model.delta is not None:  # delta networks (issue 23): the dense core of the weights
        from .delta import with_thresholds

        alt = board_fit(with_thresholds(model, None), board, None, baud, "auto", sparse,
                        clock, link)
        if alt.fits:
            hints.append(f"the dense core of these weights fits {alt.lanes} lanes "
                         f"({alt.fit.estimate.cycles_per_timestep} cycles per timestep; the "
                         "model without its delta thresholds: hwgen.delta.with_thresholds("
                         "model, None))")
    where = ("" if r.weights == "rom" else
             f", its weights loaded at run time (--weights {r.weights}),")
    core = "the delta core of this model" if model.delta is not None else "this model"
    msg = (f"{core} does not fit {r.board} ({r.target}) with {r.lanes} lanes{where} and the "
           f"{r.link_type.upper()} link ({r.link[0]} LUT4, {r.link[1]} flip-flops, {r.link[2]} "
           "RAM blocks): "
           + "; ".join(r.fit.problems) + ".")
    msg += (" What would fit: " + "; ".join(hints) + "." if hints else
            " No smaller lane count or other board fits; use fewer units or ternary weights.")
    raise HwgenError(msg)
