"""A stand-in core for testing the UART link without an accelerator.

`EchoCore` keeps a running sum per sequence: each input transfer ``{sos, x[n]}`` (bytes) yields
``y[k] = (sos ? 0 : y[k]) + x[k]`` modulo 256, after a configurable latency. Its input layout
(start-of-sequence flag in bit 0, then the vector) is the accelerator's, so the link and the host
treat both alike.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec import check_positive_int

__all__ = ["EchoCore", "echo_input_layout", "echo_output_layout", "echo_golden"]


def echo_input_layout(n: int) -> data.StructLayout:
    return data.StructLayout({"sos": 1, "x": data.ArrayLayout(unsigned(8), n)})


def echo_output_layout(n: int) -> data.StructLayout:
    return data.StructLayout({"y": data.ArrayLayout(unsigned(8), n)})


def echo_golden(x, sos) -> np.ndarray:
    """What `EchoCore` returns for inputs ``x`` (T, n) with start flags ``sos`` (T,)."""
    x = np.asarray(x, np.int64)
    out, acc = np.zeros_like(x), np.zeros(x.shape[1], np.int64)
    for t in range(x.shape[0]):
        acc = (np.where(sos[t], 0, acc) + x[t]) % 256
        out[t] = acc
    return out


class EchoCore(wiring.Component):
    """Running per-sequence byte sums with stream handshakes.

    Parameters
    ----------
    n : vector length in bytes.
    latency : cycles between accepting an input and offering its output (>= 1).

    Members
    -------
    i_stream : In(stream.Signature(echo_input_layout(n))).
    o_stream : Out(stream.Signature(echo_output_layout(n))).
    """

    def __init__(self, n: int, latency: int = 8):
        self._n = check_positive_int("Vector length", n)
        self._latency = check_positive_int("Latency", latency)
        super().__init__({
            "i_stream": In(stream.Signature(echo_input_layout(n))),
            "o_stream": Out(stream.Signature(echo_output_layout(n))),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(echo_output_layout(self._n))
        wait = Signal(range(self._latency + 1))
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.i_stream.ready.eq(1)
                with m.If(self.i_stream.valid):
                    p = self.i_stream.payload
                    for k in range(self._n):
                        base = Signal(8, name=f"base{k}")
                        m.d.comb += base.eq(Mux(p.sos, 0, acc.y[k]))
                        m.d.sync += acc.y[k].eq(base + p.x[k])
                    m.d.sync += wait.eq(self._latency - 1)
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.o_stream.valid.eq(1), self.o_stream.payload.eq(acc)]
                with m.If(self.o_stream.ready):
                    m.next = "IN"
        return m
