"""Arithmetic proofs of the gateware components, for every input their widths allow.

Each proof is one small function returning a `Property` whose harness instantiates the component
(imported from hwgen.gateware, unmodified), feeds it free inputs (``AnySeq``), delays the inputs by
the component's latency and asserts that the output equals the reference from hwgen.numerics.
Where a numerics function is plain integer arithmetic (`numerics.scaled_term`, `align`,
`round_shift`) it is applied to the Amaranth values themselves, so the reference *is* the golden
model's code; ``np.clip`` (`numerics.saturate`, `table_index`) is transcribed as `_clip`.

Adding a component: write ``prove_<name>(...) -> Property`` like the ones below and list it in
`component_properties`. The components' datapath registers have no reset (the core gates data
with valid flags), so the harnesses' reference delay lines have none either, and each assertion
holds once the pipeline has filled (`_after`: ``latency`` cycles from power-up, whatever the
resets); k is the latency + 1 (after that many cycles the pipeline holds only values it
computed).
"""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Const,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
    unsigned,
)
from amaranth.lib import wiring

from .. import numerics
from ..gateware import activation, arith, mac, mult, scale
from ..gateware.packing import SEL_ZERO, lane_base, lane_bits, lane_code_bits
from ..gateware.schedule import mac_unit_latency, product_latency
from ..numerics import derive_widths, scaled_term, signed_width, term_shift
from ..spec import CellKind, EncodingKind, HwgenError, Model, Scale, WeightEncoding
from .runner import Property

__all__ = [
    "prove_mult",
    "prove_scaler",
    "prove_table",
    "prove_round_shift",
    "prove_saturate",
    "prove_sum_tree",
    "prove_mac",
    "component_properties",
    "MULT_PROOF_BITS",
]


MULT_PROOF_BITS = 40  # a_width * b_width of the largest multiplier proof component_properties runs


def _clip(x: Value, lo: int, hi: int) -> Value:
    """np.clip(x, lo, hi) on an Amaranth value (exact: no width is lost)."""
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def _delay(m: Module, value: Value, cycles: int, name: str) -> Value:
    """``value`` ``cycles`` cycles ago, through reset-less registers (like the datapath's)."""
    for i in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_{i}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _after(m: Module, cycles: int, check) -> None:
    """Add ``check`` (an Assert) once ``cycles`` cycles have passed since power-up (a reset-less
    saturating counter: resets do not empty a reset-less pipeline)."""
    filled = Signal(range(cycles + 1), name="filled", reset_less=True)
    with m.If(filled < cycles):
        m.d.sync += filled.eq(filled + 1)
    with m.If(filled == cycles):
        m.d.comb += check


class _Harness(wiring.Component):
    """A top with no ports calling ``body(m)`` (keeps each proof a plain function)."""

    def __init__(self, body):
        self._body = body
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        self._body(m)
        return m


def prove_mult(a_width: int, b_width: int) -> Property:
    """`PipelinedMul` (``a`` unsigned, ``b`` signed): ``p == a * b`` exactly, ``latency`` cycles
    later, for every a and b."""

    def body(m):
        m.submodules.dut = dut = mult.PipelinedMul(a_width=a_width, b_width=b_width)
        a, b = AnySeq(unsigned(a_width)), AnySeq(signed(b_width))
        m.d.comb += [dut.a.eq(a), dut.b.eq(b)]
        lat = dut.latency
        ref = _delay(m, a, lat, "a") * _delay(m, b, lat, "b")
        _after(m, lat, Assert(dut.p == ref, "mult: p != a * b"))

    lat = product_latency(a_width)  # PipelinedMul.latency
    return Property(
        f"mult.u{a_width}xs{b_width}",
        f"PipelinedMul: p = a * b for every u{a_width} a and s{b_width} b",
        "prove",
        lat + 1,
        lambda: _Harness(body),
    )


