"""CRC networks of the frame engine: CRC-16/CCITT-FALSE one byte a cycle (frames) and CRC-32
(zlib) one bit a cycle (loads).

`crc16_next` is a pure function of its inputs (no state): 16 XOR trees over the 16 CRC bits and
the 8 byte bits, derived from `hwgen.uart.protocol.crc16` itself (the update without its initial
value is linear), so host and gateware cannot disagree.
"""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Mux

from .protocol import crc16

__all__ = ["crc16_next", "crc32_bit", "CRC16_INIT", "CRC32_POLY"]

CRC16_INIT = 0xFFFF
#: CRC-32 (zlib), reflected polynomial.
CRC32_POLY = 0xEDB88320


def _crc16_masks() -> list[int]:
    """Bit i of the updated CRC is the XOR of the bits of ``crc | byte << 16`` in mask i."""
    columns = [crc16(b"\x00", 1 << j) for j in range(16)]
    columns += [crc16(bytes([1 << j]), 0) for j in range(8)]
    return [sum(1 << j for j, col in enumerate(columns) if col >> i & 1) for i in range(16)]


_CRC16_MASKS = _crc16_masks()


def crc16_next(crc, byte):
    """``crc`` (16 bits) updated by ``byte`` (8 bits): a 16-bit Amaranth value, no state."""
    v = Cat(crc, byte)
    return Cat(*[functools.reduce(operator.xor, [v[j] for j in range(24) if mask >> j & 1])
                 for mask in _CRC16_MASKS])


def crc32_bit(crc, bit):
    """CRC-32 (reflected, zlib) ``crc`` updated by one data bit."""
    return (crc >> 1) ^ Mux(crc[0] ^ bit, CRC32_POLY, 0)
