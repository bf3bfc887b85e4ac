"""White-box proof of the delta core's stream interface (`gateware.delta_core.DeltaAccelerator`).

The delta core's cycles depend on the data: each encoder chunk hands on the lanes whose change
passes the threshold (``keep``), and every kept lane costs its column update R cycles. So the
dense cores' exact timing property (`whitebox`'s ``core.latency``) does not apply, and the
control state is not independent of the payload. What is proven instead (``core.order``, by
k-induction with a mined control invariant, as `whitebox` does for the dense cores):

- one timestep at a time: at most one accepted input not yet delivered, no output transfer
  without one (none duplicated; with one in flight, outputs come in input order);
- ``o_valid`` implies that timestep is in flight, and the core takes no input while it is busy
  or its output waits (``i_ready`` low);
- none lost, within the manifest's worst case: while a timestep is in flight and its output is
  not offered, its input was accepted less than ``timing.latency_cycles`` cycles ago, whatever
  the consumer, the producer and the data do (``latency_cycles = cycles_per_timestep - 1``, the
  manifest's bound with every column processed at a start of sequence). When a layer's input
  or hidden width is not a multiple of the lanes, the encoder's padding lanes are free in the
  proof (it has no invariant over the hat store's contents, where they stay 0), so the bound
  proven is larger by R cycles per padding lane; the property's line says which bound it is.

How the data is handled: the key of the control invariant holds every register with a reset
except the data ones (`DATA_REGISTERS`), the reset-less registers that steer control
(`CONTROL_REGISTERS`: the gate and part of the cell pass's events, the encoder's column base)
and the encoder's chunk, fresh and last fields, guarded (they count only while the encoder
holds a chunk / lanes). The payload's ``sos`` bit and each encoder's kept lanes are inputs of
the exploration (`whitebox.mine`): it steps every control state with every value of reset,
input valid, sos, output ready and the kept lanes of the encoders that hold a chunk (set through
their data registers: values 0 / 1, held values 0, threshold 1). The solver sees the real data
path, whose kept lanes are a subset of those, so soundness is as in `whitebox`: a state the
exploration missed makes the proof fail (``unknown``), never pass.
"""

from __future__ import annotations

from itertools import product

from ..spec import HwgenError
from .runner import Property, Refuted
from .whitebox import CoreHarness, _Explorer, mine

__all__ = ["DeltaCoreHarness", "delta_properties", "DATA_REGISTERS", "CONTROL_REGISTERS"]

#: registers with a reset that carry data (name prefixes: ``h_old`` is ``h_old0``, ``h_old1``,
#: ...): the core's debug counters and state registers, its old-state read pipeline (a unit
#: index)
DATA_REGISTERS = ("columns", "cycles", "h_old", "c_old", "rd_u1_", "rd_u2_")
#: reset-less registers that steer control, by fragment name, each with the register that
#: says when it counts (name prefix -> the guard's prefix, the rest of the name kept: ``gate_d2``
#: counts while ``valid_d2`` is set): the cell pass's gate and part of each event and their
#: delays (the cell units test the gate to find a unit's last row), the cell units' gate delays,
#: the encoder's column base (the router picks M_x or M_h by it; it counts while lanes are left)
CONTROL_REGISTERS = {"cp": {"g1": "v1", "part1": "v1", "gate_d": "valid_d", "part_d": "valid_d"},
                     "cell": {"g1": "v1", "gt_d": "vt_d", "g3_d": "v3_d"},
                     "enc": {"b_base": "b_mask"}}


def _matches(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p) for p in prefixes)


def _guard_of(name: str, rules: dict) -> str | None:
    """The name of the register that guards reset-less control register ``name``, or None."""
    for prefix, guard in rules.items():
        if name.startswith(prefix):
            return guard + name[len(prefix):]
    return None


def _walk(frag, name="top"):
    """(fragment name, fragment) of ``frag`` and every fragment below it."""
    yield name, frag
    for sub, sub_name, _ in frag.subfragments:
        yield from _walk(sub, str(sub_name))


