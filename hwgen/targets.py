"""The FPGA devices hwgen targets: resources, RAM block geometry and place-and-route arguments.

A target is data: the numbers below are the vendors' data-sheet figures (cross-checked with
nextpnr 0.11.1's ``--report`` "available" counts), so the estimator, the fit check and the
synthesis driver all read the same capacities.

- iCE40 UP5K (iCEBreaker): 5280 LUT4, 30 EBR (SB_RAM40_4K, 4 kbit), 4 SPRAM (SB_SPRAM256KA,
  16384 x 16, single port, no initial contents), 8 SB_MAC16.
- iCE40 HX8K: 7680 LUT4, 32 EBR, no SPRAM, no DSP.
- ECP5 LFE5U-25F / LFE5U-85F (ULX3S, OrangeCrab): 24288 / 83640 LUT4, 56 / 208 DP16KD
  (18 kbit), 28 / 156 MULT18X18D.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .spec import HwgenError

__all__ = ["Family", "RamBlock", "Target", "TARGETS", "get_target", "target_names"]


class Family(enum.Enum):
    """Device family: selects the Yosys ``synth_*`` script and the nextpnr binary."""

    ICE40 = "ice40"
    ECP5 = "ecp5"


@dataclass(frozen=True)
class RamBlock:
    """One kind of embedded RAM block.

    ``modes`` lists the (data width, depth) configurations a read port can take; every mode holds
    at most ``bits`` bits (ECP5's 9/18/36-bit modes use the parity bits, so 18 kbit; iCE40 EBR
    modes are 4 kbit). ``initialisable`` says whether the block can hold a ROM (contents set by the
    bitstream); iCE40 SPRAM cannot, it must be written at run time.
    """

    name: str
    bits: int
    modes: tuple[tuple[int, int], ...]
    initialisable: bool = True

    def blocks_for(self, width: int, depth: int) -> tuple[int, tuple[int, int]]:
        """Fewest blocks holding a ``width`` x ``depth`` memory, and the mode that achieves it.

        Blocks are tiled: ceil(width / mode width) side by side, ceil(depth / mode depth) deep
        (what Yosys' memory_libmap does for one read port, without LUT-RAM or cascading tricks).
        """
        if width <= 0 or depth <= 0:
            return 0, self.modes[0]
        best = None
        for w, d in self.modes:
            n = math.ceil(width / w) * math.ceil(depth / d)
            if best is None or n < best[0]:
                best = (n, (w, d))
        return best


EBR_ICE40 = RamBlock(
    "SB_RAM40_4K", 4096, ((16, 256), (8, 512), (4, 1024), (2, 2048))
)
SPRAM_ICE40 = RamBlock("SB_SPRAM256KA", 262144, ((16, 16384),), initialisable=False)
DP16KD_ECP5 = RamBlock(
    "DP16KD", 18432, ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
)


@dataclass(frozen=True, kw_only=True)
class Target:
    """One FPGA device: capacities, cell names in Yosys' netlists and nextpnr arguments.

    ``cells`` maps a resource kind (``lut``, ``carry``, ``ff``, ``bram``, ``spram``, ``dsp``) to the
    Yosys cell types counted as that kind (flip-flop types are matched by prefix). ``pnr_logic``
    is the nextpnr bel that counts logic cells in ``--report`` utilization.
    """

    name: str
    family: Family
    device: str  # human-readable part name
    luts: int
    ffs: int
    bram: RamBlock
    bram_count: int
    spram: RamBlock | None
    spram_count: int
    dsp_count: int
    package: str
    pnr_args: tuple[str, ...]
    default_freq_mhz: float  # nextpnr --freq for Fmax runs: a stretch goal, so it works hard
    cells: dict
    pnr_logic: str
    pnr_bels: dict  # resource kind -> nextpnr bel name

    @property
    def bram_bits(self) -> int:
        return self.bram.bits * self.bram_count

    @property
    def spram_bits(self) -> int:
        return self.spram.bits * self.spram_count if self.spram else 0

    @property
    def yosys_synth(self) -> str:
        return f"synth_{self.family.value}"

    @property
    def nextpnr(self) -> str:
        return f"yowasp-nextpnr-{self.family.value}"

    def describe(self) -> str:
        ram = f"{self.bram_count} x {self.bram.bits // 1024} kbit {self.bram.name}"
        if self.spram_count:
            ram += f", {self.spram_count} x {self.spram.bits // 1024} kbit SPRAM"
        return (
            f"{self.name} ({self.device}, {self.package}): {self.luts} LUT4, {self.ffs} FF, {ram}, "
            f"{self.dsp_count} DSP"
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "family": self.family.value,
            "device": self.device,
            "package": self.package,
            "luts": self.luts,
            "ffs": self.ffs,
            "bram": {"cell": self.bram.name, "bits": self.bram.bits, "count": self.bram_count},
            "spram": None
            if self.spram is None
            else {"cell": self.spram.name, "bits": self.spram.bits, "count": self.spram_count},
            "dsp": self.dsp_count,
        }


_ICE40_CELLS = {
    "lut": ("SB_LUT4",),
    "carry": ("SB_CARRY",),
    "ff": ("SB_DFF",),  # prefix: SB_DFF, SB_DFFE, SB_DFFSR, SB_DFFESS, ...
    "bram": ("SB_RAM40_4K", "SB_RAM40_4KNR", "SB_RAM40_4KNW", "SB_RAM40_4KNRNW"),
    "spram": ("SB_SPRAM256KA",),
    "dsp": ("SB_MAC16",),
}
_ICE40_BELS = {
    "logic": "ICESTORM_LC",
    "bram": "ICESTORM_RAM",
    "spram": "ICESTORM_SPRAM",
    "dsp": "ICESTORM_DSP",
    "io": "SB_IO",
}
_ECP5_CELLS = {
    "lut": ("LUT4",),
    "carry": ("CCU2C",),
    "ff": ("TRELLIS_FF",),
    "bram": ("DP16KD", "PDPW16KD"),
    "spram": (),
    "dsp": ("MULT18X18D", "ALU54B"),
}
_ECP5_BELS = {
    "logic": "TRELLIS_COMB",
    "ff": "TRELLIS_FF",
    "bram": "DP16KD",
    "dsp": "MULT18X18D",
    "io": "TRELLIS_IO",
}

def _ice40(name: str, device: str, *, luts: int, ebr: int, spram: int, dsp: int, package: str,
           flag: str, freq: float) -> Target:
    """An iCE40 device: one flip-flop per logic cell, EBR (and SPRAM where ``spram``)."""
    return Target(name=name, family=Family.ICE40, device=device, luts=luts, ffs=luts,
                  bram=EBR_ICE40, bram_count=ebr, spram=SPRAM_ICE40 if spram else None,
                  spram_count=spram, dsp_count=dsp, package=package,
                  pnr_args=(flag, "--package", package), default_freq_mhz=freq,
                  cells=_ICE40_CELLS, pnr_logic=_ICE40_BELS["logic"], pnr_bels=_ICE40_BELS)


def _ecp5(name: str, device: str, *, luts: int, dp16kd: int, dsp: int, flag: str) -> Target:
    """An ECP5 device in the CABGA381 package: DP16KD block RAM, no SPRAM."""
    return Target(name=name, family=Family.ECP5, device=device, luts=luts, ffs=luts,
                  bram=DP16KD_ECP5, bram_count=dp16kd, spram=None, spram_count=0, dsp_count=dsp,
                  package="CABGA381", pnr_args=(flag, "--package", "CABGA381"),
                  default_freq_mhz=250.0, cells=_ECP5_CELLS, pnr_logic=_ECP5_BELS["logic"],
                  pnr_bels=_ECP5_BELS)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _ice40("ice40-up5k", "iCE40UP5K", luts=5280, ebr=30, spram=4, dsp=8, package="sg48",
               flag="--up5k", freq=100.0),
        _ice40("ice40-hx8k", "iCE40HX8K", luts=7680, ebr=32, spram=0, dsp=0, package="ct256",
               flag="--hx8k", freq=150.0),
        # issue 25 (the ULX3S 12F): the data sheet's 12K LUTs, 32 DP16KD and 28 multipliers
        # (the die is the 25F's: nextpnr --12k places on it, the fit check keeps to the 12F's)
        _ecp5("ecp5-12k", "LFE5U-12F", luts=12144, dp16kd=32, dsp=28, flag="--12k"),
        _ecp5("ecp5-25k", "LFE5U-25F", luts=24288, dp16kd=56, dsp=28, flag="--25k"),
        # issue 25 (the ULX3S 45F): 44K LUTs, 108 DP16KD, 72 multipliers
        _ecp5("ecp5-45k", "LFE5U-45F", luts=43848, dp16kd=108, dsp=72, flag="--45k"),
        _ecp5("ecp5-85k", "LFE5U-85F", luts=83640, dp16kd=208, dsp=156, flag="--85k"),
    )
}


def target_names() -> tuple[str, ...]:
    return tuple(TARGETS)


def get_target(name: str | Target) -> Target:
    """The `Target` called ``name``; raises `HwgenError` listing the known names otherwise."""
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[str(name).strip().lower()]
    except KeyError:
        raise HwgenError(
            f"unknown target {name!r}; expected one of {', '.join(TARGETS)}"
        ) from None
