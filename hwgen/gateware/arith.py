"""Small combinational helpers shared by the gateware (rounding, saturation, table indices).

Most mirror one function of hwgen.numerics on Amaranth values; `register`, `delay` and
`registered_sum_tree` build the pipeline registers the components share.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Signal, Value

__all__ = [
    "round_shift",
    "align",
    "clamp",
    "saturate",
    "register",
    "delay",
    "registered_sum_tree",
]


def round_shift(x: Value, s: int) -> Value:
    """floor((x + 2**(s-1)) / 2**s): numerics.round_shift on a signed value."""
    if s < 0:
        raise ValueError(f"shift must be non-negative, not {s}")
    if s == 0:
        return x
    return (x + Const(1 << (s - 1))) >> s


def align(x: Value, k: int) -> Value:
    """x * 2**k with numerics.align's rounding (left shift, or round_shift by -k)."""
    return x << k if k >= 0 else round_shift(x, -k)


def clamp(x: Value, lo: int, hi: int) -> Value:
    """Saturate ``x`` into [lo, hi]."""
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def saturate(x: Value, width: int) -> Value:
    """Saturate signed ``x`` to ``width`` bits: [-2**(width-1), 2**(width-1) - 1].

    Equal to ``clamp`` for that range, built from an all-equal test of the bits above the sign
    (a few LUTs) instead of two comparators (carry chains)."""
    from amaranth.hdl import Cat

    xw = x.shape().width
    if xw <= width:
        return x
    upper = x[width - 1 :]
    fits = upper.all() | ~upper.any()
    sign = x[xw - 1]
    limit = Cat(Cat(~sign for _ in range(width - 1)), sign).as_signed()
    return Mux(fits, x[:width].as_signed(), limit)


def register(m, value: Value, name: str, *, reset: bool = False) -> Signal:
    """A ``sync`` register named ``name`` loaded with ``value`` every cycle (latency 1).

    Data registers have no reset (``reset=False``): after a reset they hold stale values that no
    valid flag lets through, and a reset-less flip-flop needs no reset routing or enable logic.
    Control flags (valid, write enables) pass ``reset=True``."""
    reg = Signal(value.shape(), name=name, reset_less=not reset)
    m.d.sync += reg.eq(value)
    return reg


def delay(m, value: Value, cycles: int, name: str, *, reset: bool = False) -> Value:
    """``value`` registered ``cycles`` times (``value`` itself for 0); see `register`."""
    for i in range(cycles):
        value = register(m, value, f"{name}_d{i}", reset=reset)
    return value


def registered_sum_tree(m, terms: list, prefix: str) -> tuple[Value, int]:
    """Sum ``terms`` in a binary adder tree with every level registered (an odd term is passed
    through a register). Returns the sum and the tree's latency in cycles (0 for one term)."""
    level = 0
    while len(terms) > 1:
        nxt = [
            register(m, terms[i] + terms[i + 1], f"{prefix}{level}_{i // 2}")
            for i in range(0, len(terms) - 1, 2)
        ]
        if len(terms) % 2:
            nxt.append(register(m, terms[-1], f"{prefix}{level}_pass"))
        terms, level = nxt, level + 1
    return terms[0], level
