"""The largest GRU (16 inputs, H hidden, 10 outputs) per weight encoding fitting a device / board.

For each target (a bare device, or a board: accelerator + UART link, as `hwgen build` checks it),
encoding and lane count, H grows in steps of 8 while the fit check (`hwgen.fit`, from the
estimate: RAM blocks after tiling, logic cells / LUTs, flip-flops, DSPs) passes; the table gives the
largest H below the first refusal and what refused the next size. With ``--place`` the largest
ternary and int8 designs on the UP5K are also placed and routed (one seed) to check the verdict
against nextpnr. Writes docs/synthesis.md (block ``largest``).

With ``--loadable`` the board builds choose their weight storage as ``hwgen build`` does by
default (``--weights auto``: ROMs while they fit, then weights loaded at run time, in SPRAM on the
iCEBreaker's UP5K, in block RAM on the ULX3S's ECP5); writes block ``largest-loadable``.
``--sparse`` does the same with 2:4 sparse recurrent matrices (``random-model --sparsity 2:4``),
so that the board builds choose the sparse core (zero skipping); writes block
``largest-sparse``.

Usage: nice -n 10 python benchmarks/largest_fit.py [--place] [--loadable [--sparse]] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402
from synth_sweep import make_model  # noqa: E402

from hwgen.boardfit import board_fit  # noqa: E402
from hwgen.fit import fit_result  # noqa: E402

TARGETS = (("ice40-up5k", None), (None, "icebreaker"), ("ecp5-25k", None), (None, "ulx3s-85f"))
ENCODINGS = ("ternary", "exp", "int8")
LANES = (8, 16)
STEP, LIMIT = 8, 1024


SPARSITY = None  # "2:4" with --sparse


def gru(hidden: int, quant: str):
    if SPARSITY is None:
        return make_model("gru", 16, hidden, 10, quant)
    from hwgen.api import random_model

    return random_model("gru", 16, hidden, 10, quant=quant, sparsity=SPARSITY)


def verdict(model, lanes: int, target: str | None, board: str | None,
            weights: str = "rom") -> tuple[bool, str, str]:
    """(fits, problems, weight storage chosen)."""
    if board is not None:
        r = board_fit(model, board, lanes=lanes, weights=weights)
        core = (", sparse core" if r.fit.estimate.zero_skipping else ", dense core") \
            if SPARSITY else ""
        return r.fits, "; ".join(r.fit.problems), r.weights + core
    r = fit_result(model, lanes, target)
    return r.fits, "; ".join(r.problems), "rom"


def largest(quant: str, lanes: int, target: str | None, board: str | None,
            weights: str = "rom") -> tuple[int, str, str]:
    """Largest H (a multiple of STEP, >= lanes) whose every smaller size fits; 0 if none; and
    the weight storage of that largest design."""
    best, why, where = 0, f"fits up to the search limit H = {LIMIT}", "-"
    for h in range(max(STEP, lanes), LIMIT + 1, STEP):
        ok, problems, storage = verdict(gru(h, quant), lanes, target, board, weights)
        if not ok:
            why = f"H = {h}: {problems}"
            break
        best, where = h, storage
    return best, why, where


def loadable_table(t0: float) -> str:
    lines = ["| board | encoding | lanes | largest H | weights in | the next size is refused "
             "because |", "|---|---|---|---|---|---|"]
    found = {}
    for board in ("icebreaker", "ulx3s-85f"):
        for quant in ENCODINGS:
            for lanes in LANES:
                h, why, where = largest(quant, lanes, None, board, "auto")
                found[(board, quant, lanes)] = h
                lines.append(f"| {board} | {quant} | {lanes} | {h or 'none'} | {where} | {why} |")
                print(lines[-1], flush=True)
    ratios = []
    for board in ("icebreaker", "ulx3s-85f"):
        for lanes in LANES:
            t, i = found[(board, "ternary", lanes)], found[(board, "int8", lanes)]
            ratios.append(f"{board} P = {lanes}: ternary H {t} = "
                          + (f"{t / i:.1f}x int8 ({i})" if i else "int8 fits none"))
    sparse = (" Recurrent matrices 2:4 sparse (`random-model --sparsity 2:4`), so the cores skip "
              "zeros (the sparse core, `--sparse auto`)." if SPARSITY else "")
    return ("GRU 16 -> H -> 10, formats.standard(8), state `auto`, H in steps of 8, board builds "
            "with `--weights auto` (ROMs while they fit, else loaded at run time; the loadable "
            "core is built for the shape's capacity model, `hwgen.shape`); the verdict of "
            f"`hwgen.boardfit`.{sparse} {versions('amaranth')}; {time.monotonic() - t0:.0f} s.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(f"- {r}" for r in ratios) + "\n")


def place(hidden: int, quant: str, lanes: int, work: Path) -> str:
    from hwgen.export import generate
    from hwgen.synth import synthesize

    model = gru(hidden, quant)
    rtl = work / f"gru{hidden}_{quant}_p{lanes}"
    manifest = generate(model, rtl, lanes)
    r = synthesize([rtl / manifest["verilog"][0]], manifest["top"], "ice40-up5k",
                   rtl / "synth", seeds=1, place=True, timeout=1800,
                   cycles_per_timestep=manifest["timing"]["cycles_per_timestep"])
    lc = r.pnr_utilization.get("ICESTORM_LC", {}).get("used")
    return (f"H = {hidden}, {quant}, P = {lanes}: placed and routed, {lc} ICESTORM_LC "
            f"(with the timing wrapper), {r.bram} EBR, {r.fmax_mhz:.1f} MHz (seed 1)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--place", action="store_true",
                    help="place and route the largest ternary and int8 UP5K designs (P = 8)")
    ap.add_argument("--work", type=Path, default=Path("largest_out"))
    ap.add_argument("--loadable", action="store_true",
                    help="board builds with --weights auto (block largest-loadable)")
    ap.add_argument("--sparse", action="store_true",
                    help="with --loadable: 2:4 sparse models (block largest-sparse)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    if args.loadable:
        global SPARSITY
        SPARSITY = "2:4" if args.sparse else None
        text = loadable_table(t0)
        if not args.no_write:
            write_block("synthesis.md", "largest-sparse" if args.sparse else "largest-loadable",
                        text)
        return 0
    lines = ["| device / board | encoding | lanes | largest H | the next size is refused because |",
             "|---|---|---|---|---|"]
    found = {}
    for target, board in TARGETS:
        where = board and f"{board} (board build)" or target
        for quant in ENCODINGS:
            for lanes in LANES:
                h, why, _ = largest(quant, lanes, target, board)
                found[(target or board, quant, lanes)] = h
                lines.append(f"| {where} | {quant} | {lanes} | {h or 'none'} | {why} |")
                print(lines[-1], flush=True)
    notes = []
    if args.place:
        for quant in ("ternary", "int8"):
            h = found[("ice40-up5k", quant, 8)]
            if h:
                notes.append(place(h, quant, 8, args.work))
                print(notes[-1], flush=True)
    text = (
        "GRU 16 -> H -> 10, formats.standard(8), state `auto`; H in steps of 8; the verdict of "
        "`hwgen.fit` / `hwgen.boardfit` (what `synth` and `build` check before running the "
        f"tools). {versions('amaranth')}; {time.monotonic() - t0:.0f} s.\n\n"
        + "\n".join(lines) + "\n"
        + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    )
    if not args.no_write:
        write_block("synthesis.md", "largest", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
