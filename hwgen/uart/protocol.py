"""The link's framing protocol, version 3, shared by the gateware (`FrameEngine`) and the host
(`hwgen.host`). docs/uart.md is the reference; in short, every frame, in both directions::

    0xA5  CMD  SEQ  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC_LO  CRC_HI

CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR;
check value of "123456789" 0x29B1) over CMD, SEQ, LEN_LO, LEN_HI and the payload, sent
little-endian. Every reply carries the SEQ of its request; replies come in request order, and the
host keeps at most ``WINDOW`` requests outstanding.

=========  =====  ==============================================================================
command    code   payload
=========  =====  ==============================================================================
PING       0x01   none; reply INFO
STEP       0x02   one accelerator input transfer (its stream payload bits, little-endian, padded
                  to whole bytes: start-of-sequence flag and input vector or token); reply OUTPUT
RUN        0x04   MODE (1), COUNT (1), COUNT input transfers; reply OUTPUTS: every step's output
                  transfer (MODE 0, ``Mode.ALL``), the last one's (1, ``LAST``) or every step's
                  class (2, ``CLASSES``: CLASS_BYTES each; a model with an argmax only)
BEGIN      0x10   none: start a load (the device stops computing until a verified COMMIT);
                  reply STATUS
LOAD       0x11   memory index (1), first word address (3, LE), then whole words of WORD_BYTES
                  bytes each (LE); reply STATUS
COMMIT     0x12   the load's CRC-32 (4, LE) and the shape id (4, LE) the host loaded for; reply
                  STATUS
INFO       0x81   protocol version (1), input payload bytes (2, LE), output payload bytes (2,
                  LE), flags (1), shape id (4, LE), WORD_BYTES (1), load CRC-32 (4, LE),
                  MAX_STEPS (2, LE), WINDOW (1), CLASS_BYTES (1; 0: no argmax)
OUTPUT     0x82   one accelerator output transfer (logits [and class], little-endian bytes)
OUTPUTS    0x84   a RUN's answer (see RUN)
STATUS     0x83   flags (1), load CRC-32 so far (4, LE), words written since BEGIN (3, LE)
ERROR      0xFF   error code, the command byte received
=========  =====  ==============================================================================

Flags: bit 0 loadable (the device has a load port), bit 1 loaded (a verified load, or a ROM
device: it computes), bit 2 dirty (a frame was rejected since BEGIN: COMMIT will fail).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..spec import HwgenError

__all__ = [
    "SYNC",
    "PROTOCOL_VERSION",
    "HEADER_BYTES",
    "Cmd",
    "ErrorCode",
    "Flag",
    "INFO_BYTES",
    "TRAILER_BYTES",
    "RUN_HEADER_BYTES",
    "STATUS_BYTES",
    "LOAD_HEADER_BYTES",
    "ERROR_TEXT",
    "Mode",
    "WINDOW",
    "crc16",
    "Frame",
    "encode_frame",
    "FrameParser",
    "ProtocolError",
]

SYNC = 0xA5
PROTOCOL_VERSION = 3
HEADER_BYTES = 5  # SYNC, CMD, SEQ, LEN_LO, LEN_HI
INFO_BYTES = 19
TRAILER_BYTES = 2  # CRC_LO, CRC_HI
RUN_HEADER_BYTES = 2  # MODE, COUNT
#: Requests a host may have outstanding (sent, reply not yet read in full).
WINDOW = 2
STATUS_BYTES = 8
LOAD_HEADER_BYTES = 4  # memory index, first word address (3 bytes)


class Cmd(enum.IntEnum):
    PING = 0x01
    STEP = 0x02
    RUN = 0x04
    BEGIN = 0x10
    LOAD = 0x11
    COMMIT = 0x12
    INFO = 0x81
    OUTPUT = 0x82
    STATUS = 0x83
    OUTPUTS = 0x84
    ERROR = 0xFF


class Flag(enum.IntFlag):
    """Bits of the flags byte in INFO and STATUS."""

    LOADABLE = 1
    LOADED = 2
    DIRTY = 4


class ErrorCode(enum.IntEnum):
    """Why the device rejected a frame (the first payload byte of an ERROR frame)."""

    CRC = 1
    LENGTH = 2
    COMMAND = 3
    TIMEOUT = 4
    FRAMING = 5
    NOT_LOADED = 6
    ADDRESS = 7
    OVERRUN = 8
    WINDOW = 9
    MODE = 10


class Mode(enum.IntEnum):
    """What a RUN frame asks back (its MODE byte)."""

    ALL = 0  # every step's output transfer
    LAST = 1  # the last step's output transfer
    CLASSES = 2  # every step's class (models with an argmax)


ERROR_TEXT = {
    ErrorCode.CRC: "the frame's checksum did not match (a byte was corrupted or lost on the line)",
    ErrorCode.LENGTH: "the frame's length field is wrong for its command (corrupted header, or a "
    "model / bitstream mismatch)",
    ErrorCode.COMMAND: "unknown command byte (corrupted header)",
    ErrorCode.TIMEOUT: "the frame stopped arriving before it was complete (a byte was lost)",
    ErrorCode.FRAMING: "a byte had a bad stop bit (wrong baud rate or line noise)",
    ErrorCode.NOT_LOADED: "the device holds no verified model (load one with 'hwgen load')",
    ErrorCode.ADDRESS: "a LOAD frame named a memory or word address the device does not have "
    "(a load for another bitstream)",
    ErrorCode.OVERRUN: "a byte arrived before the device took the previous one (a byte was lost)",
    ErrorCode.WINDOW: "the host sent a frame while both of the device's frame buffers were "
    f"taken (at most {WINDOW} requests may be outstanding; the frame was dropped)",
    ErrorCode.MODE: "a RUN frame asked for an unknown MODE, or for classes of a model without "
    "an argmax",
}


class ProtocolError(HwgenError):
    """A frame that could not be read, or that the device rejected."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE, polynomial 0x1021, MSB first, from ``crc`` (the gateware computes
    the same one bit a cycle: `hwgen.uart.crc.crc16_serial`)."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    if not 0 <= seq <= 255:
        raise HwgenError(f"a frame's sequence number is one byte, not {seq}")
    if len(payload) > 0xFFFF:
        raise HwgenError(f"a frame's payload is at most 65535 bytes, not {len(payload)}")
    body = bytes([int(cmd), seq, len(payload) & 0xFF, len(payload) >> 8]) + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(TRAILER_BYTES, "little")


