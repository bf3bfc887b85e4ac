# amaranth: UnusedElaboratable=no
"""The simulated board on Verilator (hwgen.boardsim) against amaranth.sim (SimSerial), on one
board design: LinkedCore (UART, divisor 4) + a GRU 16-64-10 ternary random model, 8 lanes.

Both run the same host code (hwgen.host.StreamHost over Link, one STEP frame per timestep) and are
checked exact against the golden model. The figure is wall seconds per timestep after a PING
(amaranth.sim: its own start-up; Verilator: the Verilog conversion and the compile, timed apart).
Writes docs/simulation.md (block boardsim-speed).

Usage: python benchmarks/boardsim_speed.py [--steps-amaranth 3] [--steps-verilator 200]
[--no-write]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from _record import versions, write_block  # noqa: E402

from hwgen.api import random_model  # noqa: E402
from hwgen.boardsim import SpiClock, VerilatedBoard, board_verilog, build_board_sim  # noqa: E402
from hwgen.gateware.core import Accelerator, input_layout, output_layout  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.host import Link, StreamHost  # noqa: E402
from hwgen.toolenv import tool_env, verilator_bin  # noqa: E402
from hwgen.uart.board import LinkedCore  # noqa: E402
from hwgen.uart.sim import SimSerial  # noqa: E402

DIV, LANES, CLOCK = 4, 8, 12e6


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (the harness, once closed)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _steps(port, model, x) -> tuple[float, dict]:
    host = StreamHost(Link(port, timeout=600), input_layout(model), output_layout(model))
    t0 = time.perf_counter()
    out = host.run(x)
    return (time.perf_counter() - t0) / x.shape[1], out


def _spi_row(model, xs, golden) -> list[str]:
    """The same core behind the SPI link (hwgen.uart.spi, when present), SCLK = core / 4."""
    try:
        from hwgen.uart.spi import SpiLinkedCore
    except ImportError:
        return []
    board = SpiLinkedCore(Accelerator(model, LANES), CLOCK, CLOCK / 4)
    t0 = time.perf_counter()
    text = board_verilog(board)
    convert_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as cache:
        build = build_board_sim(board, cache_dir=cache, verilog_text=text)
        cpu0 = _cpu()
        with VerilatedBoard(board, clock_hz=CLOCK, spi=SpiClock(2), timeout=0.05,
                            cache_dir=cache, verilog_text=text) as port:
            c0 = port.cycles
            s, out = _steps(port, model, xs)
            cycles = (port.cycles - c0) / xs.shape[1]
        cpu = (_cpu() - cpu0) / xs.shape[1]
    np.testing.assert_array_equal(out["logits"], golden)
    return [f"| Verilator, SPI (`SpiLinkedCore`, SCLK = core / 4) | {xs.shape[1]} | {s:.5f} | "
            f"{cpu:.5f} | {cycles:.0f} | Verilog conversion {convert_s:.1f} s, compile "
            f"{build.seconds:.1f} s |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps-amaranth", type=int, default=3)
    ap.add_argument("--steps-verilator", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    model = random_model("gru", 16, 64, 10, quant="ternary", seed=0)
    rng = np.random.default_rng(0)
    fmt = model.formats.input
    xs = rng.integers(fmt.min_code, fmt.max_code + 1, (1, args.steps_verilator, 16))
    golden = GoldenModel(model).run(xs).logits

    def design():
        return LinkedCore(Accelerator(model, LANES), DIV)

    board = design()
    t0 = time.perf_counter()
    text = board_verilog(board)
    convert_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as cache:
        build = build_board_sim(board, cache_dir=cache, verilog_text=text)
        cpu0 = _cpu()
        with VerilatedBoard(board, clock_hz=CLOCK, divisor=DIV, timeout=0.05,
                            cache_dir=cache, verilog_text=text) as port:
            c0 = port.cycles
            ver_s, out = _steps(port, model, xs)
            cycles = (port.cycles - c0) / xs.shape[1]
        ver_cpu = (_cpu() - cpu0) / xs.shape[1]
    np.testing.assert_array_equal(out["logits"], golden)
    spi_row = _spi_row(model, xs, golden)
    na = args.steps_amaranth
    with SimSerial(design(), DIV, timeout=0.1) as port:
        Link(port, timeout=600).ping()  # start-up outside the timing
        cpu0 = _cpu()
        ama_s, out = _steps(port, model, xs[:, :na])
        ama_cpu = (_cpu() - cpu0) / na
    np.testing.assert_array_equal(out["logits"], golden[:, :na])
    vb = verilator_bin()
    ver = subprocess.run([str(vb / "verilator"), "--version"], capture_output=True, text=True,
                         env=tool_env()).stdout.strip()  # the PyPI build reads "rev vUNKNOWN"
    rows = [
        "| simulator | timesteps | wall s per timestep | CPU s per timestep | simulated cycles "
        "per timestep | one-off cost |",
        "|---|---|---|---|---|---|",
        f"| amaranth.sim (`SimSerial`) | {na} | {ama_s:.3f} | {ama_cpu:.3f} | | |",
        f"| Verilator (`hwgen.boardsim`) | {xs.shape[1]} | {ver_s:.5f} | {ver_cpu:.5f} | "
        f"{cycles:.0f} | "
        f"Verilog conversion {convert_s:.1f} s, compile {build.seconds:.1f} s |",
    ] + spi_row
    text = (
        f"GRU 16-64-10 ternary (random model, seed 0), {LANES} lanes, `LinkedCore` with UART "
        f"divisor {DIV}, one STEP frame per timestep through `hwgen.host.StreamHost`, logits "
        f"equal to the golden model on both (`python benchmarks/boardsim_speed.py`): "
        f"**{ama_s / ver_s:.0f}x** faster on Verilator in wall time "
        f"({ama_cpu / ver_cpu:.0f}x in CPU time).\n\n" + "\n".join(rows) + "\n\n"
        + ("The SPI row puts the same core behind the SPI link (`hwgen.uart.spi`), SCLK half "
           "period 2 core cycles.\n\n" if spi_row else "")
        + f"{versions('amaranth', 'verilator')} ({ver}); 2-core machine shared with other jobs "
        "(wall times vary with its load; CPU times less).\n"
    )
    print(text)
    if not args.no_write:
        write_block("simulation.md", "boardsim-speed", text)


if __name__ == "__main__":
    main()
