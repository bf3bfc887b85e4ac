"""``hwgen estimate``: memories, RAM blocks, logic and cycles of an accelerator, pre-synthesis,
for a device (``--target``) or as a board build makes it (``--board``: UART link counted, time per
timestep at the board clock)."""

from __future__ import annotations

from .. import api
from ..boardfit import BOARD_WEIGHTS
from ..estimate import format_estimate
from ..fit import check_fit
from ..spec import HwgenError
from ._common import add_options, command, emit
from .build import add_clock_options


def register(sub) -> None:
    p = command(sub, "estimate", "estimate resources and cycles per timestep (no synthesis)",
                "Estimate the accelerator's memories (tiled onto the target's RAM blocks), LUT4s, "
                "flip-flops and cycles per timestep, and say whether it fits. Runs no tool. With "
                "--board the estimate is of the board build (the accelerator behind its UART "
                "link, as 'hwgen build' makes it), with the time per timestep at the board's "
                "clock.", run, "model", "lanes", "sparse",
                sparse=dict(help="zero skipping, as 'hwgen generate --sparse' / 'hwgen build "
                            "--sparse' (default: %(default)s: the sparse core when the model's "
                            "2:4 sparse matrices make it faster)"))
    add_options(p.add_mutually_exclusive_group(required=True), "target", "board")
    add_clock_options(p)
    p.add_argument("--weights", choices=BOARD_WEIGHTS, default=None, metavar="W",
                   help="rom, spram or ram (loaded at run time), or with --board auto "
                   "(default: auto with --board, rom with --target)")
    add_options(p, "dataset", dataset=dict(
        required=False, help="a delta network (issue 23): the expected cycles per timestep from "
        "the columns its test split makes the model process (fsdd:PATH, vowels, ...)"))


def link_words(r) -> str:
    return (f"UART at {r.baud} baud" if r.link_type == "uart" else
            f"SPI link at {r.sclk_mhz:g} MHz SCLK")


def estimate_text(model, r, *, board=None, target=None, baud=None, sparse="auto", clock="auto",
                  link="uart") -> str:
    """The table ``hwgen estimate`` prints for ``r`` (`api.estimate`'s `FitResult` with
    ``target``, `BoardFit` with ``board``) of ``model``, with the same options: memories, logic,
    cycles, the board line and time per timestep, and the fit verdict (what does not fit, and
    what would). `api.estimate_table` returns it from Python."""
    fit = r.fit if board else r
    lines = [format_estimate(fit.estimate)]
    if board:
        lines.insert(0, f"board       {r.board} (core clock {r.clock_mhz:g} MHz, --clock "
                        f"{r.clock}), {r.link_type.upper()} link "
                        f"{r.link[0]} LUT4 + {r.link[1]} FF + {r.link[2]} RAM blocks included "
                        "below")
        lines.append(f"time        {r.us_per_timestep:.2f} us per timestep at {r.clock_mhz:g} MHz"
                     f"; the {link_words(r)} needs {r.link_us_per_timestep:.2f} us per "
                     f"timestep (RUN frames, pipelined): about "
                     f"{r.board_timesteps_per_second:,.0f} timesteps/s on the board")
    if fit.fits:
        lines.append("fit         yes" + "".join(f"; warning: {w}" for w in fit.warnings))
    else:
        try:
            if board:
                from ..boardfit import check_board_fit

                check_board_fit(model, board, fit.lanes, baud, r.weights, sparse, clock, link)
            elif model.delta is not None:  # the delta core (issue 23): its problems
                raise HwgenError("; ".join(fit.problems))
            else:
                check_fit(model, fit.lanes, target, sparse=sparse)
        except HwgenError as e:
            lines.append(f"fit         NO: {e}")
    return "\n".join(lines)


def _delta(args, model) -> int:
    """A delta network (issue 23): the delta core's resources and fit (`hwgen.delta.resources`,
    on the target or as the board build makes it) and its cycles (`hwgen.delta.estimate`)."""
    from ..delta.estimate import delta_estimate, format_delta_estimate
    from ..delta.loadable import check_delta_weights

    weights = "rom" if args.weights in (None, "auto") else args.weights
    check_delta_weights(weights)  # rom or ram (a loadable delta core, hwgen.delta.loadable)
    r = api.estimate(model, args.lanes, target=args.target, board=args.board, baud=args.baud,
                     weights=weights, sparse=args.sparse, clock=args.clock, link=args.link)
    fit = r.fit if args.board else r
    seqs = api._dataset_sequences(model, args.dataset, None) if args.dataset else None
    e = delta_estimate(model, fit.lanes, seqs, args.dataset)
    text = estimate_text(model, r, board=args.board, target=args.target, baud=args.baud,
                         sparse=args.sparse, clock=args.clock, link=args.link)
    data = e.to_json()
    data["resources"] = r.to_json() if args.board else {
        **fit.estimate.to_json(), "fits": fit.fits, "problems": list(fit.problems),
        "warnings": list(fit.warnings)}
    opt = "" if weights == "rom" else f" --weights {weights}"
    nxt = ([f"hwgen build {args.model} --board {args.board} --lanes {fit.lanes}{opt} "
            "-o build/NAME"] if args.board else
           [f"hwgen generate {args.model} --lanes {e.lanes}{opt} -o rtl_out/NAME"])
    emit(args, data, f"{format_delta_estimate(e, args.target or args.board)}\n{text}",
         next_=nxt if fit.fits else None)
    return 0


def run(args) -> int:
    model = api.load_model(args.model)
    if model.delta is not None:  # delta networks (issue 23)
        return _delta(args, model)
    if args.dataset:
        raise HwgenError("--dataset applies to delta networks (the expected cycles from "
                         "measured column counts); this model is dense")
    weights = args.weights or ("auto" if args.board else "rom")
    r = api.estimate(model, args.lanes, target=args.target, board=args.board, baud=args.baud,
                     weights=weights, sparse=args.sparse, clock=args.clock, link=args.link)
    fit = r.fit if args.board else r
    text = estimate_text(model, r, board=args.board, target=args.target, baud=args.baud,
                         sparse=args.sparse, clock=args.clock, link=args.link)
    if args.board:
        data = r.to_json()
        nxt = [f"hwgen build {args.model} --board {args.board} --lanes {fit.lanes} "
               f"--weights {r.weights} --sparse {args.sparse} --clock {args.clock} "
               + (f"--link {args.link} " if args.link != "uart" else "") + "-o build/NAME"]
    else:
        data = fit.estimate.to_json()
        data.update(fits=fit.fits, problems=list(fit.problems), warnings=list(fit.warnings))
        nxt = [f"hwgen generate {args.model} --lanes {fit.lanes} --sparse {args.sparse} "
               "-o rtl_out/NAME"]
    emit(args, data, text, next_=nxt if fit.fits else None)
    return 0
