"""Host side of the UART link (docs/uart.md): frames, stream payload packing, running sequences.

Layers, each usable alone:

- `Link`: requests and replies over any pyserial-compatible port (``write``, ``read`` with a
  timeout, optionally ``reset_input_buffer``): a real ``serial.Serial`` or the simulated
  `hwgen.uart.sim.SimSerial`. Stop and wait; every failure is a `ProtocolError` (a `HwgenError`)
  that says what happened: the device's own error report, a bad checksum, a stale reply, or no
  reply within ``timeout`` seconds. Nothing waits forever.
- `pack` / `unpack`: an Amaranth data layout (the accelerator's stream payloads, from
  `hwgen.gateware.core.input_layout` / `output_layout`) to and from little-endian bytes, so the
  host never re-derives bit positions.
- `StreamHost`: runs sequences through a link, one STEP frame per timestep, the first timestep of
  each sequence with the start-of-sequence flag.
- `first_mismatch`: where hardware and golden outputs differ (sequence, timestep, index).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape

from . import payload
from .spec import HwgenError
from .uart.protocol import (
    ERROR_TEXT,
    INFO_BYTES,
    LOAD_HEADER_BYTES,
    PROTOCOL_VERSION,
    STATUS_BYTES,
    Cmd,
    ErrorCode,
    Flag,
    Frame,
    FrameParser,
    ProtocolError,
    encode_frame,
)

__all__ = [
    "DeviceInfo",
    "LoadStatus",
    "Link",
    "pack",
    "unpack",
    "StreamHost",
    "open_serial",
    "first_mismatch",
    "ProtocolError",
]


def _le(b: bytes) -> int:
    return int.from_bytes(bytes(b), "little")


@dataclass(frozen=True)
class DeviceInfo:
    """What a PING returns: protocol version, the payload sizes the bitstream was built for and,
    for a loadable device, its state: ``loadable``, ``loaded`` (a verified load; always true for
    a ROM device), ``shape_id`` (`hwgen.shape.shape_id`), bytes per LOAD word and the CRC-32 of
    the current load."""

    version: int
    in_bytes: int
    out_bytes: int
    loadable: bool = False
    loaded: bool = True
    shape_id: int = 0
    word_bytes: int = 0
    load_crc: int = 0


@dataclass(frozen=True)
class LoadStatus:
    """A STATUS reply: ``loaded``, ``dirty`` (a frame was rejected since BEGIN), the CRC-32 of
    the words written since BEGIN and their count."""

    loaded: bool
    dirty: bool
    crc: int
    words: int

    @classmethod
    def parse(cls, p: bytes) -> LoadStatus:
        if len(p) != STATUS_BYTES:
            raise ProtocolError(f"a STATUS reply has {len(p)} bytes, not {STATUS_BYTES}")
        return cls(bool(p[0] & Flag.LOADED), bool(p[0] & Flag.DIRTY), _le(p[1:5]), _le(p[5:8]))


class Link:
    """Request / reply over a serial port (see the module docstring).

    Parameters
    ----------
    port : pyserial-compatible object.
    timeout : seconds to wait for each reply.
    """

    def __init__(self, port, *, timeout: float = 2.0, max_payload: int = 4096):
        self.port = port
        self.timeout = float(timeout)
        self._seq = 0
        self._parser = FrameParser(max_payload)

    def request(self, cmd: Cmd, payload: bytes = b"") -> Frame:
        """Send one frame and return the device's reply to it."""
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        name = Cmd(cmd).name
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()
        self._parser = FrameParser(self._parser.max_payload)
        self.port.write(encode_frame(cmd, seq, payload))
        if hasattr(self.port, "flush"):
            self.port.flush()
        deadline = time.monotonic() + self.timeout
        while True:
            if time.monotonic() > deadline:
                got = self._parser.pending + self._parser.skipped
                raise ProtocolError(
                    f"no reply from the device within {self.timeout:g} s to {name} frame {seq} "
                    f"({got} bytes of a reply received): check the port, the baud rate and that "
                    "the bitstream is loaded"
                )
            waiting = getattr(self.port, "in_waiting", 0) or 1
            chunk = self.port.read(waiting)
            for f in self._parser.feed(chunk):
                if f.cmd == Cmd.ERROR:
                    code = f.payload[0] if f.payload else 0
                    try:
                        text = ERROR_TEXT[ErrorCode(code)]
                        cname = ErrorCode(code).name
                    except ValueError:
                        text, cname = "unknown error code", str(code)
                    raise ProtocolError(
                        f"the device rejected {name} frame {seq}: {cname}: {text}"
                    )
                if f.seq != seq:
                    raise ProtocolError(
                        f"received a reply to frame {f.seq} while waiting for frame {seq} "
                        "(a stale or duplicated reply)"
                    )
                return f

    def ping(self) -> DeviceInfo:
        f = self.request(Cmd.PING)
        p = f.payload
        if f.cmd != Cmd.INFO or not p:
            raise ProtocolError(f"PING got command 0x{f.cmd:02x} with {len(p)} bytes")
        if p[0] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the device speaks protocol version {p[0]}; this host speaks "
                f"{PROTOCOL_VERSION}: rebuild the bitstream with this hwgen"
            )
        if len(p) != INFO_BYTES:
            raise ProtocolError(f"an INFO reply has {len(p)} bytes, not {INFO_BYTES}")
        return DeviceInfo(p[0], _le(p[1:3]), _le(p[3:5]), bool(p[5] & Flag.LOADABLE),
                          bool(p[5] & Flag.LOADED), _le(p[6:10]), p[10], _le(p[11:15]))

    def _status(self, cmd: Cmd, payload: bytes = b"") -> LoadStatus:
        f = self.request(cmd, payload)
        if f.cmd != Cmd.STATUS:
            raise ProtocolError(f"{cmd.name} got command 0x{f.cmd:02x} instead of STATUS")
        return LoadStatus.parse(f.payload)

    def load(self, images, word_bytes: int, shape_id: int, expected_crc: int, *,
             frame_words: int | None = None, progress=None) -> LoadStatus:
        """Write ``images`` (`plan.LoadImage` list) into a loadable device and commit them:
        BEGIN, LOAD frames of at most ``frame_words`` words (default: about 1 KB), COMMIT with
        ``expected_crc`` (`hwgen.shape.load_crc`) and ``shape_id``. Returns the final STATUS;
        raises `ProtocolError` when the device did not verify the load (it then refuses to
        compute until a load succeeds). ``progress(words_sent, words_total)`` is called after
        every frame."""
        if frame_words is None:
            frame_words = max(1, 1024 // word_bytes)
        total = sum(im.depth for im in images)
        self._status(Cmd.BEGIN)
        sent = 0
        for im in images:
            for a in range(0, im.depth, frame_words):
                chunk = im.words[a : a + frame_words]
                body = bytes([im.index]) + a.to_bytes(LOAD_HEADER_BYTES - 1, "little")
                body += b"".join(int(w).to_bytes(word_bytes, "little") for w in chunk)
                self._status(Cmd.LOAD, body)
                sent += len(chunk)
                if progress is not None:
                    progress(sent, total)
        st = self._status(Cmd.COMMIT, expected_crc.to_bytes(4, "little")
                          + int(shape_id).to_bytes(4, "little"))
        if not st.loaded:
            why = []
            if st.dirty:
                why.append("a frame was rejected during the load")
            if st.crc != expected_crc:
                why.append(f"the device's CRC-32 is 0x{st.crc:08x}, the host's "
                           f"0x{expected_crc:08x}")
            if st.words != total:
                why.append(f"the device wrote {st.words} of {total} words")
            if not why:
                why.append("the device was built for another shape (shape id differs)")
            raise ProtocolError("the device did not verify the load: " + "; ".join(why)
                                + "; it refuses to compute until a load succeeds")
        if st.crc != expected_crc or st.words != total:
            raise ProtocolError(f"the device committed a load the host cannot confirm (CRC "
                                f"0x{st.crc:08x} vs 0x{expected_crc:08x}, {st.words} of "
                                f"{total} words)")
        return st

    def step(self, payload: bytes, out_bytes: int | None = None) -> bytes:
        """One STEP frame (one input transfer) -> the OUTPUT frame's payload."""
        f = self.request(Cmd.STEP, payload)
        if f.cmd != Cmd.OUTPUT:
            raise ProtocolError(f"STEP got command 0x{f.cmd:02x} instead of OUTPUT")
        if out_bytes is not None and len(f.payload) != out_bytes:
            raise ProtocolError(
                f"OUTPUT frame has {len(f.payload)} bytes; the model's output has {out_bytes}"
            )
        return f.payload


# -- payload packing --------------------------------------------------------------------------
def payload_bytes(layout) -> int:
    return -(-Shape.cast(layout).width // 8)


def pack(layout, values: dict) -> bytes:
    """Top-level field name -> integer or integer sequence; returns the payload's bytes
    (little-endian), bit positions from `hwgen.payload` (the manifest's layout)."""
    fields = payload.fields_of(layout)
    unknown = set(values) - {f["name"] for f in fields}
    if unknown:
        names = ", ".join(f["name"] for f in fields)
        raise HwgenError(f"no field {sorted(unknown)[0]!r} in this payload ({names})")
    return payload.pack(fields, values).to_bytes(payload_bytes(layout), "little")


def unpack(layout, raw: bytes) -> dict[str, np.ndarray]:
    """The inverse of `pack`: top-level field name -> int64 array (scalars as shape (1,))."""
    word = int.from_bytes(bytes(raw), "little")
    return {
        k: np.atleast_1d(np.asarray(v, dtype=np.int64))
        for k, v in payload.unpack(payload.fields_of(layout), word).items()
    }


class StreamHost:
    """Runs sequences through a link: one STEP per timestep, SOS on the first of each sequence.

    ``in_layout`` must have a one-bit ``sos`` field and one data field (``x`` or ``token``).
    """

    def __init__(self, link: Link, in_layout, out_layout, *, check_device: bool = True):
        self.link, self.in_layout, self.out_layout = link, in_layout, out_layout
        groups = [f["name"] for f in payload.fields_of(in_layout)]
        if "sos" not in groups or len(groups) != 2:
            raise HwgenError("an input layout needs a 'sos' flag and one data field")
        self.data_field = next(n for n in groups if n != "sos")
        self.in_bytes, self.out_bytes = payload_bytes(in_layout), payload_bytes(out_layout)
        if check_device:
            info = link.ping()
            if (info.in_bytes, info.out_bytes) != (self.in_bytes, self.out_bytes):
                raise HwgenError(
                    f"the device was built for {info.in_bytes}-byte inputs and "
                    f"{info.out_bytes}-byte outputs; this model needs {self.in_bytes} and "
                    f"{self.out_bytes}: load the bitstream built for this model"
                )

    def step(self, x, sos: bool) -> dict[str, np.ndarray]:
        raw = self.link.step(pack(self.in_layout, {"sos": int(sos), self.data_field: x}),
                             self.out_bytes)
        return unpack(self.out_layout, raw)

    def run(self, inputs) -> dict[str, np.ndarray]:
        """``inputs`` (B, T, ...) -> each output field stacked as (B, T, n)."""
        x = np.asarray(inputs)
        out: dict[str, list] = {}
        for b in range(x.shape[0]):
            for t in range(x.shape[1]):
                for name, v in self.step(x[b, t], t == 0).items():
                    out.setdefault(name, []).append(v)
        return {k: np.stack(v).reshape(x.shape[0], x.shape[1], -1) for k, v in out.items()}


def open_serial(device: str, baud: int, timeout: float = 0.1):
    """Open a real serial port with pyserial (imported only here)."""
    try:
        import serial
    except ImportError:  # pragma: no cover - pyserial is a dependency
        raise HwgenError("pyserial is not installed: pip install pyserial==3.5") from None
    try:
        return serial.Serial(device, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError) as e:
        raise HwgenError(f"cannot open serial port {device}: {e}") from None


def first_mismatch(got: np.ndarray, want: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first differing element (sequence, timestep, index), or None if equal."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise HwgenError(f"output shapes differ: hardware {got.shape}, golden {want.shape}")
    diff = np.argwhere(got != want)
    return None if diff.size == 0 else tuple(int(i) for i in diff[0])
