# amaranth: UnusedElaboratable=no
"""Per-row scales in the gateware (issue 26): every cell, every encoding, dense / paired / 2:4
sparse, ROM and loadable cores, exact against the golden model in amaranth.sim; the schedule's
stated cost; models without row scales build the same design as before."""

from __future__ import annotations

import numpy as np
import pytest
from test_gateware import build, check_against_golden

from conftest import make_model, random_inputs
from hwgen import api
from hwgen.api import add_row_scales
from hwgen.gateware.core import Accelerator
from hwgen.gateware.plan import make_plan, row_events
from hwgen.gateware.schedule import (
    product_latency,
    row_mult_width,
    row_scale_latency,
    schedule,
)
from hwgen.gateware.simulate import simulate
from hwgen.golden import GoldenModel
from hwgen.spec import HwgenError

# (cell, quant, layers, lanes, tokens, row bits, stalls, mantissa): every cell and encoding,
# 1..16 bits; "mantissa": the matrix keeps a non-trivial scale mantissa (`add_row_scales`)
DENSE = [
    ("rnn", "ternary", 2, 1, False, 8, False, True),
    ("rnn", "pow2", 1, 5, True, 3, True, False),
    ("gru", "binary", 1, 3, False, 16, False, True),
    ("gru", "ternary", 2, 6, True, 8, True, False),
    ("gru", "int8", 1, 2, False, 1, False, True),
    ("gru", "int8", 1, 4, False, 8, False, False),
    ("lstm", "exp", 2, 4, False, 12, False, False),
    ("lstm", "int8", 1, 6, True, 5, True, True),
]


@pytest.mark.parametrize("cell,quant,layers,lanes,tokens,bits,stalls,mantissa", DENSE,
                         ids=[f"{c}-{q}-L{n}-P{p}-{'tok' if t else 'vec'}-u{b}"
                              f"{'-stall' if s else ''}{'-mant' if k else ''}"
                              for c, q, n, p, t, b, s, k in DENSE])
def test_row_scaled_core_is_exact(cell, quant, layers, lanes, tokens, bits, stalls, mantissa):
    model = add_row_scales(build(cell, quant, layers=layers, tokens=tokens), bits, seed=lanes,
                           keep_mantissa=mantissa)
    stall = dict(in_stall=0.4, out_stall=0.5) if stalls else {}
    _, got = check_against_golden(model, lanes, seed=bits, lengths=(3, 2), **stall)
    s = schedule(model, lanes)
    if not stalls:
        assert np.all(np.diff(got.accepted) == s.cycles_per_timestep)
        assert np.all(got.delivered - got.accepted == s.latency)


def test_mixed_encodings_and_matrices_without_multipliers():
    """Three MAC units (ternary layers, int8 head) and only some matrices with multipliers:
    the others pass through the row multiply with 1."""
    import dataclasses
    base = build("gru", "ternary", layers=2, head="int8")
    scaled = add_row_scales(base, 6, seed=4)
    model = dataclasses.replace(scaled, layers=(scaled.layers[0], base.layers[1]))
    assert model.layers[1].wx.row_mult is None and model.head.w.row_mult is not None
    check_against_golden(model, 3, seed=2)


@pytest.mark.parametrize("cell,quant,inputs,hidden,lanes", [("gru", "ternary", 4, 9, 8),
                                                          ("lstm", "int8", 2, 5, 4)])
def test_paired_input_segments_with_row_scales(cell, quant, inputs, hidden, lanes):
    """Row r + 1's deferred input event (the MAC's held half) takes row r + 1's multiplier."""
    model = add_row_scales(make_model(cell, quant, inputs=inputs, hidden=hidden, outputs=3,
                                      argmax=True, seed=hidden), 8)
    assert schedule(model, lanes).paired
    check_against_golden(model, lanes, seed=1, lengths=(3, 2), in_stall=0.3, out_stall=0.3)


