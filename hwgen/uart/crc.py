"""CRC networks of the frame engine, one bit a cycle: CRC-16/CCITT-FALSE (frames) and CRC-32
(zlib, loads).

`crc16_serial` takes a byte's 8 bits in the 8 cycles after it (far less than a byte on any link):
a shift of the CRC register and one XOR per polynomial bit, where a byte a cycle took 16 XOR
trees over 24 bits (about 60 LUT4 more per CRC on iCE40). tests/test_uart.py checks it against
the host's `hwgen.uart.protocol.crc16`.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["crc16_bit", "crc16_serial", "crc32_bit", "CRC16_INIT", "CRC16_POLY",
           "CRC32_POLY"]

CRC16_INIT = 0xFFFF
#: CRC-16/CCITT-FALSE polynomial (MSB first).
CRC16_POLY = 0x1021
#: CRC-32 (zlib), reflected polynomial.
CRC32_POLY = 0xEDB88320


def crc32_bit(crc, bit):
    """CRC-32 (reflected, zlib) ``crc`` updated by one data bit."""
    return (crc >> 1) ^ Mux(crc[0] ^ bit, CRC32_POLY, 0)


def crc16_bit(crc, bit):
    """CRC-16/CCITT-FALSE ``crc`` (16 bits) updated by one data bit (a byte's bits enter MSB
    first)."""
    return (crc << 1)[:16] ^ Mux(crc[15] ^ bit, CRC16_POLY, 0)


def crc16_serial(m, crc, load, byte, clear=None):
    """Add to module ``m`` a bit-serial update of the 16-bit register ``crc``: in a cycle with
    ``load``, ``byte`` is taken, and its bits enter ``crc`` (`crc16_bit`, MSB first) in the 8
    cycles after; a ``load`` must come at least 9 cycles after the previous one. ``clear``
    (optional) drops the bits still pending (the caller resets ``crc`` itself). Returns
    ``idle``, a register: 1 when no bit is pending (``crc`` holds every byte taken)."""
    shift, left, idle = Signal(8), Signal(range(9)), Signal(init=1)
    with m.If(load):
        m.d.sync += [shift.eq(byte), left.eq(8), idle.eq(0)]
    with m.Elif(left != 0):
        m.d.sync += [crc.eq(crc16_bit(crc, shift[7])), shift.eq(shift << 1),
                     left.eq(left - 1), idle.eq(left == 1)]
    if clear is not None:
        with m.If(clear & ~load):
            m.d.sync += [left.eq(0), idle.eq(1)]
    return idle