def prove_scaler(
    mantissa: int,
    shift: int,
    in_frac: int,
    out_frac: int,
    acc_bound: int,
    *,
    out_width: int | None = None,
    label: str = "",
) -> Property:
    """`ConstScaler`: ``term == numerics.scaled_term(acc, Scale(mantissa, e), in_frac,
    out_frac)`` for every ``|acc| <= acc_bound`` (the bound numerics derives), ``shift`` being
    `numerics.term_shift` of that scale. ``out_width`` defaults to the width of the largest
    result (numerics.signed_width): the proof shows that width cannot overflow. The scale's
    exponent is recovered from ``shift``."""
    sc = Scale(mantissa, shift + in_frac - out_frac)
    in_width = signed_width(acc_bound)
    bound = max(abs(int(scaled_term(v, sc, in_frac, out_frac))) for v in (acc_bound, -acc_bound))
    out_w = signed_width(bound) if out_width is None else out_width
    latency = 1 + (bin(mantissa).count("1") - 1).bit_length()

    def body(m):
        m.submodules.dut = dut = scale.ConstScaler(mantissa=mantissa, shift=shift,
                                                   in_width=in_width, out_width=out_w,
                                                   latency=latency)
        acc = AnySeq(signed(in_width))
        m.d.comb += [dut.acc.eq(acc), Assume((acc >= -acc_bound) & (acc <= acc_bound))]
        ref = scaled_term(_delay(m, acc, latency, "acc"), sc, in_frac, out_frac)
        _after(m, latency, Assert(dut.term == ref, "scale: term != numerics.scaled_term(acc)"))

    name = label or f"m{mantissa}_k{shift}_b{acc_bound}"
    return Property(
        f"scale.{name}",
        f"ConstScaler x{mantissa} shift {shift:+d}: term = scaled_term(acc), |acc| <= "
        f"{acc_bound}, s{out_w} out",
        "prove",
        latency + 1,
        lambda: _Harness(body),
    )


def prove_table(table, index_width: int, z_width: int, *, label: str = "table") -> Property:
    """`ActivationTable`: ``y == table[numerics.table_index(z, index_width)]`` ``LATENCY``
    cycles after ``z``, for every signed ``z_width``-bit z."""
    entries = [int(v) for v in table]
    if len(entries) != 1 << index_width:
        raise HwgenError(f"a table of {index_width} index bits has {1 << index_width} entries")

    def body(m):
        m.submodules.dut = dut = activation.ActivationTable(entries, index_width=index_width,
                                                            z_width=z_width)
        z = AnySeq(signed(z_width))
        m.d.comb += dut.z[0].eq(z)
        lat = dut.LATENCY
        z1 = _delay(m, z, lat, "z")
        half = 1 << (index_width - 1)
        index = _clip(z1, -half, half - 1) + half  # numerics.table_index
        rom = Array(Const(v, dut.value_shape) for v in entries)
        _after(m, lat, Assert(dut.y[0] == rom[index], "table: y != table[table_index(z)]"))

    return Property(
        f"table.{label}",
        f"ActivationTable: y = table[table_index(z)], {1 << index_width} entries, s{z_width} z",
        "prove",
        activation.ActivationTable.LATENCY + 1,
        lambda: _Harness(body),
        prep="memory_map",
    )


def prove_round_shift(width: int, shifts=(0, 1, 3)) -> Property:
    """`arith.round_shift` and `arith.align` == numerics.round_shift / align, every signed
    ``width``-bit x, each shift in ``shifts`` (align: left and right)."""

    def body(m):
        x = AnySeq(signed(width))
        for s in shifts:
            m.d.comb += Assert(
                arith.round_shift(x, s) == numerics.round_shift(x, s), f"round_shift by {s}"
            )
            m.d.comb += Assert(arith.align(x, s) == numerics.align(x, s), f"align by {s}")
            m.d.comb += Assert(arith.align(x, -s) == numerics.align(x, -s), f"align by {-s}")

    return Property(
        f"arith.round_shift_s{width}",
        f"arith.round_shift / align = numerics, s{width} x, shifts {list(shifts)}",
        "prove",
        1,
        lambda: _Harness(body),
    )


def prove_sum_tree(terms: int, width: int) -> Property:
    """`arith.registered_sum_tree`: the registered binary adder tree (used by the multiplier and
    the scaler) equals the plain sum of its ``terms`` signed ``width``-bit inputs, its latency
    later: no carry dropped at any level, every operand delayed alike."""

    def body(m):
        xs = [AnySeq(signed(width)) for _ in range(terms)]
        total, level = arith.registered_sum_tree(m, list(xs), "t")
        ref = sum(_delay(m, x, level, f"x{i}") for i, x in enumerate(xs))
        _after(m, level, Assert(total == ref, "sum tree: output != plain sum"))

    depth = max(1, (terms - 1).bit_length())
    return Property(
        f"arith.sum_tree_{terms}xs{width}",
        f"arith.registered_sum_tree of {terms} s{width} terms = their plain sum",
        "prove",
        depth + 1,
        lambda: _Harness(body),
    )


