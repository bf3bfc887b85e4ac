"""A loadable board end to end in simulation: one bitstream design, two models loaded in turn.

Builds the loadable design of a shape (default: ternary GRU 16-256-10, 16 lanes, weights in
SPRAM: the iCEBreaker build of docs/synthesis.md) as `hwgen run --port sim --build` does: the UART
link + accelerator in amaranth.sim behind a simulated serial line (divisor 4). Then, for two
models of that shape (different seeds): load (BEGIN, LOAD frames, COMMIT; the device verifies a
CRC-32), run sequences, compare every logit with the golden model. Nothing is rebuilt between
the models. Records the words and bytes loaded, the simulated cycles and wall time, and the time
the same load takes on a real line at 115200 baud (10 bits a byte, frames and replies counted),
in docs/uart.md.

Usage: python benchmarks/board_load.py [--hidden 256] [--lanes 16] [--sequences 2] [--steps 3]
       [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.api import random_model  # noqa: E402
from hwgen.gateware.core import Accelerator, input_layout, output_layout  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.host import Link, StreamHost  # noqa: E402
from hwgen.shape import capacity_model, load_crc, load_images, shape_id, shape_of  # noqa: E402
from hwgen.uart.board import LinkedCore  # noqa: E402
from hwgen.uart.protocol import HEADER_BYTES, LOAD_HEADER_BYTES, STATUS_BYTES  # noqa: E402
from hwgen.uart.sim import SimSerial  # noqa: E402

DIV = 4


def line_seconds(images, word_bytes: int, frame_words: int, baud: int) -> float:
    """Seconds a load takes on a real line: every request and reply frame (header, payload,
    CRC) at 10 bits a byte, stop and wait; the device's own time is negligible."""
    frame = HEADER_BYTES + 1
    status = frame + STATUS_BYTES
    total = frame + status + (frame + 8) + status  # BEGIN, COMMIT and their replies
    for im in images:
        for a in range(0, im.depth, frame_words):
            n = min(frame_words, im.depth - a)
            total += frame + LOAD_HEADER_BYTES + n * word_bytes + status
    return total * 10 / baud


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    models = [random_model("gru", 16, args.hidden, 10, quant="ternary", seed=s) for s in (0, 1)]
    shape = shape_of(models[0], args.lanes)
    sid = shape_id(shape)
    core = Accelerator(capacity_model(models[0], shape["bias_bits"]), args.lanes, "auto",
                       "spram")
    cm = core.model
    rng = np.random.default_rng(0)
    fmt = cm.formats.input
    x = rng.integers(fmt.min_code, fmt.max_code + 1, (args.sequences, args.steps, 16))
    rows = []
    t_all = time.monotonic()
    with SimSerial(LinkedCore(core, DIV, shape_id=sid), DIV, timeout=0.1) as port:
        link = Link(port, timeout=600)
        host = StreamHost(link, input_layout(cm), output_layout(cm))
        info = link.ping()
        for k, model in enumerate(models):
            images = load_images(shape, model)
            crc = load_crc(images, info.word_bytes)
            c0, t0 = port.cycles, time.monotonic()
            frame_words = max(1, 1024 // info.word_bytes)
            st = link.load(images, info.word_bytes, sid, crc, frame_words=frame_words)
            load_cycles, load_wall = port.cycles - c0, time.monotonic() - t0
            c0, t0 = port.cycles, time.monotonic()
            got = host.run(x)["logits"]
            run_cycles, run_wall = port.cycles - c0, time.monotonic() - t0
            want = GoldenModel(model).run(x).logits
            exact = bool(np.array_equal(got, want))
            words = sum(im.depth for im in images)
            real = line_seconds(images, info.word_bytes, frame_words, 115200)
            rows.append((k, words, words * info.word_bytes, st.crc, load_cycles, load_wall,
                         real, run_cycles, run_wall, exact))
            print(f"model {k}: loaded {words} words (CRC 0x{st.crc:08x}) in {load_cycles} "
                  f"simulated cycles ({load_wall:.0f} s wall), {args.sequences}x{args.steps} "
                  f"steps in {run_wall:.0f} s: exact={exact}", flush=True)
            if not exact:
                raise SystemExit(f"model {k}: the board's logits differ from the golden model")
    total = time.monotonic() - t_all
    lines = [
        f"Ternary GRU 16-{args.hidden}-10, {args.lanes} lanes, weights in SPRAM (shape id "
        f"0x{sid:08x}); one simulated board, two models loaded in turn, no rebuild "
        f"(`python benchmarks/board_load.py`):",
        "",
        "| model | words | bytes | CRC-32 | simulated load cycles (divisor 4) | wall s | "
        "load at 115200 baud | sequences x steps | logits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, words, nbytes, crc, lc, lw, real, _rc, _rw, exact in rows:
        lines.append(f"| seed {k} | {words} | {nbytes} | 0x{crc:08x} | {lc} | {lw:.0f} | "
                     f"{real:.1f} s | {args.sequences} x {args.steps} | "
                     f"{'equal to golden' if exact else 'DIFFER'} |")
    lines += ["", f"{total:.0f} s in all; {versions('amaranth')}."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_block("uart.md", "board-load", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
