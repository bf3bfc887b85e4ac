# amaranth: UnusedElaboratable=no
"""The interface contract's behaviour that docs/manifest.md states for a user's testbench
(issue 27 item 5), each measured in amaranth.sim on the generated core: the load port's gap
before the first input, memories kept through a reset, h and c kept through a load, and how many
accepted inputs a reset loses."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ResetInserter, Signal
from amaranth.sim import Simulator

from conftest import make_model
from hwgen.gateware.core import Accelerator
from hwgen.golden import GoldenModel

#: (cell, make_model keywords, lanes, weights): a dense vector core in SPRAM, a token core with
#: its embedding loaded (ram), a sparse core.
LOADABLE = [
    ("gru", dict(quant="ternary", inputs=4, hidden=6, outputs=3), 2, "spram"),
    ("lstm", dict(quant="exp", inputs=3, hidden=5, outputs=2, tokens=7), 2, "ram"),
    ("gru", dict(quant="ternary", inputs=8, hidden=8, outputs=2, sparsity="2:4"), 2, "spram"),
]


def _inputs(model, T, seed):
    rng = np.random.default_rng(seed)
    if model.embedding is not None:
        return rng.integers(0, model.input.vocab, (T,))
    fmt = model.formats.input
    return rng.integers(fmt.min_code, fmt.max_code + 1, (T, model.input.features))


def _payload(model, x, sos):
    if model.embedding is not None:
        return {"sos": int(sos), "token": int(x)}
    return {"sos": int(sos), "x": [int(v) for v in x]}


class Bench:
    """A small testbench around one core: load writes, inputs, outputs, resets, one await per
    cycle where it matters. Records every output's logits."""

    def __init__(self, core):
        self.core, self.model = core, core.model
        self.rst = Signal()  # the sync domain's reset, as the Verilog top's rst port
        self.out: list[list[int]] = []

    async def write(self, ctx, writes):
        """``writes``: (memory index, address, word), one a cycle; valid drops after them."""
        ld = self.core.load
        for mem, addr, word in writes:
            ctx.set(ld.valid, 1)
            ctx.set(ld.mem, mem)
            ctx.set(ld.addr, addr)
            ctx.set(ld.data, int(word))
            await ctx.tick()
        ctx.set(ld.valid, 0)

    async def send(self, ctx, x, sos):
        s = self.core.i_stream
        ctx.set(s.payload, _payload(self.model, x, sos))
        ctx.set(s.valid, 1)
        await ctx.tick().until(s.ready)
        ctx.set(s.valid, 0)

    def run(self, body):
        sim = Simulator(ResetInserter(self.rst)(self.core))
        sim.add_clock(1e-8)
        s = self.core.o_stream

        async def monitor(ctx):
            async for _, _, rst, valid, ready, payload in ctx.tick().sample(
                    self.rst, s.valid, s.ready, s.payload):
                if valid and ready and not rst:
                    self.out.append([int(payload.logits[o]) for o in range(self.model.outputs)])

        sim.add_testbench(monitor, background=True)
        sim.add_testbench(body)
        sim.run()


async def _drain(ctx, bench, n, limit=20_000):
    """Ready high until ``n`` outputs have transferred."""
    ctx.set(bench.core.o_stream.ready, 1)
    for _ in range(limit):
        if len(bench.out) >= n:
            return
        await ctx.tick()
    raise AssertionError(f"{len(bench.out)} of {n} outputs in {limit} cycles")


def _core(cell, kw, lanes, weights):
    model = make_model(cell, seed=3, **kw)
    core = Accelerator(model, lanes, "auto", weights, "on" if "sparsity" in kw else "off")
    return model, core


def _first_reads(model, images, x0):
    """The word of each memory the first timestep reads first: address 0 of the weights and
    biases (both read by counters in issue order), the first token's row of the embedding."""
    return {im.index: (int(x0) if im.name == "embedding" else 0) for im in images}


def _load_then_run(cell, kw, lanes, weights, gap):
    """For each memory, a load whose last write is the word the first timestep reads first
    (written wrong before), ``gap`` cycles with ``load__valid`` low, then the inputs; raises
    AssertionError unless the logits equal the golden model's."""
    model, core = _core(cell, kw, lanes, weights)
    images = core.plan.load_images()
    x = _inputs(model, 3, 1)
    want = GoldenModel(model).run(x[None]).logits[0]
    firsts = _first_reads(model, images, x[0])
    mask = {im.index: (1 << im.width) - 1 for im in images}
    for last in firsts:
        writes = [(im.index, a, w ^ mask[im.index] if a == firsts[im.index] else w)
                  for im in images for a, w in enumerate(im.words)]
        writes += [(i, a, images[i].words[a]) for i, a in firsts.items() if i != last]
        writes.append((last, firsts[last], images[last].words[firsts[last]]))
        bench = Bench(core)

        async def body(ctx, bench=bench, writes=writes):
            await bench.write(ctx, writes)
            await ctx.tick().repeat(gap) if gap else None
            for t in range(len(x)):
                await bench.send(ctx, x[t], t == 0)
            await _drain(ctx, bench, len(x))

        bench.run(body)
        np.testing.assert_array_equal(np.array(bench.out), want, err_msg=images[last].name)