def prove_mac(encoding: WeightEncoding, lanes: int, operand_width: int, words: int, *,
              acc_width: int | None = None, label: str = "", sparse: bool = False) -> Property:
    """`MacUnit`: for every sequence of valid code words (every legal code of ``encoding``) and
    signed ``operand_width``-bit operands, with ``first`` starting a sum and at most ``words``
    words per sum, ``acc`` equals the plain dot product sum_k level(code_k) * x_k accumulated
    over the sum's words, ``latency`` cycles after each word; stalls (``valid`` low) anywhere.
    ``acc_width`` defaults to the width of the largest sum (numerics.signed_width of words x
    lanes x max |level| x 2**(operand_width - 1), the bound `numerics` derives per matrix): the
    proof shows that width neither overflows nor loses a carry of the one's-complement lanes.
    Multiplier and shift lanes: the level is asserted to be the code read as signed (or
    +-2**(e - 1)), the product is the HDL's ``*`` (``<<``) of the lane's signals (`_mac_word`).

    ``sparse``: the sparse-core unit (`hwgen.gateware.packing`): 2P operands and P lane fields
    (``sel``, code); the reference, written from the format's definition, multiplies lane k's
    level by operand ``lane_base(k) + sel`` (zero for ``sel = SEL_ZERO``; a 2-bit ternary-like
    code is its sign: +1 or -1)."""
    levels = [int(encoding.decode([c])[0]) if encoding.valid_codes([c])[0] else 0
              for c in range(1 << encoding.bits)]
    legal = [bool(encoding.valid_codes([c])[0]) for c in range(1 << encoding.bits)]
    per_word = lanes * max(abs(v) for v in levels) * (1 << (operand_width - 1))
    bound = words * per_word
    width = signed_width(bound) if acc_width is None else acc_width
    b = encoding.bits
    latency = mac_unit_latency(lanes, sparse)

    def body(m):
        m.submodules.dut = dut = mac.MacUnit(encoding, lanes=lanes, operand_width=operand_width,
                                             acc_width=width, sparse=sparse)
        valid, first = AnySeq(1), AnySeq(1)
        field = lane_bits(encoding) if sparse else b
        codes = AnySeq(lanes * field)
        xs = [AnySeq(signed(operand_width)) for _ in range(2 * lanes if sparse else lanes)]
        m.d.comb += [dut.valid.eq(valid), dut.first.eq(first), dut.codes.eq(codes)]
        m.d.comb += [dut.operands[k].eq(x) for k, x in enumerate(xs)]
        dot = _mac_word(m, encoding, lanes, codes, xs, levels, legal, sparse)
        # The reference accumulator, fed the same words ``latency`` cycles late (valid and first
        # through registers with a reset, like the DUT's control).
        v_d, f_d, dot_d = valid, first, dot
        for i in range(latency - 1):
            v, f = Signal(name=f"v_{i}"), Signal(name=f"f_{i}")
            d = Signal(signed(signed_width(per_word) + 1), name=f"dot_{i}", reset_less=True)
            m.d.sync += [v.eq(v_d), f.eq(f_d), d.eq(dot_d)]
            m.d.comb += Assert((d >= -per_word) & (d <= per_word), "mac: |word| <= its bound")
            v_d, f_d, dot_d = v, f, d
        ref = Signal(signed(signed_width(bound) + 2), name="ref", reset_less=True)
        count = Signal(range(words + 1), name="count", reset_less=True)  # words in ``ref``
        with m.If(v_d):
            m.d.sync += [ref.eq(Mux(f_d, 0, ref) + dot_d), count.eq(Mux(f_d, 1, count + 1))]
        # at most ``words`` words per sum (counted where they enter the reference)
        m.d.comb += Assume(~v_d | f_d | (count < words))
        # Arithmetic under no reset: a reset drops the words in flight (the control chain has a
        # reset, the datapath none), which the interface proofs and simulations cover.
        m.d.comb += Assume(~ResetSignal())
        # Checked once a sum has begun (power-up leaves reset-less registers holding anything).
        started = Signal(name="started", reset_less=True)
        with m.If(v_d & f_d):
            m.d.sync += started.eq(1)
        with m.If(started):
            m.d.comb += [
                Assert(dut.acc == ref, "mac: acc != the plain dot product"),
                # the invariant that makes the induction close: the sum so far is bounded
                Assert((count >= 1) & (ref >= -per_word * count) & (ref <= per_word * count),
                       "mac: |sum| <= words x word bound"),
            ]

    name = label or (f"{encoding.describe().split(' ')[0]}_p{lanes}_x{operand_width}_w{words}"
                     f"{'_sparse' if sparse else ''}")
    # k-induction closes except for the sparse unit's shift and multiplier lanes: bounded over
    # every sum of up to ``words`` words (a stall only delays the pipeline: nothing new to a sum)
    mul = not encoding.is_ternary_like and not sparse  # `_primitive_term`
    mode = "prove" if encoding.is_ternary_like or mul else "bmc"
    return Property(
        f"mac.{name}",
        f"MacUnit {encoding.describe()}{' sparse (2:4)' if sparse else ''}, {lanes} lanes, "
        f"s{operand_width} operands, <= {words} "
        f"words per sum: acc = plain dot product, s{width} acc",
        mode, latency + words + 2 if mode == "prove" else latency + 2 * words + 2,
        lambda: _Harness(body), retry_depths=(latency + 2 * words + 4,) if mode == "prove" else (),
        prep="memory_map\nopt_merge" if mul else "",
    )


