"""Formal properties of a generated accelerator's stream interface and timing (black box).

Everything here reads ``manifest.json`` and instantiates the generated Verilog top by its port
names: nothing depends on the core's internals, so the same properties apply to any core that
keeps the manifest's contract (docs/manifest.md, docs/verification.md). The environment is
free: every input (``rst``, ``i_stream`` valid and payload, ``o_stream`` ready) takes any value
on every cycle, unless a property says otherwise.

Properties (``cpt`` = ``timing.cycles_per_timestep``):

- ``streams.comb_valid`` (netlist): no combinational path from ``o_stream`` ready to its valid or
  payload (valid never depends on ready);
- ``streams.comb_ready`` (netlist): no combinational path from ``i_stream`` valid to its ready;
- ``streams.hold``: while ``o_stream`` is valid and not ready, valid and payload hold;
- ``streams.order`` (k-induction; the consumer withholds ready for at most ``stall_bound``
  cycles in a row): no output without an accepted input (none duplicated); the timesteps in
  flight are exactly ``o_valid + (not i_ready)`` (at most two: one in the output register, one
  being computed); a result whose output register is free is offered at most ``cpt`` cycles
  after its input (none lost);
- ``streams.order_bmc``: the same assertions with no bound on the consumer's stalls, checked
  ``bmc_depth`` cycles from reset;
- ``timing.latency`` (k-induction, always-ready consumer): ``o_valid`` is high exactly ``cpt``
  cycles after each accepted input and never otherwise; ``i_ready`` is low exactly during the
  ``cpt - 1`` cycles after an accepted input;
- ``timing.cover``: a trace from reset through one whole timestep (input accepted, its output
  transferred).

Accepted and transferred mean ``valid & ready`` on a cycle without reset (the reset wins).
"""

from __future__ import annotations

from pathlib import Path

from amaranth.lib import wiring