@pytest.mark.parametrize("cell,kw,lanes,weights", LOADABLE)
def test_the_gap_between_the_last_load_write_and_the_first_input(cell, kw, lanes, weights):
    """Vector cores: the input may be valid in the cycle right after the last write (its
    transfer on the next edge). Token cores read the embedding during the accept cycles: they
    need one cycle with neither valid in between, and fail without it."""
    tokens = "tokens" in kw
    _load_then_run(cell, kw, lanes, weights, gap=1 if tokens else 0)
    if tokens:
        with pytest.raises(AssertionError, match="embedding"):
            _load_then_run(cell, kw, lanes, weights, gap=0)


def test_a_reset_keeps_the_loaded_memories_and_a_load_keeps_h_and_c():
    """A reset clears state, sequencer and streams but not the memories: after it a new
    sequence is exact without a new load. A load between two timesteps of a sequence leaves h
    (and c) as they were: the sequence continues exactly."""
    for cell, kw, lanes, weights in LOADABLE[:2]:
        model, core = _core(cell, kw, lanes, weights)
        images = core.plan.load_images()
        words = [(im.index, a, w) for im in images for a, w in enumerate(im.words)]
        x = _inputs(model, 6, 2)
        want = GoldenModel(model).run(x[None]).logits[0]
        bench = Bench(core)

        async def body(ctx, bench=bench, words=words, x=x):
            await bench.write(ctx, words)
            for t in range(3):
                await bench.send(ctx, x[t], t == 0)
            await _drain(ctx, bench, 3)
            await bench.write(ctx, words)  # a load in the middle of the sequence (idle core)
            for t in range(3, 6):
                await bench.send(ctx, x[t], False)
            await _drain(ctx, bench, 6)
            # a reset of a few cycles, then the sequence again from its start, no load
            ctx.set(bench.rst, 1)
            await ctx.tick().repeat(3)
            ctx.set(bench.rst, 0)
            for t in range(6):
                await bench.send(ctx, x[t], t == 0)
            await _drain(ctx, bench, 12)

        bench.run(body)
        np.testing.assert_array_equal(np.array(bench.out[:6]), want)  # h, c survived the load
        np.testing.assert_array_equal(np.array(bench.out[6:]), want)  # memories survived


@pytest.mark.parametrize("cell,lanes,argmax", [("rnn", 2, False), ("gru", 4, True),
                                               ("lstm", 1, False)])
def test_a_reset_loses_at_most_three_accepted_inputs(cell, lanes, argmax):
    """With the consumer stalled the core accepts three inputs (one in the output register,
    one whose head drains, one computed to its head) and then holds ready low; a reset then
    loses all three (no output of them ever transfers), and the core runs exactly after it, from
    cleared state even without ``sos``."""
    model = make_model(cell, inputs=3, hidden=4, outputs=2, argmax=argmax, seed=5)
    core = Accelerator(model, lanes)
    cpt = core.schedule.cycles_per_timestep
    x = _inputs(model, 8, 4)
    want = GoldenModel(model).run(x[None, 3:]).logits[0]
    accepted = []
    bench = Bench(core)

    async def body(ctx):
        s = core.i_stream
        ctx.set(core.o_stream.ready, 0)
        for t in range(8):  # offer inputs for 8 timesteps' time; count the accepted ones
            ctx.set(s.payload, _payload(model, x[t % 3], t == 0))
            ctx.set(s.valid, 1)
            for _ in range(2 * cpt):
                _, _, ready = await ctx.tick().sample(s.ready)
                if ready:
                    accepted.append(t)
                    break
        ctx.set(s.valid, 0)
        ctx.set(bench.rst, 1)
        await ctx.tick()
        ctx.set(bench.rst, 0)
        ctx.set(core.o_stream.ready, 1)
        await ctx.tick().repeat(3 * cpt)  # nothing of the lost inputs comes out
        assert bench.out == []
        for t in range(3, 8):  # no sos: the reset cleared h (and c) as a start of sequence
            await bench.send(ctx, x[t], False)
        await _drain(ctx, bench, 5)

    bench.run(body)
    assert len(accepted) == 3, accepted
    np.testing.assert_array_equal(np.array(bench.out), want)


