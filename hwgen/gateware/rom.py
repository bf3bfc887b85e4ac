"""Read-only memories with a registered output: weight, bias, table and embedding ROMs.

Every ROM is an amaranth.lib.memory.Memory with one synchronous read port followed by an output
register, so synthesis infers block RAM and nothing but routing follows the RAM's clock-to-output
time (on ECP5, `hwgen.synth` moves that register into the DP16KD's own output register). The
words (weights in issue order, biases in consumption order) come from `plan`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError
from .schedule import READ_LATENCY

__all__ = ["Rom"]


class Rom(wiring.Component):
    """A ROM read in ``LATENCY`` = 2 cycles: ``data`` is ``words[addr]`` two cycles after ``addr``.

    Parameters
    ----------
    words : the contents (non-negative integers below 2**width).
    width : bits per word.

    Members
    -------
    addr : In(range(len(words))).
    data : Out(width), registered.
    """

    LATENCY = READ_LATENCY

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
        raw = Signal(self._width, name="raw")
        # The output register has no reset: a plain flip-flop right after the RAM, which the
        # ECP5 flow moves into the RAM block (consumers are gated by their own valid flags).
        data = Signal(self._width, name="data_reg", reset_less=True)
        m.d.comb += [port.addr.eq(self.addr), raw.eq(port.data), self.data.eq(data)]
        m.d.sync += data.eq(raw)
        return m
