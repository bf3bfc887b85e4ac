"""The simulated board behind the pyserial interface, with time in simulated seconds.

`VerilatedBoard` runs the compiled board (`hwgen.boardsim.build`) as a subprocess and talks to
it over pipes (harness.cpp documents the line protocol). Simulated time advances only while the
host waits: in `read` (up to ``timeout`` simulated seconds), `flush` (until every written byte is
on the line) and `idle` (a host busy elsewhere). Everything is deterministic: the same calls give
the same bytes and cycle counts on any machine, however busy.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..spec import HwgenError, check_finite, check_positive_int
from .build import build_board_sim, link_kind

__all__ = ["SpiClock", "VerilatedBoard", "ReceiveOverflow", "BLOCK_LIMIT_S"]

BLOCK_LIMIT_S = 60.0  # simulated seconds a read with timeout=None waits at most
_FIRST_CHUNK = 1 << 16  # cycles per harness call at first; then sized to ~0.5 s of wall time


class ReceiveOverflow(HwgenError):
    """The host's receive buffer was full: bytes from the device were lost (a slow reader)."""


@dataclass(frozen=True)
class SpiClock:
    """The SPI controller's timing, in core clock cycles: SCLK half period ``half_period`` plus
    0..``jitter`` extra cycles drawn per half period (seeded by ``seed``, deterministic); a
    transfer waiting for a reply clocks ``burst`` filler bytes per chip-select assertion.
    `hwgen.uart.spi.SpiPhy` needs ``half_period >= 2`` (core clock >= 4 x SCLK)."""

    half_period: int = 4
    jitter: int = 0
    seed: int = 0
    burst: int = 16

    def __post_init__(self):
        check_positive_int("SPI half period", self.half_period)
        check_positive_int("SPI filler burst", self.burst)
        if int(self.jitter) < 0 or int(self.seed) < 0:
            raise HwgenError(f"SPI jitter and seed must be non-negative, not {self.jitter!r} "
                             f"and {self.seed!r}")