class FrameParser:
    """Incremental frame reader: `feed` bytes, get complete frames.

    Bytes before a SYNC byte are skipped (and counted in ``skipped``). A frame whose length exceeds
    ``max_payload`` or whose checksum is wrong raises `ProtocolError` (the parser resynchronizes on
    the next SYNC byte afterwards).
    """

    def __init__(self, max_payload: int = 0xFFFF):
        self.max_payload = max_payload
        self.skipped = 0
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while True:
            i = self._buf.find(SYNC)
            if i < 0:
                self.skipped += len(self._buf)
                self._buf.clear()
                return frames
            self.skipped += i
            del self._buf[:i]
            if len(self._buf) < HEADER_BYTES:
                return frames
            n = self._buf[3] | self._buf[4] << 8
            if n > self.max_payload:
                head = bytes(self._buf[:HEADER_BYTES])
                del self._buf[:1]
                raise ProtocolError(
                    f"received a frame header announcing {n} payload bytes (at most "
                    f"{self.max_payload} expected): corrupted bytes {head.hex(' ')}"
                )
            if len(self._buf) < HEADER_BYTES + n + TRAILER_BYTES:
                return frames
            body = bytes(self._buf[1 : HEADER_BYTES + n])
            crc = int.from_bytes(self._buf[HEADER_BYTES + n : HEADER_BYTES + n + 2], "little")
            if crc16(body) != crc:
                del self._buf[:1]
                raise ProtocolError(
                    f"received a frame with a bad checksum (cmd 0x{body[0]:02x}, seq {body[1]}, "
                    f"{n} bytes; CRC 0x{crc:04x}, computed 0x{crc16(body):04x}): a byte was "
                    "corrupted or lost on the line"
                )
            del self._buf[: HEADER_BYTES + n + TRAILER_BYTES]
            frames.append(Frame(body[0], body[1], body[4:]))
