"""Formal properties of a generated accelerator's stream interface and timing (black box).

Everything here reads ``manifest.json`` and instantiates the generated Verilog top by its port
names: nothing depends on the core's internals, so the same properties apply to any core that
keeps the manifest's contract (docs/manifest.md, docs/verification.md). The environment is
free: every input (``rst``, ``i_stream`` valid and payload, ``o_stream`` ready) takes any value
on every cycle, unless a property says otherwise.

Properties (``cpt`` = ``timing.cycles_per_timestep``, the input interval with no stalls;
``lat`` = ``timing.latency_cycles``, input to output with an always-ready consumer; the v2 core
accepts the next input while the previous timestep's head still drains, so ``lat`` > ``cpt``):

- ``streams.comb_valid`` (netlist): no combinational path from ``o_stream`` ready to its valid or
  payload (valid never depends on ready);
- ``streams.comb_ready`` (netlist): no combinational path from ``i_stream`` valid to its ready;
- ``streams.hold``: while ``o_stream`` is valid and not ready, valid and payload hold;
- ``streams.order`` (bounded, see `interface_properties`; the consumer withholds ready for at
  most ``stall_bound`` cycles in a row): no output without an accepted input (none
  duplicated); the timesteps in flight are at least ``o_valid + (not i_ready)`` and at most
  three (one in the output register, one in the logit registers waiting for it, one being
  computed); while the output register is empty and timesteps are in flight, the last input or
  the last stall is less than ``lat`` cycles ago (none lost);
- ``streams.order_bmc``: the same assertions with no bound on the consumer's stalls, checked
  ``bmc_depth`` cycles from reset;
- ``timing.latency`` (bounded, always-ready consumer): ``o_valid`` is high exactly ``lat``
  cycles after each accepted input and never otherwise; ``i_ready`` is low exactly during the
  ``cpt - 1`` cycles after an accepted input; the timesteps in flight are the inputs of the last
  ``lat`` cycles;
- ``timing.cover``: a trace from reset through one whole timestep (input accepted, its output
  transferred).

Accepted and transferred mean ``valid & ready`` on a cycle without reset (the reset wins).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from amaranth.lib import wiring

from ..spec import HwgenError, check_positive_int
from .runner import Property

__all__ = ["StreamHarness", "interface_properties", "HARNESS_CHECKS"]

HARNESS_CHECKS = ("hold", "order", "order_bmc", "timing", "cover")


class StreamHarness(wiring.Component):
    """An Amaranth top that instantiates the generated module and states one group of
    properties about its ports (``check``: one of `HARNESS_CHECKS`).

    Parameters
    ----------
    manifest : the manifest dict of the generated folder.
    check : which group of assertions (the module docstring lists them).
    stall_bound : for ``order``: the consumer withholds ready at most this many cycles in a row.
    """

    #: ``streams.order``: a core that is not ready holds a timestep besides the one its output
    #: register offers (the dense cores; the delta core is not ready while its output waits)
    BUSY_IS_IN_FLIGHT = True

    def __init__(self, manifest: dict, check: str, stall_bound: int = 1):
        if check not in HARNESS_CHECKS:
            raise HwgenError(f"check must be one of {', '.join(HARNESS_CHECKS)}, not {check!r}")
        self._m, self._check, self._stall = manifest, check, stall_bound
        self._cpt = int(manifest["timing"]["cycles_per_timestep"])
        self._lat = int(manifest["timing"].get("latency_cycles", self._cpt))
        # a delta core (docs/delta.md): worst-case cycles, its output one cycle before the next
        # input (latency cpt - 1), and it is not ready while its output waits
        self._delta = "delta" in manifest["timing"]
        if self._cpt < 1 or self._lat < self._cpt - self._delta:
            raise HwgenError(f"cycles_per_timestep must be at least 1 and the latency at least "
                             f"that, not {self._cpt} and {self._lat}")
        super().__init__({})

    def elaborate(self, platform):
        from amaranth.hdl import Module, Signal

        m = Module()
        p = self._dut(m)
        p.accept, p.deliver = Signal(name="accept"), Signal(name="deliver")
        m.d.comb += [p.accept.eq(p.i_valid & p.i_ready & ~p.rst),
                     p.deliver.eq(p.o_valid & p.o_ready & ~p.rst)]
        # timesteps accepted and not yet delivered (cleared by reset, like the core)
        p.pending = Signal(range(5), name="pending")
        m.d.sync += p.pending.eq(p.pending + p.accept - p.deliver)
        {"hold": self._hold, "order": self._order, "order_bmc": self._order,
         "timing": self._timing, "cover": self._cover}[self._check](m, p)
        return m

    def _dut(self, m):
        """The generated Verilog top as a black box (an ``Instance``), its stream ports free:
        returns the port signals (``rst``, ``i_valid``, ``i_payload``, ``i_ready``, ``o_valid``,
        ``o_ready``, ``o_payload``)."""
        from amaranth.asserts import AnySeq
        from amaranth.hdl import ClockSignal, Instance, ResetSignal, Signal

        man, check = self._m, self._check
        si, so = man["streams"]["input"], man["streams"]["output"]
        p = SimpleNamespace(rst=ResetSignal(), i_valid=AnySeq(1), o_ready=AnySeq(1),
                            i_payload=AnySeq(si["payload_width"]), i_ready=Signal(name="i_ready"),
                            o_valid=Signal(name="o_valid"),
                            o_payload=Signal(so["payload_width"], name="o_payload"))
        ports = {
            f"i_{man['clock']['port']}": ClockSignal(),
            f"i_{man['reset']['port']}": p.rst,
            f"i_{si['valid']}": p.i_valid,
            f"i_{si['payload']}": p.i_payload,
            f"o_{si['ready']}": p.i_ready,
            f"o_{so['valid']}": p.o_valid,
            f"i_{so['ready']}": p.o_ready,
        }
        if check == "hold":  # the only group that needs the datapath (yosys prunes it otherwise)
            ports[f"o_{so['payload']}"] = p.o_payload
        m.submodules.dut = Instance(man["top"], **ports)
        return p

    def _props(self):
        """The statement constructors (Assert, Assume, Cover) the checks use; a subclass that
        simulates the harness replaces them with no-ops."""
        from amaranth.hdl import Assert, Assume, Cover

        return Assert, Assume, Cover

    def _hold(self, m, p):
        from amaranth.hdl import Signal

        Assert, _, _ = self._props()

        stalled, last = Signal(), Signal.like(p.o_payload)
        m.d.sync += [stalled.eq(p.o_valid & ~p.o_ready), last.eq(p.o_payload)]
        with m.If(stalled):
            m.d.comb += Assert(p.o_valid, "streams.hold: valid dropped before the transfer")
            m.d.comb += Assert(p.o_payload == last, "streams.hold: payload changed while stalled")

    def _order(self, m, p):
        from amaranth.hdl import Mux, Signal

        Assert, Assume, _ = self._props()

        lat = self._lat
        if self._check == "order":
            run = Signal(range(self._stall + 2))
            m.d.sync += run.eq(Mux(p.o_ready, 0, run + 1))
            with m.If(~p.o_ready):
                m.d.comb += Assume(run < self._stall)
        # cycles since the last accepted input (saturating)
        age = p.age = Signal(range(lat + 2), name="age")
        with m.If(p.accept):
            m.d.sync += age.eq(1)
        with m.Elif(age <= lat):
            m.d.sync += age.eq(age + 1)
        # cycles since the consumer last stalled (saturating)
        quiet = p.quiet = Signal(range(lat + 2), name="quiet")
        with m.If(p.o_valid & ~p.o_ready):
            m.d.sync += quiet.eq(1)
        with m.Elif(quiet <= lat):
            m.d.sync += quiet.eq(quiet + 1)
        with m.If(p.deliver):
            m.d.comb += Assert(p.pending > 0, "streams.order: an output without a pending input")
        with m.If(~p.rst):
            m.d.comb += Assert(p.pending <= 3, "streams.order: more than three in flight")
            if self.BUSY_IS_IN_FLIGHT and not self._delta:
                m.d.comb += Assert(
                    p.pending >= p.o_valid + ~p.i_ready,
                    "streams.order: fewer timesteps in flight than o_valid + busy",
                )
            with m.If((p.pending > 0) & ~p.o_valid):
                m.d.comb += Assert(
                    (age < lat) | (quiet < lat),
                    "streams.order: a result not offered lat cycles after its input or "
                    "the last stall",
                )

    def _timing(self, m, p):
        from amaranth.hdl import Cat, Signal

        Assert, Assume, _ = self._props()

        cpt, lat = self._cpt, self._lat
        m.d.comb += Assume(p.o_ready)
        hist = p.hist = Signal(lat, name="hist")  # hist[j]: an input was accepted j + 1 cycles ago
        m.d.sync += hist.eq(Cat(p.accept, hist[:-1]))
        in_flight = _count(list(hist))
        with m.If(~p.rst):
            m.d.comb += Assert(
                p.o_valid == hist[lat - 1],
                "timing.latency: o_valid is not exactly lat cycles after an input",
            )
            m.d.comb += Assert(
                p.i_ready == ~hist[: cpt - 1].any() if cpt > 1 else p.i_ready,
                "timing.latency: i_ready is not low exactly cpt - 1 cycles after an input",
            )
            m.d.comb += Assert(p.pending == in_flight, "timing.latency: timesteps in flight")

    def _cover(self, m, p):
        from amaranth.hdl import Signal

        _, _, Cover = self._props()

        seen = Signal()
        with m.If(p.accept):
            m.d.sync += seen.eq(1)
        m.d.comb += Cover(p.deliver & seen, "timing.cover: an input and its output")


def _count(bits: list):
    """The number of set bits, as a balanced adder tree (a chain of hundreds of additions
    overflows Python's recursion limit when Amaranth lowers it)."""
    while len(bits) > 1:
        bits = [bits[i] + bits[i + 1] if i + 1 < len(bits) else bits[i]
                for i in range(0, len(bits), 2)]
    return bits[0]


def _no_comb_path(top: str, source: str, targets: list[str]) -> str:
    """A Yosys script that fails unless no combinational path leads from input port ``source``
    to any of the output ports ``targets`` (memories mapped to logic first, so an
    asynchronous read port counts as a path)."""
    dst = " ".join(f"o:{t}" for t in targets) + " %u" * (len(targets) - 1)
    return (
        f"prep -top {top}\nflatten\nmemory_map\nopt_clean\n"
        f"select -assert-none i:{source} %coe* {dst} %i\n"
    )


def interface_properties(
    rtl_dir,
    manifest: dict,
    *,
    stall_bound: int | None = None,
    bmc_depth: int | None = None,
    bounded: bool = True,
) -> list[Property]:
    """The interface properties of the generated folder ``rtl_dir`` (see the module docstring);
    without ``bounded``, not the bounded checks (``streams.order``, ``streams.order_bmc``,
    ``timing.latency``: `whitebox` proves their assertions for ever on the core).

    ``stall_bound`` defaults to ``cpt`` (a consumer may stall a whole timestep);
    ``bmc_depth`` to ``2 cpt + 8`` (two timesteps under any stall pattern). The k of each
    induction comes from ``cpt`` and the stall bound, with one larger retry.
    """
    cpt = int(manifest["timing"]["cycles_per_timestep"])
    lat = int(manifest["timing"].get("latency_cycles", cpt))
    stall = cpt if stall_bound is None else check_positive_int("stall bound", stall_bound)
    bmc = cpt + lat + 8 if bmc_depth is None else check_positive_int("bmc depth", bmc_depth)
    verilog = tuple(Path(rtl_dir) / v for v in manifest["verilog"])
    for v in verilog:
        if not v.is_file():
            raise HwgenError(f"{v}: the manifest's Verilog file is missing")
    top = manifest["top"]
    si, so = manifest["streams"]["input"], manifest["streams"]["output"]

    def harness(check):
        return lambda: StreamHarness(manifest, check, stall)

    props = [
        Property(
            "streams.comb_valid",
            "o_stream valid and payload do not depend combinationally on o_stream ready",
            "structural",
            verilog=verilog,
            script=_no_comb_path(top, so["ready"], [so["valid"], so["payload"]]),
        ),
        Property(
            "streams.comb_ready",
            "i_stream ready does not depend combinationally on i_stream valid",
            "structural",
            verilog=verilog,
            script=_no_comb_path(top, si["valid"], [si["ready"]]),
        ),
        Property(
            "streams.hold",
            "a stalled output holds valid and payload until it transfers",
            "prove",
            2,
            harness("hold"),
            verilog,
            retry_depths=(lat + 4,),
        ),
        # The v2 core keeps state the ports do not show (the head of the previous timestep
        # draining, gap and drain timers): k-induction on these black-box properties does not
        # close at k = 72 on a 2-unit RNN (no counterexample either), so they are checked from
        # reset over two overlapping timesteps and more (bounded model checking).
        Property(
            "streams.order",
            f"none lost or duplicated, <= 3 in flight, offered <= {lat} cycles after its input "
            f"or the last stall (stalls <= {stall} cycles), {cpt + lat + 8} cycles from reset",
            "bmc",
            cpt + lat + 8,
            harness("order"),
            verilog,
        ),
        Property(
            "streams.order_bmc",
            "streams.order under any stall pattern",
            "bmc",
            bmc,
            harness("order_bmc"),
            verilog,
        ),
        Property(
            "timing.latency",
            f"always-ready consumer: the output exactly {lat} cycles after its input, the next "
            f"input accepted {cpt} cycles after it; {cpt + lat + 8} cycles from reset",
            "bmc",
            cpt + lat + 8,
            harness("timing"),
            verilog,
        ),
        Property(
            "timing.cover",
            "a trace of one whole timestep (input to output)",
            "cover",
            lat + 4,
            harness("cover"),
            verilog,
        ),
    ]
    if not bounded:
        props = [p for p in props if p.mode != "bmc"]
    if "delta" in manifest["timing"]:
        # data-dependent cycles: no exact timing to check; streams.hold's k-induction does not
        # close on the delta core's top within reach (its white-box core.order proves the hold
        # for ever): here it is a bounded check, with --bounded
        props = [p for p in props if p.name not in ("timing.latency", "streams.hold")]
        if bounded:
            props.insert(2, Property("streams.hold", "a stalled output holds valid and payload "
                                     f"until it transfers, {cpt + lat + 8} cycles from reset",
                                     "bmc", cpt + lat + 8, harness("hold"), verilog))
    return props