from ..spec import HwgenError
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

    def __init__(self, manifest: dict, check: str, stall_bound: int = 1):
        if check not in HARNESS_CHECKS:
            raise HwgenError(f"check must be one of {', '.join(HARNESS_CHECKS)}, not {check!r}")
        self._m, self._check, self._stall = manifest, check, stall_bound
        self._cpt = int(manifest["timing"]["cycles_per_timestep"])
        if self._cpt < 1:
            raise HwgenError(f"cycles_per_timestep must be at least 1, not {self._cpt}")
        super().__init__({})

    def elaborate(self, platform):
        from amaranth.asserts import AnySeq
        from amaranth.hdl import (
            Assert,
            Assume,
            Cat,
            ClockSignal,
            Cover,
            Instance,
            Module,
            Mux,
            ResetSignal,
            Signal,
        )

        man, cpt, check = self._m, self._cpt, self._check
        si, so = man["streams"]["input"], man["streams"]["output"]
        m = Module()
        rst = ResetSignal()
        i_valid, o_ready = AnySeq(1), AnySeq(1)
        i_payload = AnySeq(si["payload_width"])
        i_ready, o_valid = Signal(), Signal()
        o_payload = Signal(so["payload_width"])
        ports = {
            f"i_{man['clock']['port']}": ClockSignal(),
            f"i_{man['reset']['port']}": rst,
            f"i_{si['valid']}": i_valid,
            f"i_{si['payload']}": i_payload,
            f"o_{si['ready']}": i_ready,
            f"o_{so['valid']}": o_valid,
            f"i_{so['ready']}": o_ready,
        }
        if check == "hold":  # the only group that needs the datapath (yosys prunes it otherwise)
            ports[f"o_{so['payload']}"] = o_payload
        m.submodules.dut = Instance(man["top"], **ports)
        accept, deliver = Signal(), Signal()
        m.d.comb += [accept.eq(i_valid & i_ready & ~rst), deliver.eq(o_valid & o_ready & ~rst)]
        # timesteps accepted and not yet delivered (cleared by reset, like the core)
        pending = Signal(range(4))
        m.d.sync += pending.eq(pending + accept - deliver)

        if check == "hold":
            stalled, last = Signal(), Signal.like(o_payload)
            m.d.sync += [stalled.eq(o_valid & ~o_ready), last.eq(o_payload)]
            with m.If(stalled):
                m.d.comb += Assert(o_valid, "streams.hold: valid dropped before the transfer")
                m.d.comb += Assert(o_payload == last, "streams.hold: payload changed while stalled")
        elif check in ("order", "order_bmc"):
            if check == "order":
                run = Signal(range(self._stall + 2))
                m.d.sync += run.eq(Mux(o_ready, 0, run + 1))
                with m.If(~o_ready):
                    m.d.comb += Assume(run < self._stall)
            age = Signal(range(cpt + 2))  # cycles since the last accepted input (saturating)
            with m.If(accept):
                m.d.sync += age.eq(1)
            with m.Elif(age <= cpt):
                m.d.sync += age.eq(age + 1)
            with m.If(deliver):
                m.d.comb += Assert(pending > 0, "streams.order: an output without a pending input")
            with m.If(~rst):
                m.d.comb += Assert(
                    pending == o_valid + ~i_ready,
                    "streams.order: timesteps in flight differ from o_valid + busy",
                )
                with m.If((pending > 0) & ~o_valid):
                    m.d.comb += Assert(
                        age < cpt, "streams.order: a result not offered cpt cycles after its input"
                    )
        elif check == "timing":
            m.d.comb += Assume(o_ready)
            hist = Signal(cpt)  # hist[j]: an input was accepted j + 1 cycles ago
            m.d.sync += hist.eq(Cat(accept, hist[:-1]))
            with m.If(~rst):
                m.d.comb += Assert(
                    o_valid == hist[cpt - 1],
                    "timing.latency: o_valid is not exactly cpt cycles after an input",
                )
                m.d.comb += Assert(
                    i_ready == ~hist[: cpt - 1].any(),
                    "timing.latency: i_ready is not low exactly cpt - 1 cycles after an input",
                )
                m.d.comb += Assert(pending == hist.any(), "timing.latency: a timestep in flight")
        else:  # cover
            seen = Signal()
            with m.If(accept):
                m.d.sync += seen.eq(1)
            m.d.comb += Cover(deliver & seen, "timing.cover: an input and its output")
        return m


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
) -> list[Property]:
    """The interface properties of the generated folder ``rtl_dir`` (see the module docstring).

    ``stall_bound`` defaults to ``cpt`` (a consumer may stall a whole timestep);
    ``bmc_depth`` to ``2 cpt + 8`` (two timesteps under any stall pattern). The k of each
    induction comes from ``cpt`` and the stall bound, with one larger retry.
    """
    cpt = int(manifest["timing"]["cycles_per_timestep"])
    stall = cpt if stall_bound is None else int(stall_bound)
    if stall < 1:
        raise HwgenError(f"stall bound must be a positive integer, not {stall_bound!r}")
    bmc = 2 * cpt + 8 if bmc_depth is None else int(bmc_depth)
    if bmc < 1:
        raise HwgenError(f"bmc depth must be a positive integer, not {bmc_depth!r}")
    verilog = tuple(Path(rtl_dir) / v for v in manifest["verilog"])
    for v in verilog:
        if not v.is_file():
            raise HwgenError(f"{v}: the manifest's Verilog file is missing")
    top = manifest["top"]
    si, so = manifest["streams"]["input"], manifest["streams"]["output"]

    def harness(check):
        return lambda: StreamHarness(manifest, check, stall)

    k_order = max(cpt, stall) + 2
    return [
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
            retry_depths=(cpt + 2,),
        ),
        Property(
            "streams.order",
            f"none lost or duplicated, <= 2 in flight, offered <= {cpt} cycles after its input "
            f"(stalls <= {stall} cycles)",
            "prove",
            k_order,
            harness("order"),
            verilog,
            retry_depths=(2 * k_order,),
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
            f"always-ready consumer: the output exactly {cpt} cycles after its input",
            "prove",
            cpt + 2,
            harness("timing"),
            verilog,
            retry_depths=(2 * cpt + 2,),
        ),
        Property(
            "timing.cover",
            "a trace of one whole timestep (input to output)",
            "cover",
            cpt + 4,
            harness("cover"),
            verilog,
        ),
    ]