def _mac_word(m, encoding: WeightEncoding, lanes: int, codes, xs, levels, legal, sparse: bool):
    """The reference value of one MAC word, from the format's definition: the sum over lanes of
    level(code) * operand (sparse: lane k's operand ``lane_base(k) + sel``, zero for
    ``SEL_ZERO``); assumes every code legal."""
    b = encoding.bits
    level = Array(Const(v, signed(max(2, b + 1) + max(abs(v) for v in levels).bit_length()))
                  for v in levels)
    ok = Array(Const(v, 1) for v in legal)
    if not sparse:
        for k in range(lanes):
            m.d.comb += Assume(ok[codes[k * b : (k + 1) * b]])
        if encoding.is_ternary_like:
            return sum(level[codes[k * b : (k + 1) * b]] * x for k, x in enumerate(xs))
        # Multiplier and shift lanes, decomposed: the level is asserted to be the code read as
        # signed (int-N, pow2) or +-2**(e - 1) (exp) for every legal code, and the product is
        # the HDL's ``*`` (``<<``) of the same signals as the lane's, at full width, which the
        # proof's ``opt_merge`` makes one cell: what is proven is the decode, the widths, the
        # negation, the adder tree and the accumulator, with the multiply (shift) a primitive.
        return sum(_primitive_term(m, encoding, level, codes[k * b : (k + 1) * b], x)
                   for k, x in enumerate(xs))
    field = lane_bits(encoding)
    terms = []
    ops = Array(xs)
    for k in range(lanes):
        f = codes[k * field : (k + 1) * field]
        sel, code = f[:2], f[2:]
        if lane_code_bits(encoding) != b:  # the sign of a 2-bit ternary-like code
            lv = Mux(code[0], -1, 1)
        else:
            m.d.comb += Assume(ok[code])
            lv = level[code]
        x = ops[lane_base(k) + sel]
        terms.append(Mux(sel == SEL_ZERO, 0, lv * x))
    return sum(terms)


def _primitive_term(m, encoding: WeightEncoding, level, code, x):
    """``level(code) * x`` through the HDL primitive the lane uses (`_mac_word`)."""
    if encoding.kind is not EncodingKind.EXP:
        m.d.comb += Assert(level[code] == code.as_signed(), "mac: level(code) = signed code")
        return x * code.as_signed()
    field = encoding.bits - 1
    e, neg = code[:field], code[field]
    amount = (e - 1)[:field]
    power = Mux(e == 0, 0, Mux(neg, -(Const(1, 2) << amount), Const(1, 2) << amount))
    m.d.comb += Assert(level[code] == power, "mac: level(code) = +-2**(e - 1)")
    mag = x << amount
    return Mux(e == 0, 0, Mux(neg, -mag, mag))


