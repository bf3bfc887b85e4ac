"""White-box interface proofs: the stream properties of `interface`, unbounded, on the core itself.

The black-box harness of `interface` sees only the generated top's ports, so k-induction cannot
exclude unreachable states of the sequencer and output loader and does not close (the order and
timing properties stay bounded there). Here the same monitors and assertions
(`interface.StreamHarness`) watch the Amaranth core (`gateware.core.Accelerator`, the design the
Verilog is converted from, built from the model and the manifest's options), and one more
assertion, the *control invariant*, ties the core's control state to the monitors:

- the control state: every register with a reset of the sequencer (`gateware.sequencer`, less
  `sequencer.FORMAL_DATA_REGISTERS`; ``seq_left`` only while a segment issues) and the output
  loader's (`core.LOADER_REGISTERS`), plus the monitors' own registers (timesteps in flight;
  ``timing``: the accept history; ``order``: the cycles since the last input or stall);
- the invariant: that state is one of a list of *cubes* (exact values of the control registers
  and the monitors' counters, intervals of the cycles since the last input or stall): the exact
  set of reachable control states, found by an exhaustive search of the same harness in
  amaranth.sim (`mine`), which also evaluates every assertion in every state and input (a
  failing one is a counterexample from reset, replayed with its waveform: `replay`).

The solver then proves the invariant together with the properties by k-induction (k = 1): the
base case checks them from reset; the step shows that from any state inside the invariant (and
the properties) the next one is inside too. Soundness does not depend on the search: a wrong or
missing cube can only make the proof fail (``unknown``), never pass. One set of rules derives
every cell's invariant (RNN, GRU, LSTM, dense and sparse, vector and token inputs, ROM and
loadable weights: the loader's writes touch no control register, its port is held idle here).

Properties (`whitebox_properties`): ``core.order`` (``streams.order``'s assertions under any
stall pattern) and ``core.latency`` (``timing.latency``'s, an always-ready consumer).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from ..spec import HwgenError
from .interface import StreamHarness
from .runner import Property, Refuted

__all__ = ["CoreHarness", "Invariant", "mine", "whitebox_properties", "INVARIANT_LABEL"]

INVARIANT_LABEL = "core.invariant: the control state left the mined invariant"
_CHECKS = {"order": "order_bmc", "timing": "timing"}


@dataclass(frozen=True)
class Invariant:
    """A disjunction of cubes over the harness's state vector (`CoreHarness.state`): cube
    ``(mask, value, lo, hi)`` holds when ``key & mask == value`` and ``lo <= rng <= hi`` (``rng``:
    the range variable, or 0 when the check has none)."""

    names: tuple[str, ...]
    cubes: tuple[tuple[int, int, int, int], ...]
    #: the first assertion the exploration saw fail, or None: (its message, the inputs
    #: (reset, input valid, output ready) of every cycle from the reset state to the failing one)
    violation: tuple[str, tuple[tuple[int, int, int], ...]] | None = None


def _registers(fragment, keep) -> list:
    """The registers (sync LHS signals) of ``fragment`` for which ``keep(signal)`` holds, sorted
    by name."""
    from amaranth.hdl._ast import SignalSet

    regs = SignalSet()
    for stmt in fragment.statements.get("sync", ()):
        regs |= stmt._lhs_signals()
    return sorted((s for s in regs if keep(s)), key=lambda s: s.name)


class CoreHarness(StreamHarness):
    """`interface.StreamHarness` around the Amaranth core of ``design`` (white box).

    Parameters
    ----------
    design : `hwgen.design.Design` of the generated folder (its plan builds the core).
    manifest : the folder's manifest (cycles per timestep and latency: the contract checked).
    check : ``order`` (any stall pattern) or ``timing`` (always-ready consumer).
    invariant : an `Invariant` to assert (None: no invariant, e.g. while mining).
    sim : build for amaranth.sim: the free inputs are plain signals (``self.stim``), the domain
        is explicit (``self.cd``) and ``self.snapshot`` concatenates the state vector.
    """

    def __init__(self, design, manifest: dict, check: str, invariant: Invariant | None = None,
                 sim: bool = False):
        if check not in _CHECKS:
            raise HwgenError(f"check must be one of {', '.join(_CHECKS)}, not {check!r}")
        super().__init__(manifest, _CHECKS[check], 1)
        self._design, self._kind, self._inv, self._sim = design, check, invariant, sim
        self.stim = self.cd = self.snapshot = self.state = None
        self.checks: list = []  # sim: (flag, message) per assertion

    def _props(self):
        if not self._sim:
            return super()._props()
        from amaranth.hdl import Signal, Value

        # amaranth.sim would check comb assertions between deltas: in simulation each assertion
        # drives a flag instead (high when it fails), read once the design has settled
        def check(test, message=""):
            flag = Signal(name=f"fails_{len(self.checks)}")
            self.checks.append((flag, message))
            return flag.eq(~Value.cast(test).bool())

        def none(*args, **kwargs):  # the exploration's inputs keep the assumptions
            return []

        return check, none, none

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self._invariant(m, self._p)
        return m

    def _dut(self, m):
        core, frag, p = self._core(m)
        from ..gateware.core import LOADER_REGISTERS
        from ..gateware.sequencer import FORMAL_DATA_REGISTERS

        seq = next(f for f, name, _ in frag.subfragments if name == "sequencer")
        p.control = _registers(seq, lambda s: not s.reset_less
                               and s.name not in FORMAL_DATA_REGISTERS)
        p.control += _registers(frag, lambda s: s.name in LOADER_REGISTERS)
        missing = set(LOADER_REGISTERS) - {s.name for s in p.control}
        if missing:  # a renamed register: the invariant would silently lose it
            raise HwgenError(f"the core has no loader register {', '.join(sorted(missing))}")
        self._p = p
        return p

    def _core(self, m):
        """Elaborate the design's core into ``m`` with free stream inputs (plain signals in
        simulation, ``self.stim``): returns (core, its fragment, the port namespace)."""
        from amaranth.asserts import AnySeq
        from amaranth.hdl import ClockDomain, Fragment, ResetSignal, Signal

        core = self._design.accelerator()
        frag = Fragment.get(core, None)
        m.submodules.core = frag
        width = len(core.i_stream.payload.as_value())
        if self._sim:
            self.cd = m.domains.sync = ClockDomain("sync")
            p = SimpleNamespace(rst=self.cd.rst, i_valid=Signal(name="s_valid"),
                                o_ready=Signal(name="s_ready", init=1),
                                i_payload=Signal(width, name="s_payload"))
            self.stim = p
        else:
            p = SimpleNamespace(rst=ResetSignal(), i_valid=AnySeq(1), o_ready=AnySeq(1),
                                i_payload=AnySeq(width))
        p.i_ready, p.o_valid = core.i_stream.ready, core.o_stream.valid
        p.o_payload = core.o_stream.payload.as_value()
        m.d.comb += [core.i_stream.valid.eq(p.i_valid), core.o_stream.ready.eq(p.o_ready),
                     core.i_stream.payload.as_value().eq(p.i_payload)]
        return core, frag, p

    def _state(self, m, p):
        """(key values, range signal or None, guards): each guard ``(flags, free)`` says the
        key values ``free`` matter only while one of ``flags`` is set (here: ``seq_left`` only
        while a segment issues), so the exploration and the cubes leave them out otherwise."""
        from amaranth.hdl import Assert, Signal

        from ..gateware.sequencer import FORMAL_ISSUE_ONLY

        keys = list(p.control) + [p.pending]
        rng = None
        if self._kind == "timing":
            keys.append(p.hist)
        else:
            # cycles since the last input or stall = min(age, quiet): the order assertion's
            # "age < lat or quiet < lat" is "since < lat"
            lat = self._lat
            rng = Signal(range(lat + 2), name="since")
            with m.If(p.accept | (p.o_valid & ~p.o_ready)):
                m.d.sync += rng.eq(1)
            with m.Elif(rng <= lat):
                m.d.sync += rng.eq(rng + 1)
            if not self._sim:
                m.d.comb += Assert(rng == _min(p.age, p.quiet),
                                   "core.invariant: since = min(age, quiet)")
        free = [s for s in keys if s.name in FORMAL_ISSUE_ONLY]
        issue = next(s for s in keys if s.name == "seq_issue")
        return keys, rng, [([issue], free)]

    def _invariant(self, m, p):
        from amaranth.hdl import Assert, Cat, Const, Signal

        keys, rng, guards = self._state(m, p)
        self.state = tuple(_name(s) for s in keys)
        key = Cat(*keys)
        # bit masks, in the key, of each guard's flags and of the values they guard
        self._guards = tuple((_mask_of(keys, flags), _mask_of(keys, free))
                             for flags, free in guards)
        self._regs = Cat(key, rng) if rng is not None else key
        if self._sim:
            self.snapshot = Signal(len(key) + (len(rng) if rng is not None else 0))
            m.d.comb += self.snapshot.eq(Cat(key, rng) if rng is not None else key)
            self._key_width = len(key)
            return
        if self._inv is None:
            return
        if self._inv.names != self.state:
            raise HwgenError("the invariant was mined on another control state: mine it again")
        r = rng if rng is not None else Const(0)
        hit = Signal(name="inv_hit")
        terms = [((key & mask) == value) & (r >= lo) & (r <= hi)
                 for mask, value, lo, hi in self._inv.cubes]
        m.d.comb += hit.eq(_any(terms))
        with m.If(~p.rst):
            m.d.comb += Assert(hit, INVARIANT_LABEL)


def _min(a, b):
    from amaranth.hdl import Mux

    return Mux(a < b, a, b)


def _any(terms):
    from amaranth.hdl import Cat

    return Cat(*terms).any() if terms else 0


def _mask_of(keys, values) -> int:
    """The bits of ``values`` (by identity) in the concatenation of ``keys``."""
    off, mask = 0, 0
    for s in keys:
        if any(s is v for v in values):
            mask |= ((1 << len(s)) - 1) << off
        off += len(s)
    return mask


def _name(value) -> str:
    """A key value's name: a signal's, or ``signal[start:stop]`` for a slice of one."""
    if hasattr(value, "name"):
        return value.name
    return f"{value.value.name}[{value.start}:{value.stop}]"


def canonical(guards, key: int) -> tuple[int, int]:
    """(the key with every value whose guard is off cleared, the mask of the bits that count)."""
    mask = -1
    for flags, free in guards:
        if not key & flags:
            mask &= ~free
    return key & mask, mask


def mine(design, manifest: dict, check: str, limit: int = 100000, explorer=None) -> Invariant:
    """The exact reachable control states of ``check``'s harness, as an `Invariant`.

    A breadth-first search in amaranth.sim from the reset state steps each control state with
    every value of the free control inputs (reset, input valid, and for ``order`` the consumer's
    ready; the payload does not reach the control state and is held at 0) until no new state
    appears, and evaluates the harness's assertions in every state and input. ``order``'s counter
    of cycles since the last input or stall reaches no control register, so the search runs
    over the control states alone, recording how each step moves the counter (reset to 0,
    restart at 1, count up to ``lat + 1``); the counter values each state takes are propagated
    over that graph in Python, and the assertions are evaluated again at each state's largest
    value (the one assertion that reads the counter bounds it from above). Each state becomes
    one cube per interval of its counter values; the first failing assertion met is kept with
    the inputs that lead to it (`Invariant.violation`). Raises HwgenError past ``limit``
    states."""
    from amaranth.sim import Simulator

    ex = (explorer or _Explorer)(design, manifest, check, limit)
    sim = Simulator(ex.frag)
    sim.add_clock(1e-6)
    sim.add_testbench(ex.bench)
    sim.run()
    return ex.result


class _Explorer:
    """The state of one `mine` run (its simulation testbench is `bench`)."""

    def __init__(self, design, manifest: dict, check: str, limit: int):
        from amaranth.hdl import Cat, Fragment

        self.h = h = self.harness(design, manifest, check)
        self.frag = Fragment.get(h, None)
        self.kw, self.limit, self.check = h._key_width, limit, check
        self.keymask = (1 << self.kw) - 1
        self.counter = self.kw < len(h._regs)
        self.rw = len(h._regs) - self.kw
        self.monitor = Cat(h._regs, h.stim.age, h.stim.quiet) if self.counter else h._regs
        self.fails = Cat(*(f for f, _ in h.checks))
        # key -> [(next key, counter move: 0, 1 or 2 = count up, input)]; key -> (parent, input)
        self.graph: dict[int, list] = {}
        self.parent: dict = {}
        self.bad: list = []
        self.result = None

    @staticmethod
    def harness(design, manifest: dict, check: str):
        """The harness to explore, built for amaranth.sim."""
        return CoreHarness(design, manifest, check, sim=True)

    def canon(self, snap: int) -> int:
        return canonical(self.h._guards, snap & self.keymask)[0]

    async def inputs(self, ctx, key: int) -> list[tuple]:
        """The free inputs to step state ``key`` with (reset, input valid, output ready)."""
        return _inputs(self.check)

    def apply(self, ctx, inp) -> None:
        """Drive the free inputs ``inp`` (one of `inputs`)."""
        h = self.h
        for sig, v in zip((h.cd.rst, h.stim.i_valid, h.stim.o_ready), inp, strict=True):
            ctx.set(sig, v)

    def state(self, key: int, c: int) -> int:
        kw, rw = self.kw, self.rw
        return key | (c << kw) | (c << (kw + rw)) | (c << (kw + 2 * rw)) if self.counter else key

    async def step(self, ctx, key: int, c: int, inp) -> None:
        """Set the state and the inputs; note a failing assertion (with how it was reached)."""
        h = self.h
        ctx.set(self.monitor, self.state(key, c))
        self.apply(ctx, inp)
        f = ctx.get(self.fails)
        if f and not self.bad:
            self.bad.append((h.checks[(f & -f).bit_length() - 1][1], key, c, inp))

    async def bench(self, ctx) -> None:
        from collections import deque

        h, graph = self.h, self.graph
        ctx.set(h.cd.rst, 1)
        await ctx.tick()
        root = self.canon(ctx.get(h.snapshot))
        graph[root], self.parent[root] = [], None
        todo = deque([root])
        while todo:
            key = todo.popleft()
            for inp in await self.inputs(ctx, key):
                await self.step(ctx, key, 1, inp)  # the counter at 1: then 0, 1 or 2
                await ctx.tick()
                snap = ctx.get(h.snapshot)
                nxt = self.canon(snap)
                graph[key].append((nxt, snap >> self.kw, inp))
                if nxt not in graph:
                    if len(graph) >= self.limit:
                        raise HwgenError(f"more than {self.limit} reachable control states")
                    graph[nxt], self.parent[nxt] = [], (key, inp)
                    todo.append(nxt)
        values, where = _propagate(graph, root, h._lat + 1)
        if self.counter:  # the assertions again at each state's largest counter value
            for key, vals in values.items():
                for inp in await self.inputs(ctx, key):
                    await self.step(ctx, key, max(vals), inp)
        self.result = Invariant(h.state, self.cubes(values), self.violation(where))

    def cubes(self, values: dict) -> tuple:
        out = []
        for key in sorted(values):
            mask = self.keymask & canonical(self.h._guards, key)[1]
            out += [(mask, key, lo, hi) for lo, hi in _intervals(sorted(values[key]))]
        return tuple(out)

    def violation(self, where: dict):
        """The first failing assertion and the inputs from the reset state to it, or None."""
        if not self.bad:
            return None
        message, key, c, inp = self.bad[0]
        path = [inp]
        pairs = self.counter and c != 1  # found at a counter value: its (state, value) path
        node, links = ((key, c), where) if pairs else (key, self.parent)
        while links[node] is not None:
            node, via = links[node]
            path.append(via)
        return message, tuple(reversed(path))


def _inputs(check: str) -> list[tuple[int, int, int]]:
    """Every value of (reset, input valid, output ready) the check allows."""
    return [(rst, v, r) for rst in (0, 1) for v in (0, 1) for r in (0, 1)
            if r or check == "order"]


def _propagate(graph: dict, root: int, top: int):
    """The counter values each state takes: a breadth-first search over (state, value) from
    (``root``, 0) (moves: 0 reset, 1 restart, 2 count up to ``top``). Returns state -> values
    and (state, value) -> (the pair it was first reached from, the input), None for the root."""
    from collections import deque

    values: dict[int, set] = {root: {0}}
    where: dict = {(root, 0): None}
    todo = deque([(root, 0)])
    while todo:
        key, c = todo.popleft()
        for nxt, move, inp in graph[key]:
            c2 = move if move < 2 else min(c + 1, top)
            if (nxt, c2) not in where:
                where[nxt, c2] = ((key, c), inp)
                values.setdefault(nxt, set()).add(c2)
                todo.append((nxt, c2))
    return values, where


def replay(design, manifest: dict, check: str, inputs, vcd) -> str | None:
    """Simulate ``check``'s harness from reset (one reset cycle, then ``inputs``: (reset, input
    valid, output ready) per cycle), writing the waveform to ``vcd``; returns the message of
    the first assertion failing in the last cycle, or None."""
    from amaranth.hdl import Cat, Fragment
    from amaranth.sim import Simulator

    h = CoreHarness(design, manifest, check, sim=True)
    frag = Fragment.get(h, None)
    p, fails, got = h.stim, None, []
    fails = Cat(*(f for f, _ in h.checks))

    async def bench(ctx):
        seq = [(1, 0, 1)] + list(inputs)
        for n, inp in enumerate(seq):
            for sig, v in zip((h.cd.rst, p.i_valid, p.o_ready), inp, strict=True):
                ctx.set(sig, v)
            if n == len(seq) - 1:
                f = ctx.get(fails)
                got.append(h.checks[(f & -f).bit_length() - 1][1] if f else None)
            await ctx.tick()

    sim = Simulator(frag)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    with sim.write_vcd(str(vcd)):
        sim.run()
    return got[0]


def _intervals(vals: list[int]):
    """Maximal runs of consecutive integers in the sorted list ``vals``, as (lo, hi)."""
    lo = prev = vals[0]
    for v in vals[1:]:
        if v != prev + 1:
            yield lo, prev
            lo = v
        prev = v
    yield lo, prev


def whitebox_properties(design, manifest: dict) -> list[Property]:
    """The unbounded companions of ``streams.order`` / ``timing.latency``, on the core of
    ``design`` (`hwgen.design.Design`, as `design.manifest_options` resolves the folder) against
    ``manifest``'s cycle counts: ``core.order`` (any stall pattern) and ``core.latency``
    (always-ready consumer), k-induction at k = 1 (2 and 3 as retries) with the mined control
    invariant (`mine`, run when the property runs and timed with it). Raises HwgenError for a
    delta core (its proof is `delta_whitebox.delta_properties`)."""
    if design.model.delta is not None:
        raise HwgenError("the dense white-box proofs do not apply to the delta core: "
                         "formal.delta_properties proves its interface")
    cpt = int(manifest["timing"]["cycles_per_timestep"])
    lat = int(manifest["timing"].get("latency_cycles", cpt))

    def harness(check):
        def build():
            inv = mine(design, manifest, check)
            if inv.violation is not None:  # a counterexample from reset: simulate it
                message, inputs = inv.violation
                raise Refuted(f"{message} (cycle {len(inputs)} from reset, amaranth.sim)",
                              lambda folder: _replayed(design, manifest, check, inputs, folder))
            return CoreHarness(design, manifest, check, inv)
        return build

    return [
        Property(
            "core.order",
            f"streams.order for ever, any stall pattern: none lost or duplicated, <= 3 in "
            f"flight, offered <= {lat} cycles after its input or the last stall (white box)",
            "prove", 1, harness("order"), retry_depths=(2, 3), lemmas=("core.invariant",),
        ),
        Property(
            "core.latency",
            f"timing.latency for ever: the output exactly {lat} cycles after its input, the next "
            f"input {cpt} cycles after it (always-ready consumer; white box)",
            "prove", 1, harness("timing"), retry_depths=(2, 3), lemmas=("core.invariant",),
        ),
    ]


def _replayed(design, manifest, check, inputs, folder):
    """Write the counterexample's waveform into ``folder``; its path, or None if the
    simulation from reset does not fail (then the exploration's result is not confirmed)."""
    vcd = folder / "trace.vcd"
    return vcd if replay(design, manifest, check, inputs, vcd) is not None else None
