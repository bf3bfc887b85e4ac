"""The delta encoder of the planned delta core (docs/delta.md, issue 23): compare, hold, queue.

Each accepted chunk carries P values, the address of their held values in the *hat store* (one
word of P held values per chunk address: x_hat and h_hat of every layer in regions the
sequencer addresses), the threshold of that region and two flags. Per lane k
(`hwgen.delta.golden`'s encoder):

    hat   = 0 if fresh else the held value        (fresh: a start of sequence)
    d     = value_k - hat
    keep  = d != 0 and |d| >= theta
    held  = value_k if keep else hat              (written back into the hat store)

and every kept lane leaves as one output ``(column = chunk * P + k, delta = d)``, in increasing
lane order; a chunk marked ``last`` is followed by one end marker (``end`` = 1, column and delta
zero) after its deltas, so a consumer knows when a vector's deltas are complete.

Pipeline: the accept cycle reads the hat word (an asynchronous read port and a register, as the
state stores read: no read-first emulation), the next cycle compares and, when the emit register
takes the result, writes the new held word; a chunk at the address just written gets the written
word forwarded. The emit register hands out the lowest kept lane per cycle. Throughput: one chunk
per cycle while the chunks keep no lane (or one), one delta per cycle otherwise; latency from an
accepted chunk to its first output: 2 cycles.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import check_positive_int

__all__ = ["DeltaEncoder", "encoder_input_layout", "encoder_output_layout"]


def encoder_input_layout(lanes: int, value_width: int, chunks: int) -> data.StructLayout:
    """A chunk: ``values`` (P signed codes), ``chunk`` (hat-store address), ``theta`` (unsigned,
    value_width + 1 bits: up to the largest change of a code), ``fresh``, ``last``."""
    return data.StructLayout({
        "values": data.ArrayLayout(signed(value_width), lanes),
        "chunk": range(max(chunks, 2)),
        "theta": unsigned(value_width + 1),
        "fresh": 1,
        "last": 1,
    })


def encoder_output_layout(lanes: int, value_width: int, chunks: int) -> data.StructLayout:
    """A processed column: ``column`` (chunk * P + lane), ``delta`` (value_width + 1 bits,
    signed), ``end`` (the end marker of a ``last`` chunk: column and delta zero)."""
    return data.StructLayout({
        "column": range(max(chunks * lanes, 2)),
        "delta": signed(value_width + 1),
        "end": 1,
    })


class DeltaEncoder(wiring.Component):
    """Delta encoder with its hat store (module docstring).

    Parameters (keyword-only)
    ----------
    lanes : P, values compared per chunk.
    value_width : signed width of a value (the input or state format's width).
    chunks : hat-store words (chunk addresses 0 .. chunks-1).

    Members
    -------
    i_stream : In(stream.Signature(encoder_input_layout(...))).
    o_stream : Out(stream.Signature(encoder_output_layout(...))).

    The hat store starts undefined: the first chunk of every address after a reset must be
    ``fresh`` (a start of sequence), as the core's first timestep is.
    """

    def __init__(self, *, lanes: int, value_width: int, chunks: int):
        self._lanes = check_positive_int("Encoder lanes", lanes)
        self._width = check_positive_int("Value width", value_width)
        self._chunks = check_positive_int("Hat-store words", chunks)
        super().__init__({
            "i_stream": In(stream.Signature(encoder_input_layout(lanes, value_width, chunks))),
            "o_stream": Out(stream.Signature(encoder_output_layout(lanes, value_width, chunks))),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        P, w = self._lanes, self._width
        word = data.ArrayLayout(signed(w), P)
        m.submodules.hats = hats = Memory(shape=word, depth=self._chunks, init=[],
                                          attrs={"no_rw_check": 1})
        rp = hats.read_port(domain="comb")
        wp = hats.write_port()
        i, o = self.i_stream.p, self.o_stream.p

        # -- stage A: the chunk and its held word -------------------------------------------
        a_valid = Signal(name="a_valid")
        a = Signal(encoder_input_layout(P, w, self._chunks), name="a", reset_less=True)
        a_hat = Signal(word, name="a_hat", reset_less=True)
        a_fwd = Signal(name="a_fwd", reset_less=True)
        a_fwd_word = Signal(word, name="a_fwd_word", reset_less=True)
        a_advance = Signal(name="a_advance")
        accept = Signal(name="accept")
        m.d.comb += [
            self.i_stream.ready.eq(~a_valid | a_advance),
            accept.eq(self.i_stream.valid & self.i_stream.ready),
            rp.addr.eq(i.chunk),
        ]
        hat = Signal(word, name="hat")
        keep = Signal(P, name="keep")
        deltas = Signal(data.ArrayLayout(signed(w + 1), P), name="deltas")
        held = Signal(word, name="held")
        m.d.comb += hat.eq(Mux(a.fresh, 0, Mux(a_fwd, a_fwd_word, a_hat)))
        # |d| >= theta as d >= theta or d <= -theta: the two compares side by side, no |d|
        # chain between the subtraction and the compare (-theta comes from the register)
        neg_theta = Signal(signed(w + 2), name="neg_theta")
        m.d.comb += neg_theta.eq(-a.theta)
        for k in range(P):
            d = Signal(signed(w + 1), name=f"d{k}")
            m.d.comb += [
                d.eq(a.values[k] - hat[k]),
                keep[k].eq((d != 0) & ((d >= a.theta) | (d <= neg_theta))),
                deltas[k].eq(Mux(keep[k], d, 0)),
                held[k].eq(Mux(keep[k], a.values[k], hat[k])),
            ]
        m.d.comb += [
            wp.addr.eq(a.chunk),
            wp.data.eq(held),
            wp.en.eq(a_advance),
        ]
        with m.If(accept):
            m.d.sync += [
                a.eq(i),
                a_hat.eq(rp.data),
                a_fwd.eq(a_advance & (a.chunk == i.chunk)),
                a_fwd_word.eq(held),
            ]
        with m.If(accept):
            m.d.sync += a_valid.eq(1)
        with m.Elif(a_advance):
            m.d.sync += a_valid.eq(0)

        # -- stage B: hand out the kept lanes, lowest first, then the end marker --------------
        b_mask = Signal(P, name="b_mask")
        b_end = Signal(name="b_end")
        b_deltas = Signal(data.ArrayLayout(signed(w + 1), P), name="b_deltas", reset_less=True)
        b_base = Signal(range(max(self._chunks * P, 2)), name="b_base", reset_less=True)
        low = Signal(range(max(P, 2)), name="low")
        for k in reversed(range(P)):  # the last assignment wins: the lowest set lane
            with m.If(b_mask[k]):
                m.d.comb += low.eq(k)
        has = b_mask.any()
        single = (b_mask & (b_mask - 1)) == 0  # at most one lane left
        # chunk * P + lane: without a carry chain when P is a power of two (the low bits of the
        # base are zero)
        column = b_base | low if P & (P - 1) == 0 else b_base + low
        take = self.o_stream.valid & self.o_stream.ready
        final = Mux(has, single & ~b_end, b_end)  # this output is the chunk's last
        b_free = ~self.o_stream.valid | (self.o_stream.ready & final)
        m.d.comb += [
            a_advance.eq(a_valid & b_free),
            self.o_stream.valid.eq(has | b_end),
            o.end.eq(~has),
            o.column.eq(Mux(has, column, 0)),
            o.delta.eq(Mux(has, b_deltas[low], 0)),
        ]
        with m.If(a_advance):
            m.d.sync += [
                b_mask.eq(keep),
                b_end.eq(a.last),
                b_deltas.eq(deltas),
                b_base.eq(a.chunk * P),
            ]
        with m.Elif(take):
            with m.If(has):
                m.d.sync += b_mask.eq(b_mask & ~(Const(1, P) << low))
            with m.Else():
                m.d.sync += b_end.eq(0)
        return m
