"""Frozen descriptions of what hwgen builds: fixed-point formats, weight encodings, scales and
models.

This module is the single source of truth for every bit format in hwgen. The weight-code tables
(`WeightEncoding.encode` / `decode`), the fixed-point formats and the packing of codes into ROM
words
(`pack_codes`) are used unchanged by the quantizers, the model file, the golden model, the
gateware and
the simulation benches. docs/numerics.md describes the same contract in prose.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "HwgenError",
    "CellKind",
    "FixedFormat",
    "EncodingKind",
    "WeightEncoding",
    "Scale",
    "Sparsity",
    "QuantMatrix",
    "ROW_MULT_LIMIT",
    "row_multipliers",
    "fit_row_scales",
    "Formats",
    "VectorInput",
    "TokenInput",
    "Layer",
    "Head",
    "Model",
    "pack_codes",
    "unpack_codes",
    "round_half_up",
    "round_half_away",
    "check_int",
    "check_positive_int",
    "check_finite",
    "LIMITS",
    "did_you_mean",
    "forwarded",
    "json_fields",
]


def round_half_up(x) -> np.ndarray:
    """Nearest integer, ties toward +infinity, exactly (floor(x + 0.5) is not: it rounds
    0.49999999999999994 up). Returns float64 integers."""
    x = np.asarray(x, dtype=np.float64)
    r = np.floor(x)
    return r + ((x - r) >= 0.5)


def round_half_away(x) -> np.ndarray:
    """Nearest integer, ties away from zero, exactly. Returns float64 integers."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * round_half_up(np.abs(x)) * (np.abs(x) > 0)


class HwgenError(Exception):
    """An error the user can act on: bad arguments, a bad file, an unsupported combination.

    The command-line interface prints its message on one line and exits non-zero; it never shows a
    traceback for this class.
    """


def did_you_mean(word, choices) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to a mistyped ``word``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def forwarded(path: str, doc: str | None = None) -> property:
    """A read-only property returning the attribute at the dotted ``path`` of its object (e.g.
    ``forwarded("_plan.lanes")``): a member exposed through the object that owns it."""
    names = path.split(".")

    def get(self):
        for name in names:
            self = getattr(self, name)
        return self

    return property(get, doc=doc or f"``{path}``.")