def test_another_models_load_images_from_the_command_line(tmp_path):
    """docs/manifest.md: ``hwgen generate OTHER --weights spram`` with the same options writes
    OTHER's load_images.json; with an equal ``load.shape_id`` the Verilog is the same core and
    the images are what `hwgen.shape.load_images` gives for it."""
    import json

    from hwgen.cli import main
    from hwgen.modelfile import save_model
    from hwgen.shape import load_images

    a = make_model("gru", "ternary", inputs=4, hidden=6, outputs=3, seed=1)
    b = make_model("gru", "ternary", inputs=4, hidden=6, outputs=3, seed=2)
    for name, model in (("a", a), ("b", b)):
        save_model(model, tmp_path / f"{name}.hwgm")
        assert main(["generate", str(tmp_path / f"{name}.hwgm"), "-o", str(tmp_path / name),
                     "--lanes", "2", "--weights", "spram"]) == 0
    ma, mb = (json.loads((tmp_path / n / "manifest.json").read_text()) for n in "ab")
    assert ma["load"]["shape_id"] == mb["load"]["shape_id"]
    assert (tmp_path / "a" / "hwgen_top.v").read_bytes() == (tmp_path / "b" / "hwgen_top.v"
                                                             ).read_bytes()
    written = json.loads((tmp_path / "b" / "load_images.json").read_text())["memories"]
    want = load_images(ma["load"]["shape"], b)
    assert [[int(w, 16) for w in m["words"]] for m in written] == [list(im.words) for im in want]
    assert written != json.loads((tmp_path / "a" / "load_images.json").read_text())["memories"]


@pytest.mark.parametrize("cell,layers,lanes", [("rnn", 2, 3), ("gru", 1, 3), ("lstm", 1, 3)])
def test_a_reset_in_every_cycle_of_a_timestep_restarts_exactly(monkeypatch, cell, layers, lanes):
    """Resets in every sequencer state (issue 27 item 2): after two inputs, a one-cycle reset k
    cycles after the second was accepted, for every k from 0 to past its output, with the
    consumer ready and with the consumer stalled (the output register full at the reset); then a
    new sequence without ``sos``. Outputs before the reset are a correct prefix, none of the old
    inputs comes out after it, and the new sequence is exact from cleared state. The phases the
    resets hit are recorded (benchmarks/coverage.py's names) and must include every phase."""
    import hwgen.gateware.core as core_mod

    made = []

    class Sequencer(core_mod.Sequencer):
        def __init__(self, plan):
            super().__init__(plan)
            made.append(self)

    monkeypatch.setattr(core_mod, "Sequencer", Sequencer)
    model = make_model(cell, inputs=2, hidden=3, outputs=2, layers=layers, seed=9)
    core = Accelerator(model, lanes)
    golden = GoldenModel(model)
    old, new = _inputs(model, 2, 1), _inputs(model, 2, 2)
    want_old = golden.run(old[None]).logits[0].tolist()
    want_new = golden.run(new[None]).logits[0].tolist()
    span = core.schedule.latency + 3
    bench = Bench(core)
    hits, checks = set(), []

    async def body(ctx):
        seq = made[-1]
        s = core.i_stream
        for stalled in (False, True):
            for k in range(span):
                ctx.set(core.o_stream.ready, 1)
                await bench.send(ctx, old[0], True)
                ctx.set(core.o_stream.ready, int(not stalled))
                await bench.send(ctx, old[1], False)
                await ctx.tick().repeat(k) if k else None
                v = {n: ctx.get(getattr(seq, n)) for n in ("issue", "head", "part", "layer")}
                hits.add(("stalled " if stalled and ctx.get(core.o_stream.valid) else "")
                         + ("idle" if ctx.get(s.ready) else "wait" if not v["issue"] else
                            "issue head" if v["head"] else
                            f"issue {'recurrent' if v['part'] else 'input'}"))
                before = len(bench.out)
                ctx.set(bench.rst, 1)
                await ctx.tick()
                ctx.set(bench.rst, 0)
                ctx.set(core.o_stream.ready, 1)
                for t in range(2):
                    await bench.send(ctx, new[t], False)
                await _drain(ctx, bench, before + 2)  # an old output would come first
                checks.append((k, stalled, bench.out[:before], bench.out[before:]))
                bench.out.clear()

    bench.run(body)
    for k, stalled, pre, post in checks:
        assert pre == want_old[: len(pre)], (k, stalled)
        assert post == want_new, (k, stalled, post)
    assert {"idle", "wait", "issue head", "issue input", "issue recurrent",
            "stalled wait"} <= hits, hits
