"""Drive an `Accelerator` in amaranth.sim through its streams (tests and benchmarks).

Python drives whole vectors per transfer, so a run costs a few simulator events per timestep plus
the clock. Random stalls on either stream exercise the valid/ready handshakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from ..spec import HwgenError, TokenInput
from .core import Accelerator

__all__ = ["SimResult", "simulate", "load_words"]


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
) -> SimResult:
    """Run ``inputs`` (T, I) input codes or (T,) token ids through ``accel``.

    ``sos`` (T,) marks start-of-sequence timesteps (state cleared first). ``in_stall`` /
    ``out_stall`` are the probabilities that the producer withholds valid / the consumer withholds
    ready on a given cycle (random bursts, reproducible from ``seed``). ``load``: a loadable
    core's memory images (`plan.LoadImage` list; default: its own plan's), written through the
    load port, one word a cycle, before the first input.
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
    cycle = [0]
    accepted, delivered = [], []
    logits = np.zeros((T, model.outputs), np.int64)
    classes = np.zeros(T, np.int64) if model.head.argmax else None

    async def clock_counter(ctx):
        async for _ in ctx.tick():
            cycle[0] += 1

    images = _images(accel, load)

    async def producer(ctx):
        s = accel.i_stream
        if images is not None:
            await load_words(ctx, accel.load, images)
        for t in range(T):
            while in_stall and rng_in.random() < in_stall:
                await ctx.tick()
            if token:
                ctx.set(s.payload, {"sos": int(flags[t]), "token": int(x[t])})
            else:
                ctx.set(s.payload, {"sos": int(flags[t]), "x": [int(v) for v in x[t]]})
            ctx.set(s.valid, 1)
            await ctx.tick().until(s.ready)
            accepted.append(cycle[0])
            ctx.set(s.valid, 0)

    async def consumer(ctx):
        s = accel.o_stream
        for t in range(T):
            while out_stall and rng_out.random() < out_stall:
                ctx.set(s.ready, 0)
                await ctx.tick()
            ctx.set(s.ready, 1)
            (payload,) = await ctx.tick().sample(s.payload).until(s.valid)
            delivered.append(cycle[0])
            logits[t] = [int(payload.logits[o]) for o in range(model.outputs)]
            if classes is not None:
                classes[t] = int(payload.argmax)
            ctx.set(s.ready, 0)

    _run(accel, (producer, consumer), clock_counter, vcd)
    return SimResult(logits, classes, np.array(accepted), np.array(delivered))


def _images(accel: Accelerator, load):
    """The images to load before the first input: ``load``, or a loadable core's own; None for
    a ROM core (which refuses ``load``)."""
    if accel.plan.loadable:
        return accel.plan.load_images() if load is None else load
    if load is not None:
        raise HwgenError("this accelerator holds its weights in ROM; it has no load port")
    return None


def _run(accel: Accelerator, benches, background, vcd: str | None) -> None:
    """Run ``benches`` (and ``background``) on ``accel`` at a 100 MHz clock; ``vcd``: a
    waveform file."""
    sim = Simulator(accel)
    sim.add_clock(1e-8)
    sim.add_testbench(background, background=True)
    for bench in benches:
        sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