class VerilatedBoard:
    """A pyserial-compatible port onto a board-level design simulated by Verilator.

    Parameters
    ----------
    design : a wiring.Component with one clock domain ``sync`` and the pins ``rx`` / ``tx``
        (UART 8N1) or ``sclk`` / ``cs_n`` / ``mosi`` / ``miso`` (SPI mode 0, MSB first).
    clock_hz : the core clock in hardware; simulated seconds = cycles / clock_hz.
    divisor : UART clock cycles per bit (required for a UART design).
    spi : `SpiClock` for an SPI design (default ``SpiClock()``).
    timeout : simulated seconds `read` waits for ``size`` bytes (None: at most `BLOCK_LIMIT_S`).
    drop, corrupt : fault injection on host-to-device bytes, indexed from 0 over every byte ever
        written: ``drop`` indices never reach the line, ``corrupt`` maps an index to an XOR mask.
    rx_buffer : the host's receive buffer in bytes; a device byte arriving while it is full is
        lost and the next `read` raises `ReceiveOverflow` (never silent).
    progress : ``progress(msg)``: before and after a compile, then at most every ``progress_s``
        wall seconds while the simulation runs, with the simulated time and the bytes moved.
    cache_dir : where compiled builds are kept (`hwgen.boardsim.build.cache_root`).

    Members
    -------
    cycles, sim_seconds : simulated time so far; build_seconds : the compile time (0 if cached);
    framing_errors : device-to-host bytes with a stop bit 0; overflowed : bytes lost to a full
    receive buffer; bytes_written / bytes_read : totals.
    """

    def __init__(self, design, *, clock_hz: float, divisor: int | None = None,
                 spi: SpiClock | None = None, timeout: float | None = 1.0, drop=(),
                 corrupt=None, rx_buffer: int = 4096,
                 progress: Callable[[str], None] | None = None, progress_s: float = 5.0,
                 cache_dir=None, verilog_text: str | None = None):
        self.clock_hz = check_finite("Clock frequency (Hz)", clock_hz, minimum=0, strict_min=True)
        if timeout is not None:
            check_finite("Timeout (simulated seconds)", timeout, minimum=0)
        self.timeout = timeout
        self.drop = set(drop)
        self.corrupt = dict(corrupt or {})
        self.rx_buffer = check_positive_int("Receive buffer size", rx_buffer)
        self.progress, self.progress_s = progress, float(progress_s)
        self.link = link_kind(design)
        if self.link == "uart":
            if divisor is None or spi is not None:
                raise HwgenError("a UART board needs divisor= (clock cycles per bit) and no spi=")
            if check_positive_int("UART divisor", divisor) < 4:
                raise HwgenError(f"UART divisor must be at least 4, not {divisor}")
            argv = ["uart", str(int(divisor))]
        else:
            if divisor is not None:
                raise HwgenError("an SPI board takes spi= (SpiClock), not divisor=")
            s = spi or SpiClock()
            argv = ["spi", str(s.half_period), str(s.jitter), str(s.seed), str(s.burst)]
        build = build_board_sim(design, cache_dir=cache_dir, verilog_text=verilog_text,
                                progress=progress)
        self.build_seconds = build.seconds
        self.cycles = 0
        self.framing_errors = self.overflowed = 0
        self.bytes_written = self.bytes_read = 0
        self._reported_overflow = 0
        self._pending = 0
        self._rx = bytearray()
        self._chunk = _FIRST_CHUNK
        self._last_progress = time.monotonic()
        self._proc = subprocess.Popen([str(build.exe), *argv], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      bufsize=1)
        self.is_open = True
        if self._proc.stdout.readline().strip() != "ready":
            self._died()

    # -- the harness ---------------------------------------------------------------------------
    def _died(self):
        self.is_open = False
        self._proc.kill()
        err = self._proc.stderr.read().strip().splitlines()
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            try:
                f.close()
            except OSError:  # a pipe whose reader is gone
                pass
        raise HwgenError(f"the simulated board stopped ({err[-1] if err else 'no message'}, "
                         f"exit {self._proc.wait()})")

    def _call(self, line: str) -> str:
        if not self.is_open:
            raise HwgenError("the simulated board's port is closed")
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
            out = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            out = ""
        if not out:
            self._died()
        return out

    def _run(self, cmd: str, budget: int, need: int = 0) -> None:
        """Run ``cmd`` ("r" or "f") for at most ``budget`` cycles in chunks; "r" stops once the
        host buffer holds ``need`` bytes, "f" once nothing is left to send."""
        left = budget
        while left > 0:
            chunk = min(left, self._chunk)
            room = self.rx_buffer - len(self._rx)
            want = min(need - len(self._rx), room) if need else 0
            if cmd == "r" and need and want <= 0:
                return
            t0 = time.monotonic()
            line = f"r {want} {chunk} {room}" if cmd == "r" else f"f {chunk} {room}"
            parts = self._call(line).split()
            if len(parts) != 6 or parts[0] != "d":
                raise HwgenError(f"the simulated board answered {' '.join(parts)!r}")
            cycles = int(parts[1])
            ran, self.cycles = cycles - self.cycles, cycles
            left -= ran
            self.overflowed, self.framing_errors = int(parts[2]), int(parts[3])
            self._pending = int(parts[4])
            if parts[5] != "-":
                self._rx += bytes.fromhex(parts[5])
            dt = time.monotonic() - t0  # size the next chunk to about 0.5 s of wall time
            if ran == chunk == self._chunk and dt < 0.25:
                self._chunk = min(self._chunk * 2, 1 << 32)
            elif dt > 1.0:
                self._chunk = max(self._chunk // 2, 1024)
            self._tick_progress()
            if cmd == "f" and self._pending == 0:
                return
            if cmd == "r" and need and len(self._rx) >= need:
                return

    def _tick_progress(self):
        now = time.monotonic()
        if self.progress is not None and now - self._last_progress >= self.progress_s:
            self._last_progress = now
            self.progress(f"simulated board: {self.sim_seconds * 1e3:.3f} ms simulated "
                          f"({self.cycles} cycles), {self.bytes_written} bytes sent, "
                          f"{self.bytes_read + len(self._rx)} received")

    def _seconds_to_cycles(self, seconds: float) -> int:
        return max(0, round(float(seconds) * self.clock_hz))

    # -- the pyserial interface -------------------------------------------------------------
    @property
    def sim_seconds(self) -> float:
        """Simulated seconds since the board came out of reset."""
        return self.cycles / self.clock_hz

    def write(self, data) -> int:
        """Queue ``data`` for the device (it goes out while simulated time runs); returns its
        length. Dropped and corrupted bytes follow ``drop`` / ``corrupt``."""
        data = bytes(data)
        out = bytearray()
        for b in data:
            i = self.bytes_written
            self.bytes_written += 1
            if i not in self.drop:
                out.append(b ^ self.corrupt.get(i, 0))
        if out:
            if self._call("w " + out.hex()).strip() != "ok":
                raise HwgenError("the simulated board refused the written bytes")
            self._pending += len(out)
        return len(data)

    def flush(self) -> None:
        """Run until every written byte is on the line (as pyserial's flush waits for the
        output to drain): at most `BLOCK_LIMIT_S` simulated seconds."""
        if self._pending:
            self._run("f", self._seconds_to_cycles(BLOCK_LIMIT_S))

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes: returns once ``size`` bytes are in or ``timeout`` simulated
        seconds have passed (timeout 0: what is there now). Raises `ReceiveOverflow` when
        device bytes were lost to a full receive buffer since the last read."""
        size = int(size)
        if len(self._rx) < size:
            wait = BLOCK_LIMIT_S if self.timeout is None else self.timeout
            budget = self._seconds_to_cycles(wait)
            if budget:
                self._run("r", budget, min(size, self.rx_buffer))
        if self.overflowed > self._reported_overflow:
            lost = self.overflowed - self._reported_overflow
            self._reported_overflow = self.overflowed
            raise ReceiveOverflow(
                f"the host's receive buffer ({self.rx_buffer} bytes) overflowed: {lost} bytes "
                f"from the device were lost while the host was not reading (at "
                f"{self.sim_seconds * 1e3:.3f} ms simulated)")
        out = bytes(self._rx[:size])
        del self._rx[:size]
        self.bytes_read += len(out)
        return out

    def idle(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass without reading (a host busy elsewhere):
        device bytes collect in the receive buffer, up to ``rx_buffer``."""
        self._run("r", self._seconds_to_cycles(seconds))

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read (no simulated time passes)."""
        return len(self._rx)

    @property
    def out_waiting(self) -> int:
        """Written bytes not yet fully on the line."""
        return self._pending

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            try:
                self._proc.stdin.write("q\n")
                self._proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "is_open", False):
            self.close()