@pytest.mark.parametrize("cell,quant,lanes", [("rnn", "ternary", 2), ("gru", "exp", 4),
                                              ("lstm", "ternary", 4)])
def test_sparse_core_with_row_scales(cell, quant, lanes):
    model = add_row_scales(make_model(cell, quant, inputs=6, hidden=8, outputs=3, layers=2,
                                      sparsity="2:4", argmax=True, seed=3), 8)
    core = Accelerator(model, lanes, sparse="on")
    assert core.plan.sparse and core.plan.row_mults is not None
    seqs = [random_inputs(model, batch=1, time=t, seed=t)[0] for t in (3, 2)]
    x, sos = np.concatenate(seqs), np.concatenate([np.arange(len(s)) == 0 for s in seqs])
    got = simulate(core, x, sos, in_stall=0.3, out_stall=0.3)
    want = np.concatenate([GoldenModel(model).run(s[None]).logits[0] for s in seqs])
    np.testing.assert_array_equal(got.logits, want)


@pytest.mark.parametrize("cell,quant,lanes,weights,tokens,sparsity", [
    ("gru", "ternary", 3, "spram", False, None),
    ("lstm", "exp", 4, "ram", True, None),
    ("rnn", "ternary", 4, "spram", False, "2:4"),
])
def test_loadable_core_loads_the_multipliers(cell, quant, lanes, weights, tokens, sparsity):
    """The multipliers are loaded like the biases, on a scale ROW_MULT_HEADROOM bits finer than
    the model's: one core runs two models whose multipliers and scale exponents differ (each
    re-expressed exactly); a model whose multipliers need more bits, whose scale has another
    mantissa, or without multipliers, is refused by name."""
    from hwgen.shape import ROW_MULT_HEADROOM, load_images, shape_core, shape_differences, shape_of

    def model(seed, bits=8, **kw):
        m = make_model(cell, quant, inputs=4, hidden=8, outputs=3, tokens=7 if tokens else None,
                       argmax=True, seed=1, sparsity=sparsity)
        return add_row_scales(m, bits, seed=seed, **kw)

    a, b = model(1), model(2, bits=10)
    sh = shape_of(a, lanes, weights=weights)
    assert sh["row_mult_bits"] == 8 + 2 * ROW_MULT_HEADROOM == 16
    assert sh["matrices"]["layer0.wh"]["row_mult"] is True
    assert sh["matrices"]["layer0.wh"]["scale"][1] == a.layers[0].wh.scale.exponent - 4
    assert shape_differences(sh, b) == []
    assert b.layers[0].wh.scale.exponent < a.layers[0].wh.scale.exponent  # re-expressed
    import dataclasses

    from hwgen.spec import Scale

    def shifted(k):  # every row factor 2**k times larger (k > 0) or smaller
        return a.map_matrices(lambda _, m: dataclasses.replace(
            m, scale=Scale(m.scale.mantissa, m.scale.exponent + k)))

    assert any("row multipliers need 17 bits" in d and "it holds 16" in d
               for d in shape_differences(sh, shifted(5)))
    assert shape_differences(sh, shifted(4)) == [] and shape_differences(sh, shifted(-4)) == []
    assert any("is not a multiple of the bitstream's" in d
               for d in shape_differences(sh, shifted(-5)))
    if quant != "exp":  # exp scales are powers of two: a kept mantissa is 1 there too
        assert any("is not a multiple of the bitstream's" in d
                   for d in shape_differences(sh, model(3, keep_mantissa=True)))
    plain = make_model(cell, quant, inputs=4, hidden=8, outputs=3, tokens=7 if tokens else None,
                       argmax=True, seed=1, sparsity=sparsity)
    assert any(".row_mult: bitstream True, model None" in d
               for d in shape_differences(sh, plain))
    with pytest.raises(HwgenError, match="does not fit this bitstream's shape"):
        load_images(sh, plain)
    core = Accelerator(*shape_core(sh, a)[:1], lanes, "auto", weights, shape_core(sh, a)[1])
    assert core.plan.row_mult_width == 16
    for m in (a, b):
        seqs = [random_inputs(m, batch=1, time=t, seed=t)[0] for t in (3, 2)]
        x, sos = np.concatenate(seqs), np.concatenate([np.arange(len(s)) == 0 for s in seqs])
        got = simulate(core, x, sos, load=load_images(sh, m), in_stall=0.3, out_stall=0.3)
        want = np.concatenate([GoldenModel(m).run(s[None]).logits[0] for s in seqs])
        np.testing.assert_array_equal(got.logits, want)


