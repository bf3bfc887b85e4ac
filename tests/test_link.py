# amaranth: UnusedElaboratable=no
"""Link protocol v3 (docs/uart.md): RUN frames in every mode, pipelining, and faults, over a
simulated serial line (amaranth.sim via SimSerial) with the echo core and a tiny accelerator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import make_model, random_inputs
from hwgen.gateware.core import Accelerator, input_layout, output_layout
from hwgen.golden import GoldenModel
from hwgen.host import Link, StreamHost, pack
from hwgen.spec import HwgenError
from hwgen.uart.board import LinkedCore
from hwgen.uart.echo import EchoCore, echo_golden, echo_input_layout
from hwgen.uart.engine import FrameEngine, default_max_steps
from hwgen.uart.protocol import Cmd, ErrorCode, FrameParser, Mode, ProtocolError, encode_frame
from hwgen.uart.sim import SimSerial

DIV = 4
STEPS = 4  # max_steps of the simulated links: small, so that sequences span several frames


def echo_port(**faults):
    return SimSerial(LinkedCore(EchoCore(3), DIV, max_steps=STEPS), DIV, timeout=0.2, **faults)


def echo_payloads(x, sos):
    lay = echo_input_layout(3)
    return [pack(lay, {"sos": int(s), "x": v}) for v, s in zip(x, sos, strict=True)]


def echo_outputs(raw):
    return np.array([list(r) for r in raw])


def sequence(steps, seed=0):
    """One sequence of echo inputs below 0xA5 (no stray SYNC byte inside a payload)."""
    x = np.random.default_rng(seed).integers(0, 0xA0, (steps, 3))
    sos = np.arange(steps) == 0
    return x, sos, echo_golden(x, sos)


# -- RUN frames ---------------------------------------------------------------------------------
def test_run_frames_in_every_mode_equal_the_echo_model():
    x, sos, want = sequence(10)
    with echo_port() as port:
        link = Link(port, timeout=10)
        info = link.ping()
        assert (info.version, info.max_steps, info.window, info.class_bytes) == (3, STEPS, 2, 0)
        got = link.run_steps(echo_payloads(x, sos))  # frames of 4, 4, 2 steps, pipelined
        np.testing.assert_array_equal(echo_outputs(got), want)
        got = link.run_steps(echo_payloads(x, sos), Mode.LAST, frames=[3, 4, 3])
        np.testing.assert_array_equal(echo_outputs(got), want[[2, 6, 9]])
        got = link.run_steps(echo_payloads(x, sos), steps_per_frame=1)
        np.testing.assert_array_equal(echo_outputs(got), want)
        assert link.step(echo_payloads(x[:1], [True])[0]) == bytes(want[0].tolist())
        with pytest.raises(HwgenError, match="the device's model has no argmax: it cannot "
                           "answer classes"):
            link.run_steps(echo_payloads(x, sos), Mode.CLASSES)
        with pytest.raises(HwgenError, match="a RUN frame carries 1 to 4 steps on this device, "
                           "not 5"):
            link.run_steps(echo_payloads(x, sos), steps_per_frame=5)


def test_pipelined_frames_keep_the_wire_busy():
    """Window 2: the device receives a frame while it runs and answers the one before, so the
    request line (the longer direction with the echo core) stays busy: 92.5% of the RUN
    format's wire limit measured, the last reply included (stop and wait: about 55%); the bound
    leaves room for a busy machine delaying the host thread."""
    x, sos, want = sequence(48, seed=1)
    with echo_port() as port:
        link = Link(port, timeout=10)
        link.ping()
        c0 = port.cycles
        got = link.run_steps(echo_payloads(x, sos))
        cycles = port.cycles - c0
    np.testing.assert_array_equal(echo_outputs(got), want)
    frames = 48 // STEPS
    wire = frames * (5 + 2 + 2 + STEPS * 4) * 10 * DIV  # request bytes, 10 bits, DIV cycles
    assert wire / cycles >= 0.85, (wire, cycles)


def test_accelerator_runs_in_every_mode_equal_the_golden_model():
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True, seed=3)
    x = random_inputs(m, batch=2, time=5, seed=4)
    g = GoldenModel(m).run(x)
    core = Accelerator(m, 4)
    with SimSerial(LinkedCore(core, DIV, max_steps=STEPS), DIV, timeout=0.2) as port:
        host = StreamHost(Link(port, timeout=20), input_layout(m), output_layout(m))
        assert host.link.info.class_bytes == 1
        out = host.run(x)  # mode all: every logit
        np.testing.assert_array_equal(out["logits"], g.logits)
        np.testing.assert_array_equal(out["argmax"][..., 0], g.classes)
        np.testing.assert_array_equal(host.run(x, "classes")["argmax"][..., 0], g.classes)
        np.testing.assert_array_equal(host.run(x, "last")["logits"][:, 0], g.logits[:, -1])
        with pytest.raises(HwgenError, match="Run mode must be one of all, last, classes, step, "
                           "not 'fast'"):
            host.run(x, "fast")


# -- faults ---------------------------------------------------------------------------------------
PING_BYTES = 7  # the first frame every test sends; RUN frames follow


def test_a_rejected_frame_never_reaches_the_core():
    x, sos, want = sequence(8, seed=2)
    p = echo_payloads(x, sos)
    # byte 12 of the first RUN frame is a payload byte
    with echo_port(corrupt={PING_BYTES + 12: 0x01}) as port:
        link = Link(port, timeout=10)
        link.ping()
        with pytest.raises(ProtocolError, match=r"the device rejected RUN frame 2 \(steps 0..3\):"
                           r" CRC: the frame's checksum did not match"):
            link.run_steps(p[:4])
        # the same steps again, then the rest: had the rejected frame run, every sum would be off
        np.testing.assert_array_equal(echo_outputs(link.run_steps(p)), want)


def _fault_then_recovery(seed: int, match: str, **fault) -> None:
    """8 echo steps in pipelined RUN frames over a port with ``fault`` (drop= / corrupt=): the
    first run raises `ProtocolError` matching ``match``; the same steps sent again are exact."""
    x, sos, want = sequence(8, seed=seed)
    p = echo_payloads(x, sos)
    with echo_port(**fault) as port:
        link = Link(port, timeout=10)
        link.ping()
        with pytest.raises(ProtocolError, match=match):
            link.run_steps(p)
        np.testing.assert_array_equal(echo_outputs(link.run_steps(p)), want)


def test_a_corrupted_pipelined_frame_names_the_abandoned_one_and_the_link_recovers():
    _fault_then_recovery(3, r"RUN frame 2 \(steps 0..3\): CRC: .* \(RUN frame 3 \(steps 4..7\) "
                         r"already sent: abandoned; the device may have run it, so start the "
                         r"sequence again\)", corrupt={PING_BYTES + 12: 0x01})


def test_a_damaged_seq_byte_is_named_as_the_awaited_frames_rejection():
    """The device answers a frame whose SEQ byte was damaged with ERROR CRC under the damaged
    SEQ; replies come in request order, so it is the awaited frame's (the board soak met this
    as a misleading 'stale reply')."""
    _fault_then_recovery(5, r"the device rejected RUN frame 2 \(steps 0..3\) \(it arrived as "
                         r"frame 66: a damaged header\): CRC: .* \(RUN frame 3",
                         corrupt={PING_BYTES + 2: 0x40})  # RUN frame 2's SEQ -> 66


def test_a_frame_lost_on_the_way_is_named_when_the_next_ones_reply_comes():
    """Frame 2's SYNC byte lost: the device skips the rest of it and answers frame 3; replies
    come in request order, so frame 2 was lost (the soak met this as 'a stale reply')."""
    _fault_then_recovery(6, r"no reply to RUN frame 2 \(steps 0..3\): the device answered "
                         r"frame 3, sent after it, so RUN frame 2 \(steps 0..3\) was lost on "
                         r"the way", drop={PING_BYTES})  # RUN frame 2's SYNC


def test_a_dropped_byte_is_a_clear_error_and_the_link_recovers():
    x, sos, want = sequence(8, seed=4)
    p = echo_payloads(x, sos)
    with echo_port(drop={PING_BYTES + 9}) as port:  # the first RUN frame's second payload byte
        link = Link(port, timeout=10)
        link.ping()
        # the lost byte's place is taken by the next frame's SYNC: the checksum fails
        with pytest.raises(ProtocolError, match=r"RUN frame 2 \(steps 0..3\): CRC"):
            link.run_steps(p)
        np.testing.assert_array_equal(echo_outputs(link.run_steps(p)), want)
    with echo_port(drop={PING_BYTES + 9}) as port:
        link = Link(port, timeout=10)
        link.ping()
        with pytest.raises(ProtocolError, match=r"RUN frame 2 \(steps 0..3\): TIMEOUT"):
            link.run_steps(p[:4])  # nothing follows: the frame stops arriving
        np.testing.assert_array_equal(echo_outputs(link.run_steps(p)), want)


def test_bad_run_frames_are_refused_by_the_device():
    x, sos, want = sequence(4, seed=5)
    p = echo_payloads(x, sos)
    with echo_port() as port:
        link = Link(port, timeout=10)
        link.ping()
        for body, code in [
            (bytes([0, STEPS + 1]) + b"".join(p) + p[0], "LENGTH"),  # oversized COUNT
            (bytes([0, 9]) + p[0], "LENGTH"),  # COUNT and LEN disagree
            (bytes([0, 0]) + p[0], "LENGTH"),  # COUNT 0
            (bytes([Mode.CLASSES, 1]) + p[0], "MODE"),  # classes of a model without argmax
            (bytes([7, 1]) + p[0], "MODE"),
            (bytes([0]), "LENGTH"),
        ]:
            with pytest.raises(ProtocolError, match=f"RUN frame .*: {code}: "):
                link.request(Cmd.RUN, body)
        np.testing.assert_array_equal(echo_outputs(link.run_steps(p)), want)


def test_a_host_that_exceeds_the_window_gets_an_error_and_loses_nothing_else():
    x, sos, want = sequence(4, seed=6)
    with echo_port() as port:
        port.write(encode_frame(Cmd.RUN, 1, bytes([0, 4]) + b"".join(echo_payloads(x, sos)))
                   + encode_frame(Cmd.PING, 2) + encode_frame(Cmd.PING, 3))
        parser, frames = FrameParser(), []
        deadline = time.monotonic() + 60
        while len(frames) < 3 and time.monotonic() < deadline:
            frames += parser.feed(port.read(1))
        assert [(f.cmd, f.seq) for f in frames] == [(Cmd.OUTPUTS, 1), (Cmd.INFO, 2),
                                                    (Cmd.ERROR, 3)]
        assert frames[0].payload == bytes(want.reshape(-1).tolist())
        assert frames[2].payload == bytes([ErrorCode.WINDOW, Cmd.PING])
        link = Link(port, timeout=10)
        link.ping()
        np.testing.assert_array_equal(echo_outputs(link.run_steps(echo_payloads(x, sos))), want)


class SlowReader:
    """A port whose reader stops reading for a while now and then (the device keeps sending)."""

    def __init__(self, port, pause=0.3, every=5):
        self.port, self.pause, self.every, self.reads = port, pause, every, 0

    def write(self, data):
        return self.port.write(data)

    def read(self, n=1):
        self.reads += 1
        if self.reads % self.every == 0:
            time.sleep(self.pause)
        return self.port.read(n)


def test_a_reader_that_stops_reading_loses_nothing():
    x, sos, want = sequence(16, seed=7)
    with echo_port() as port:
        link = Link(SlowReader(port), timeout=10)
        link.ping()
        np.testing.assert_array_equal(echo_outputs(link.run_steps(echo_payloads(x, sos))), want)


# -- the host's checks of replies (no device) --------------------------------------------------
class CannedPort:
    """Answers each write with the next canned reply bytes."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def write(self, data):
        return len(data)

    def read(self, n=1):
        return self.replies.pop(0) if self.replies else b""


