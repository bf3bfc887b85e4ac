"""PLL solvers against the data-sheet equations and the open tools (icepll, ecppll), the UART
divisor check, and the --clock argument."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from hwgen.board.build import clock_mhz, parse_clock, resolve_clock
from hwgen.board.pll import configs, pll_at_most, pll_exact, pll_nearest
from hwgen.spec import HwgenError
from hwgen.uart.phy import uart_divisor

_BIN = Path(sys.executable).parent


def test_ice40_settings_obey_the_datasheet_equations():
    """TN1251: F_PFD = F_REF / (DIVR + 1), F_VCO = F_PFD (DIVF + 1), F_OUT = F_VCO / 2^DIVQ,
    with the ranges of the PLL's blocks; every output frequency appears once."""
    options = configs("ice40", 12)
    assert len(options) > 100
    assert len({c.f_out for c in options}) == len(options)
    for c in options:
        p = c.params
        assert c.f_pfd == Fraction(12, p["DIVR"] + 1)
        assert c.f_vco == c.f_pfd * (p["DIVF"] + 1)
        assert c.f_out == c.f_vco / 2 ** p["DIVQ"]
        assert 10 <= c.f_pfd <= 133 and 533 <= c.f_vco <= 1066 and 16 <= c.f_out <= 275
        assert 0 <= p["DIVR"] <= 15 and 0 <= p["DIVF"] <= 127 and 1 <= p["DIVQ"] <= 6
        assert p["FILTER_RANGE"] == 1  # F_PFD = 12 MHz < 17 MHz


def test_ecp5_settings_obey_the_datasheet_equations():
    """TN1263, CLKOP feedback: F_OUT = F_IN CLKFB_DIV / CLKI_DIV, F_VCO = F_OUT CLKOP_DIV."""
    for c in configs("ecp5", 25):
        p = c.params
        assert c.f_pfd == Fraction(25, p["CLKI_DIV"])
        assert c.f_out == Fraction(25 * p["CLKFB_DIV"], p["CLKI_DIV"])
        assert c.f_vco == c.f_out * p["CLKOP_DIV"]
        assert Fraction(25, 8) <= c.f_pfd <= 400 and 400 <= c.f_vco <= 800
        assert 10 <= c.f_out <= 400
        assert 1 <= p["CLKFB_DIV"] <= 80 and 1 <= p["CLKI_DIV"] <= 128


def test_exact_and_at_most():
    c = pll_exact("ice40", 12, 60)
    assert (c.params["DIVR"], c.params["DIVF"], c.params["DIVQ"]) == (0, 79, 4)
    assert pll_at_most("ice40", 12, 74.7).f_out == Fraction(147, 2)  # 73.5 MHz
    assert pll_at_most("ecp5", 25, 222).f_out == Fraction(1775, 8)  # 221.875 MHz
    with pytest.raises(HwgenError, match=r"cannot make 61.3 MHz from 12 MHz; the nearest it can "
                                         r"make: 60.75 MHz or 61.5 MHz"):
        pll_exact("ice40", 12, 61.3)
    with pytest.raises(HwgenError, match=r"makes 16.125..270 MHz from 12 MHz, not 300 MHz"):
        pll_exact("ice40", 12, 300)
    with pytest.raises(HwgenError, match="slowest clock from 12 MHz is 16.125 MHz, above 10 MHz"):
        pll_at_most("ice40", 12, 10)
    # slow enough clocks exist, but the link takes none of them: say so (not "slowest ... above")
    with pytest.raises(HwgenError, match=r"no ice40 PLL clock from 12 MHz at most 17.5 MHz suits "
                                         r"the link \(UART divisor within 2%\)"):
        pll_at_most("ice40", 12, 17.5, accept=lambda c: False)
    with pytest.raises(HwgenError, match="takes a 10..133 MHz reference, not 5 MHz"):
        configs("ice40", 5)


def _tool(name: str) -> str | None:
    found = _BIN / f"yowasp-{name}"
    return str(found) if found.exists() else shutil.which(name)


@pytest.mark.parametrize("mhz", [18, 30, 48, 60, 72, 74.7, 100, 120.75, 201, 270])
def test_ice40_solver_matches_icepll(mhz, tmp_path):
    """Inside the data sheet's 16..275 MHz output range (icepll also offers 15.94 MHz for 16
    and 276 MHz for 275, outside it, with a warning; hwgen's solver never does)."""
    tool = _tool("icepll")
    if tool is None:
        pytest.skip("icepll (yowasp-icepll or IceStorm) is not installed")
    out = subprocess.run([tool, "-i", "12", "-o", str(mhz)], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout
    want = {k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", out,
                                             re.M)}
    achieved = float(re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out).group(1))
    c = pll_nearest("ice40", 12, mhz)
    assert c.params == want and float(c.f_out) == pytest.approx(achieved, abs=1e-3)


@pytest.mark.parametrize("f_in, mhz", [(25, 150), (25, 62.5), (25, 222), (25, 40),
                                       (48, 96), (12, 48), (25, 100), (48, 74.7)])
def test_ecp5_solver_matches_ecppll(f_in, mhz, tmp_path):
    tool = _tool("ecppll")
    if tool is None:
        pytest.skip("ecppll (yowasp-ecppll or Project Trellis) is not installed")
    out = subprocess.run([tool, "-i", str(f_in), "-o", str(mhz)], capture_output=True,
                         text=True, cwd=tmp_path, check=True).stdout
    fields = dict(re.findall(r"^(Refclk divisor|Feedback divisor|clkout0 divisor):\s+(\d+)",
                             out, re.M))
    c = pll_nearest("ecp5", f_in, mhz)
    assert (c.params["CLKI_DIV"], c.params["CLKFB_DIV"], c.params["CLKOP_DIV"]) == (
        int(fields["Refclk divisor"]), int(fields["Feedback divisor"]),
        int(fields["clkout0 divisor"]))


def test_the_clock_a_build_starts_at():
    assert parse_clock("AUTO") == "auto" and parse_clock("60MHz") == 60.0
    with pytest.raises(HwgenError, match="--clock takes auto, board or a frequency"):
        parse_clock("fast")
    assert resolve_clock("icebreaker", "board") is None
    assert clock_mhz("icebreaker", "board") == 12.0
    # auto: the fastest PLL frequency at most the expected Fmax whose UART divisor is exact
    assert clock_mhz("icebreaker", "auto", 3_000_000) == 72.0
    c = resolve_clock("ulx3s-85f", "auto", 3_000_000)
    assert c.f_out <= 200 and uart_divisor(float(c.f_out) * 1e6, 3_000_000) > 4
    with pytest.raises(HwgenError, match="cannot make 61.3 MHz"):
        resolve_clock("icebreaker", 61.3)
