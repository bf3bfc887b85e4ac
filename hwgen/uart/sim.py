"""A simulated serial port: a design with ``rx`` / ``tx`` pins, run in amaranth.sim, behind the
pyserial interface (``write``, ``read``, ``timeout``, ``reset_input_buffer``, ``close``).

The simulation runs in a background thread. Bytes written by the host are bit-banged onto the
design's ``rx`` pin at ``divisor`` clock cycles per bit; a monitor decodes the ``tx`` pin back into
bytes for ``read``. The clock keeps running while the host is silent, so the design's own timeouts
fire as on hardware. Faults can be injected on the host-to-device direction: ``drop`` (byte
indices, counted from 0 over everything ever written, that never reach the line) and ``corrupt``
(index -> XOR mask), to check that a lost or damaged byte gives a clear error and not a hang.
"""

from __future__ import annotations

import queue
import threading
import time

from amaranth.sim import Simulator

from ..spec import HwgenError

__all__ = ["SimSerial"]


class SimSerial:
    """pyserial-compatible port onto a simulated design (see the module docstring).

    Parameters
    ----------
    dut : an elaboratable with ``rx`` (In(1)) and ``tx`` (Out(1)) members, e.g. a `UartLink`
        wired to a core, or a board top.
    divisor : clock cycles per bit.
    timeout : seconds `read` waits (wall clock), as pyserial's ``timeout``.
    drop, corrupt : fault injection on host-to-device bytes.
    """

    def __init__(self, dut, divisor: int, *, timeout: float = 1.0, drop=(), corrupt=None,
                 vcd: str | None = None):
        self.dut, self.divisor, self.timeout = dut, divisor, timeout
        self.drop = set(drop)
        self.corrupt = dict(corrupt or {})
        self._to_dev: queue.Queue[int] = queue.Queue()
        self._from_dev: queue.Queue[int] = queue.Queue()
        self._written = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.cycles = 0
        self.framing_errors = 0  # device-to-host bytes with a bad stop bit
        self.is_open = True
        self._thread = threading.Thread(target=self._run, args=(vcd,), daemon=True)
        self._thread.start()

    # -- the simulation thread ---------------------------------------------------------------
    def _run(self, vcd):
        dut, d = self.dut, self.divisor
        sim = Simulator(dut)
        sim.add_clock(1e-6)

        async def driver(ctx):
            ctx.set(dut.rx, 1)
            while not self._stop.is_set():
                try:
                    b = self._to_dev.get_nowait()
                except queue.Empty:
                    await ctx.tick().repeat(d)
                    self.cycles += d
                    continue
                for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(d)
                self.cycles += 10 * d

        async def monitor(ctx):
            # Plain per-cycle ticks (no `until`), so the monitor ends cleanly with the driver.
            while not self._stop.is_set():
                await ctx.tick()
                if ctx.get(dut.tx):
                    continue
                await ctx.tick().repeat(d // 2)  # middle of the start bit
                if ctx.get(dut.tx):
                    continue  # a glitch
                value = 0
                for i in range(8):
                    await ctx.tick().repeat(d)
                    value |= ctx.get(dut.tx) << i
                await ctx.tick().repeat(d)
                if ctx.get(dut.tx):
                    self._from_dev.put(value)
                else:
                    self.framing_errors += 1
                    while not ctx.get(dut.tx) and not self._stop.is_set():
                        await ctx.tick()

        sim.add_testbench(driver)
        sim.add_testbench(monitor)
        try:
            if vcd:
                with sim.write_vcd(vcd):
                    sim.run()
            else:
                sim.run()
        except BaseException as e:  # surfaced by the next read/write
            self._error = e

    def _check(self):
        if self._error is not None:
            raise HwgenError(f"the simulated device failed: {self._error!r}") from self._error
        if not self.is_open:
            raise HwgenError("the simulated serial port is closed")

    # -- the pyserial interface ------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self._check()
        for b in bytes(data):
            i = self._written
            self._written += 1
            if i in self.drop:
                continue
            self._to_dev.put(b ^ self.corrupt.get(i, 0))
        return len(data)

    def flush(self) -> None:
        self._check()

    def read(self, size: int = 1) -> bytes:
        self._check()
        out = bytearray()
        deadline = time.monotonic() + (self.timeout if self.timeout is not None else 1e9)
        while len(out) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                out.append(self._from_dev.get(timeout=min(left, 0.05)))
            except queue.Empty:
                self._check()
        return bytes(out)

    @property
    def in_waiting(self) -> int:
        return self._from_dev.qsize()

    def reset_input_buffer(self) -> None:
        while True:
            try:
                self._from_dev.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        if self.is_open:
            self._stop.set()
            self._thread.join(timeout=30)
            self.is_open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
