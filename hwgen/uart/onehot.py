"""A one-hot state machine for the frame engine's parts (timing on iCE40).

Amaranth's ``m.FSM()`` encodes its state in binary, and Yosys does not re-encode a state register
that has an initial value, so every transition of a 13-state machine decodes 4 bits and merges
into one wide enable: 5 LUT levels on an iCE40 UP5K. Here each state is its own flip-flop, set by
the transitions into it and cleared by those out of it: a state test is one flip-flop, and a
transition touches two. The interface mirrors ``m.FSM()``::

    fsm = OneHot(m, ["IDLE", "BUSY"], init="IDLE")
    with fsm.state("IDLE"):
        with m.If(go):
            fsm.next("BUSY")
    m.d.comb += busy.eq(~fsm.ongoing("IDLE"))

Contract: the transitions out of a state are mutually exclusive (an ``If`` / ``Elif`` chain, or
one unconditional ``next``), as with ``m.next``; a state's own flip-flop is reset to ``init``.
"""

from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Cat, Signal, Value

__all__ = ["OneHot", "pair_differences"]


def pair_differences(a, b) -> Value:
    """Which 2-bit pairs of ``a`` and ``b`` differ (zero-extended to the wider): one LUT4 a bit,
    ceil(width / 2) bits. Registered, then OR-ed (``.any()``) a cycle later: an equality test
    of two wide values in two LUT levels a cycle instead of four in one (timing on iCE40)."""
    a, b = Value.cast(a), Value.cast(b)
    w = max(len(a), len(b))
    a, b = a.as_unsigned(), b.as_unsigned()
    return Cat(*((a[i:i + 2] != b[i:i + 2]) for i in range(0, w, 2)))


class OneHot:
    """One flip-flop per state (see the module docstring)."""

    def __init__(self, m, states, init: str, name: str = "state"):
        if init not in states:
            raise ValueError(f"initial state {init!r} is not one of {list(states)}")
        self._m = m
        self._bits = {s: Signal(name=f"{name}_{s.lower()}", init=int(s == init)) for s in states}
        self._current: str | None = None

    @contextmanager
    def state(self, name: str):
        """The statements of state ``name`` (active while its flip-flop is set)."""
        with self._m.If(self._bits[name]):
            outer, self._current = self._current, name
            try:
                yield
            finally:
                self._current = outer

    def next(self, name: str) -> None:
        """Leave the current state for ``name`` at the next clock edge."""
        if self._current is None:
            raise RuntimeError("OneHot.next outside a state")
        if name != self._current:
            self._m.d.sync += [self._bits[self._current].eq(0), self._bits[name].eq(1)]

    def ongoing(self, name: str):
        return self._bits[name]

    @property
    def current(self) -> str | None:
        """The state whose statements are being written (None outside ``state``)."""
        return self._current
