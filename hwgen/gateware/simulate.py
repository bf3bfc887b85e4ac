"""Drive an `Accelerator` in amaranth.sim through its streams (tests and benchmarks).

Python drives whole vectors per transfer, so a run costs a few simulator events per timestep plus
the clock. Random stalls on either stream exercise the valid/ready handshakes.

A run is bounded (`cycle_bound`): a core that stops delivering outputs (a hang, e.g. a mutant
whose sequencer never ends a timestep) fails with `SimulationHang` after a number of cycles the
schedule's worst case allows, instead of running forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ..spec import HwgenError, TokenInput
from .core import Accelerator

__all__ = ["SimResult", "SimulationHang", "simulate", "load_words", "cycle_bound"]


class SimulationHang(HwgenError):
    """A simulation ran past its `cycle_bound` without delivering every output."""


def cycle_bound(accel: Accelerator, timesteps: int, stall_cycles: int = 0,
                load_cycles: int = 0) -> int:
    """The most cycles a run of ``timesteps`` inputs may take: twice the serial worst case from
    the schedule (the manifest's ``timing``), every timestep from its input's transfer to its
    output's taking ``latency_cycles`` (>= ``cycles_per_timestep``: a core never takes longer
    than that, timesteps overlap), plus each cycle a stream was stalled by the bench (a stall
    delays the core by at most one cycle) and the load, plus 64 cycles of margin."""
    serial = (timesteps + 1) * accel.schedule.latency + stall_cycles + load_cycles
    return 2 * serial + 64


@dataclass
class SimResult:
    """``logits`` (T, O) codes, ``classes`` (T,) (argmax models, else None), ``accepted`` (T,) the
    cycle of each input transfer, ``delivered`` (T,) the cycle of each output transfer."""

    logits: np.ndarray
    classes: np.ndarray | None
    accepted: np.ndarray
    delivered: np.ndarray


async def load_words(ctx, port, images) -> None:
    """Write every word of ``images`` (`plan.LoadImage` list) through a core's load ``port``,
    one word a cycle, then wait until the last one is in its memory."""
    for im in images:
        for a, w in enumerate(im.words):
            ctx.set(port.valid, 1)
            ctx.set(port.mem, im.index)
            ctx.set(port.addr, a)
            ctx.set(port.data, int(w))
            await ctx.tick()
    ctx.set(port.valid, 0)
    await ctx.tick().repeat(2)  # the load port's register, then the write


def simulate(
    accel: Accelerator,
    inputs,
    sos,
    *,
    seed: int = 0,
    in_stall: float = 0.0,
    out_stall: float = 0.0,
    vcd: str | None = None,
    load=None,
    max_cycles: int | None = None,
) -> SimResult:
    """Run ``inputs`` (T, I) input codes or (T,) token ids through ``accel``.

    ``sos`` (T,) marks start-of-sequence timesteps (state cleared first). ``in_stall`` /
    ``out_stall`` are the probabilities that the producer withholds valid / the consumer withholds
    ready on a given cycle (random bursts, reproducible from ``seed``); half of the consumer's
    bursts start when an output is valid, so the output register stays full under them (the
    others precede the output). ``load``: a loadable
    core's memory images (`plan.LoadImage` list; default: its own plan's), written through the
    load port, one word a cycle, before the first input. Raises `SimulationHang` when the run
    takes more than ``max_cycles`` cycles (default: `cycle_bound` of this run, counting the
    stall cycles drawn as they happen).
    """
    model = accel.model
    x = np.asarray(inputs, dtype=np.int64)
    flags = np.asarray(sos, dtype=bool)
    token = isinstance(model.input, TokenInput)
    T = x.shape[0]
    if flags.shape != (T,):
        raise HwgenError(f"sos must have shape ({T},), not {flags.shape}")
    rng_in = np.random.default_rng([seed, 1])
    rng_out = np.random.default_rng([seed, 2])
    cycle, stalls = [0], [0]
    accepted, delivered = [], []
    logits = np.zeros((T, model.outputs), np.int64)
    classes = np.zeros(T, np.int64) if model.head.argmax else None

    images = _images(accel, load)
    load_cycles = 3 + sum(im.depth for im in images) if images is not None else 0

    hang: list[str] = []
    clock_counter = _bounded_clock(accel, T, cycle, stalls, load_cycles, max_cycles,
                                   accepted, delivered, hang)

    async def producer(ctx):
        s = accel.i_stream
        if images is not None:
            await load_words(ctx, accel.load, images)
        for t in range(T):
            while in_stall and rng_in.random() < in_stall:
                stalls[0] += 1
                await ctx.tick()
            if token:
                ctx.set(s.payload, {"sos": int(flags[t]), "token": int(x[t])})
            else:
                ctx.set(s.payload, {"sos": int(flags[t]), "x": [int(v) for v in x[t]]})
            ctx.set(s.valid, 1)
            await _until(ctx, s.ready)
            accepted.append(cycle[0])
            ctx.set(s.valid, 0)

    async def consumer(ctx):
        s = accel.o_stream
        for t in range(T):
            await _stall_consumer(ctx, s, out_stall, rng_out, stalls)
            ctx.set(s.ready, 1)
            (payload,) = await _until(ctx, s.valid, s.payload)
            delivered.append(cycle[0])
            logits[t] = [int(payload.logits[o]) for o in range(model.outputs)]
            if classes is not None:
                classes[t] = int(payload.argmax)
            ctx.set(s.ready, 0)

    _run(accel, (producer, consumer), clock_counter, vcd, hang)
    return SimResult(logits, classes, np.array(accepted), np.array(delivered))


async def _stall_consumer(ctx, s, out_stall: float, rng, stalls: list) -> None:
    """Withhold ``s.ready`` for a random burst (each cycle with probability ``out_stall``,
    counted into ``stalls[0]``): half of the bursts start when an output is valid, so the output
    register stays full under them; the others before it, as a slow consumer."""
    burst = 0
    while out_stall and rng.random() < out_stall:
        burst += 1
    stalls[0] += burst
    ctx.set(s.ready, 0)
    if burst and rng.random() < 0.5:
        await _until(ctx, s.valid)
        burst -= 1
    for _ in range(burst):
        await ctx.tick()


async def _until(ctx, cond, *values):
    """``await ctx.tick().sample(*values).until(cond)`` as a plain loop: a bench left waiting
    when `_run` stops a hung simulation is then closed cleanly (``until``'s own generator
    cannot be closed from outside)."""
    while True:
        _, _, done, *got = await ctx.tick().sample(cond, *values)
        if done:
            return got


def _bounded_clock(accel, T, cycle, stalls, load_cycles, max_cycles, accepted, delivered,
                   hang: list):
    """The background bench of `simulate`: counts cycles into ``cycle[0]`` and, past
    ``max_cycles`` (None: `cycle_bound` with the stalls so far), puts the `SimulationHang`
    message into ``hang`` (`_run` stops the simulation and raises it: an exception raised
    inside a bench would leave the other benches half-closed)."""
    async def clock_counter(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1
            bound = (cycle_bound(accel, T, stalls[0], load_cycles) if max_cycles is None
                     else max_cycles)
            if cycle[0] > bound and not hang:
                hang.append(
                    f"the simulation did not finish: {len(delivered)} of {T} outputs after "
                    f"{cycle[0]} cycles ({len(accepted)} inputs accepted; bound {bound} from "
                    f"latency_cycles {accel.schedule.latency} per timestep, {stalls[0]} stall "
                    f"cycles, {load_cycles} load cycles): the core stopped delivering outputs")

    return clock_counter


def _images(accel: Accelerator, load):
    """The images to load before the first input: ``load``, or a loadable core's own; None for
    a ROM core (which refuses ``load``)."""
    if accel.plan.loadable:
        return accel.plan.load_images() if load is None else load
    if load is not None:
        raise HwgenError("this accelerator holds its weights in ROM; it has no load port")
    return None


def _run(accel: Accelerator, benches, background, vcd: str | None, hang: list) -> None:
    """Run ``benches`` (and ``background``) on ``accel`` at a 100 MHz clock until the benches
    end, or raise `SimulationHang` with the message ``background`` put into ``hang``; ``vcd``:
    a waveform file."""
    sim = Simulator(accel)
    sim.add_clock(1e-8)
    sim.add_testbench(background, background=True)
    for bench in benches:
        sim.add_testbench(bench)

    def run():
        while not hang and sim.advance():
            pass

    if vcd:
        with sim.write_vcd(vcd):
            run()
    else:
        run()
    if hang:
        raise SimulationHang(hang[0])
