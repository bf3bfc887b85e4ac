"""cocotb bench for a generated accelerator (not a pytest module: hwgen.cosim runs it).

It reads a plan written by `hwgen.cosim` (JSON, path in HWGEN_PLAN): port names from the manifest,
for a loadable core the words to write through its load port first (``load``: [memory, address,
word hex]), and a list of operations, each ``["x", payload_hex, idle_cycles]`` (one input transfer
after that many idle cycles), ``["reset", cycles]`` (wait until every output is in, then pulse
reset) or ``["abort", cycles]`` (pulse reset right after the last accepted input, with work in
flight).
The output side holds ready low for random bursts (probability ``out_stall`` per transfer).

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
import random
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


@cocotb.test()
async def run_plan(dut):
    with open(os.environ["HWGEN_PLAN"]) as f:
        plan = json.load(f)
    ports = plan["ports"]
    clk, rst = getattr(dut, ports["clk"]), getattr(dut, ports["rst"])
    i_valid, i_ready = getattr(dut, ports["i_valid"]), getattr(dut, ports["i_ready"])
    i_payload = getattr(dut, ports["i_payload"])
    o_valid, o_ready = getattr(dut, ports["o_valid"]), getattr(dut, ports["o_ready"])
    o_payload = getattr(dut, ports["o_payload"])
    rng = random.Random(plan["seed"])
    out_stall = plan["out_stall"]
    timeout_cycles = plan["timeout_cycles"]

    state = {"epoch": 0, "fed": 0, "got": 0, "resetting": False}
    outputs, accepted, delivered = [], [], []
    progress_path = os.environ.get("HWGEN_PROGRESS")  # inputs accepted so far, every ~2 s
    progress_due = [time.monotonic() + 2.0]

    def report_progress():
        if progress_path and time.monotonic() >= progress_due[0]:
            progress_due[0] = time.monotonic() + 2.0
            with open(progress_path + ".part", "w") as f:
                json.dump({"inputs": len(accepted)}, f)
            os.replace(progress_path + ".part", progress_path)

    cocotb.start_soon(Clock(clk, PERIOD_NS, unit="ns").start())

    async def heartbeat():  # issue 25: the host's watchdog sees simulated time advance
        while True:
            await ClockCycles(clk, 4096)
            report_progress()

    cocotb.start_soon(heartbeat())
    i_valid.value = 0
    o_ready.value = 0
    i_payload.value = 0
    load = {k: getattr(dut, v) for k, v in plan.get("load_ports", {}).items()}
    if load:
        load["valid"].value = 0
    rst.value = 1
    await ClockCycles(clk, 3)
    rst.value = 0
    await RisingEdge(clk)
    if load:  # a loadable core: one word per cycle through the load port, before any input
        for mem, addr, word in plan["load"]:
            load["valid"].value = 1
            load["mem"].value = mem
            load["addr"].value = addr
            load["data"].value = int(word, 16)
            await RisingEdge(clk)
        load["valid"].value = 0
        await ClockCycles(clk, 3)  # the core's load-port register, then the write

    async def monitor():
        while True:
            if out_stall and rng.random() < out_stall:
                o_ready.value = 0
                await ClockCycles(clk, rng.randint(1, 12))
            o_ready.value = 1
            # Sample mid-cycle (falling edge): the values that the next rising edge will see.
            while True:
                await FallingEdge(clk)
                if _hi(o_valid) and not _hi(rst):
                    word = int(o_payload.value)
                    break
                if not _hi(o_valid):
                    await RisingEdge(o_valid)
            await RisingEdge(clk)  # the transfer
            outputs.append([state["epoch"], format(word, "x")])
            delivered.append(_cycle())
            state["got"] += 1
            got_one.set()
            o_ready.value = 0

    got_one = Event()

    async def wait_outputs(n):
        while state["got"] < n:
            got_one.clear()
            await got_one.wait()

    async def pulse_reset(cycles):
        rst.value = 1
        i_valid.value = 0
        await ClockCycles(clk, cycles)
        rst.value = 0
        state["epoch"] += 1
        state["fed"] = state["got"] = 0

    mon = cocotb.start_soon(monitor())
    for op in plan["ops"]:
        if op[0] == "x":
            _, word, idle = op
            if idle:
                await ClockCycles(clk, idle)
            i_payload.value = int(word, 16)
            i_valid.value = 1
            while True:
                await FallingEdge(clk)
                if _hi(i_ready):
                    break
                await with_timeout(RisingEdge(i_ready), timeout_cycles * PERIOD_NS, "ns")
            await RisingEdge(clk)  # the transfer
            accepted.append(_cycle())
            i_valid.value = 0
            state["fed"] += 1
            report_progress()
        elif op[0] == "reset":
            await with_timeout(wait_outputs(state["fed"]), timeout_cycles * PERIOD_NS, "ns")
            await pulse_reset(op[1])
        elif op[0] == "abort":
            await pulse_reset(op[1])
    await with_timeout(wait_outputs(state["fed"]), timeout_cycles * PERIOD_NS, "ns")
    mon.cancel()
    with open(os.environ["HWGEN_RESULT"], "w") as f:
        json.dump(
            {"outputs": outputs, "accepted": accepted, "delivered": delivered, "cycles": _cycle()},
            f,
        )