class BatchingDevicePort:
    """A scripted device that answers RUN frames (one output byte per step: the step's input
    byte + 1) but lets the host read only once two replies are waiting: every read returns
    both at once, as a slow reader's buffer does."""

    def __init__(self, max_steps: int = 2):
        from hwgen.uart.protocol import INFO_BYTES, PROTOCOL_VERSION

        self.parser = FrameParser(4096)
        info = bytearray(INFO_BYTES)
        info[0], info[1], info[3], info[15], info[17] = PROTOCOL_VERSION, 1, 1, max_steps, 2
        info[5] = 2  # loaded
        self.info = bytes(info)
        self.waiting = []  # replies not yet readable
        self.ready = b""

    def write(self, data):
        for f in self.parser.feed(bytes(data)):
            if f.cmd == Cmd.PING:
                self.ready += encode_frame(Cmd.INFO, f.seq, self.info)
                continue
            count = f.payload[1]
            out = bytes((b + 1) & 0xFF for b in f.payload[2 : 2 + count])
            self.waiting.append(encode_frame(Cmd.OUTPUTS, f.seq, out))
            if len(self.waiting) == 2:
                self.ready += b"".join(self.waiting)
                self.waiting.clear()
        return len(data)

    def read(self, n=1):
        out, self.ready = self.ready[:n], self.ready[n:]
        return out

    @property
    def in_waiting(self):
        return len(self.ready)