def prove_saturate(width: int, to_widths=(1, 2, 4)) -> Property:
    """`arith.saturate(x, w)` == numerics.saturate(x, FixedFormat(w)) (clip to the signed
    w-bit range) and `arith.clamp` == clip, every signed ``width``-bit x."""

    def body(m):
        x = AnySeq(signed(width))
        for w in to_widths:
            lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
            m.d.comb += Assert(arith.saturate(x, w) == _clip(x, lo, hi), f"saturate to {w}")
            m.d.comb += Assert(arith.clamp(x, lo, hi) == _clip(x, lo, hi), f"clamp to {w}")

    return Property(
        f"arith.saturate_s{width}",
        f"arith.saturate / clamp = clip, s{width} x to widths {list(to_widths)}",
        "prove",
        1,
        lambda: _Harness(body),
    )


def component_properties(model: Model) -> list[Property]:
    """The component proofs at the sizes ``model`` uses: one scaler per distinct matrix scaling
    (with its derived accumulator bound), the sigmoid / tanh tables at the widest pre-activation,
    the gate multiplier (GRU / LSTM; end to end with ``b`` narrowed, its adder tree at full
    width), and the rounding and saturation helpers at the gate width; the MAC unit of every
    weight encoding, except for a delta model (the delta core has none)."""
    if not isinstance(model, Model):
        raise HwgenError(f"Model must be a hwgen Model, not {model!r}")
    f, w = model.formats, derive_widths(model)
    props: dict[str, Property] = {}

    def add(p: Property):
        props.setdefault(p.name, p)

    for i, (layer, lw) in enumerate(zip(model.layers, w.layers, strict=True)):
        in_frac = model.layer_input_format(i).frac
        for part, q, bound, frac in (
            ("wx", layer.wx, lw.acc_x_bound, in_frac),
            ("wh", layer.wh, lw.acc_h_bound, f.state.frac),
        ):
            if bound:
                k = term_shift(q.scale, frac, f.gate_frac)
                add(
                    prove_scaler(
                        q.scale.mantissa, k, frac, f.gate_frac, bound, label=f"layer{i}_{part}"
                    )
                )
    hq = model.head.w
    if w.head_acc_bound:
        k = term_shift(hq.scale, f.state.frac, f.output_frac)
        add(
            prove_scaler(
                hq.scale.mantissa, k, f.state.frac, f.output_frac, w.head_acc_bound, label="head"
            )
        )
    # The MAC unit of every weight encoding (2 lanes, sums of 3 words). Add / subtract lanes
    # with operands narrowed to 4 bits for the solver (their logic does not depend on the
    # width); shift and multiplier lanes at the core's operand width, the shift or multiply
    # shared with the reference (`_mac_word`).
    # (A delta core has no MAC unit: its column updates multiply one delta per lane.)
    encodings = {q.encoding for _, q in model.matrices()} if model.delta is None else set()
    operand_width = max(f.input.width, f.state.width)  # `plan.Plan.operand_width`
    for enc in sorted(encodings, key=lambda e: (e.kind.value, e.bits)):
        add(prove_mac(enc, 2, 4 if enc.is_ternary_like else operand_width, 3))
    gate_width = max(lw.gate_width for lw in w.layers)
    if model.cell is not CellKind.RNN:
        add(prove_table(model.sigmoid_table, f.sigmoid_in_width, gate_width, label="sigmoid"))
        # The multiplier's adder tree is shaped by the width of a (the sigmoid code); b only
        # widens its adders. Multiplier equivalence is hard for SAT (u7 x s8 takes ~1 min, u9 x
        # s9 more than 5): b is narrowed to keep a_width * b_width <= MULT_PROOF_BITS.
        a_width = int(max(model.sigmoid_table)).bit_length()
        b_width = f.state.width + 1
        add(prove_mult(a_width, min(b_width, max(3, MULT_PROOF_BITS // a_width))))
        # ... and its adder tree alone at full width (free terms are easy for the solver)
        add(prove_sum_tree(a_width, a_width + b_width))
    add(prove_table(model.tanh_table, f.tanh_in_width, gate_width, label="tanh"))
    add(prove_round_shift(gate_width))
    add(prove_saturate(gate_width, (f.sigmoid_in_width, f.tanh_in_width)))
    return list(props.values())
