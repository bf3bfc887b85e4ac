"""Read-only memories: weight ROMs in consumption order, and a generic synchronous ROM.

Every ROM is an amaranth.lib.memory.Memory with one synchronous read port, so synthesis infers
block RAM. Weight words are built with spec.pack_codes (the one source of truth for code
positions): word = P codes, code k at bits [k*bits, (k+1)*bits).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, QuantMatrix, pack_codes

__all__ = ["Rom", "weight_words", "signed_words"]


def weight_words(matrix: QuantMatrix, lanes: int, row_order=None) -> list[int]:
    """The ROM image of ``matrix`` for ``lanes`` lanes: rows in ``row_order`` (default 0..R-1),
    each row as ceil(C / lanes) words; columns beyond C are padded with code 0 (the core zeroes the
    operand of a padded lane, so the pad code's level does not matter: binary has no zero code)."""
    codes = np.asarray(matrix.codes, dtype=np.int64)
    rows, cols = codes.shape
    n = -(-cols // lanes)
    order = np.arange(rows) if row_order is None else np.asarray(row_order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(rows)):
        raise HwgenError("a weight ROM's row order must be a permutation of its rows")
    padded = np.zeros((rows, n * lanes), dtype=np.int64)
    padded[:, :cols] = codes[order]
    words = pack_codes(padded, matrix.encoding.bits, lanes)
    return [int(w) for w in np.asarray(words).reshape(-1)]


def signed_words(values, width: int, per_word: int = 1) -> list[int]:
    """Two's-complement ``width``-bit fields, ``per_word`` to a word (pack_codes layout)."""
    v = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise HwgenError(f"values {v.min()}..{v.max()} do not fit {width} signed bits")
    u = v & ((1 << width) - 1)
    if per_word == 1:
        return [int(x) for x in u.reshape(-1)]
    return [int(x) for x in np.asarray(pack_codes(u, width, per_word)).reshape(-1)]


class Rom(wiring.Component):
    """A synchronous ROM: ``data`` is ``words[addr]`` one cycle after ``addr``.

    Parameters
    ----------
    words : the contents (non-negative integers below 2**width).
    width : bits per word.

    Members
    -------
    addr : In(range(len(words))).
    data : Out(width).
    """

    def __init__(self, words, width: int):
        words = [int(w) for w in words]
        if not words:
            raise HwgenError("a ROM needs at least one word")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise HwgenError(f"ROM width must be a positive integer, not {width!r}")
        if min(words) < 0 or max(words) >> width:
            raise HwgenError(f"ROM words must be non-negative and fit {width} bits")
        self._words, self._width = words, width
        super().__init__({"addr": In(range(max(len(words), 2))), "data": Out(width)})

    @property
    def depth(self) -> int:
        return len(self._words)

    @property
    def bits(self) -> int:
        return len(self._words) * self._width

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(
            shape=unsigned(self._width), depth=len(self._words), init=self._words
        )
        port = mem.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m
