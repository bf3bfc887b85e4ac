"""Small combinational helpers shared by the gateware (rounding, saturation, table indices).

Each mirrors one function of hwgen.numerics on Amaranth values; none of them builds registers.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value

__all__ = ["round_shift", "align", "clamp", "saturate", "pipeline_width", "delay"]


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


def pipeline_width(bound: int) -> int:
    """Two's-complement bits for every value in [-bound, bound] (numerics.signed_width)."""
    return int(bound).bit_length() + 1


def delay(m, value: Value, cycles: int, name: str) -> Value:
    """``value`` registered ``cycles`` times (``value`` itself for 0)."""
    from amaranth.hdl import Signal

    for i in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{i}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
