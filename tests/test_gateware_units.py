# amaranth: UnusedElaboratable=no
"""Gateware components one at a time: MAC lanes per encoding, constant scaler, activation table,
ROM images, the schedule's arithmetic, and constructor errors (checked exactly)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwgen.gateware.activation import ActivationTable
from hwgen.gateware.core import Accelerator
from hwgen.gateware.mac import MacUnit
from hwgen.gateware.mult import PipelinedMul
from hwgen.gateware.plan import weight_words
from hwgen.gateware.rom import Rom
from hwgen.gateware.scale import ConstScaler
from hwgen.gateware.schedule import (
    ISSUE_DELAY,
    check_lanes,
    schedule,
    tree_depth,
    tree_split,
)
from hwgen.numerics import scaled_term, table_index
from hwgen.spec import HwgenError, QuantMatrix, Scale, WeightEncoding, pack_codes, unpack_codes
from tests.test_gateware import build

ENCODINGS = {
    "binary": WeightEncoding.binary(),
    "ternary": WeightEncoding.ternary(),
    "pow2": WeightEncoding.pow2(0, 1),
    "pow2x3": WeightEncoding.pow2(1, 2),
    "exp7": WeightEncoding.exp(7),
    "exp3": WeightEncoding.exp(3),
    "int8": WeightEncoding.int_n(8),
}


def _random_codes(enc: WeightEncoding, rng, shape):
    codes = rng.integers(0, 1 << enc.bits, shape)
    bad = ~enc.valid_codes(codes)
    codes[bad] = 0
    return codes


@pytest.mark.parametrize("name", list(ENCODINGS))
@pytest.mark.parametrize("lanes", [1, 3, 4])
def test_mac_unit(name, lanes):
    enc, rng = ENCODINGS[name], np.random.default_rng(lanes)
    words, ow = 5, 8
    codes = _random_codes(enc, rng, (2, words, lanes))
    ops = rng.integers(-128, 128, (2, words, lanes))
    want = [int(np.sum(enc.decode(codes[s]) * ops[s])) for s in range(2)]
    bound = enc.max_level * 128 * words * lanes
    mac = MacUnit(enc, lanes=lanes, operand_width=ow, acc_width=bound.bit_length() + 1)
    packed = pack_codes(codes, enc.bits, lanes)
    got = []

    async def bench(ctx):
        for s in range(2):
            for w in range(words):
                ctx.set(mac.valid, 1)
                ctx.set(mac.first, w == 0)
                ctx.set(mac.codes, int(packed[s, w, 0]))
                for k in range(lanes):
                    ctx.set(mac.operands[k], int(ops[s, w, k]))
                await ctx.tick()
            ctx.set(mac.valid, 0)
            await ctx.tick().repeat(mac.latency)
            got.append(ctx.get(mac.acc))

    sim = Simulator(mac)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want


@pytest.mark.parametrize("name", ["binary", "ternary", "exp7", "int8"])
@pytest.mark.parametrize("lanes", [3, 4, 8, 12])
def test_mac_unit_split_words(name, lanes):
    """A split word adds lanes [0, s) to the sum and parks lanes [s, P) in ``held``, which keeps
    that value through later (unsplit) words until the next split word."""
    enc, rng = ENCODINGS[name], np.random.default_rng(100 + lanes)
    s = tree_split(lanes)
    # sums of 1-3 words; the first word of every sum is split or not at random
    sums = [int(n) for n in rng.integers(1, 4, 8)]
    splits = [bool(b) for b in rng.integers(0, 2, len(sums))]
    words = sum(sums)
    codes = _random_codes(enc, rng, (words, lanes))
    ops = rng.integers(-128, 128, (words, lanes))
    level = enc.decode(codes) * ops
    mac = MacUnit(enc, lanes=lanes, operand_width=8,
                  acc_width=(enc.max_level * 128 * 3 * lanes).bit_length() + 1, split=True)
    packed = pack_codes(codes, enc.bits, lanes)
    want_acc, want_held, held = [], [], 0
    w = 0
    for n, split in zip(sums, splits, strict=True):
        acc = 0
        for i in range(n):
            cut = split and i == 0
            acc += int(level[w, :s].sum() if cut else level[w].sum())
            if cut:
                held = int(level[w, s:].sum())
            w += 1
        want_acc.append(acc)
        want_held.append(held)
    got_acc, got_held = [], []

    async def bench(ctx):
        w = 0
        for n, split in zip(sums, splits, strict=True):
            for i in range(n):
                ctx.set(mac.valid, 1)
                ctx.set(mac.first, i == 0)
                ctx.set(mac.split, split and i == 0)
                ctx.set(mac.codes, int(packed[w, 0]))
                for k in range(lanes):
                    ctx.set(mac.operands[k], int(ops[w, k]))
                await ctx.tick()
                w += 1
            ctx.set(mac.valid, 0)
            ctx.set(mac.split, 0)
            await ctx.tick().repeat(mac.latency)
            got_acc.append(ctx.get(mac.acc))
            got_held.append(ctx.get(mac.held))

    sim = Simulator(mac)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got_acc == want_acc
    assert got_held == want_held
    with pytest.raises(HwgenError, match="at least 3 lanes"):
        MacUnit(enc, lanes=2, operand_width=8, acc_width=16, split=True)


@pytest.mark.parametrize("mantissa,exponent", [(1, -3), (1, 2), (181, -8), (99, -7), (255, -12)])
def test_const_scaler(mantissa, exponent):
    scale, in_frac, out_frac = Scale(mantissa, exponent), 5, 6
    rng = np.random.default_rng(mantissa)
    accs = [int(v) for v in rng.integers(-2000, 2000, 40)] + [-2000, 1999, 0, -1, 1]
    want = [int(scaled_term(np.int64(a), scale, in_frac, out_frac)) for a in accs]
    from hwgen.numerics import term_shift

    latency = 1 + tree_depth(bin(mantissa).count("1")) + 1
    sc = ConstScaler(mantissa=mantissa, shift=term_shift(scale, in_frac, out_frac), in_width=12,
                     out_width=40, latency=latency)
    got = []

    async def bench(ctx):
        for i, a in enumerate(accs + [0] * latency):
            ctx.set(sc.acc, a)
            await ctx.tick()
            if i >= latency - 1 and len(got) < len(accs):
                got.append(ctx.get(sc.term))

    sim = Simulator(sc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want


@pytest.mark.parametrize("a_width,b_width", [(1, 4), (6, 9), (9, 13)])
def test_pipelined_mul(a_width, b_width):
    rng = np.random.default_rng(a_width)
    a = [int(v) for v in rng.integers(0, 1 << a_width, 30)] + [(1 << a_width) - 1, 0]
    lo, hi = -(1 << (b_width - 1)), (1 << (b_width - 1)) - 1
    b = [int(v) for v in rng.integers(lo, hi + 1, 30)] + [lo, hi]
    mul = PipelinedMul(a_width=a_width, b_width=b_width)
    got = []

    async def bench(ctx):
        for i in range(len(a) + mul.latency):
            if i < len(a):
                ctx.set(mul.a, a[i])
                ctx.set(mul.b, b[i])
            await ctx.tick()
            if i >= mul.latency - 1 and len(got) < len(a):
                got.append(ctx.get(mul.p))

    sim = Simulator(mul)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [x * y for x, y in zip(a, b, strict=True)]


def test_activation_table_saturates():
    model = build("lstm", "ternary")
    f = model.formats
    table = ActivationTable(model.sigmoid_table, index_width=f.sigmoid_in_width, z_width=14,
                            ports=2)
    zs = [-8191, -600, -513, -512, -1, 0, 1, 510, 511, 512, 8191]
    got = []

    async def bench(ctx):
        for z in zs:
            ctx.set(table.z[0], z)
            ctx.set(table.z[1], -z)
            for _ in range(table.LATENCY):  # the entries arrive LATENCY cycles later
                await ctx.tick()
            got.append((ctx.get(table.y[0]), ctx.get(table.y[1])))

    sim = Simulator(table)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    w = f.sigmoid_in_width
    want = [
        (int(model.sigmoid_table[table_index(z, w)]), int(model.sigmoid_table[table_index(-z, w)]))
        for z in zs
    ]
    assert got == want


def test_saturate_matches_clip():
    from amaranth.hdl import Module, Signal, signed

    from hwgen.gateware.arith import saturate

    x = Signal(signed(9))
    y = Signal(signed(6))
    m = Module()
    m.d.comb += y.eq(saturate(x, 6))
    got = {}

    async def bench(ctx):
        for v in range(-256, 256):
            ctx.set(x, v)
            got[v] = ctx.get(y)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == {v: int(np.clip(v, -32, 31)) for v in range(-256, 256)}


def test_weight_words_round_trip():
    enc = WeightEncoding.ternary()
    rng = np.random.default_rng(0)
    codes = _random_codes(enc, rng, (6, 5)).astype(np.uint16)
    q = QuantMatrix(codes, enc, Scale(1, 0))
    order = [3, 0, 1, 5, 2, 4]
    words = weight_words(q, 2, order)
    assert len(words) == 6 * 3
    back = unpack_codes(np.array(words, dtype=object).reshape(6, 3), 2, 2)
    np.testing.assert_array_equal(back[:, :5], codes[order])
    np.testing.assert_array_equal(back[:, 5:], 0)


def test_schedule_formula():
    model = build("lstm", "ternary", layers=2, tokens=True)
    s = schedule(model, 4)
    G, H, outs = 4, 6, 3
    assert s.layer_issue == (G * H * (1 + 2), G * H * (2 + 2))
    assert s.head_issue == outs * 2
    assert s.macs == G * H * (4 + H) + G * H * (H + H) + outs * H
    # Token input: the transfer and two cycles of embedding read; the head drain overlaps the
    # next timestep, so it counts in the latency only.
    assert s.cycles_per_timestep == 3 + sum(s.layer_issue) + 2 * s.layer_gap + s.head_issue
    assert s.latency == s.cycles_per_timestep + ISSUE_DELAY + s.head_drain
    assert s.ideal_cycles == -(-s.macs // 4)


def test_check_lanes_errors():
    model = build("gru", "ternary")
    assert check_lanes(model, 6) == 6
    with pytest.raises(HwgenError, match=r"^Lane count must be a positive integer, not 0$"):
        check_lanes(model, 0)
    with pytest.raises(HwgenError, match=r"^Lane count must be a positive integer, not True$"):
        check_lanes(model, True)
    with pytest.raises(HwgenError, match=r"^Lane count must be a positive integer, not 2.0$"):
        check_lanes(model, 2.0)
    with pytest.raises(
        HwgenError,
        match=r"^Lane count 7 exceeds the widest matrix row of this model \(6 weights\); "
        r"use at most 6 lanes$",
    ):
        check_lanes(model, 7)


def test_constructor_errors():
    enc = WeightEncoding.ternary()
    with pytest.raises(HwgenError, match=r"^Encoding must be a WeightEncoding, not 'ternary'$"):
        MacUnit("ternary", lanes=4, operand_width=8, acc_width=16)
    with pytest.raises(HwgenError, match=r"^Lane count must be a positive integer, not 0$"):
        MacUnit(enc, lanes=0, operand_width=8, acc_width=16)
    with pytest.raises(HwgenError, match=r"^Operand width must be a positive integer, not -1$"):
        MacUnit(enc, lanes=4, operand_width=-1, acc_width=16)
    with pytest.raises(HwgenError, match=r"^Scaler latency must be at least 3, not 2$"):
        ConstScaler(mantissa=7, shift=0, in_width=8, out_width=12, latency=2)
    with pytest.raises(HwgenError, match=r"^Scale mantissa must be a positive integer, not 0$"):
        ConstScaler(mantissa=0, shift=0, in_width=8, out_width=12, latency=2)
    with pytest.raises(HwgenError, match=r"^Operand b width must be a positive integer, not 0$"):
        PipelinedMul(a_width=8, b_width=0)
    with pytest.raises(HwgenError, match=r"^a ROM needs at least one word$"):
        Rom([], 8)
    with pytest.raises(HwgenError, match=r"^ROM words must be non-negative and fit 4 bits$"):
        Rom([16], 4)
    with pytest.raises(
        HwgenError, match=r"^an activation table with 3 index bits has 8 entries, not \(4,\)$"
    ):
        ActivationTable([0, 1, 2, 3], index_width=3, z_width=8)
    with pytest.raises(HwgenError, match=r"^Model must be a hwgen Model, not None$"):
        Accelerator(None, 1)
    model = build("rnn", "ternary")
    with pytest.raises(HwgenError, match=r"^Lane count must be a positive integer, not -2$"):
        Accelerator(model, -2)


def test_accelerator_properties():
    model = build("gru", "ternary", layers=2)
    accel = Accelerator(model, 3)
    assert accel.lanes == 3 and accel.model is model
    assert accel.schedule == schedule(model, 3)
    assert len(accel.plan.biases) == 2 * (3 * 6 + 6) + 3
    assert sorted(accel.plan.matrices) == [0, 1, 2, 3, 5]


def test_modes_are_enums_equal_to_their_strings():
    """`plan.StateMode` / `WeightMode` / `packing.SparseMode`: the plan holds members, every
    string the options accept still compares equal, and the manifest's JSON is unchanged."""
    import json

    from hwgen.gateware.plan import (
        SPARSE_MODES,
        STATE_MODES,
        WEIGHT_MODES,
        SparseMode,
        StateMode,
        WeightMode,
        make_plan,
    )

    assert (STATE_MODES, WEIGHT_MODES, SPARSE_MODES) == (
        ("auto", "registers", "ram"), ("rom", "ram", "spram"), ("auto", "on", "off"))
    assert all(type(v) is str for v in STATE_MODES + WEIGHT_MODES + SPARSE_MODES)
    plan = make_plan(build("gru", "ternary"), 3, "auto", "spram", "off")
    assert plan.state_option is StateMode.AUTO and plan.weights is WeightMode.SPRAM
    assert plan.weights == "spram" and plan.loadable and SparseMode("off") == "off"
    got = json.loads(json.dumps(plan.to_json()))
    assert (got["state_option"], got["weights"]) == ("auto", "spram")
    with pytest.raises(HwgenError, match=r"^Weight storage must be one of rom, ram, spram, "
                                         r"not 'flash'$"):
        make_plan(build("gru", "ternary"), 3, weights="flash")