def test_two_replies_in_one_read_are_both_kept():
    """Found by the board soak (benchmarks/board_soak.py): a slow reader's buffer held the
    replies to two pipelined RUN frames; the host took the first and dropped the second, then
    failed with 'a stale or duplicated reply' on a healthy link."""
    link = Link(BatchingDevicePort(), timeout=0.1)
    payloads = [bytes([i]) for i in range(8)]
    assert link.run_steps(payloads) == [bytes([i + 1]) for i in range(8)]


def test_stale_cut_and_corrupted_replies_are_named():
    with pytest.raises(ProtocolError, match=r"received a reply to frame 9 while waiting for the "
                       r"reply to STEP frame 1 \(a stale or duplicated reply\)"):
        Link(CannedPort(encode_frame(Cmd.OUTPUT, 9, b"\x01")), timeout=0.1).step(b"\x00")
    cut = encode_frame(Cmd.OUTPUT, 1, b"\x01\x02\x03")[:6]
    with pytest.raises(ProtocolError, match=r"the reply to STEP frame 1 stopped after 6 bytes"):
        Link(CannedPort(cut), timeout=0.1).step(b"\x00")
    bad = bytearray(encode_frame(Cmd.OUTPUT, 1, b"\x01\x02\x03"))
    bad[6] ^= 0x40
    with pytest.raises(ProtocolError, match=r"received a frame with a bad checksum \(cmd 0x82, "
                       r"seq 1, 3 bytes"):
        Link(CannedPort(bytes(bad)), timeout=0.1).step(b"\x00")


def test_default_steps_per_frame_fill_one_block_ram_per_buffer():
    assert default_max_steps(17, 18) == 14  # GRU 16-64-10: 2 x 240 and 2 x 252 bytes
    assert default_max_steps(4, 3) == 32 and default_max_steps(300, 2) == 1


def test_frame_engine_checks_its_arguments():
    with pytest.raises(HwgenError, match=r"the class field \(offset 4, 8 bits\) is not inside the "
                       r"1-byte output transfer"):
        FrameEngine(2, 1, timeout_cycles=100, class_field=(4, 8))
    with pytest.raises(HwgenError, match="Steps per RUN frame must be a positive integer, not 0"):
        FrameEngine(2, 1, timeout_cycles=100, max_steps=0)
