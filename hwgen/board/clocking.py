"""The ``sync`` clock domain of a board build, from the FPGA's PLL.

`PllClock` requests the board's oscillator pin and drives the ``sync`` domain (link and
accelerator; the parent defines the domain, this drives its clock and reset) from the PLL
setting it is given (`hwgen.board.pll.PllConfig`):

- iCE40: ``SB_PLL40_PAD`` on the oscillator's pad (the iCEBreaker's 12 MHz clock is on pin 35,
  the UP5K's PLL input pad), simple feedback, output ``PLLOUTGLOBAL`` on a global network.
- ECP5: ``EHXPLLL`` fed by the oscillator's input buffer, CLKOP as output and feedback.

Reset contract: ``sync`` is held in reset until the PLL reports lock and then for
``por_cycles`` more cycles of the PLL clock (iCE40 block RAMs read as zeros for about 3 us after
configuration: amaranth's own default domain waits 15 us, and so does this one), released
synchronously (amaranth's `ResetSynchronizer`). A PLL that loses lock resets the domain again.
On iCE40 the reset goes out on a global buffer (``SB_GB``) and `hwgen.board.top.BoardTop` makes
the domain's reset asynchronous (asserted at once, released by the synchronizer in step with the
clock): it then drives only the flip-flops' reset pins, never the logic in front of them.

With ``config=None`` the domain runs straight from the oscillator (the board clock), as amaranth's
default domain does: the build's ``--clock board`` choice.
"""

from __future__ import annotations

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from .pll import PllConfig

__all__ = ["PllClock", "POR_SECONDS"]

#: Time the domain stays in reset after lock (amaranth's iCE40 default domain: 15 us).
POR_SECONDS = 15e-6


class PllClock(Elaboratable):
    """Drives ``sync`` from ``config`` (or the oscillator when None); see the module docstring.

    Parameters
    ----------
    config : the PLL setting (its ``f_in`` must be the board oscillator's frequency).
    clock_resource : the platform's oscillator resource name (``platform.default_clk``).
    domain_clock : the ``sync`` domain's clock signal (its parent's ``ClockDomain.clk``), which
        gets the timing constraint.
    constraint_mhz : the frequency nextpnr is asked to meet, when above the PLL's (default:
        the PLL's).
    """

    def __init__(self, config: PllConfig | None, clock_resource: str, domain_clock, *,
                 constraint_mhz: float | None = None):
        self.domain_clock = domain_clock
        self.config = config
        self.clock_resource = clock_resource
        self.constraint_mhz = constraint_mhz

    @property
    def frequency_hz(self) -> float | None:
        return None if self.config is None else float(self.config.f_out) * 1e6

    def elaborate(self, platform):
        m = Module()
        clk_out, locked = Signal(), Signal()
        pin = platform.request(self.clock_resource, dir="-")
        c = self.config
        if c is None:
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            m.d.comb += [clk_out.eq(buf.i), locked.eq(1)]
            hz = platform.default_clk_frequency
        elif c.family == "ice40":
            p = c.params
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=Const(p["DIVR"], 4),
                p_DIVF=Const(p["DIVF"], 7),
                p_DIVQ=Const(p["DIVQ"], 3),
                p_FILTER_RANGE=Const(p["FILTER_RANGE"], 3),
                i_PACKAGEPIN=pin.io,
                i_RESETB=Const(1),
                i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk_out,
                o_LOCK=locked,
            )
            hz = float(c.f_out) * 1e6
        else:
            p = c.params
            m.submodules.clk_buf = buf = io.Buffer("i", pin)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{float(c.f_in):g}",
                a_FREQUENCY_PIN_CLKOP=f"{float(c.f_out):g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
                p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKFB_DIV=p["CLKFB_DIV"],
                p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=0,
                i_CLKI=buf.i, i_CLKFB=clk_out, i_RST=Const(0), i_STDBY=Const(0),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0),
                o_CLKOP=clk_out, o_LOCK=locked,
            )
            hz = float(c.f_out) * 1e6
        # power-on / lock delay, counted in the (unreset) output clock
        delay = max(1, int(POR_SECONDS * hz))
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(clk_out)
        timer, ready = Signal(range(delay + 1)), Signal()
        with m.If(~locked):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ClockSignal("sync").eq(clk_out)
        if c is not None and c.family == "ice40":
            # the domain reset on a global buffer: it reaches the whole chip (and, through the
            # logic tiles' global-to-local muxes, the state machines' LUTs that fold it into
            # their transitions) without the 7-8 ns of general routing that made it an iCE40
            # critical path from the synchronizer's corner of the chip
            m.domains.rsync = ClockDomain("rsync", local=True)
            m.d.comb += ClockSignal("rsync").eq(clk_out)
            m.submodules.reset_sync = ResetSynchronizer(~ready, domain="rsync")
            m.submodules.reset_gb = Instance(
                "SB_GB", i_USER_SIGNAL_TO_GLOBAL_BUFFER=ResetSignal("rsync"),
                o_GLOBAL_BUFFER_OUTPUT=ResetSignal("sync"))
        else:
            m.submodules.reset_sync = ResetSynchronizer(~ready, domain="sync")
        # the timing constraint, on the domain's clock net (nextpnr knows the net by that name):
        # the PLL's frequency, or a higher one the placer is asked for (``--clock auto`` places
        # against its first target and then sets the PLL below what that placement reached)
        target = hz if self.constraint_mhz is None else max(hz, self.constraint_mhz * 1e6)
        platform.add_clock_constraint(self.domain_clock, target)
        return m
