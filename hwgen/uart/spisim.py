"""A simulated SPI controller for amaranth.sim: drives a design's ``sclk`` / ``cs_n`` / ``mosi`` and
samples its ``miso`` (SPI mode 0, MSB first), with a clock unrelated to the design's.

- `SpiController`: the bus driver, for use inside an amaranth.sim testbench
  (``await ctl.transfer(ctx, data)``). Every SCLK half-period is drawn at random from
  ``[ratio / 2, ratio / 2 * (1 + jitter)]`` core clock periods (real time, not whole cycles) and
  the bus starts at a random phase, so SCLK edges land anywhere between core clock edges: the
  crossing is exercised as with two unrelated oscillators, not as a clean clock divide.
- `SimSpi`: a pyserial-like port onto a design with those pins (`write`, `read`, `in_waiting`,
  `reset_input_buffer`, `flush`, `close`, ``timeout``) plus ``sim_seconds`` and ``cycles``, like
  `hwgen.uart.sim.SimSerial`. It runs in the caller's thread: simulated time advances only while
  the port clocks a transfer (or `idle` is called), so results do not depend on machine load and
  ``timeout`` is in simulated seconds. Each `write` is one transfer (``cs_n`` low, the bytes
  clocked back to back, ``cs_n`` high); the bytes the device sends meanwhile (full duplex) are
  kept for `read`. `read` returns those first, then clocks filler bytes 0x00 in one transfer to
  collect more; every slot yields a byte (the device's filler 0x00 when it has nothing), so a read
  returns ``size`` bytes unless ``timeout`` simulated seconds pass first. ``in_waiting`` counts
  kept bytes only; a host must `read` (clock) to make progress. ``poll_gap`` models a host that
  polls: the bus idles that many simulated seconds before each read transfer.

Fault injection on host-to-device bytes (indices count every byte ever passed to `write`, from
0): ``drop`` (never clocked), ``corrupt`` (index -> XOR mask), ``abort`` (index -> 1..7: the
transfer is cut after that many bits of the byte, ``cs_n`` released mid-byte, and the rest of
that `write` is discarded); and ``corrupt_miso`` (index over every complete byte received ->
XOR mask). Bits of a cut byte received from the device are discarded (the device re-sends it).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ..spec import HwgenError, check_finite
from .spi import check_sclk

__all__ = ["SpiController", "SimSpi"]

FILLER = 0x00


class SpiController:
    """Mode-0 SPI controller driving ``dut.sclk`` / ``dut.cs_n`` / ``dut.mosi``, reading
    ``dut.miso`` (see the module docstring).

    Parameters
    ----------
    dut : the design (its pins as members).
    ratio : core clock periods per SCLK period, at least (the fastest period jitter draws);
        >= `MIN_CLOCK_RATIO`, else `HwgenError`.
    jitter : each half-period is stretched by a random factor in [0, jitter].
    clock_hz : the design's clock (for timing; the Simulator's clock must match).
    seed : random seed (half-periods, start phase, gaps).
    gaps : probability of a random pause (0 to 2 SCLK periods, SCLK low) between two bytes.

    Timing kept (the `SpiPhy` contract): each SCLK phase >= ratio / 2 core periods, ``cs_n``
    falling to the first SCLK rise and the last SCLK fall to ``cs_n`` rising one half-period,
    ``cs_n`` high for at least one SCLK period between transfers. ``now_fs`` is the simulated
    time in femtoseconds the controller has spent (all its waits are its own delays).
    """

    def __init__(self, dut, *, ratio: float = 4.0, jitter: float = 0.5,
                 clock_hz: float = 48e6, seed: int = 0, gaps: float = 0.0):
        ratio = check_finite("SPI clock ratio", ratio, minimum=0, strict_min=True)
        check_sclk(clock_hz, clock_hz / ratio)
        self.dut = dut
        self.ratio = ratio
        self.jitter = check_finite("SPI clock jitter", jitter, minimum=0)
        self.gaps = check_finite("SPI gap probability", gaps, minimum=0, maximum=1)
        self.clock_hz = clock_hz
        self.period_fs = round(1e15 / clock_hz)
        self.rng = np.random.default_rng(seed)
        self.now_fs = 0

    def _half(self) -> int:
        return math.ceil(self.period_fs * self.ratio / 2 * (1 + self.jitter * self.rng.random()))

    async def wait(self, ctx, fs: int) -> None:
        self.now_fs += fs
        await ctx.delay(fs * 1e-15)

    async def start(self, ctx) -> None:
        """Idle the bus (``cs_n`` high, SCLK low) and wait a random phase (< 1 core period)."""
        ctx.set(self.dut.cs_n, 1)
        ctx.set(self.dut.sclk, 0)
        ctx.set(self.dut.mosi, 0)
        await self.wait(ctx, 1 + int(self.rng.integers(self.period_fs)))

    async def transfer(self, ctx, data: bytes, *, cut: tuple[int, int] | None = None,
                       until_fs: int | None = None) -> bytes:
        """One transfer: ``cs_n`` low, the bytes of ``data`` clocked (full duplex), ``cs_n`` high.

        Returns the complete bytes received on MISO. ``cut = (i, bits)``: stop after ``bits``
        (1..7) rising edges of byte i and release ``cs_n`` mid-byte. ``until_fs``: clock no byte
        that would start at or after that time (a read timeout).
        """
        dut, got = self.dut, bytearray()
        if not data:
            return bytes(got)
        ctx.set(dut.cs_n, 0)
        ctx.set(dut.mosi, data[0] >> 7)
        await self.wait(ctx, self._half())  # lead time
        for i, byte in enumerate(data):
            if until_fs is not None and self.now_fs >= until_fs:
                break
            if i and self.gaps and self.rng.random() < self.gaps:
                await self.wait(ctx, int(self.rng.integers(2 * self.ratio * self.period_fs)))
            bits = 8 if cut is None or cut[0] != i else cut[1]
            value = 0
            for k in range(bits):
                value = value << 1 | ctx.get(dut.miso)  # sampled at the rising edge
                ctx.set(dut.sclk, 1)
                await self.wait(ctx, self._half())
                ctx.set(dut.sclk, 0)
                if k < 7:
                    ctx.set(dut.mosi, byte >> (6 - k) & 1)
                elif i + 1 < len(data):
                    ctx.set(dut.mosi, data[i + 1] >> 7)
                await self.wait(ctx, self._half())
            if bits < 8:
                break
            got.append(value)
        ctx.set(dut.cs_n, 1)  # the last low phase above was the lag time
        await self.wait(ctx, 2 * self._half())
        return bytes(got)


@dataclass
class _Job:
    data: bytes
    cut: tuple[int, int] | None = None
    until_fs: int | None = None
    idle_fs: int = 0
    result: bytes = b""
    done: bool = False


class SimSpi:
    """pyserial-like port onto a simulated SPI target (see the module docstring).

    Parameters
    ----------
    dut : an elaboratable with ``sclk``, ``cs_n``, ``mosi`` (In(1)) and ``miso`` (Out(1)),
        e.g. a core behind `SpiPhy` and a frame engine.
    ratio, jitter, clock_hz, seed, gaps : the bus timing (`SpiController`).
    timeout : simulated seconds `read` clocks at most (None: until ``size`` bytes).
    poll_gap : simulated seconds the bus idles (``cs_n`` high) before each read transfer.
    drop, corrupt, abort, corrupt_miso : fault injection (module docstring).
    vcd : write a waveform to this file.
    """

    def __init__(self, dut, *, ratio: float = 4.0, jitter: float = 0.5, clock_hz: float = 48e6,
                 seed: int = 0, gaps: float = 0.0, timeout: float | None = 1.0,
                 poll_gap: float = 0.0, drop=(), corrupt=None, abort=None, corrupt_miso=None,
                 vcd: str | None = None):
        self.ctl = SpiController(dut, ratio=ratio, jitter=jitter, clock_hz=clock_hz, seed=seed,
                                 gaps=gaps)
        self.dut, self.timeout = dut, timeout
        self.poll_gap = check_finite("Poll gap", poll_gap, minimum=0)
        self.drop = set(drop)
        self.corrupt = dict(corrupt or {})
        self.abort = dict(abort or {})
        for i, bits in self.abort.items():
            if not 1 <= bits <= 7:
                raise HwgenError(f"an SPI transfer can be cut after 1 to 7 bits of a byte, not "
                                 f"{bits!r} (byte {i})")
        self.corrupt_miso = dict(corrupt_miso or {})
        self._written = 0
        self._received = 0
        self._buffer = bytearray()
        self._job: _Job | None = None
        self._error: BaseException | None = None
        self.is_open = True
        self._stack = contextlib.ExitStack()
        self._sim = Simulator(dut)
        self._sim.add_clock(self.ctl.period_fs * 1e-15)
        self._sim.add_testbench(self._serve)
        if vcd:
            self._stack.enter_context(self._sim.write_vcd(vcd))

    async def _serve(self, ctx):
        ctl = self.ctl
        await ctl.start(ctx)
        while True:
            job = self._job
            if job is None or job.done:
                await ctl.wait(ctx, ctl.period_fs)
                continue
            if job.idle_fs:
                await ctl.wait(ctx, job.idle_fs)
            else:
                job.result = await ctl.transfer(ctx, job.data, cut=job.cut,
                                                until_fs=job.until_fs)
            job.done = True

    def _run(self, job: _Job) -> bytes:
        self._check()
        self._job = job
        try:
            while not job.done:
                self._sim.advance()
        except Exception as e:
            self._error = e
            raise HwgenError(f"the simulated device failed: {e!r}") from e
        for b in job.result:
            self._buffer.append(b ^ self.corrupt_miso.get(self._received, 0))
            self._received += 1
        return job.result

    def _check(self):
        if self._error is not None:
            raise HwgenError(f"the simulated device failed: {self._error!r}") from self._error
        if not self.is_open:
            raise HwgenError("the simulated SPI port is closed")

    # -- simulated time ----------------------------------------------------------------------
    @property
    def sim_seconds(self) -> float:
        return self.ctl.now_fs * 1e-15

    @property
    def cycles(self) -> int:
        return self.ctl.now_fs // self.ctl.period_fs

    def idle(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass with ``cs_n`` high (the core keeps running)."""
        fs = round(check_finite("Idle time", seconds, minimum=0) * 1e15)
        if fs:
            self._run(_Job(b"", idle_fs=fs))

    # -- the pyserial interface --------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self._check()
        data = bytes(data)
        out, cut = bytearray(), None
        for b in data:
            i = self._written
            self._written += 1
            if cut is not None or i in self.drop:
                continue
            out.append(b ^ self.corrupt.get(i, 0))
            if i in self.abort:
                cut = (len(out) - 1, self.abort[i])
        if out:
            self._run(_Job(bytes(out), cut=cut))
        return len(data)

    def flush(self) -> None:
        self._check()

    def read(self, size: int = 1) -> bytes:
        self._check()
        missing = size - len(self._buffer)
        if missing > 0:
            self.idle(self.poll_gap)
            until = None if self.timeout is None else \
                self.ctl.now_fs + round(self.timeout * 1e15)
            self._run(_Job(bytes([FILLER]) * missing, until_fs=until))
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._buffer)

    def reset_input_buffer(self) -> None:
        self._buffer.clear()

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