def _sync_registers(frag) -> list:
    from amaranth.hdl._ast import SignalSet

    regs = SignalSet()
    for stmt in frag.statements.get("sync", ()):
        regs |= stmt._lhs_signals()
    return sorted(regs, key=lambda s: s.name)


class _Encoder:
    """One layer's encoder inside the elaborated core: its registers and lane geometry."""

    def __init__(self, frag, lanes: int, widths: tuple[int, int]):
        from ..gateware.delta_encoder import encoder_input_layout

        regs = {s.name: s for s in _sync_registers(frag)}
        a = regs["a"]
        width, hidden = widths
        self.cx, ch = -(-width // lanes), -(-hidden // lanes)
        # the chunk's layout (DeltaLayer's): the value width from the held word, P values wide
        lay = encoder_input_layout(lanes, len(regs["a_hat"]) // lanes, self.cx + ch)
        if lay.size != len(a):
            raise HwgenError("delta core: the encoder's chunk register is not "
                             "encoder_input_layout's")

        def field(name):
            f = lay[name]
            return a[f.offset:f.offset + f.width]

        self.valid, self.mask, self.base = regs["a_valid"], regs["b_mask"], regs["b_base"]
        self.hat, self.fwd = regs["a_hat"], regs["a_fwd"]
        self.values, self.theta = field("values"), field("theta")
        self.chunk, self.fresh, self.last = field("chunk"), field("fresh"), field("last")
        self.value_width = lay["values"].shape.elem_shape.width
        self.lanes, self.widths = lanes, widths

    def real(self, chunk: int) -> int:
        """How many lanes of ``chunk`` hold a column (the rest are padding)."""
        P, (width, hidden), cx = self.lanes, self.widths, self.cx
        return min(P, width - chunk * P if chunk < cx else hidden - (chunk - cx) * P)


class DeltaCoreHarness(CoreHarness):
    """`whitebox.CoreHarness` around the delta core of ``design`` (module docstring); the
    check is always ``order`` (any stall pattern) with the assertions of `delta_properties`."""

    BUSY_IS_IN_FLIGHT = False  # i_ready is low while the output waits: pending == ~i_ready

    def __init__(self, design, manifest: dict, invariant=None, sim: bool = False,
                 padded: bool = False):
        self._padded = padded
        self._bound = _bound(design, manifest, padded)
        shim = {"timing": {"cycles_per_timestep": self._bound, "latency_cycles": self._bound}}
        super().__init__(design, shim, "order", invariant, sim)
        self.encoders: list[_Encoder] = []

    def _dut(self, m):
        core, frag, p = self._core(m)
        model, P = core.model, core.lanes
        control, guards = [], []
        frags = list(_walk(frag))
        for name, f in frags:
            regs = {s.name: s for s in _sync_registers(f)}
            for s in regs.values():
                guard = _guard_of(s.name, CONTROL_REGISTERS.get(name, {}))
                if not s.reset_less and not _matches(s.name, DATA_REGISTERS):
                    control.append(s)
                elif s.reset_less and guard is not None:
                    if guard not in regs:
                        raise HwgenError(f"delta core: {name}.{s.name} has no guard {guard}")
                    control.append(s)
                    guards.append(([regs[guard]], [s]))
        for i, f in enumerate(f for name, f in frags if name == "enc"):
            enc = _Encoder(f, P, (model.layer_input_width(i), model.hidden))
            self.encoders.append(enc)
            control += [enc.chunk, enc.fresh, enc.last]
            guards.append(([enc.valid], [enc.chunk, enc.fresh, enc.last]))
        p.control, self._delta_guards = control, guards
        self._p = p
        return p

    def _state(self, m, p):
        """The key: the control registers and the monitors' timesteps in flight; the range:
        the cycles since the last accepted input (the harness's ``age``), saturating."""
        from amaranth.hdl import Assert, Signal

        lat = self._lat
        rng = Signal(range(lat + 2), name="since")
        with m.If(p.accept):
            m.d.sync += rng.eq(1)
        with m.Elif(rng <= lat):
            m.d.sync += rng.eq(rng + 1)
        check, _, _ = self._props()
        if not self._sim:
            m.d.comb += Assert(rng == p.age, "core.invariant: since = age")
        with m.If(~p.rst):
            m.d.comb += check(p.pending <= 1, "core.order: more than one timestep in flight")
            m.d.comb += check(~p.o_valid | (p.pending == 1),
                              "core.order: an output without its timestep in flight")
            with m.If((p.pending > 0) & ~p.o_valid):
                m.d.comb += check(rng < lat, f"core.order: no output {lat} cycles after its "
                                  "input (lost, or slower than the bound)")
            m.d.comb += check(p.i_ready == (p.pending == 0), "core.order: i_ready is not "
                              "high exactly when no timestep is in flight")
        # streams.hold's assertions (the black-box k-induction does not close on this core):
        # a stalled output keeps valid (checked in the exploration too: ``stalled`` is part of
        # the key) and its payload (the solver: the payload is data)
        stalled = Signal(name="stalled")
        m.d.sync += stalled.eq(p.o_valid & ~p.o_ready)
        last = Signal.like(p.o_payload, name="last_payload")
        if not self._sim:
            m.d.sync += last.eq(p.o_payload)
        with m.If(stalled):
            m.d.comb += check(p.o_valid, "core.order: valid dropped before the transfer")
            if not self._sim:
                m.d.comb += check(p.o_payload == last, "core.order: payload changed while "
                                  "stalled")
        return list(p.control) + [p.pending, stalled], rng, self._delta_guards


def _bound(design, manifest: dict, padded: bool) -> int:
    """The latency bound proven: the manifest's, plus R cycles per padding lane when
    ``padded``."""
    lat = int(manifest["timing"]["latency_cycles"])
    return lat + (_padding(design) * _per_column(manifest) if padded else 0)


def _per_column(manifest: dict) -> int:
    return int(manifest["timing"]["delta"]["cycles_per_column"])


def _padding(design) -> int:
    """Padding lanes over every layer's x and h chunks."""
    model, P = design.model, design.plan.lanes
    pad = 0
    for i in range(model.num_layers):
        for width in (model.layer_input_width(i), model.hidden):
            pad += -(-width // P) * P - width
    return pad


class _DeltaExplorer(_Explorer):
    """`whitebox._Explorer` of a `DeltaCoreHarness`: the inputs add sos and the kept lanes."""

    padded = False

    def harness(self, design, manifest, check):
        return DeltaCoreHarness(design, manifest, sim=True, padded=self.padded)

    def _bits(self):
        """Bit offsets of each encoder's a_valid and a.chunk in the key."""
        if not hasattr(self, "_offsets"):
            offs, off = {}, 0
            names = [*self.h._p.control, self.h._p.pending]
            for v in names:
                offs[id(v)] = off
                off += len(v)
            self._offsets = offs
        return self._offsets

    def _masks(self, key: int):
        """For each encoder: the kept-lane patterns to try (just 0 while it holds no chunk)."""
        offs, out = self._bits(), []
        for e in self.h.encoders:
            if not (key >> offs[id(e.valid)]) & 1:
                out.append([0])
                continue
            chunk = (key >> offs[id(e.chunk)]) & ((1 << len(e.chunk)) - 1)
            n = e.lanes if self.padded else e.real(chunk)
            out.append(list(range(1 << max(n, 0))))
        return out

    async def inputs(self, ctx, key: int) -> list[tuple]:
        """Reset; and every kept-lane pattern with: input valid and sos only while the core is
        ready (the core reads them only then), output ready only while its output is valid
        (likewise; the monitors' stall counter is not part of this check)."""
        h = self.h
        ctx.set(self.monitor, self.state(key, 1))
        self.apply(ctx, (0, 0, 0, 1) + (0,) * len(h.encoders))
        ir, ov = ctx.get(h._p.i_ready), ctx.get(h._p.o_valid)
        ctl = [(0, v, sos, r) for v, sos in ((0, 0), (1, 0), (1, 1))[:3 if ir else 1]
               for r in (0, 1)[0 if ov else 1:]]
        zero = (0,) * len(h.encoders)
        return [(1, 0, 0, 1) + zero] + [c + masks for c in ctl
                                        for masks in product(*self._masks(key))]

    def apply(self, ctx, inp) -> None:
        h = self.h
        rst, valid, sos, ready, *masks = inp
        for sig, v in ((h.cd.rst, rst), (h.stim.i_valid, valid), (h.stim.o_ready, ready),
                       (h.stim.i_payload, sos)):  # sos is the payload's bit 0, the rest 0
            ctx.set(sig, v)
        for e, mask in zip(h.encoders, masks, strict=True):
            w = e.value_width
            ctx.set(e.values, sum(((mask >> k) & 1) << (k * w) for k in range(e.lanes)))
            ctx.set(e.theta, 1)
            ctx.set(e.hat, 0)
            ctx.set(e.fwd, 0)


def _padded_explorer(padded: bool):
    return type("_DeltaExplorerPadded" if padded else "_DeltaExplorerExact", (_DeltaExplorer,),
                {"padded": padded})


def replay(design, manifest: dict, padded: bool, inputs, vcd) -> str | None:
    """Simulate the harness from reset through ``inputs`` (as `_DeltaExplorer.inputs` gives
    them), writing the waveform to ``vcd``; the message of the first assertion failing in the
    last cycle, or None."""
    from amaranth.sim import Simulator

    ex = _padded_explorer(padded)(design, manifest, "order", 1)
    got = []

    async def bench(ctx):
        seq = [(1, 0, 0, 1) + (0,) * len(ex.h.encoders)] + list(inputs)
        for n, inp in enumerate(seq):
            ex.apply(ctx, inp)
            if n == len(seq) - 1:
                f = ctx.get(ex.fails)
                got.append(ex.h.checks[(f & -f).bit_length() - 1][1] if f else None)
            await ctx.tick()

    sim = Simulator(ex.frag)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    with sim.write_vcd(str(vcd)):
        sim.run()
    return got[0]


def delta_properties(design, manifest: dict) -> list[Property]:
    """``core.order`` of the delta core of ``design`` against ``manifest`` (module docstring),
    k-induction at k = 1 (2 and 3 as retries) with the mined control invariant."""
    if design.model.delta is None:
        raise HwgenError("delta_properties needs a delta model (with thresholds)")
    padded = _padding(design) > 0
    bound = _bound(design, manifest, padded)
    lat = int(manifest["timing"]["latency_cycles"])

    mined = []  # the retries at larger k reuse the invariant

    def build():
        if not mined:
            mined.append(mine(design, manifest, "order", explorer=_padded_explorer(padded)))
        inv = mined[0]
        if inv.violation is not None:
            message, inputs = inv.violation
            raise Refuted(f"{message} (cycle {len(inputs)} from reset, amaranth.sim)",
                          lambda folder: _replayed(design, manifest, padded, inputs, folder))
        return DeltaCoreHarness(design, manifest, inv, padded=padded)

    within = (f"offered < {bound} cycles after its input (timing.latency_cycles {lat}"
              + (f" + R per padding lane: {_padding(design)} padding lanes)" if padded else ")"))
    return [Property(
        "core.order",
        f"delta core, for ever, any stalls and data: one timestep at a time, none duplicated, "
        f"none lost: {within}; a stalled output holds (white box)",
        "prove", 1, build, retry_depths=(2, 3), lemmas=("core.invariant",),
        # the ROMs as logic: the cell pass's row ROM gives each event's gate (control), which
        # the induction step would otherwise read from an unconstrained memory state
        prep="memory_map",
    )]


def _replayed(design, manifest, padded, inputs, folder):
    vcd = folder / "trace.vcd"
    return vcd if replay(design, manifest, padded, inputs, vcd) is not None else None
