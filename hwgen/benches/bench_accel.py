"""cocotb bench for a generated accelerator (not a pytest module: hwgen.cosim runs it).

It reads a plan written by `hwgen.cosim` (JSON, path in HWGEN_PLAN): port names from the manifest,
for a loadable core the words to write through its load port first (``load``: [memory, address,
word hex]), and a list of operations, each ``["x", payload_hex, idle_cycles]`` (one input transfer
after that many idle cycles), ``["reset", cycles]`` (wait until every output is in, then pulse
reset) or ``["abort", cycles]`` (pulse reset right after the last accepted input, with work in
flight).
A delta core's plan names its debug counter ports (``counter_ports``): their values are recorded
at every output transfer (``counters``, one list per output).
The output side holds ready low before each transfer for the plan's ``out_stalls`` cycles (drawn
once by `hwgen.stimulus`, which the compiled harness of `hwgen.fastsim` reads too; 0 past the end).

Stimulus and results move per handshake: Python waits on signal edges, never polls every clock.
Progress (JSON, HWGEN_PROGRESS, optional): the count of accepted inputs, rewritten every ~2 s
while simulated time advances (also every 4096 cycles without an input: the host's stall
watchdog, `hwgen.cosim.STALL_SECONDS`, reads its modification time).
Results (JSON, HWGEN_RESULT): output payloads (hex) with their epoch (resets seen so far) and the
cycle of every input and output transfer. The comparison with the golden model happens in the host
process (hwgen.cosim), in bulk.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

PERIOD_NS = 10


def _hi(sig) -> bool:
    """True when the signal is a resolved 1 (X/Z read as 0)."""
    v = sig.value
    return v.is_resolvable and int(v) == 1


def _cycle() -> int:
    return int(get_sim_time("ns")) // PERIOD_NS


class _Bench:
    """The plan's ports and the run's record: outputs (epoch, payload hex), the cycles of every
    accepted input and delivered output, the reset epoch and the counts within it."""

    def __init__(self, dut, plan: dict):
        ports = plan["ports"]
        self.clk, self.rst = getattr(dut, ports["clk"]), getattr(dut, ports["rst"])
        self.i_valid, self.i_ready = getattr(dut, ports["i_valid"]), getattr(dut, ports["i_ready"])
        self.i_payload = getattr(dut, ports["i_payload"])
        self.o_valid, self.o_ready = getattr(dut, ports["o_valid"]), getattr(dut, ports["o_ready"])
        self.o_payload = getattr(dut, ports["o_payload"])
        self.load_ports = {k: getattr(dut, v) for k, v in plan.get("load_ports", {}).items()}
        # a delta core's debug counters (issue 23), read at every output transfer
        self.counter_ports = [getattr(dut, v) for v in plan.get("counter_ports", [])]
        self.counters = []
        self.out_stalls = plan["out_stalls"]
        self.timeout_ns = plan["timeout_cycles"] * PERIOD_NS
        self.epoch = self.fed = self.got = 0
        self.outputs, self.accepted, self.delivered = [], [], []
        self.got_one = Event()
        self.progress_path = os.environ.get("HWGEN_PROGRESS")  # inputs accepted, every ~2 s
        self.progress_due = time.monotonic() + 2.0

    def report_progress(self):
        if self.progress_path and time.monotonic() >= self.progress_due:
            self.progress_due = time.monotonic() + 2.0
            with open(self.progress_path + ".part", "w") as f:
                json.dump({"inputs": len(self.accepted)}, f)
            os.replace(self.progress_path + ".part", self.progress_path)

    async def heartbeat(self):
        """Issue 25: the progress file is rewritten while simulated time advances, also without
        inputs (the host's stall watchdog, `hwgen.cosim.STALL_SECONDS`, reads its time)."""
        while True:
            await ClockCycles(self.clk, 4096)
            self.report_progress()

    async def start(self, words):
        """Clock, 3 cycles of reset, then for a loadable core ``words`` ([memory, address, word
        hex]) through the load port, one a cycle, before any input."""
        clk, load = self.clk, self.load_ports
        cocotb.start_soon(Clock(clk, PERIOD_NS, unit="ns").start())
        cocotb.start_soon(self.heartbeat())
        self.i_valid.value = 0
        self.o_ready.value = 0
        self.i_payload.value = 0
        if load:
            load["valid"].value = 0
        self.rst.value = 1
        await ClockCycles(clk, 3)
        self.rst.value = 0
        await RisingEdge(clk)
        if load:
            for mem, addr, word in words:
                load["valid"].value = 1
                load["mem"].value = mem
                load["addr"].value = addr
                load["data"].value = int(word, 16)
                await RisingEdge(clk)
            load["valid"].value = 0
            await ClockCycles(clk, 3)  # the core's load-port register, then the write

    async def monitor(self):
        """Take every output: ready low for the next stall, then high until a transfer."""
        clk, k = self.clk, 0
        while True:
            stall = self.out_stalls[k] if k < len(self.out_stalls) else 0
            k += 1
            if stall:
                self.o_ready.value = 0
                await ClockCycles(clk, stall)
            self.o_ready.value = 1
            # Sample mid-cycle (falling edge): the values that the next rising edge will see.
            while True:
                await FallingEdge(clk)
                if _hi(self.o_valid) and not _hi(self.rst):
                    word = int(self.o_payload.value)
                    counts = [int(c.value) for c in self.counter_ports]
                    break
                if not _hi(self.o_valid):
                    await RisingEdge(self.o_valid)
            await RisingEdge(clk)  # the transfer
            self.outputs.append([self.epoch, format(word, "x")])
            if self.counter_ports:
                self.counters.append(counts)
            self.delivered.append(_cycle())
            self.got += 1
            self.got_one.set()
            self.o_ready.value = 0

    async def wait_outputs(self):
        """Until every input fed in this epoch has its output (or the time-out)."""

        async def wait():
            while self.got < self.fed:
                self.got_one.clear()
                await self.got_one.wait()

        await with_timeout(wait(), self.timeout_ns, "ns")

    async def pulse_reset(self, cycles):
        self.rst.value = 1
        self.i_valid.value = 0
        await ClockCycles(self.clk, cycles)
        self.rst.value = 0
        self.epoch += 1
        self.fed = self.got = 0

    async def feed(self, word, idle):
        """One input transfer after ``idle`` cycles."""
        clk = self.clk
        if idle:
            await ClockCycles(clk, idle)
        self.i_payload.value = int(word, 16)
        self.i_valid.value = 1
        while True:
            await FallingEdge(clk)
            if _hi(self.i_ready):
                break
            await with_timeout(RisingEdge(self.i_ready), self.timeout_ns, "ns")
        await RisingEdge(clk)  # the transfer
        self.accepted.append(_cycle())
        self.i_valid.value = 0
        self.fed += 1
        self.report_progress()


@cocotb.test()
async def run_plan(dut):
    with open(os.environ["HWGEN_PLAN"]) as f:
        plan = json.load(f)
    bench = _Bench(dut, plan)
    await bench.start(plan.get("load", []))
    mon = cocotb.start_soon(bench.monitor())
    for op in plan["ops"]:
        if op[0] == "x":
            await bench.feed(op[1], op[2])
        elif op[0] == "reset":
            await bench.wait_outputs()
            await bench.pulse_reset(op[1])
        elif op[0] == "abort":
            await bench.pulse_reset(op[1])
    await bench.wait_outputs()
    mon.cancel()
    with open(os.environ["HWGEN_RESULT"], "w") as f:
        json.dump({"outputs": bench.outputs, "accepted": bench.accepted,
                   "delivered": bench.delivered, "cycles": _cycle(),
                   "counters": bench.counters}, f)
