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
  and the monitors' counters, an interval of the cycles since the last input or stall), mined
  from a simulation of the same harness (`mine`: random inputs, stalls and resets, in
  amaranth.sim) and generalised nowhere else.

The solver then proves the invariant together with the properties by k-induction: the base case
checks them from reset (a reachable state the simulation missed fails it: the result is then
``unknown``, not a proof); the step shows that from any state inside the invariant (and the
properties) the next one is inside too. Soundness does not depend on the mining: a wrong or
missing cube can only make the proof fail, never pass. One set of rules derives every cell's
invariant (RNN, GRU, LSTM, dense and sparse, vector and token inputs, ROM and loadable weights:
the loader's writes touch no control register, its port is held idle here).

Properties (`whitebox_properties`): ``core.order`` (``streams.order``'s assertions under any
stall pattern) and ``core.latency`` (``timing.latency``'s, an always-ready consumer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import SimpleNamespace

from ..spec import HwgenError
from .interface import StreamHarness
from .runner import Property

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

    def _props(self):
        if not self._sim:
            return super()._props()

        def none(*args, **kwargs):  # amaranth.sim checks comb assertions between deltas
            return []

        return none, none, none

    def elaborate(self, platform):
        m = super().elaborate(platform)
        self._invariant(m, self._p)
        return m

    def _dut(self, m):
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

    def _state(self, m, p):
        """(key signals, range signal or None, issue-only signals, the issue flag)."""
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
        return keys, rng, free, issue

    def _invariant(self, m, p):
        from amaranth.hdl import Assert, Cat, Const, Signal

        keys, rng, free, issue = self._state(m, p)
        self.state = tuple(s.name for s in keys)
        key = Cat(*keys)
        # bit positions of the issue-only registers in the key
        off, free_mask = 0, 0
        for s in keys:
            if any(s is f for f in free):
                free_mask |= ((1 << len(s)) - 1) << off
            off += len(s)
        self._free_mask, self._issue_bit = free_mask, _bit_of(keys, issue)
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


def _bit_of(keys, sig) -> int:
    off = 0
    for s in keys:
        if s is sig:
            return off
        off += len(s)
    raise ValueError(sig)


def mine(design, manifest: dict, check: str, limit: int = 200000) -> Invariant:
    """The exact reachable control states of ``check``'s harness, as an `Invariant`: a
    breadth-first search in amaranth.sim from the reset state, stepping each state with every
    value of the free control inputs (reset, input valid, and for ``order`` the consumer's
    ready; the payload does not reach the control state and is held at 0). Each reachable
    control state becomes a cube (``order``: with each interval of the cycles since the last
    input or stall it takes there). Raises HwgenError past ``limit`` states."""
    from amaranth.hdl import Cat, Fragment
    from amaranth.sim import Simulator

    h = CoreHarness(design, manifest, check, sim=True)
    frag = Fragment.get(h, None)
    p, kw, fm, ib = h.stim, h._key_width, h._free_mask, h._issue_bit
    keymask = (1 << kw) - 1
    # the whole monitor state: age and quiet set to ``since`` (only their minimum is read)
    writable = h._regs if check == "timing" else Cat(h._regs, p.age, p.quiet)
    rw = len(h.snapshot) - kw
    inputs = [(rst, v, r) for rst in (0, 1) for v in (0, 1) for r in (0, 1)
              if r or check == "order"]
    seen: set[int] = set()

    def canon(snap: int) -> int:
        return snap if (snap >> ib) & 1 else snap & ~fm

    async def bench(ctx):
        ctx.set(h.cd.rst, 1)
        await ctx.tick()
        todo = [canon(ctx.get(h.snapshot))]
        seen.add(todo[0])
        while todo:
            snap = todo.pop()
            state = snap
            if rw:
                since = snap >> kw
                state |= (since << (kw + rw)) | (since << (kw + 2 * rw))
            for rst, v, r in inputs:
                ctx.set(writable, state)
                ctx.set(h.cd.rst, rst)
                ctx.set(p.i_valid, v)
                ctx.set(p.o_ready, r)
                await ctx.tick()
                nxt = canon(ctx.get(h.snapshot))
                if nxt not in seen:
                    if len(seen) >= limit:
                        raise HwgenError(f"more than {limit} reachable control states")
                    seen.add(nxt)
                    todo.append(nxt)

    sim = Simulator(frag)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    ranges: dict[int, list[int]] = {}
    for snap in seen:
        ranges.setdefault(snap & keymask, []).append(snap >> kw)
    cubes = []
    for key, vals in sorted(ranges.items()):
        mask = keymask if (key >> ib) & 1 else keymask & ~fm
        for lo, hi in _intervals(sorted(vals)):
            cubes.append((mask, key, lo, hi))
    return Invariant(h.state, tuple(cubes))


def _intervals(vals: list[int]):
    """Maximal runs of consecutive integers in the sorted list ``vals``, as (lo, hi)."""
    lo = prev = vals[0]
    for v in vals[1:]:
        if v != prev + 1:
            yield lo, prev
            lo = v
        prev = v
    yield lo, prev
