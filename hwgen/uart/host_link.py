"""The host end of the link (docs/uart.md): requests, pipelined RUN frames, replies, errors.

`Link` talks to any pyserial-compatible port (``write``, ``read`` with a timeout, optionally
``reset_input_buffer`` / ``in_waiting``): a real ``serial.Serial``, the simulated
`hwgen.uart.sim.SimSerial` or a Verilator board (its ``sim_seconds``: the reply deadline then
runs in simulated time). `Link.request` is stop and wait; `Link.run_steps` pipelines RUN frames,
at most ``WINDOW`` outstanding, replies matched in order. Every failure is a `ProtocolError` (a
`HwgenError`) that says what happened: the device's own error report with the frame number
(and, for RUN, its steps), a bad checksum, a reply cut short, a stale reply, or no reply within
``timeout`` seconds of the last byte. Nothing waits forever. **No resends**: a frame the device
rejected is not sent again (its steps may depend on the hidden state of the steps before); the
error says which frame and steps, and which frames already sent after it were abandoned; the
link resynchronizes itself before its next request (a PING whose INFO it waits for, skipping the
replies of the abandoned frames), and the caller starts the sequence again. `hwgen.host`
re-exports everything here.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from ..spec import HwgenError
from .protocol import (
    ERROR_TEXT,
    INFO_BYTES,
    LOAD_HEADER_BYTES,
    PROTOCOL_VERSION,
    STATUS_BYTES,
    WINDOW,
    Cmd,
    ErrorCode,
    Flag,
    Frame,
    FrameParser,
    Mode,
    ProtocolError,
    encode_frame,
)

__all__ = ["DeviceInfo", "LoadStatus", "Link"]


def _le(b: bytes) -> int:
    return int.from_bytes(bytes(b), "little")


@dataclass(frozen=True)
class DeviceInfo:
    """What a PING returns: protocol version, the payload sizes the bitstream was built for and,
    for a loadable device, its state: ``loadable``, ``loaded`` (a verified load; always true for
    a ROM device), ``shape_id`` (`hwgen.shape.shape_id`), bytes per LOAD word and the CRC-32 of
    the current load; the most steps of a RUN frame, the window and the bytes of a class (0: the
    model has no argmax, RUN MODE 2 is refused)."""

    version: int
    in_bytes: int
    out_bytes: int
    loadable: bool = False
    loaded: bool = True
    shape_id: int = 0
    word_bytes: int = 0
    load_crc: int = 0
    max_steps: int = 1
    window: int = 1
    class_bytes: int = 0


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
    """Requests and replies over a serial port (see the module docstring).

    Parameters
    ----------
    port : pyserial-compatible object; with a ``sim_seconds`` attribute (a simulated board) the
        reply deadline counts simulated seconds, else wall-clock seconds.
    timeout : seconds to wait for the next byte of a reply.
    max_payload : the longest reply payload accepted (a longer LEN is a corrupted header).
    """

    def __init__(self, port, *, timeout: float = 2.0, max_payload: int = 4096):
        self.port = port
        self.timeout = float(timeout)
        self.info: DeviceInfo | None = None
        self._seq = 0
        self._parser = FrameParser(max_payload)
        # frames parsed and not yet consumed: one read may bring several replies (a host that
        # read slowly, replies waiting in its buffer); each waits here for its turn
        self._parsed: deque[Frame] = deque()
        self._outstanding: deque[tuple[int, str]] = deque()
        self._abandoned: set[int] = set()
        self._resync = False

    # -- frames ---------------------------------------------------------------------------------
    def _now(self) -> float:
        t = getattr(self.port, "sim_seconds", None)
        if callable(t):
            t = t()
        return time.monotonic() if t is None else float(t)

    def _send(self, cmd: Cmd, payload: bytes, what: str | None = None) -> int:
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        self._abandoned.discard(seq)
        self._outstanding.append((seq, what or f"{Cmd(cmd).name} frame {seq}"))
        self.port.write(encode_frame(cmd, seq, payload))
        if hasattr(self.port, "flush"):
            self.port.flush()
        return seq

    def _abandon(self, clean: bool) -> None:
        """After an error: the outstanding frames get no answer the caller sees; unless the
        error left the line clean (a device ERROR, nothing else outstanding or half-read), the
        next request resynchronizes first."""
        if self._outstanding or not clean:
            self._resync = True
        self._abandoned.update(s for s, _ in self._outstanding)
        self._outstanding.clear()

    def _read_frame(self, seq: int, what: str, *, skip_others: bool = False) -> Frame:
        """The next frame with SEQ ``seq``; replies to abandoned frames are skipped (all other
        frames and unreadable bytes too with ``skip_others``)."""
        deadline = self._now() + self.timeout
        while True:
            while self._parsed:
                f = self._parsed.popleft()
                if f.seq == seq:
                    return f
                if f.seq in self._abandoned:
                    self._abandoned.discard(f.seq)  # the answer to an abandoned frame
                elif f.cmd == Cmd.ERROR and not skip_others:
                    # replies come in request order: an ERROR with another SEQ answers the
                    # awaited frame, whose SEQ byte was damaged on the way (the CRC caught it)
                    return f
                elif not skip_others and f.seq in {s for s, _ in self._outstanding}:
                    # replies come in request order: a later frame's reply means the awaited
                    # frame never reached the device whole (its SYNC or header lost or damaged)
                    raise ProtocolError(
                        f"no reply to {what}: the device answered frame {f.seq}, sent after "
                        f"it, so {what} was lost on the way (a damaged or lost SYNC or header)")
                elif not skip_others:
                    raise ProtocolError(
                        f"received a reply to frame {f.seq} while waiting for the reply to "
                        f"{what} (a stale or duplicated reply)")
            waiting = getattr(self.port, "in_waiting", 0) or 1
            chunk = self.port.read(waiting)
            before = self._parser.pending
            try:
                frames = self._parser.feed(chunk)
            except ProtocolError:
                if skip_others:
                    continue
                raise
            # the deadline restarts when a reply makes progress, not on bytes the parser skips
            # (an SPI read always returns bytes: the filler between frames)
            if frames or self._parser.pending != before:
                deadline = self._now() + self.timeout
            elif self._now() > deadline:
                self._no_reply(what)
            self._parsed.extend(frames)

    def _receive(self) -> Frame:
        """The reply to the oldest outstanding frame (device ERROR -> `ProtocolError`)."""
        seq, what = self._outstanding[0]
        try:
            f = self._read_frame(seq, what)
        except ProtocolError as e:
            later = self._later(seq)
            self._abandon(clean=False)
            raise ProtocolError(f"{e}{later}") from None
        self._outstanding.popleft()
        if f.cmd == Cmd.ERROR:
            later = self._later(seq)
            self._abandon(clean=self._parser.pending == 0 and not self._parsed)
            damaged = "" if f.seq == seq else f" (it arrived as frame {f.seq}: a damaged header)"
            raise ProtocolError(f"the device rejected {what}{damaged}: {_error_text(f)}{later}")
        return f

    def _later(self, failed: int) -> str:
        """What an error leaves behind: frames already sent after the failed one."""
        later = [w for s, w in self._outstanding if s != failed]
        if not later:
            return ""
        return (f" ({', '.join(later)} already sent: abandoned; the device may have run it, so "
                "start the sequence again)")

    def _no_reply(self, what: str) -> None:
        part = self._parser.pending
        if part:
            raise ProtocolError(
                f"the reply to {what} stopped after {part} bytes (no byte for {self.timeout:g} "
                "s): a reply byte was lost or the device stopped")
        raise ProtocolError(
            f"no reply from the device within {self.timeout:g} s to {what} "
            f"({self._parser.skipped} bytes of a reply received): check the port, the baud "
            "rate and that the bitstream is loaded")

    def resync(self, attempts: int = 3) -> None:
        """Bring the link back to a known state after an error: PING until its INFO arrives,
        skipping whatever else comes (replies to abandoned frames, the rest of a cut reply)."""
        for _ in range(attempts):
            self._outstanding.clear()
            self._parser = FrameParser(self._parser.max_payload)
            self._parsed.clear()
            seq = self._send(Cmd.PING, b"")
            try:
                f = self._read_frame(seq, f"PING frame {seq}", skip_others=True)
            except ProtocolError:
                continue
            if f.cmd == Cmd.INFO:
                self._outstanding.clear()
                self._abandoned.clear()
                self._resync = False
                return
        self._outstanding.clear()
        raise ProtocolError(f"the link did not recover: {attempts} PING frames got no INFO reply")

    def request(self, cmd: Cmd, payload: bytes = b"") -> Frame:
        """Send one frame and return the device's reply to it (stop and wait)."""
        if self._resync:
            self.resync()
        if self._outstanding:
            raise ProtocolError("a request while RUN frames are outstanding")
        if hasattr(self.port, "reset_input_buffer"):
            self.port.reset_input_buffer()
        self._parser = FrameParser(self._parser.max_payload)
        self._parsed.clear()
        self._abandoned.clear()
        self._send(cmd, payload)
        return self._receive()

    def run_steps(self, payloads, mode: Mode = Mode.ALL, *, steps_per_frame: int | None = None,
                  frames: list[int] | None = None) -> list[bytes]:
        """Run input transfers (``payloads``, bytes each) in RUN frames, pipelined.

        Frames carry ``steps_per_frame`` steps (default: the device's MAX_STEPS), or the step
        counts in ``frames``; at most WINDOW are outstanding; replies are matched in order.
        Returns, for `Mode.ALL`, every step's output transfer; `Mode.LAST`, each frame's last
        step's; `Mode.CLASSES`, every step's class bytes. A fault raises `ProtocolError` naming
        the frame and its steps (nothing is resent; see the module docstring)."""
        info = self.info or self.ping()
        mode = Mode(mode)
        if mode == Mode.CLASSES and not info.class_bytes:
            raise HwgenError("the device's model has no argmax: it cannot answer classes "
                             "(use mode 'all' or 'last')")
        payloads = [bytes(p) for p in payloads]
        if frames is None:
            n = info.max_steps if steps_per_frame is None else steps_per_frame
            if not 1 <= n <= info.max_steps:
                raise HwgenError(f"a RUN frame carries 1 to {info.max_steps} steps on this "
                                 f"device, not {n}")
            frames = [min(n, len(payloads) - a) for a in range(0, len(payloads), n)]
        if sum(frames) != len(payloads) or any(not 1 <= c <= info.max_steps for c in frames):
            raise HwgenError(f"frames of {frames} steps do not split {len(payloads)} steps "
                             f"into RUN frames of 1 to {info.max_steps} steps")
        per_step = info.class_bytes if mode == Mode.CLASSES else info.out_bytes
        if self._resync:
            self.resync()
        out: list[bytes] = []
        pending: deque[tuple[int, int]] = deque()  # (first step, count) of outstanding frames
        window = max(1, min(info.window, WINDOW))
        start = sent = 0
        while sent < len(frames) or pending:
            if sent < len(frames) and len(pending) < window:
                c = frames[sent]
                body = bytes([mode, c]) + b"".join(payloads[start : start + c])
                seq = (self._seq + 1) & 0xFF
                self._send(Cmd.RUN, body, f"RUN frame {seq} (steps {start}..{start + c - 1})")
                pending.append((start, c))
                start, sent = start + c, sent + 1
                continue
            first, c = pending.popleft()
            what = self._outstanding[0][1]
            f = self._receive()
            want = per_step * (1 if mode == Mode.LAST else c)
            if f.cmd != Cmd.OUTPUTS or len(f.payload) != want:
                self._abandon(clean=False)
                raise ProtocolError(f"{what} got command 0x{f.cmd:02x} with "
                                    f"{len(f.payload)} bytes instead of OUTPUTS with {want}")
            out += [f.payload[i : i + per_step] for i in range(0, want, per_step)]
        return out

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
        self.info = DeviceInfo(p[0], _le(p[1:3]), _le(p[3:5]), bool(p[5] & Flag.LOADABLE),
                               bool(p[5] & Flag.LOADED), _le(p[6:10]), p[10], _le(p[11:15]),
                               _le(p[15:17]), p[17], p[18])
        self._parser.max_payload = max(self._parser.max_payload,
                                       self.info.max_steps * self.info.out_bytes)
        return self.info

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


def _error_text(f: Frame) -> str:
    code = f.payload[0] if f.payload else 0
    try:
        return f"{ErrorCode(code).name}: {ERROR_TEXT[ErrorCode(code)]}"
    except ValueError:
        return f"{code}: unknown error code"
