"""hwgen.fit: a model that cannot fit is refused with its numbers and what would fit."""

from __future__ import annotations

import re

import pytest

from conftest import make_model
from hwgen.fit import as_ternary, check_fit, fit_result
from hwgen.spec import HwgenError


def test_small_model_fits():
    r = check_fit(make_model("gru", "ternary", inputs=16, hidden=64, outputs=10), 8, "ice40-up5k")
    assert r.fits and r.problems == () and r.estimate.bram_blocks <= 30


def test_oversized_model_is_refused_with_its_numbers():
    # 256-unit int8 LSTM: 4 * 256 * (64 + 256) + 10 * 256 = 330,240 weights, 2.64 Mbit.
    m = make_model("lstm", "int8", inputs=64, hidden=256, outputs=10)
    with pytest.raises(HwgenError) as info:
        check_fit(m, 16, "ice40-up5k")
    msg = str(info.value)
    # Block counts follow from the layout; logic figures from the calibrated model.
    assert re.match(
        r"this model does not fit ice40-up5k with 16 lanes: weights and tables need 666 "
        r"SB_RAM40_4K blocks \(2727936 bits with padding; the weight codes alone are 2641920 "
        r"bits\) but ice40-up5k has 30 \(122880 bits\); the logic needs about \d+ logic cells "
        r"\(\d+ LUT4, \d+ flip-flops\) but ice40-up5k has 5280\.", msg)
    assert "What would fit: --target ecp5-85k fits 16 lanes" in msg
    assert "ternary weights (2 bits) would still not fit ice40-up5k" in msg


def test_refusal_suggests_fewer_lanes_when_logic_is_the_limit():
    m = make_model("gru", "int8", inputs=32, hidden=32, outputs=4)
    r = fit_result(m, 32, "ice40-up5k")
    assert not r.fits and any(re.search(r"logic cells \(\d+ LUT4, \d+ flip-flops\) but "
                                        r"ice40-up5k has 5280", p) for p in r.problems)
    with pytest.raises(HwgenError) as info:
        check_fit(m, 32, "ice40-up5k")
    hint = re.search(r"--lanes (\d+) fits ice40-up5k", str(info.value))
    assert hint and check_fit(m, int(hint.group(1)), "ice40-up5k").fits
    assert "ternary weights (2 bits) would fit ice40-up5k with 32 lanes" in str(info.value)
    # ecp5-12k / ecp5-25k have 28 MULT18X18D, too few for 32 int8 lanes: the suggestion is the
    # smallest with enough, the 45k (72)
    assert "--target ecp5-45k fits 32 lanes" in str(info.value)


def test_as_ternary_keeps_the_shape():
    m = make_model("gru", "int8", inputs=8, hidden=16)
    t = as_ternary(m)
    assert [x.shape for _, x in t.matrices()] == [x.shape for _, x in m.matrices()]
    assert t.weight_memory_bits == m.weight_memory_bits // 4
