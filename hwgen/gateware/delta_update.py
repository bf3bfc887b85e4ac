"""The column update of the planned delta core (docs/delta.md, issue 23): M += W[:, j] * d.

One delta memory M of ``rows`` accumulators, P per word (R = ceil(rows / P) words), and the
weight columns of one matrix stored column-major (word ``j * R + k`` holds the codes of rows
``k*P .. k*P + P-1`` of column j, in ``row_order``). Each processed column (``i_stream``: column,
delta) takes R cycles, one word per cycle: read M word k and weight word k (an asynchronous read
and a register, as the state stores), register both words again, then lane i writes ``M_i +
level(w_i) * d`` back: a word read at cycle r is written at r + 2, so no path runs from a block
RAM's output through the adder into the delta memory. With R <= 2 the next column reads a word
before its last two writes have landed: those are forwarded (the forwarding is left out for R >=
3, where a word is read again R cycles later). No adder tree: one
product per lane per cycle (ternary / binary: d, -d or 0; exp: a shift of d; pow2 / int: a
multiplier).

Widths: M lanes are ``acc_width`` bits and wrap; `hwgen.delta.golden` shows M = levels(W) x_hat
stays within the dense accumulator bound after every update, so with the dense width M is exact.
Lanes past ``rows`` (padding of the last word) hold don't-care values.

Contract: ``clear`` (R cycles of zeros, a start of sequence) only while idle (``busy`` low, no
token offered; ``busy`` covers the writes still in the pipeline); ``rdata`` (the cell pass's
port: the word at ``raddr`` one cycle later, read through the update's own registered read port)
only with ``raddr`` given while idle. An ``end`` token (the encoder's end marker) raises ``done``
for one cycle, two cycles after its transfer: the last column's last write lands at the end of
that cycle, so reads that see every column are addressed from the cycle after ``done`` on (the
cell pass's and the head readout's first reads are).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import EncodingKind, HwgenError, QuantMatrix, check_positive_int, pack_codes
from .delta_weights import read_port

__all__ = ["DeltaColumnUpdate", "column_words", "advance_word_lane"]


def advance_word_lane(m: Module, word: Signal, lane: Signal, lanes: int) -> None:
    """Within the caller's condition: step the position ``word * lanes + lane`` by one (the lane
    wraps into the next word), as the readers of P-value memory words count."""
    with m.If(lane == lanes - 1):
        m.d.sync += [lane.eq(0), word.eq(word + 1)]
    with m.Else():
        m.d.sync += lane.eq(lane + 1)


def column_words(matrix: QuantMatrix, lanes: int, row_order=None) -> np.ndarray:
    """The weight memory's words: column j's R words at ``j*R .. j*R + R-1``, word k the codes of
    rows ``row_order[k*P:(k+1)*P]`` (padding lanes: code 0)."""
    rows, cols = matrix.shape
    order = np.arange(rows) if row_order is None else np.asarray(row_order)
    if sorted(order.tolist()) != list(range(rows)):
        raise HwgenError(f"row order must be a permutation of the {rows} rows")
    R = -(-rows // lanes)
    codes = np.zeros((cols, R * lanes), np.int64)
    codes[:, :rows] = matrix.codes[order].T
    return pack_codes(codes, matrix.encoding.bits, lanes).reshape(-1)


class DeltaColumnUpdate(wiring.Component):
    """Column-wise update of one delta memory (module docstring).

    Parameters (keyword-only)
    ----------
    matrix : QuantMatrix whose columns are applied (rows = memory rows).
    lanes : P, rows updated per cycle.
    delta_width : signed width of a delta.
    acc_width : signed width of an M entry (the dense accumulator width).
    row_order : memory position -> matrix row (default: natural order).
    load : the weight memory's load tap (`delta_weights.LoadBus.tap`, a loadable core), or None
        (default): a ROM of `column_words`.

    Members
    -------
    i_stream : In(stream.Signature(StructLayout{column, delta, end})).
    clear : In(1); busy : Out(1); done : Out(1).
    raddr : In(range(R)); rdata : Out(ArrayLayout(signed(acc_width), lanes)).
    """

    def __init__(self, *, matrix: QuantMatrix, lanes: int, delta_width: int, acc_width: int,
                 row_order=None, load=None):
        if not isinstance(matrix, QuantMatrix):
            raise HwgenError(f"Matrix must be a QuantMatrix, not {matrix!r}")
        self._lanes = check_positive_int("Update lanes", lanes)
        self._dw = check_positive_int("Delta width", delta_width)
        self._aw = check_positive_int("Accumulator width", acc_width)
        self._matrix = matrix
        self._load = load  # delta_weights: the weight memory, ROM (None) or loadable
        self._words = column_words(matrix, lanes, row_order)
        rows, cols = matrix.shape
        self._R = -(-rows // lanes)
        self._cols = cols
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({
                "column": range(max(cols, 2)), "delta": signed(delta_width), "end": 1}))),
            "clear": In(1),
            "busy": Out(1),
            "done": Out(1),
            "raddr": In(range(max(self._R, 2))),
            "rdata": Out(data.ArrayLayout(signed(acc_width), lanes)),
        })

    @property
    def words_per_column(self) -> int:
        return self._R

    def _product(self, m, code, d):
        """level(code) * d for this matrix's encoding, as a signed value."""
        enc = self._matrix.encoding
        k = enc.kind
        if k is EncodingKind.BINARY:
            return Mux(code[0], d, -d)
        if k is EncodingKind.EXP:
            fb = enc.bits - 1
            e, neg = code[:fb], code[fb]
            mag = Signal(signed(self._dw + (1 << fb)), name="exp_mag")
            with m.Switch(e):
                for v in range(1, 1 << fb):
                    with m.Case(v):
                        m.d.comb += mag.eq(d << (v - 1))
                with m.Default():
                    m.d.comb += mag.eq(0)
            return Mux(neg, -mag, mag)
        if k is EncodingKind.TERNARY or (k is EncodingKind.POW2 and enc.bits == 2):
            return Mux(code == 1, d, Mux(code == 3, -d, 0))
        return code.as_signed() * d  # int-N and multi-bit pow2: two's complement levels

    @staticmethod
    def _forward(m, mword, k1, v2, k2, new, m2):
        """S2's old word with R <= 2: the word written in the previous cycle (``p1``) if it is
        this one, else the word written the cycle before (``p2``) if it is, else the read word
        ``m2``. The address compares run in S1 against the writes then in S2 and one back."""
        # data only (they pick the old word, never steer control): no reset, so the core's
        # white-box proof keeps them out of its control key; after a reset they count only
        # from the first word in S1, two cycles on, when p1v is v2's again
        p1v = Signal(name="p1v", reset_less=True)
        p1k = Signal.like(k2, name="p1k", reset_less=True)
        p1, p2 = (Signal(mword, name=n, reset_less=True) for n in ("p1", "p2"))
        f1, f2 = Signal(name="f1", reset_less=True), Signal(name="f2", reset_less=True)
        m.d.sync += [p1v.eq(v2), p1k.eq(k2), p1.eq(new), p2.eq(p1),
                     f1.eq(v2 & (k2 == k1)), f2.eq(p1v & (p1k == k1))]
        base = Signal(mword, name="base")
        m.d.comb += base.eq(Mux(f1, p1, Mux(f2, p2, m2)))
        return base

    def elaborate(self, platform):
        m = Module()
        P, R, aw = self._lanes, self._R, self._aw
        bits = self._matrix.encoding.bits
        mword = data.ArrayLayout(signed(aw), P)
        m.submodules.mem = mem = Memory(shape=mword, depth=R, init=[],
                                        attrs={"no_rw_check": 1})
        wrp = read_port(m, "rom", unsigned(bits * P), [int(w) for w in self._words],
                        self._load)  # delta_weights: the weight ROM, or a loadable RAM
        # one read port, registered, shared by the update (while busy) and the cell pass (while
        # idle, the contract): one block RAM copy on iCE40, whose EBR has one read port (two
        # ports took two copies: 28 of the FSDD GRU core's 46 EBR at 8 lanes, measured)
        rp = mem.read_port()
        wp = mem.write_port()

        busy, k = Signal(name="busy"), Signal(range(max(R, 2)), name="k")
        col = Signal(range(max(self._cols, 2)), name="col", reset_less=True)
        delta = Signal(signed(self._dw), name="delta", reset_less=True)
        clearing, ck = Signal(name="clearing"), Signal(range(max(R, 2)), name="ck")
        last_k = k == R - 1
        i = self.i_stream.p
        accept = Signal(name="accept")
        v1, v2 = Signal(name="v1"), Signal(name="v2")  # S1 / S2 hold a word (below)
        m.d.comb += [
            self.i_stream.ready.eq(~clearing & (~busy | last_k)),
            accept.eq(self.i_stream.valid & self.i_stream.ready),
            self.busy.eq(busy | v1 | v2 | clearing),
        ]
        # issue: one word of the active column per cycle
        with m.If(accept & ~i.end):
            m.d.sync += [busy.eq(1), k.eq(0), col.eq(i.column), delta.eq(i.delta)]
        with m.Elif(busy):
            m.d.sync += [k.eq(k + 1), busy.eq(~last_k)]
        m.d.comb += [rp.addr.eq(Mux(busy, k, self.raddr)), wrp.addr.eq(col * R + k)]

        # two stages after the issue: S1 registers the ROM word (the block RAM's read) and the
        # delta memory's word arrives; S2 registers both, then adds and writes. The write of a
        # word read at cycle r lands at r + 2, so with R <= 2 the next column reads a word whose
        # writes at r and r + 1 it misses: those are forwarded (compared a stage ahead)
        k1 = Signal(range(max(R, 2)), name="k1", reset_less=True)
        k2 = Signal(range(max(R, 2)), name="k2", reset_less=True)
        d1 = Signal(signed(self._dw), name="d1", reset_less=True)
        d2 = Signal(signed(self._dw), name="d2", reset_less=True)
        w1 = Signal(bits * P, name="w1", reset_less=True)
        w2 = Signal(bits * P, name="w2", reset_less=True)
        m2 = Signal(mword, name="m2", reset_less=True)
        new = Signal(mword, name="new")
        m.d.sync += [v1.eq(busy), k1.eq(k), d1.eq(delta), w1.eq(wrp.data),
                     v2.eq(v1), k2.eq(k1), d2.eq(d1), w2.eq(w1), m2.eq(rp.data)]
        base = m2
        if R <= 2:
            base = self._forward(m, mword, k1, v2, k2, new, m2)
        for lane in range(P):
            prod = self._product(m, w2[lane * bits:(lane + 1) * bits], d2)
            m.d.comb += new[lane].eq(base[lane] + prod)

        # write: the column update, or the clear pass
        with m.If(clearing):
            m.d.comb += [wp.addr.eq(ck), wp.data.eq(0), wp.en.eq(1)]
            m.d.sync += [ck.eq(ck + 1), clearing.eq(ck != R - 1)]
        with m.Else():
            m.d.comb += [wp.addr.eq(k2), wp.data.eq(new), wp.en.eq(v2)]
        with m.If(self.clear & ~clearing):
            m.d.sync += [clearing.eq(1), ck.eq(0)]

        # done: two cycles after the end token (the last column's last write lands with it)
        end1 = Signal(name="end1")
        m.d.sync += [end1.eq(accept & i.end), self.done.eq(end1)]

        # the cell pass's reads: the same port while idle
        m.d.comb += self.rdata.eq(rp.data)
        return m