def test_schedule_cost_is_the_stated_constant():
    """Row scales of B bits add product_latency(B) cycles to scale_latency: L times that per
    timestep, once more of latency (with the matrices' mantissas kept; row_multipliers' scales
    are powers of two, so the mantissa's adder levels go); the multiplier table holds one entry
    per event."""
    for cell, layers in (("gru", 1), ("lstm", 2)):
        base = build(cell, "ternary", layers=layers)
        for bits in (1, 4, 8, 16):
            assert schedule(add_row_scales(base, bits), 3).scale_latency == (
                2 + product_latency(row_mult_width(add_row_scales(base, bits))))
            m = add_row_scales(base, bits, keep_mantissa=True)
            a, b = schedule(base, 3), schedule(m, 3)
            assert row_scale_latency(m) == product_latency(bits)
            assert b.scale_latency == a.scale_latency + product_latency(bits)
            assert b.cycles_per_timestep == a.cycles_per_timestep + layers * product_latency(bits)
            assert b.latency == a.latency + (layers + 1) * product_latency(bits)
            plan = make_plan(m, 3)
            assert len(plan.row_mults) == len(row_events(m)) == (
                2 * layers * base.cell.num_gates * base.hidden + base.outputs)
            assert {mm.name: mm.kind for mm in plan.memories()}["row_mult"] == "rom"
        assert row_scale_latency(base) == 0 and make_plan(base, 3).row_mults is None


def test_delta_core_refuses_row_scales(tmp_path):
    """The delta network's golden model applies row multipliers (tests/test_rowscale.py); its
    accelerator does not yet, and says so instead of computing without them."""
    from hwgen.delta import DeltaThresholds, with_thresholds
    from hwgen.gateware.delta_core import DeltaAccelerator

    m = with_thresholds(make_model("gru", "ternary", row_scales=8), DeltaThresholds((2,), (2,)))
    with pytest.raises(HwgenError, match=r"does not support per-row scales \(row_mult\)"):
        DeltaAccelerator(m, 2)
    with pytest.raises(HwgenError, match="does not support per-row scales"):
        api.generate(m, tmp_path / "rtl", 2)  # generate refuses it too, naming the option


def test_estimate_counts_the_row_multiply():
    from hwgen.estimate import estimate, row_multiply_bits, row_scaler_bits

    base = make_model("gru", "ternary", inputs=16, hidden=64, outputs=10)
    scaled = add_row_scales(base, 8, keep_mantissa=True)
    for target in ("ice40-up5k", "ecp5-25k"):
        a, b = estimate(base, 16, target), estimate(scaled, 16, target)
        assert "row multiply" not in a.luts_breakdown
        assert b.luts_breakdown["row multiply"] > 0 and b.ffs > a.ffs
        mems = {m.name: m for m in b.memories}
        assert mems["row_mult"].depth == 2 * 3 * 64 + 10 and mems["row_mult"].width == 8
        assert b.cycles_per_timestep == a.cycles_per_timestep + product_latency(8)
    assert row_multiply_bits(make_plan(base, 4)) == 0 == row_scaler_bits(make_plan(base, 4))
    # power-of-two scales (row_multipliers): the constant scalers need no wider adders
    assert row_scaler_bits(make_plan(add_row_scales(base, 8), 16)) == 0
    assert row_scaler_bits(make_plan(scaled, 16)) > 0
