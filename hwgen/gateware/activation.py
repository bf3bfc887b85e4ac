"""Activation lookup: a model's sigmoid or tanh table in a ROM with a saturating index.

The index is numerics.table_index: the pre-activation saturates to a signed ``index_width``-bit
value and its sign bit is flipped. The ROM is an amaranth.lib.memory.Memory with synchronous read
ports (block RAM), with the saturated index registered before the RAM and the entry registered
after it, so ``y[i]`` is the table entry of ``z[i]`` ``LATENCY`` = 3 cycles later.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_positive_int, forwarded
from .arith import saturate
from .schedule import TABLE_LATENCY

__all__ = ["ActivationTable"]


class ActivationTable(wiring.Component):
    """A read-only activation table with ``ports`` independent lookups.

    Parameters (all but ``table`` keyword-only)
    ----------
    table : integer entries, length 2**index_width (a Model's sigmoid_table or tanh_table).
    index_width : the table's input width (Formats.sigmoid_in_width / tanh_in_width).
    z_width : signed width of the pre-activation inputs.
    ports : number of lookups per cycle.

    Members
    -------
    z : In(signed(z_width)).array(ports); pre-activations (gate_frac fraction bits).
    y : Out(shape).array(ports); the entries, ``LATENCY`` cycles after ``z``, registered (signed
        if any entry is < 0).
    """

    LATENCY = TABLE_LATENCY

    def __init__(self, table, *, index_width: int, z_width: int, ports: int = 1):
        t = np.asarray(table, dtype=np.int64)
        index_width = check_positive_int("Table index width", index_width)
        if t.shape != (1 << index_width,):
            raise HwgenError(
                f"an activation table with {index_width} index bits has {1 << index_width} "
                f"entries, not {t.shape}"
            )
        ports = check_positive_int("Port count", ports)
        z_width = check_positive_int("Pre-activation width", z_width)
        self._table = [int(v) for v in t]
        self._index_width = index_width
        self._shape = Shape.cast(range(min(self._table), max(self._table) + 1))
        super().__init__(
            {
                "z": In(signed(z_width)).array(ports),
                "y": Out(self._shape).array(ports),
            }
        )

    value_shape = forwarded("_shape", "The table's value shape (unsigned or signed).")

    def elaborate(self, platform):
        m = Module()
        w = self._index_width
        m.submodules.rom = rom = Memory(shape=self._shape, depth=1 << w, init=self._table)
        for i, (z, y) in enumerate(zip(self.z, self.y, strict=True)):
            port = rom.read_port()
            sat = saturate(z, w)
            index = Signal(w, name=f"index{i}", reset_less=True)
            m.d.sync += index.eq(Cat(sat[: w - 1], ~sat[w - 1]))
            raw = Signal(self._shape, name=f"raw{i}")
            out = Signal(self._shape, name=f"y{i}_reg", reset_less=True)  # see rom.Rom
            m.d.comb += [port.addr.eq(index), raw.eq(port.data), y.eq(out)]
            m.d.sync += out.eq(raw)
        return m
