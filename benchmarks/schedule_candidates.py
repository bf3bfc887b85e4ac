"""The MAC-array candidates for the v2 core's schedule, synthesized alone (docs/architecture.md).

Unit-major (the `MacUnit` the core uses: P operands a cycle, a registered adder tree, one
accumulator) against column-broadcast lane arrays (one operand broadcast to P lanes, one
accumulator per lane, a shadow bank the accumulators are copied into at a segment's end and
drained from one lane per cycle), ternary, 8-bit operands, 14-bit accumulators, each inside the
registered-I/O timing wrapper of `hwgen.synth` (one seed). Prints a table.

    nice -n 10 .venv/bin/python benchmarks/schedule_candidates.py [--lanes 16] [--targets ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import Module, Mux, Signal, signed  # noqa: E402
from amaranth.lib import wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from hwgen.gateware.mac import MacUnit  # noqa: E402
from hwgen.spec import WeightEncoding  # noqa: E402
from hwgen.synth import synthesize  # noqa: E402


class ColumnLanes(wiring.Component):
    """P column-broadcast ternary lanes: ``acc_k += w_k * x`` each cycle; ``last`` copies the
    sums into a shadow bank. ``drain``: how the shadow bank is read, one lane per cycle
    (``mux`` one P:1 multiplexer, ``tree`` two levels of 4:1, ``shift`` a shift chain, ``none``
    an XOR of all shadows: the lanes alone). ``clear``: ``reset`` (the accumulator's synchronous
    reset, the sum goes to the shadow) or ``mux`` (a first-cycle multiplexer)."""

    def __init__(self, lanes: int, drain: str, clear: str = "reset", ow: int = 8, accw: int = 14):
        self.p, self.drain, self.clear, self.ow, self.accw = lanes, drain, clear, ow, accw
        super().__init__({"codes": In(2 * lanes), "x": In(signed(ow)), "last": In(1),
                          "shift": In(1), "sel": In(range(lanes)), "out": Out(signed(accw))})

    def elaborate(self, platform):
        m = Module()
        p, ow, accw = self.p, self.ow, self.accw
        codes, x = Signal(2 * p), Signal(signed(ow))
        last, shift, sel = Signal(), Signal(), Signal.like(self.sel)
        m.d.sync += [codes.eq(self.codes), x.eq(self.x), last.eq(self.last),
                     shift.eq(self.shift), sel.eq(self.sel)]
        sums, shadows = [], [Signal(signed(accw), name=f"sh{k}") for k in range(p)]
        for k in range(p):
            nz, neg = codes[2 * k], codes[2 * k + 1]
            op = Mux(nz, x ^ neg.replicate(ow), 0)
            acc = Signal(signed(accw), name=f"acc{k}")
            s = acc + op + (nz & neg)
            if self.clear == "reset":
                m.d.sync += acc.eq(Mux(last, 0, s))
                sums.append(s)
            else:
                m.d.sync += acc.eq(Mux(last, op + (nz & neg), s))
                sums.append(acc)
        out = Signal(signed(accw))
        for k in range(p):
            with m.If(last):
                m.d.sync += shadows[k].eq(sums[k])
            if self.drain == "shift":
                with m.Elif(shift):
                    m.d.sync += shadows[k].eq(shadows[k + 1] if k + 1 < p else 0)
        if self.drain == "shift":
            m.d.sync += out.eq(shadows[0])
        elif self.drain == "mux":
            with m.Switch(sel):
                for k in range(p):
                    with m.Case(k):
                        m.d.sync += out.eq(shadows[k])
        elif self.drain == "tree":
            groups = []
            for g in range(0, p, 4):
                gr = Signal(signed(accw), name=f"g{g}")
                with m.Switch(sel[:2]):
                    for k in range(min(4, p - g)):
                        with m.Case(k):
                            m.d.sync += gr.eq(shadows[g + k])
                groups.append(gr)
            hi = Signal(range(max(len(groups), 2)))
            m.d.sync += hi.eq(sel[2:])
            with m.Switch(hi):
                for k, gr in enumerate(groups):
                    with m.Case(k):
                        m.d.sync += out.eq(gr)
        else:
            v = shadows[0]
            for sh in shadows[1:]:
                v = v ^ sh
            m.d.sync += out.eq(v)
        m.d.comb += self.out.eq(out)
        return m


def candidates(lanes: int):
    yield "unit-major MacUnit (registered tree, one accumulator)", lambda: MacUnit(
        WeightEncoding.ternary(), lanes=lanes, operand_width=8, acc_width=14)
    yield "column-broadcast lanes alone", lambda: ColumnLanes(lanes, "none")
    yield "column-broadcast + shadow, 4:1 tree drain", lambda: ColumnLanes(lanes, "tree")
    yield "column-broadcast + shadow, P:1 drain", lambda: ColumnLanes(lanes, "mux")
    yield "column-broadcast + shadow, shift drain", lambda: ColumnLanes(lanes, "shift")
    yield "column-broadcast, first-cycle mux, P:1 drain", lambda: ColumnLanes(lanes, "mux", "mux")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--targets", default="ecp5-25k,ice40-up5k")
    args = ap.parse_args(argv)
    targets = args.targets.split(",")
    print("| candidate | " + " | ".join(f"{t} LUT-eq | {t} MHz" for t in targets) + " |")
    print("|---|" + "---|---|" * len(targets))
    with tempfile.TemporaryDirectory(dir=ROOT / "build" if (ROOT / "build").is_dir() else None
                                     ) as tmp:
        for i, (name, make) in enumerate(candidates(args.lanes)):
            src = Path(tmp) / f"cand{i}.v"
            src.write_text(verilog.convert(make(), name="top", emit_src=False))
            cells = []
            for t in targets:
                r = synthesize([src], "top", t, Path(tmp) / f"cand{i}_{t}", seeds=1, timeout=900)
                cells += [str(r.lut_equivalent), f"{r.fmax_mhz:.0f}"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
