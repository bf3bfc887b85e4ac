"""P-lane multiply-accumulate unit for one weight encoding (DATAPATH.md).

Lanes by encoding:

- ternary-like (binary, ternary, 2-bit pow2): add, subtract or skip. A negative term is the one's
  complement ``~x`` plus a carry bit; each adder-tree node adds one pending carry as its carry-in,
  the last one enters the accumulator. No multiplier.
- exponential: sign and a barrel shift ``x << (e - 1)`` (e = 0 is a zero weight), negated the same
  way. No multiplier.
- int-N and multi-bit pow2: a real (registered) multiplier, the baseline.

Products are registered, then every level of a binary adder tree, then the accumulator.

A sparse MAC unit (``sparse=True``, zero skipping: `packing`) has 2P operands and P lane fields
(a selector and a code), both registered at its inputs (the routes from the RAM blocks then end
in flip-flops); each lane's operand is then selected (3:1 multiplexer and zero gate) and
registered before its product: two cycles more latency than a dense unit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec import EncodingKind, HwgenError, WeightEncoding, check_positive_int
from .packing import SEL_ZERO, lane_base, lane_bits, lane_code_bits
from .schedule import SPARSE_MAC_STAGES, mac_unit_latency, tree_depth

__all__ = ["MacUnit"]


class MacUnit(wiring.Component):
    """Dot-product accumulator: each valid cycle, ``acc (+)= sum_k level(code_k) * operands[k]``.

    Parameters (all but ``encoding`` keyword-only)
    ----------
    encoding : WeightEncoding of every code word.
    lanes : codes (and operands) per cycle, P.
    operand_width : signed width of every operand.
    acc_width : accumulator width; the exact dot product must fit (it wraps modulo 2**acc_width,
        so intermediate sums may not, and the result is still exact).
    split : build the paired-word path (needs ``lanes >= 3``): a word presented with ``split``
        high adds only lanes ``[0, s)`` (s = `schedule.tree_split`) to ``acc``; the sum of lanes
        ``[s, lanes)`` goes to ``held`` instead, which keeps it until the next split word.
    sparse : the sparse-core lanes (`packing`, even ``lanes``): ``operands`` has 2P values, and
        ``codes`` holds P lane fields of `packing.lane_bits` (selector, code).

    Members
    -------
    valid, first : In(1). A cycle with ``valid`` adds one word; ``first`` starts a new sum.
    split : In(1), with ``split=True`` only: this word is a pair (see above).
    held : Out(signed(acc_width)), with ``split=True`` only: the right half of the last split
        word, readable from ``latency`` cycles after it was presented.
    codes : In(lanes * encoding.bits), packed by spec.pack_codes (code k at bits k*bits); sparse:
        In(lanes * packing.lane_bits(encoding)).
    operands : In(ArrayLayout(signed(operand_width), lanes)) (sparse: 2 * lanes); an unused lane
        must be zero (sparse: an unused operand is never selected, or must be zero).
    acc : Out(signed(acc_width)); reflects a word ``latency`` cycles after it was presented.
    """

    def __init__(self, encoding: WeightEncoding, *, lanes: int, operand_width: int,
                 acc_width: int, split: bool = False, sparse: bool = False):
        if not isinstance(encoding, WeightEncoding):
            raise HwgenError(f"Encoding must be a WeightEncoding, not {encoding!r}")
        self._encoding = encoding
        self._lanes = lanes = check_positive_int("Lane count", lanes)
        self._operand_width = check_positive_int("Operand width", operand_width)
        self._acc_width = check_positive_int("Accumulator width", acc_width)
        self._split = bool(split)
        self._sparse = bool(sparse)
        if self._split and tree_depth(lanes) < 2:
            raise HwgenError(f"a MAC unit with paired words needs at least 3 lanes, not {lanes}")
        if self._sparse and lanes % 2:
            raise HwgenError(f"a sparse MAC unit needs an even lane count, not {lanes}")
        field = lane_bits(encoding) if self._sparse else encoding.bits
        members = {
            "valid": In(1),
            "first": In(1),
            "codes": In(lanes * field),
            "operands": In(data.ArrayLayout(signed(operand_width),
                                            2 * lanes if self._sparse else lanes)),
            "acc": Out(signed(acc_width)),
        }
        if self._split:
            members.update(split=In(1), held=Out(signed(acc_width)))
        super().__init__(members)

    @property
    def _stages(self) -> int:
        """Stages before the products: `schedule.SPARSE_MAC_STAGES` in a sparse unit, else 0."""
        return SPARSE_MAC_STAGES if self._sparse else 0

    @property
    def latency(self) -> int:
        """Cycles from a word on the inputs to ``acc`` including it
        (`schedule.mac_unit_latency`)."""
        return mac_unit_latency(self._lanes, self._sparse)

    def _select(self, m: Module, k: int):
        """Sparse lane ``k``: its operand (span column ``lane_base(k) + sel``, or zero) and its
        code (a 2-bit ternary-like code rebuilt from the sign: 01 / 11; the zero operand makes a
        zero weight), both registered."""
        enc, ow = self._encoding, self._operand_width
        lb, cb = lane_bits(enc), lane_code_bits(enc)
        field = self._codes_in[k * lb : (k + 1) * lb]
        sel, bits = field[:2], field[2:]
        base = lane_base(k)
        x = Signal(signed(ow), name=f"opsel{k}", reset_less=True)
        code = Signal(enc.bits, name=f"code{k}", reset_less=True)
        with m.Switch(sel):
            for i in range(3):
                with m.Case(i):
                    m.d.sync += x.eq(self._operands_in[base + i])
            with m.Case(SEL_ZERO):
                m.d.sync += x.eq(0)
        m.d.sync += code.eq(Cat(Const(1, 1), bits) if cb != enc.bits else bits)
        return code, x

    def _lane(self, m: Module, k: int):
        enc, b, ow = self._encoding, self._encoding.bits, self._operand_width
        if self._sparse:
            code, x = self._select(m, k)
        else:
            code, x = self.codes[k * b : (k + 1) * b], self.operands[k]
        if enc.kind is EncodingKind.EXP:
            field = b - 1
            e, neg = code[:field], code[field]
            nz = e != 0
            mag = (x << (e - 1)[:field])[: ow + enc.exponents - 1].as_signed()
            val = Signal(signed(ow + enc.exponents - 1), name=f"prod{k}", reset_less=True)
            carry = Signal(name=f"carry{k}", reset_less=True)
            m.d.sync += [val.eq(Mux(nz, Mux(neg, ~mag, mag), 0)), carry.eq(nz & neg)]
            return val, carry
        if enc.is_ternary_like:
            if enc.kind is EncodingKind.BINARY:
                nz, neg = Const(1), ~code[0]
            else:  # ternary or 2-bit pow2: two's complement 01 = +1, 11 = -1, 00 = 0
                nz, neg = code[0], code[b - 1]
            val = Signal(signed(ow), name=f"prod{k}", reset_less=True)
            carry = Signal(name=f"carry{k}", reset_less=True)
            m.d.sync += [val.eq(Mux(nz, Mux(neg, ~x, x), 0)), carry.eq(nz & neg)]
            return val, carry
        val = Signal(signed(ow + b), name=f"prod{k}", reset_less=True)
        m.d.sync += val.eq(x * code.as_signed())
        return val, Const(0, 1)

    def _split_flags(self, m: Module) -> list:
        """``split`` delayed by 0 .. D cycles, D + 2 in a sparse unit (index i: aligned with data
        i cycles after the inputs; tree level l adds data ``l + 1`` cycles after the inputs,
        ``l + 3`` in a sparse unit: its input registers and the selection come first)."""
        flags = [self.split]
        for i in range(tree_depth(self._lanes) + self._stages):
            f = Signal(name=f"split_d{i}", reset_less=True)
            m.d.sync += f.eq(flags[-1])
            flags.append(f)
        return flags

    def _hold(self, m: Module, flag, v, c, value, carry) -> None:
        """The root's right child ``(v, c)`` takes ``value + carry``, or zero in a split word,
        whose right half-sum is kept in ``held`` instead (a synchronous reset on the tree
        register, an enabled copy beside it, then one adder into ``held``)."""
        hv = Signal.like(v, name="hold_v", reset_less=True)
        hc = Signal(name="hold_c", reset_less=True)
        m.d.sync += [v.eq(Mux(flag, 0, value)), c.eq(Mux(flag, 0, carry))]
        with m.If(flag):
            m.d.sync += [hv.eq(value), hc.eq(carry)]
        held = Signal.like(self.held, name="held_reg", reset_less=True)
        m.d.sync += held.eq(hv + hc)
        m.d.comb += self.held.eq(held)

    def elaborate(self, platform):
        m = Module()
        if self._sparse:  # the input registers
            self._codes_in = Signal.like(self.codes, name="codes_in", reset_less=True)
            self._operands_in = [Signal(signed(self._operand_width), name=f"op_in{k}",
                                        reset_less=True) for k in range(2 * self._lanes)]
            m.d.sync += self._codes_in.eq(self.codes)
            m.d.sync += [r.eq(self.operands[k]) for k, r in enumerate(self._operands_in)]
        nodes = [self._lane(m, k) for k in range(self._lanes)]
        flags = self._split_flags(m) if self._split else None
        lag = 1 + self._stages  # cycles from the inputs to the products tree level 0 adds
        level = 0
        while len(nodes) > 1:
            # With ``split``: the level that makes the root's two children builds its right one
            # (lanes [tree_split, P)) through `_hold`.
            right = self._split and len(nodes) in (3, 4)
            nxt = []
            for i in range(0, len(nodes) - 1, 2):
                (vl, cl), (vr, cr) = nodes[i], nodes[i + 1]
                w = max(vl.shape().width, vr.shape().width) + 1
                v = Signal(signed(w), name=f"t{level}_{i // 2}_v", reset_less=True)
                c = Signal(name=f"t{level}_{i // 2}_c", reset_less=True)
                if right and i == 2:
                    self._hold(m, flags[level + lag], v, c, vl + vr + cl, cr)
                else:
                    m.d.sync += [v.eq(vl + vr + cl), c.eq(cr)]
                nxt.append((v, c))
            if len(nodes) % 2:
                vl, cl = nodes[-1]
                v = Signal(vl.shape(), name=f"t{level}_pass_v", reset_less=True)
                c = Signal(name=f"t{level}_pass_c", reset_less=True)
                if right:
                    self._hold(m, flags[level + lag], v, c, vl, cl)
                else:
                    m.d.sync += [v.eq(vl), c.eq(cl)]
                nxt.append((v, c))
            nodes = nxt
            level += 1
        root_v, root_c = nodes[0]

        # valid / first travel alongside: one cycle for products (and one for a sparse unit's
        # operand selection), one per tree level.
        valid, first = self.valid, self.first
        for i in range(self.latency - 1):
            v, f = Signal(name=f"valid_d{i}"), Signal(name=f"first_d{i}", reset_less=True)
            m.d.sync += [v.eq(valid), f.eq(first)]
            valid, first = v, f
        acc = Signal.like(self.acc, name="acc_reg", reset_less=True)
        m.d.comb += self.acc.eq(acc)
        with m.If(valid):
            m.d.sync += acc.eq(Mux(first, 0, acc) + root_v + root_c)
        return m
