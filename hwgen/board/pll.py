"""PLL solvers for the boards' FPGAs: which divider settings make which clock (pure functions).

The equations and limits are the vendors' (each solver's docstring names the source), and the
search order and tie-breaks are those of the open tools (``icepll`` of Project IceStorm,
``ecppll`` of Project Trellis), so a frequency they can make, hwgen makes with the same
dividers (tests compare both against the tools where they are installed). Arithmetic is exact
(`fractions.Fraction`): an achieved frequency is never a rounded float.

- `PllConfig`: one setting: the family, input and output frequency, VCO and phase-detector
  frequency, and the primitive's parameters (``SB_PLL40_*`` or ``EHXPLLL``).
- `configs(family, f_in)`: every valid setting (each output frequency once, the tools' choice).
- `pll_nearest(family, f_in, f_out)`: the setting nearest a frequency (the tools' answer).
- `pll_exact(family, f_in, f_out)`: the setting for a requested frequency, or `HwgenError`
  naming the nearest frequencies the PLL can make.
- `pll_at_most(family, f_in, f_max)`: the fastest setting not above ``f_max`` (``--clock auto``).

Frequencies are in MHz (int, float or Fraction in; Fraction out).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction

from ..spec import HwgenError

__all__ = ["PllConfig", "ICE40_LIMITS", "ECP5_LIMITS", "ice40_search", "ecp5_search",
           "configs", "pll_nearest", "pll_exact", "pll_at_most", "FAMILIES"]

#: iCE40 sysCLOCK PLL (Lattice TN1251, "iCE40 sysCLOCK PLL Design and Usage Guide", and
#: icepll.cc): F_PFD = F_REF / (DIVR + 1) in 10..133 MHz, F_VCO = F_PFD * (DIVF + 1) in
#: 533..1066 MHz (simple feedback), F_OUT = F_VCO / 2**DIVQ in 16..275 MHz; DIVR 0..15,
#: DIVF 0..127, DIVQ 1..6; the reference 10..133 MHz.
ICE40_LIMITS = {"ref": (10, 133), "pfd": (10, 133), "vco": (533, 1066), "out": (16, 275),
                "divr": 15, "divf": 127, "divq": (1, 6)}

#: ECP5 EHXPLLL (Lattice TN1263, "ECP5 and ECP5-5G sysCLOCK PLL/DLL Design and Usage Guide",
#: and ecppll.cpp): F_PFD = F_IN / CLKI_DIV in 3.125..400 MHz, F_VCO = F_PFD * CLKFB_DIV *
#: CLKOP_DIV in 400..800 MHz with CLKOP as feedback, F_OUT = F_VCO / CLKOP_DIV in 10..400 MHz;
#: CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128; the input 8..400 MHz.
ECP5_LIMITS = {"ref": (8, 400), "pfd": (Fraction(25, 8), 400), "vco": (400, 800),
               "out": (10, 400), "clki_div": 128, "clkfb_div": 80, "clkop_div": 128}

FAMILIES = ("ice40", "ecp5")


@dataclass(frozen=True)
class PllConfig:
    """One PLL setting. ``params``: the primitive's parameters by name (iCE40: DIVR, DIVF, DIVQ,
    FILTER_RANGE; ECP5: CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE)."""

    family: str
    f_in: Fraction
    f_out: Fraction
    f_vco: Fraction
    f_pfd: Fraction
    params: dict = field(compare=False)

    @property
    def mhz(self) -> float:
        return float(self.f_out)

    def to_json(self) -> dict:
        return {"family": self.family, "in_mhz": float(self.f_in), "out_mhz": float(self.f_out),
                "vco_mhz": float(self.f_vco), "pfd_mhz": float(self.f_pfd),
                "params": dict(self.params)}


def _mhz(name: str, value) -> Fraction:
    try:
        f = Fraction(value) if not isinstance(value, float) else Fraction(str(value))
    except (TypeError, ValueError):
        raise HwgenError(f"{name} must be a frequency in MHz, not {value!r}") from None
    if f <= 0:
        raise HwgenError(f"{name} must be a positive frequency in MHz, not {value!r}")
    return f


def _inside(f, limits) -> bool:
    lo, hi = limits
    return lo <= f <= hi


def _ice40_filter_range(f_pfd: Fraction) -> int:
    """The loop filter setting for a phase-detector frequency (icepll's table, TN1251)."""
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if f_pfd < limit:
            return value
    return 6


def ice40_search(f_in: Fraction):
    """Every valid simple-feedback setting for a reference of ``f_in`` MHz, in icepll's order
    (DIVR, then DIVF, then DIVQ ascending)."""
    lim = ICE40_LIMITS
    for divr in range(lim["divr"] + 1):
        f_pfd = f_in / (divr + 1)
        if not _inside(f_pfd, lim["pfd"]):
            continue
        for divf in range(lim["divf"] + 1):
            f_vco = f_pfd * (divf + 1)
            if not _inside(f_vco, lim["vco"]):
                continue
            for divq in range(lim["divq"][0], lim["divq"][1] + 1):
                f_out = f_vco / 2**divq
                if _inside(f_out, lim["out"]):
                    yield PllConfig("ice40", f_in, f_out, f_vco, f_pfd, {
                        "DIVR": divr, "DIVF": divf, "DIVQ": divq,
                        "FILTER_RANGE": _ice40_filter_range(f_pfd)})


def ecp5_search(f_in: Fraction):
    """Every valid CLKOP-feedback setting for an input of ``f_in`` MHz, in ecppll's order
    (CLKI_DIV, then CLKFB_DIV, then CLKOP_DIV ascending)."""
    lim = ECP5_LIMITS
    for clki in range(1, lim["clki_div"] + 1):
        f_pfd = f_in / clki
        if not _inside(f_pfd, lim["pfd"]):
            continue
        for clkfb in range(1, lim["clkfb_div"] + 1):
            for clkop in range(1, lim["clkop_div"] + 1):
                f_vco = f_pfd * clkfb * clkop
                if f_vco > lim["vco"][1]:
                    break
                if f_vco < lim["vco"][0]:
                    continue
                f_out = f_vco / clkop
                if _inside(f_out, lim["out"]):
                    # CLKOP_CPHASE = CLKOP_DIV - 1: no phase shift (what Lattice's tools emit);
                    # with CLKOP as the feedback path the phase does not change the frequency
                    yield PllConfig("ecp5", f_in, f_out, f_vco, f_pfd, {
                        "CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                        "CLKOP_CPHASE": clkop - 1})


def _better(new: PllConfig, old: PllConfig | None) -> bool:
    """The tools' choice among settings of the same output frequency: the first found
    (icepll); ecppll keeps a later one only when its VCO is nearer 600 MHz."""
    if old is None:
        return True
    return new.family == "ecp5" and abs(new.f_vco - 600) < abs(old.f_vco - 600)


@functools.lru_cache(maxsize=16)
def configs(family: str, f_in) -> tuple[PllConfig, ...]:
    """One setting per frequency the PLL can make from ``f_in`` MHz, slowest first."""
    f = _mhz("The PLL input", f_in)
    if family not in FAMILIES:
        raise HwgenError(f"no PLL solver for family {family!r}; expected one of "
                         f"{', '.join(FAMILIES)}")
    limits = ICE40_LIMITS if family == "ice40" else ECP5_LIMITS
    if not _inside(f, limits["ref"]):
        lo, hi = limits["ref"]
        raise HwgenError(f"the {family} PLL takes a {float(lo):g}..{float(hi):g} MHz "
                         f"reference, not {float(f):g} MHz")
    best: dict[Fraction, PllConfig] = {}
    for c in (ice40_search(f) if family == "ice40" else ecp5_search(f)):
        if _better(c, best.get(c.f_out)):
            best[c.f_out] = c
    return tuple(best[k] for k in sorted(best))


def _near(options: tuple[PllConfig, ...], f: Fraction) -> str:
    below = [c for c in options if c.f_out < f]
    above = [c for c in options if c.f_out > f]
    near = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return " or ".join(f"{float(c.f_out):.6g} MHz" for c in near)


def pll_nearest(family: str, f_in, f_out) -> PllConfig:
    """The setting nearest ``f_out`` MHz (what icepll / ecppll print for a request)."""
    want = _mhz("The requested clock", f_out)
    return min(configs(family, f_in), key=lambda c: abs(c.f_out - want))


def pll_exact(family: str, f_in, f_out, *, tolerance_ppm: float = 100.0) -> PllConfig:
    """The setting that makes ``f_out`` MHz from ``f_in`` MHz (within ``tolerance_ppm``); a
    frequency the PLL cannot make raises `HwgenError` naming the nearest ones it can."""
    want = _mhz("The requested clock", f_out)
    options = configs(family, f_in)
    lo, hi = options[0].f_out, options[-1].f_out
    if not lo <= want <= hi:
        raise HwgenError(f"the {family} PLL makes {float(lo):g}..{float(hi):g} MHz from "
                         f"{float(Fraction(f_in)):g} MHz, not {float(want):g} MHz")
    best = pll_nearest(family, f_in, want)
    if abs(best.f_out - want) > want * Fraction(tolerance_ppm) / 10**6:
        raise HwgenError(f"the {family} PLL cannot make {float(want):g} MHz from "
                         f"{float(Fraction(f_in)):g} MHz; the nearest it can make: "
                         f"{_near(options, want)}")
    return best


def pll_at_most(family: str, f_in, f_max, accept=None) -> PllConfig:
    """The fastest setting whose output is at most ``f_max`` MHz and that ``accept(config)``
    (when given: e.g. a UART divisor within tolerance) takes; `HwgenError` when there is none."""
    limit = _mhz("The clock limit", f_max)
    options = configs(family, f_in)
    fitting = [c for c in options if c.f_out <= limit and (accept is None or accept(c))]
    if not fitting:
        if options[0].f_out <= limit:  # slow enough ones exist; ``accept`` refused them all
            raise HwgenError(f"no {family} PLL clock from {float(Fraction(f_in)):g} MHz at most "
                             f"{float(limit):g} MHz suits the link (UART divisor within 2%)")
        raise HwgenError(f"the {family} PLL's slowest clock from {float(Fraction(f_in)):g} MHz "
                         f"is {float(options[0].f_out):g} MHz, above {float(limit):g} MHz")
    return fitting[-1]