def json_fields(obj, *names: str) -> dict:
    """``{name: obj.name}`` for each of ``names``, in that order (the plain part of a
    ``to_json``)."""
    return {name: getattr(obj, name) for name in names}


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int; raises `HwgenError` ("{name} must be an integer, not ...", or
    "... at least / at most ...") for a bool, a float, any non-integer or a value out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HwgenError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise HwgenError(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise HwgenError(f"{name} must be at most {maximum}, not {value}")
    return value


def check_positive_int(name: str, value, maximum: int | None = None) -> int:
    """The one validator of positive integers: ``value`` as an int, or `HwgenError`
    "{name} must be a positive integer, not {value!r}" (or "... at most {maximum} ...")."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HwgenError(f"{name} must be a positive integer, not {value!r}")
    if maximum is not None and value > maximum:
        raise HwgenError(f"{name} must be at most {maximum}, not {int(value)}")
    return int(value)


def check_finite(name: str, value, *, minimum: float | None = None,
                 maximum: float | None = None, strict_min: bool = False) -> float:
    """``value`` as a finite float in range; `HwgenError` for NaN, infinity, a non-number or a
    value out of range (``strict_min``: the minimum itself is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise HwgenError(f"{name} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise HwgenError(f"{name} must be a finite number, not {value!r}")
    if minimum is not None and (v < minimum or (strict_min and v == minimum)):
        word = "greater than" if strict_min else "at least"
        raise HwgenError(f"{name} must be {word} {minimum:g}, not {v:g}")
    if maximum is not None and v > maximum:
        raise HwgenError(f"{name} must be at most {maximum:g}, not {v:g}")
    return v


#: Upper bounds on sizes, checked before anything of that size is allocated (model files, command
#: options, the Python API). Far above what any supported FPGA holds (an ECP5-85k has 3.7 Mbit of
#: block RAM), so they only stop corrupt or mistyped values.
LIMITS = {
    "hidden": 4096,
    "features": 4096,
    "outputs": 4096,
    "layers": 16,
    "vocab": 65536,
    "dim": 4096,
    "weights": 1 << 26,  # weight codes of all matrices together
    "bias": (1 << 52) - 1,  # |bias|: the golden model's dot products are exact below 2**53
}


def _json_int(d, key: str, default=None, *, minimum=None, maximum=None) -> int:
    """``d[key]`` as an int: a JSON integer only (not a float, bool or string)."""
    if not isinstance(d, dict):
        raise HwgenError(f"expected an object, not {d!r}")
    if key not in d:
        if default is not None:
            return default
        raise HwgenError(f"'{key}' is missing")
    return check_int(f"'{key}'", d[key], minimum=minimum, maximum=maximum)


def _json_bool(d, key: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise HwgenError(f"'{key}' must be true or false, not {v!r}")
    return v


class CellKind(enum.Enum):
    """Recurrent cell type. Gate order follows PyTorch (GRU: r, z, n; LSTM: i, f, g, o)."""

    RNN = "rnn"
    GRU = "gru"
    LSTM = "lstm"

    @property
    def gates(self) -> tuple[str, ...]:
        return {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}[self.value]

    @property
    def num_gates(self) -> int:
        return len(self.gates)


@dataclass(frozen=True)
class FixedFormat:
    """A two's-complement (or unsigned) fixed-point format: value = code * 2**-frac.

    Parameters
    ----------
    width : total bits of the code, sign included.
    frac : fractional bits (may exceed width - 1: then all values are below 1 in magnitude).
    signed : two's complement when True, plain binary when False.
    """

    width: int
    frac: int
    signed: bool = True

    def __post_init__(self):
        check_int("Fixed-point width", self.width, minimum=1, maximum=62)
        check_int("Fixed-point fraction bits", self.frac, minimum=-32, maximum=62)

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac

    def quantize(self, x) -> tuple[np.ndarray, int]:
        """Round real values to codes: floor(x * 2**frac + 1/2) (round half up), then saturate.

        Returns the int64 codes and how many values were saturated, so that callers can report it.
        """
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise HwgenError("inputs contain NaN or infinity; fixed-point inputs must be finite")
        raw = round_half_up(x * (2.0**self.frac))
        saturated = int(np.count_nonzero((raw < self.min_code) | (raw > self.max_code)))
        return np.clip(raw, self.min_code, self.max_code).astype(np.int64), saturated

    def to_real(self, codes) -> np.ndarray:
        return np.asarray(codes, dtype=np.float64) * self.lsb

    def describe(self) -> str:
        kind = "s" if self.signed else "u"
        return f"{kind}{self.width}.{self.frac}"

    def to_json(self) -> dict:
        return {"width": self.width, "frac": self.frac, "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict) -> FixedFormat:
        return cls(_json_int(d, "width"), _json_int(d, "frac"), _json_bool(d, "signed", True))


class EncodingKind(enum.Enum):
    """How a weight is stored. See `WeightEncoding` for the code tables."""

    BINARY = "binary"
    TERNARY = "ternary"
    POW2 = "pow2"
    EXP = "exp"
    INT = "int"


@dataclass(frozen=True)
class WeightEncoding:
    """The bit code of one weight and the integer *level* it stands for.

    A stored weight's real value is ``level * scale`` (see `Scale`); the hardware multiplies
    inputs by
    the level (add, subtract, skip, shift or multiply) and applies the scale once per dot product.

    Code tables (``bits`` is the ROM width of one weight):

    - BINARY, 1 bit: code 0 -> level -1, code 1 -> level +1.
    - TERNARY, 2 bits, two's complement: 00 -> 0, 01 -> +1, 11 -> -1; 10 is invalid.
    - POW2 (fixed-point "dual-copy rounding" of the paper), ``int_bits + frac_bits + 1`` bits, two's
      complement, levels in [-(2**(bits-1) - 1), 2**(bits-1) - 1]; the most negative code is
      invalid.
      With int_bits = 0, frac_bits = 1 (the reference code's setting) the levels are ternary.
    - EXP (exponential quantization), ``1 + field`` bits with field = ceil(log2(exponents + 1)):
      the top bit is the sign, the low field ``e`` is 0 for a zero weight, or 1..exponents for
      level +-2**(e - 1). A set sign with e = 0 and any e > exponents are invalid.
    - INT (signed int-N), N bits, two's complement, symmetric levels; the most negative code is
    invalid.
    """

    kind: EncodingKind
    bits: int
    exponents: int = 0  # EXP only: number of distinct magnitudes 2**0 .. 2**(exponents - 1)
    frac_bits: int = 0  # POW2 only: the fixed-point fraction bits (the scale is 2**-frac_bits)

    def __post_init__(self):
        if not isinstance(self.kind, EncodingKind):
            raise HwgenError(f"Encoding kind must be an EncodingKind, not {self.kind!r}")
        check_int("Encoding bits", self.bits, minimum=1, maximum=16)
        k = self.kind
        if k is EncodingKind.BINARY and self.bits != 1:
            raise HwgenError(f"binary weights use 1 bit, not {self.bits}")
        if k is EncodingKind.TERNARY and self.bits != 2:
            raise HwgenError(f"ternary weights use 2 bits, not {self.bits}")
        if k in (EncodingKind.POW2, EncodingKind.INT) and self.bits < 2:
            raise HwgenError(f"{k.value} weights need at least 2 bits, not {self.bits}")
        if k is EncodingKind.EXP:
            check_int("Exponential exponent count", self.exponents, minimum=1, maximum=32)
            want = 1 + max(1, math.ceil(math.log2(self.exponents + 1)))
            if self.bits != want:
                raise HwgenError(
                    f"exponential weights with {self.exponents} exponents use {want} bits, "
                    f"not {self.bits}"
                )
        elif self.exponents != 0:
            raise HwgenError(f"only exponential weights have an exponent count, not {k.value}")
        if k is EncodingKind.POW2:
            check_int("pow2 fraction bits", self.frac_bits, minimum=0, maximum=self.bits - 1)
        elif self.frac_bits != 0:
            raise HwgenError(f"only pow2 weights have fraction bits, not {k.value}")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def binary(cls) -> WeightEncoding:
        return cls(EncodingKind.BINARY, 1)

    @classmethod
    def ternary(cls) -> WeightEncoding:
        return cls(EncodingKind.TERNARY, 2)

    @classmethod
    def pow2(cls, int_bits: int = 0, frac_bits: int = 1) -> WeightEncoding:
        check_int("pow2 integer bits", int_bits, minimum=0, maximum=14)
        check_int("pow2 fraction bits", frac_bits, minimum=0, maximum=14)
        if int_bits + frac_bits < 1:
            raise HwgenError("pow2 needs int_bits + frac_bits >= 1 (else every weight is zero)")
        return cls(EncodingKind.POW2, int_bits + frac_bits + 1, frac_bits=frac_bits)

    @classmethod
    def exp(cls, exponents: int) -> WeightEncoding:
        exponents = check_int("Exponential exponent count", exponents, minimum=1, maximum=32)
        return cls(EncodingKind.EXP, 1 + max(1, math.ceil(math.log2(exponents + 1))), exponents)

    @classmethod
    def int_n(cls, bits: int) -> WeightEncoding:
        return cls(EncodingKind.INT, check_int("Integer weight bits", bits, minimum=2, maximum=16))

    # -- properties ---------------------------------------------------------------------------
    @property
    def max_level(self) -> int:
        """Largest |level| this encoding can hold."""
        if self.kind in (EncodingKind.BINARY, EncodingKind.TERNARY):
            return 1
        if self.kind is EncodingKind.EXP:
            return 1 << (self.exponents - 1)
        return (1 << (self.bits - 1)) - 1

    @property
    def is_ternary_like(self) -> bool:
        """True when every level is -1, 0 or +1 (add / subtract / skip hardware)."""
        return self.max_level == 1

    @property
    def has_zero(self) -> bool:
        return self.kind is not EncodingKind.BINARY

    def describe(self) -> str:
        if self.kind is EncodingKind.EXP:
            return f"exp{self.bits} ({self.exponents} exponents + zero)"
        if self.kind is EncodingKind.POW2:
            return f"pow2 ({self.bits - 1 - self.frac_bits}.{self.frac_bits} fixed point)"
        if self.kind is EncodingKind.INT:
            return f"int{self.bits}"
        return self.kind.value

    def to_json(self) -> dict:
        d = {"kind": self.kind.value, "bits": self.bits}
        if self.kind is EncodingKind.EXP:
            d["exponents"] = self.exponents
        if self.kind is EncodingKind.POW2:
            d["frac_bits"] = self.frac_bits
        return d

    @classmethod
    def from_json(cls, d: dict) -> WeightEncoding:
        if not isinstance(d, dict) or "kind" not in d:
            raise HwgenError(f"a weight encoding is an object with a 'kind', not {d!r}")
        try:
            kind = EncodingKind(d["kind"])
        except (ValueError, TypeError):
            names = ", ".join(k.value for k in EncodingKind)
            raise HwgenError(
                f"unknown weight encoding {d['kind']!r}; expected one of {names}"
            ) from None
        return cls(kind, _json_int(d, "bits"), _json_int(d, "exponents", 0),
                   _json_int(d, "frac_bits", 0))

    # -- code tables --------------------------------------------------------------------------
    def valid_codes(self, codes) -> np.ndarray:
        """Boolean mask: which codes are legal bit patterns of this encoding."""
        c = np.asarray(codes, dtype=np.int64)
        ok = (c >= 0) & (c < (1 << self.bits))
        if self.kind in (EncodingKind.TERNARY, EncodingKind.POW2, EncodingKind.INT):
            ok &= c != (1 << (self.bits - 1))
        elif self.kind is EncodingKind.EXP:
            field_bits = self.bits - 1
            e = c & ((1 << field_bits) - 1)
            sign = c >> field_bits
            ok &= (e <= self.exponents) & ~((e == 0) & (sign == 1))
        return ok

    def decode(self, codes) -> np.ndarray:
        """Codes (unsigned bit patterns) -> integer levels (int64). Raises on an invalid code."""
        c = np.asarray(codes, dtype=np.int64)
        bad = ~self.valid_codes(c)
        if np.any(bad):
            raise HwgenError(
                f"code {int(c[bad].flat[0])} is not a valid {self.describe()} weight code"
            )
        if self.kind is EncodingKind.BINARY:
            return 2 * c - 1
        if self.kind is EncodingKind.EXP:
            field_bits = self.bits - 1
            e = c & ((1 << field_bits) - 1)
            sign = c >> field_bits
            mag = np.where(e == 0, 0, np.left_shift(1, np.maximum(e - 1, 0)))
            return np.where(sign == 1, -mag, mag).astype(np.int64)
        half = 1 << (self.bits - 1)
        return np.where(c >= half, c - (1 << self.bits), c)

    def encode(self, levels) -> np.ndarray:
        """Integer levels -> codes (uint16). Raises if a level cannot be represented."""
        v = np.asarray(levels, dtype=np.int64)
        if self.kind is EncodingKind.BINARY:
            if np.any((v != 1) & (v != -1)):
                raise HwgenError("binary levels must be -1 or +1")
            return ((v + 1) // 2).astype(np.uint16)
        if self.kind is EncodingKind.EXP:
            mag = np.abs(v)
            e = np.zeros_like(mag)
            nz = mag != 0
            e[nz] = np.round(np.log2(mag[nz])).astype(np.int64) + 1
            if np.any(
                nz & ((e > self.exponents) | (np.left_shift(1, np.maximum(e - 1, 0)) != mag))
            ):
                raise HwgenError(
                    f"exponential levels must be 0 or +-2**k with 0 <= k < {self.exponents}"
                )
            sign = (v < 0).astype(np.int64)
            return ((sign << (self.bits - 1)) | e).astype(np.uint16)
        m = self.max_level
        if np.any(np.abs(v) > m):
            raise HwgenError(f"{self.describe()} levels must lie in [-{m}, {m}]")
        return (v & ((1 << self.bits) - 1)).astype(np.uint16)


@dataclass(frozen=True)
class Scale:
    """A per-matrix weight scale ``mantissa * 2**exponent`` with an odd (or unit) mantissa.

    A power-of-two scale (mantissa 1) costs the hardware a shift; any other mantissa a constant
    shift-and-add multiplier per matrix (not per weight).
    """

    mantissa: int
    exponent: int

    def __post_init__(self):
        check_int("Scale mantissa", self.mantissa, minimum=1, maximum=(1 << 24) - 1)
        check_int("Scale exponent", self.exponent, minimum=-128, maximum=127)
        if self.mantissa % 2 == 0:
            raise HwgenError(
                f"Scale mantissa must be odd (normalised), not {self.mantissa}; "
                "use Scale.normalised()"
            )

    @classmethod
    def normalised(cls, mantissa: int, exponent: int) -> Scale:
        mantissa, exponent = int(mantissa), int(exponent)
        if mantissa <= 0:
            raise HwgenError(f"Scale mantissa must be positive, not {mantissa}")
        while mantissa % 2 == 0:
            mantissa //= 2
            exponent += 1
        return cls(mantissa, exponent)

    @classmethod
    def from_float(cls, value: float, mantissa_bits: int = 8) -> Scale:
        """The nearest scale with at most ``mantissa_bits`` significant bits (ties away from
        zero)."""
        check_int("Scale mantissa bits", mantissa_bits, minimum=1, maximum=24)
        value = float(value)
        if not (value > 0 and math.isfinite(value)):
            raise HwgenError(f"a weight scale must be positive and finite, not {value!r}")
        e = math.frexp(value)[1] - 1 - (mantissa_bits - 1)  # exact floor(log2(value))
        m = math.floor(math.ldexp(value, -e) + 0.5)  # < 2**24: the + 0.5 is exact
        return cls.normalised(m, e)

    @property
    def value(self) -> float:
        return math.ldexp(self.mantissa, self.exponent)

    @property
    def is_pow2(self) -> bool:
        return self.mantissa == 1

    def to_json(self) -> list[int]:
        return [self.mantissa, self.exponent]

    @classmethod
    def from_json(cls, v) -> Scale:
        if not (isinstance(v, list) and len(v) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
            raise HwgenError(f"a scale is stored as [mantissa, exponent] integers, not {v!r}")
        return cls(v[0], v[1])

@dataclass(frozen=True)
class Sparsity:
    """N:M structured sparsity of a weight matrix: the one definition of the format.

    Along every row (one output unit), the columns (inputs) are cut into consecutive groups of
    ``m`` starting at column 0; the last group is shorter when ``m`` does not divide the column
    count. Each group holds at most ``n`` non-zero weights. Only encodings with a zero level
    qualify (`WeightEncoding.has_zero`: ternary, pow2, exp, int-N; not binary).

    In every such encoding code 0 is the only code of level 0, so the pattern can be read from
    the codes, the levels or the real values alike (`violation` takes any of them).

    Parameters
    ----------
    n : non-zero weights allowed per group, 1 <= n < m.
    m : group width in columns, at most ``LIMITS["features"]``.

    Raises
    ------
    HwgenError
        ``"Sparsity must be N:M with 1 <= N < M, not '5:4'"`` for anything else.
    """

    n: int
    m: int

    def __post_init__(self):
        bad = HwgenError(f"Sparsity must be N:M with 1 <= N < M, not '{self.n}:{self.m}'")
        for v in (self.n, self.m):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise bad
        if not 1 <= self.n < self.m:
            raise bad
        if self.m > LIMITS["features"]:
            raise HwgenError(
                f"Sparsity group width M must be at most {LIMITS['features']}, not {self.m}"
            )

    @classmethod
    def parse(cls, text: str) -> Sparsity:
        """From the command-line form ``"N:M"``, e.g. ``"2:4"`` (spaces around the numbers are
        allowed)."""
        parts = str(text).split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise HwgenError(f"Sparsity must be N:M with 1 <= N < M, not {str(text)!r}")
        return cls(int(parts[0]), int(parts[1]))

    def describe(self) -> str:
        return f"{self.n}:{self.m}"

    def __str__(self) -> str:
        return self.describe()

    def to_json(self) -> dict:
        return {"n": self.n, "m": self.m}

    @classmethod
    def from_json(cls, d) -> Sparsity:
        if not isinstance(d, dict) or set(d) != {"n", "m"}:
            raise HwgenError(f"a sparsity is stored as {{\"n\": N, \"m\": M}}, not {d!r}")
        return cls(_json_int(d, "n"), _json_int(d, "m"))

    def check_kind(self, kind: EncodingKind) -> None:
        """Raise `HwgenError` unless weights of ``kind`` have a zero level (binary has none)."""
        if kind is EncodingKind.BINARY:
            raise HwgenError(
                f"{self.describe()} sparsity needs weights with a zero level; "
                f"{kind.value} weights have none (use ternary, pow2, exp or int-N)"
            )

    def groups(self, cols: int) -> int:
        """Groups per row of a matrix with ``cols`` columns (the last one may be shorter)."""
        return -(-int(cols) // self.m)

    def _grouped(self, a: np.ndarray, fill) -> np.ndarray:
        """(rows, cols) -> (rows, groups, m), the short last group padded with ``fill``."""
        rows, cols = a.shape
        pad = self.groups(cols) * self.m - cols
        if pad:
            a = np.concatenate([a, np.full((rows, pad), fill, dtype=a.dtype)], axis=1)
        return a.reshape(rows, self.groups(cols), self.m)

    def counts(self, weights) -> np.ndarray:
        """Non-zero weights per group: int64 (rows, groups) for 2-D ``weights`` (codes, levels
        or values; zero means zero). Group g covers columns g*m .. min(g*m + m, cols) - 1."""
        a = np.asarray(weights)
        if a.ndim != 2:
            raise HwgenError(f"N:M sparsity applies to a 2-D matrix, not shape {a.shape}")
        if a.shape[1] == 0:
            return np.zeros((a.shape[0], 0), np.int64)
        return np.count_nonzero(self._grouped(a != 0, False), axis=2).astype(np.int64)

    def violation(self, weights) -> tuple[int, int, int] | None:
        """The first ``(row, group, non-zeros)`` whose group holds more than ``n`` non-zero
        weights (row-major order), or None when the 2-D ``weights`` satisfy this sparsity
        (see `counts`)."""
        count = self.counts(weights)
        bad = np.argwhere(count > self.n)
        if not len(bad):
            return None
        r, g = (int(i) for i in bad[0])
        return r, g, int(count[r, g])

    def check(self, weights, what: str) -> None:
        """Raise `HwgenError` naming ``what``, the row, the group and its columns unless
        ``weights`` satisfy this sparsity (see `violation`)."""
        v = self.violation(weights)
        if v is None:
            return
        r, g, count = v
        cols = np.asarray(weights).shape[1]
        last = min(g * self.m + self.m, cols) - 1
        raise HwgenError(
            f"{what} violates its {self.describe()} sparsity: row {r}, group {g} (columns "
            f"{g * self.m}..{last}) holds {count} non-zero weights; at most {self.n} are allowed"
        )

    def mask(self, weights) -> np.ndarray:
        """Boolean mask of the weights magnitude pruning keeps: in each group the ``n`` largest
        |w| (ties: the lowest column first); every column of a group of at most ``n``
        columns. Pure; ``weights`` is a finite 2-D float matrix."""
        a = np.asarray(weights, dtype=np.float64)
        if a.ndim != 2:
            raise HwgenError(f"N:M sparsity applies to a 2-D matrix, not shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise HwgenError("weights contain NaN or infinity")
        rows, cols = a.shape
        g = self._grouped(np.abs(a), -np.inf)  # padding sorts last
        order = np.argsort(-g, axis=2, kind="stable")  # largest first, ties by column
        keep = np.zeros(g.shape, dtype=bool)
        np.put_along_axis(keep, order[:, :, : self.n], True, axis=2)
        return keep.reshape(rows, g.shape[1] * self.m)[:, :cols]

    def prune(self, weights) -> np.ndarray:
        """``weights`` (float64) with every weight outside `mask` set to 0: the result satisfies
        this sparsity and keeps each group's ``n`` largest magnitudes."""
        a = np.asarray(weights, dtype=np.float64)
        return np.where(self.mask(a), a, 0.0)


#: Per-row multipliers (`QuantMatrix.row_mult`) are integers in [0, ROW_MULT_LIMIT): stored as
#: uint16 in the model file, one unsigned 16-bit operand of the scaler's multiply in hardware.
ROW_MULT_LIMIT = 1 << 16


def _check_row_mult(row_mult, rows: int) -> np.ndarray:
    """``row_mult`` as a read-only int64 copy, or `HwgenError` naming what is wrong: it must be a
    1-D integer NumPy array with one entry per row, each in [0, ROW_MULT_LIMIT)."""
    if not isinstance(row_mult, np.ndarray):
        raise HwgenError(f"row_mult must be a 1-D integer NumPy array or None, not "
                         f"{type(row_mult).__name__}")
    if row_mult.ndim != 1 or row_mult.shape[0] != rows:
        raise HwgenError(f"row_mult must hold one multiplier per row ({rows},), not shape "
                         f"{row_mult.shape}")
    if row_mult.dtype == np.bool_ or not np.issubdtype(row_mult.dtype, np.integer):
        raise HwgenError(f"row_mult must hold integers, not {row_mult.dtype}")
    if row_mult.size:
        lo, hi = int(row_mult.min()), int(row_mult.max())
        if lo < 0 or hi >= ROW_MULT_LIMIT:
            r = int(np.argmax((row_mult < 0) | (row_mult >= ROW_MULT_LIMIT)))
            raise HwgenError(f"row_mult[{r}] is {int(row_mult[r])}; a row multiplier must lie in "
                             f"[0, {ROW_MULT_LIMIT - 1}]")
    out = row_mult.astype(np.int64)  # a copy: the matrix does not share the caller's array
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class QuantMatrix:
    """A quantized weight matrix: codes (rows = output units) with one encoding and one scale.

    ``nm``, when set, declares N:M structured sparsity (`Sparsity`) along the columns of every
    row; construction checks that the encoding has a zero and that the codes satisfy it (raises
    `HwgenError` naming the row and group). None: dense (no promise about zeros).

    ``row_mult``, when set, is an integer multiplier per output row (issue 26: per-row scales,
    e.g. a folded normalization): a 1-D integer array of ``rows`` entries, each in
    [0, `ROW_MULT_LIMIT`), validated at construction and kept as a read-only int64 copy. The
    real weight (r, c) is then ``level[r, c] * row_mult[r] * scale.value``, and a row's term
    ``align(acc * row_mult[r] * scale.mantissa, term_shift)`` (one rounding; docs/numerics.md).
    None (the default): one scale for the whole matrix, exactly as before row multipliers
    existed. `row_multipliers` makes (row_mult, scale) from real per-row factors.
    """

    codes: np.ndarray  # uint16, shape (rows, cols)
    encoding: WeightEncoding
    scale: Scale
    nm: Sparsity | None = None
    row_mult: np.ndarray | None = None  # int64 (rows,), each in [0, ROW_MULT_LIMIT)

    def __post_init__(self):
        if self.nm is not None:
            if not isinstance(self.nm, Sparsity):
                raise HwgenError(f"nm must be a Sparsity or None, not {self.nm!r}")
            self.nm.check_kind(self.encoding.kind)
            self.nm.check(self.codes, "the matrix")
        if self.row_mult is not None:
            rows = int(np.shape(self.codes)[0]) if np.ndim(self.codes) == 2 else -1
            object.__setattr__(self, "row_mult", _check_row_mult(self.row_mult, rows))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)

    @property
    def levels(self) -> np.ndarray:
        return self.encoding.decode(self.codes)

    @property
    def row_factors(self) -> np.ndarray:
        """The integer each row's levels are multiplied by before the scale: ``row_mult``, or
        ones (int64, one per row) for a matrix without row multipliers."""
        if self.row_mult is None:
            return np.ones(self.codes.shape[0], np.int64)
        return self.row_mult

    @property
    def values(self) -> np.ndarray:
        """Real values: ``level * scale`` (times ``row_mult[r]`` on row r when set), in float64
        (exact while the integer product ``level * row_mult * mantissa`` stays below 2**53)."""
        levels = self.levels.astype(np.int64)
        if self.row_mult is not None:
            levels = levels * self.row_mult[:, None]
        return levels.astype(np.float64) * self.scale.value

    @property
    def memory_bits(self) -> int:
        return int(self.codes.size) * self.encoding.bits

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights (zero weights cost neither hardware nor cycles when skipped)."""
        return float(np.mean(self.levels == 0)) if self.codes.size else 0.0

    def equals(self, other: QuantMatrix) -> bool:
        same_rows = (self.row_mult is None and other.row_mult is None) or (
            self.row_mult is not None and other.row_mult is not None
            and bool(np.array_equal(self.row_mult, other.row_mult)))
        return (
            self.encoding == other.encoding
            and self.scale == other.scale
            and self.nm == other.nm
            and same_rows
            and self.codes.shape == other.codes.shape
            and bool(np.array_equal(self.codes, other.codes))
        )


def fit_row_scales(m: QuantMatrix, weights, bits: int = 8) -> QuantMatrix:
    """``m`` with per-row multipliers fitted to the real ``weights`` it quantizes (same shape):
    its levels stay, and each row's real scale becomes the least-squares factor
    ``f_r = <w_r, l_r> / <l_r, l_r>`` (0 for a row without non-zero levels, never negative),
    made integer by `row_multipliers` (``bits`` significant bits for the largest row, a common
    power-of-two scale). Post-training quantization with a scale per row (``hwgen import
    --row-scales``): never a worse fit per row than one scale for the matrix, up to the
    multipliers' rounding."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != m.shape:
        raise HwgenError(f"weights of shape {w.shape} do not match the matrix {m.shape}")
    levels = m.levels.astype(np.float64)
    den = (levels * levels).sum(axis=1)
    num = (levels * w).sum(axis=1)
    factors = np.where(den > 0, np.maximum(num, 0.0) / np.where(den > 0, den, 1.0), 0.0)
    mult, scale = row_multipliers(factors, bits)
    return QuantMatrix(m.codes, m.encoding, scale, m.nm, mult)


def row_multipliers(factors, bits: int = 8) -> tuple[np.ndarray, Scale]:
    """Integer row multipliers and a common power-of-two `Scale` for real per-row factors.

    ``factors``: one non-negative finite real per row, the real per-row scale of that row (its
    levels times its factor are its real weights). Returns ``(row_mult, scale)`` with
    ``row_mult`` an int64 array (each in [0, `ROW_MULT_LIMIT`)) and ``scale = 2**e`` (mantissa
    1, so the per-matrix multiply is a plain shift) such that ``row_mult[r] * scale.value`` is
    the multiple of 2**e nearest ``factors[r]`` (ties up): the largest factor gets a multiplier
    of at most ``bits`` significant bits (1 <= bits <= 16) and every other row is rounded on the
    same grid (a row much smaller than the largest may round to 0). Error: half a grid step,
    for every row ``|row_mult[r] * scale.value - factors[r]| <= max(factors) / (2**bits - 1/2)``
    (about ``2**-bits * max(factors)``; the largest row is within that relative error, a row
    k times smaller within k times that). Common factors of two are moved from
    the multipliers into the exponent (same values, narrower multipliers).

    All factors zero (or no rows): the defined result ``(zeros, Scale(1, 0))``, exactly the
    factors. A factor that is negative, NaN or infinite, or a non-1-D input, raises
    `HwgenError`; so does a range that needs an exponent outside `Scale`'s [-128, 127].
    """
    check_int("row multiplier bits", bits, minimum=1, maximum=16)
    try:
        f = np.asarray(factors, dtype=np.float64)
    except (TypeError, ValueError):
        raise HwgenError(f"row factors must be real numbers, not {factors!r}") from None
    if f.ndim != 1:
        raise HwgenError(f"row factors must be a 1-D array (one per row), not shape {f.shape}")
    bad = ~np.isfinite(f) | (f < 0)
    if bad.any():
        r = int(np.argmax(bad))
        raise HwgenError(f"row factor {r} is {float(f[r])!r}; row factors must be finite and >= 0")
    top = float(f.max()) if f.size else 0.0
    if top == 0.0:
        return np.zeros(f.shape, np.int64), Scale(1, 0)
    e = math.frexp(top)[1] - bits  # 2**(bits-1) <= top / 2**e < 2**bits
    mult = round_half_up(np.ldexp(f, -e)).astype(np.int64)  # exact scaling by a power of two
    if int(mult.max()) >= 1 << bits:  # the largest rounded up to 2**bits: one grid step coarser
        e += 1
        mult = round_half_up(np.ldexp(f, -e)).astype(np.int64)
    while not np.any(mult & 1):  # not all zero here: the largest is >= 2**(bits-2) >= 1
        mult >>= 1
        e += 1
    if not -128 <= e <= 127:
        raise HwgenError(f"row factors up to {top:g} need a scale exponent of {e}, outside "
                         "[-128, 127]")
    return mult, Scale(1, e)


@dataclass(frozen=True)
class Formats:
    """Every fixed-point format of a model. See docs/numerics.md for the arithmetic they define.

    - ``input``: vector inputs (or embedding entries for token models), signed.
    - ``state``: hidden state h and tanh outputs; signed with no integer bits (width = frac + 1).
    - ``gate_frac``: fraction bits of every pre-activation (gate) value and of the activation
      tables' inputs. Widths of pre-activations are derived from the weights (no overflow).
    - ``sigmoid_in_width`` / ``tanh_in_width``: index width of each table (its input saturates to
      that many bits at ``gate_frac`` fraction bits, so a table has 2**width entries).
    - ``sigmoid_frac``: sigmoid outputs are unsigned codes 0 .. 2**sigmoid_frac (1.0 exactly).
    - ``cell``: LSTM cell state c, signed, saturating (None for other cells).
    - ``output_frac``: fraction bits of the head's logits (width derived, no overflow).
    """

    input: FixedFormat
    state: FixedFormat
    gate_frac: int
    sigmoid_in_width: int
    sigmoid_frac: int
    tanh_in_width: int
    output_frac: int
    cell: FixedFormat | None = None

    def __post_init__(self):
        if not self.input.signed:
            raise HwgenError("the input format must be signed")
        if not self.state.signed or self.state.width != self.state.frac + 1:
            raise HwgenError(
                f"the state format must be signed with no integer bits (width = frac + 1), "
                f"not {self.state.describe()}"
            )
        if self.state.frac < 1:
            raise HwgenError("the state format needs at least 1 fraction bit")
        check_int("Gate fraction bits", self.gate_frac, minimum=0, maximum=24)
        check_int("Sigmoid table input width", self.sigmoid_in_width, minimum=2, maximum=18)
        check_int("Tanh table input width", self.tanh_in_width, minimum=2, maximum=18)
        check_int("Sigmoid fraction bits", self.sigmoid_frac, minimum=1, maximum=16)
        check_int("Output fraction bits", self.output_frac, minimum=0, maximum=24)
        if self.cell is not None:
            if not self.cell.signed:
                raise HwgenError("the LSTM cell-state format must be signed")
            if self.cell.frac > self.sigmoid_frac + self.state.frac:
                raise HwgenError(
                    f"the cell-state format has {self.cell.frac} fraction bits; at most "
                    f"sigmoid_frac + state frac = {self.sigmoid_frac + self.state.frac} are exact"
                )

    @classmethod
    def standard(
        cls, bits: int = 8, *, input: FixedFormat | None = None, lstm: bool = False
    ) -> Formats:
        """The default family of formats, set by one precision knob ``bits`` (8 by default):
        state s{bits}.{bits-1}, gate_frac = bits - 2, sigmoid outputs with ``bits`` fraction bits,
        tables of 2**(gate_frac + 4) (sigmoid, inputs in [-8, 8)) and 2**(gate_frac + 3) (tanh,
        [-4, 4)) entries, logits at gate_frac, LSTM cell state s{bits+5}.{bits-1} (range +-32).
        Inputs default to s8.5 (range [-4, 4))."""
        bits = check_int("Format bits", bits, minimum=3, maximum=14)
        gate_frac = bits - 2
        return cls(
            input=input if input is not None else FixedFormat(8, 5),
            state=FixedFormat(bits, bits - 1),
            gate_frac=gate_frac,
            sigmoid_in_width=gate_frac + 4,
            sigmoid_frac=bits,
            tanh_in_width=gate_frac + 3,
            output_frac=gate_frac,
            cell=FixedFormat(bits + 5, bits - 1) if lstm else None,
        )

    @property
    def sigmoid_one(self) -> int:
        return 1 << self.sigmoid_frac

    def to_json(self) -> dict:
        return {
            "input": self.input.to_json(),
            "state": self.state.to_json(),
            "gate_frac": self.gate_frac,
            "sigmoid_in_width": self.sigmoid_in_width,
            "sigmoid_frac": self.sigmoid_frac,
            "tanh_in_width": self.tanh_in_width,
            "output_frac": self.output_frac,
            "cell": None if self.cell is None else self.cell.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Formats:
        if not isinstance(d, dict):
            raise HwgenError(f"formats are an object, not {d!r}")
        for key in ("input", "state"):
            if key not in d:
                raise HwgenError(f"'{key}' is missing")
        return cls(
            input=FixedFormat.from_json(d["input"]),
            state=FixedFormat.from_json(d["state"]),
            gate_frac=_json_int(d, "gate_frac"),
            sigmoid_in_width=_json_int(d, "sigmoid_in_width"),
            sigmoid_frac=_json_int(d, "sigmoid_frac"),
            tanh_in_width=_json_int(d, "tanh_in_width"),
            output_frac=_json_int(d, "output_frac"),
            cell=None if d.get("cell") is None else FixedFormat.from_json(d["cell"]),
        )


@dataclass(frozen=True)
class VectorInput:
    """Real-valued feature vectors, quantized by ``Formats.input``."""

    features: int

    @property
    def width(self) -> int:
        return self.features


@dataclass(frozen=True)
class TokenInput:
    """Token ids 0 .. vocab-1 looked up in an embedding table of ``dim`` entries per token."""

    vocab: int
    dim: int

    @property
    def width(self) -> int:
        return self.dim


@dataclass(frozen=True, eq=False)
class Layer:
    """One recurrent layer. Rows of ``wx`` / ``wh`` are gate-major: gate g, unit j is row g*H + j.

    ``bias`` holds the combined input + recurrent bias of every gate row as integers with
    ``gate_frac`` fraction bits, except for the GRU n gate, whose recurrent bias sits inside the
    reset product and is kept apart in ``bias_hn`` (PyTorch's b_hn).
    """

    wx: QuantMatrix
    wh: QuantMatrix
    bias: np.ndarray  # int64 (G*H,)
    bias_hn: np.ndarray | None = None  # int64 (H,), GRU only


@dataclass(frozen=True, eq=False)
class Head:
    """Dense output layer: logits = W h_top + b, logits with ``output_frac`` fraction bits."""

    w: QuantMatrix  # (outputs, hidden)
    bias: np.ndarray  # int64 (outputs,)
    argmax: bool = False

    @property
    def outputs(self) -> int:
        return self.w.shape[0]


@dataclass(frozen=True, eq=False)
class Model:
    """A frozen, quantized recurrent model: the one thing every later stage consumes."""

    cell: CellKind
    input: VectorInput | TokenInput
    hidden: int
    layers: tuple[Layer, ...]
    head: Head
    formats: Formats
    sigmoid_table: np.ndarray  # int64 (2**sigmoid_in_width,), codes 0 .. 2**sigmoid_frac
    tanh_table: np.ndarray  # int64 (2**tanh_in_width,), state-format codes
    embedding: np.ndarray | None = None  # int64 (vocab, dim), input-format codes
    meta: dict = field(default_factory=dict)
    #: delta network thresholds (issue 23): a `hwgen.delta.DeltaThresholds`, None for dense
    delta: object | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def outputs(self) -> int:
        return self.head.outputs

    def layer_input_width(self, index: int) -> int:
        return self.input.width if index == 0 else self.hidden

    def layer_input_format(self, index: int) -> FixedFormat:
        return self.formats.input if index == 0 else self.formats.state

    def matrices(self) -> list[tuple[str, QuantMatrix]]:
        out = []
        for i, layer in enumerate(self.layers):
            out += [(f"layer{i}.wx", layer.wx), (f"layer{i}.wh", layer.wh)]
        out.append(("head.w", self.head.w))
        return out

    def map_matrices(self, fn) -> Model:
        """This model with every matrix ``m`` (named as in `matrices`) replaced by
        ``fn(name, m)``; everything else shared."""
        import dataclasses

        layers = tuple(dataclasses.replace(ly, wx=fn(f"layer{i}.wx", ly.wx),
                                           wh=fn(f"layer{i}.wh", ly.wh))
                       for i, ly in enumerate(self.layers))
        head = dataclasses.replace(self.head, w=fn("head.w", self.head.w))
        return dataclasses.replace(self, layers=layers, head=head)

    @property
    def weight_memory_bits(self) -> int:
        return sum(m.memory_bits for _, m in self.matrices())

    def __repr__(self) -> str:  # issue 25: one line, not the ~11 kB of the dataclass fields
        from .report import weights_summary

        inp = self.input
        src = (f"{inp.vocab} tokens x {inp.dim} dims" if isinstance(inp, TokenInput)
               else f"{inp.features} inputs")
        nm = self.layers[0].wh.nm
        source = self.meta.get("source") or self.meta.get("imported_from")
        return (f"Model({self.cell.value}: {src} -> {self.num_layers} x {self.hidden} hidden -> "
                f"{self.outputs} outputs{', argmax' if self.head.argmax else ''}; weights "
                f"{weights_summary(self)}" + (f", {nm} sparse" if nm is not None else "")
                + f", {self.weight_memory_bits} bits; input {self.formats.input.describe()}, "
                f"state {self.formats.state.describe()}"
                + (f"; from {source}" if source else "") + ")")


def pack_codes(codes, bits: int, per_word: int) -> np.ndarray:
    """Pack weight codes into ROM words: code k of a word sits at bits [k*bits, (k+1)*bits).

    ``codes`` has shape (..., n) with n a multiple of ``per_word``; the result has shape
    (..., n // per_word) of Python-int-safe uint64 (words up to 64 bits) or object ints beyond.
    """
    c = np.asarray(codes, dtype=np.int64)
    if c.shape[-1] % per_word:
        raise HwgenError(f"cannot pack {c.shape[-1]} codes into words of {per_word}")
    c = c.reshape(*c.shape[:-1], c.shape[-1] // per_word, per_word)
    if bits * per_word <= 63:
        shifts = np.arange(per_word, dtype=np.int64) * bits
        return np.sum(c << shifts, axis=-1).astype(np.uint64)
    out = np.empty(c.shape[:-1], dtype=object)
    for idx in np.ndindex(*c.shape[:-1]):
        out[idx] = sum(int(v) << (k * bits) for k, v in enumerate(c[idx]))
    return out


def unpack_codes(words, bits: int, per_word: int) -> np.ndarray:
    """Inverse of `pack_codes`."""
    w = np.asarray(words, dtype=object)
    mask = (1 << bits) - 1
    out = np.empty(w.shape + (per_word,), dtype=np.int64)
    for idx in np.ndindex(*w.shape):
        v = int(w[idx])
        for k in range(per_word):
            out[idx + (k,)] = (v >> (k * bits)) & mask
    return out.reshape(*w.shape[:-1], w.shape[-1] * per_word) if w.ndim else out
