# amaranth: UnusedElaboratable=no
"""SPI target PHY and the simulated SPI controller, with SCLK unrelated to the core clock."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from conftest import make_model, random_inputs
from hwgen.gateware.core import Accelerator, input_layout, output_layout
from hwgen.golden import GoldenModel
from hwgen.host import Link, StreamHost
from hwgen.spec import HwgenError
from hwgen.uart.echo import EchoCore, echo_golden, echo_input_layout, echo_output_layout
from hwgen.uart.protocol import Cmd, ErrorCode, FrameParser, Mode, ProtocolError, encode_frame
from hwgen.uart.spi import (
    FILLER,
    MIN_CLOCK_RATIO,
    SpiLinkedCore,
    SpiPhy,
    check_sclk,
    spi_target_resource,
)
from hwgen.uart.spisim import SimSpi, SpiController

CLOCK_HZ = 48e6

# A covering list of bus timings: (ratio, jitter, gap probability, seed).
TIMINGS = [
    (4.0, 0.0, 0.0, 1),  # the limit, no jitter: every phase exactly 2 core periods
    (4.0, 0.5, 0.0, 2),  # the limit with jitter, back to back
    (5.3, 0.3, 0.3, 3),  # a fractional ratio with pauses between bytes
    (8.0, 1.0, 0.5, 4),
    (13.7, 0.2, 0.0, 5),
]


class SpiEcho(wiring.Component):
    """`SpiPhy` whose received bytes come back through a FIFO: the loopback device."""

    def __init__(self, depth: int = 16):
        self.phy = SpiPhy()
        self.depth = depth
        super().__init__({"sclk": In(1), "cs_n": In(1, init=1), "mosi": In(1), "miso": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.phy = phy = self.phy
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=self.depth)
        m.d.comb += [
            phy.sclk.eq(self.sclk), phy.cs_n.eq(self.cs_n), phy.mosi.eq(self.mosi),
            self.miso.eq(phy.miso),
            fifo.w_data.eq(phy.rx_stream.payload), fifo.w_en.eq(phy.rx_stream.valid),
            phy.rx_stream.ready.eq(fifo.w_rdy),
            phy.tx_stream.payload.eq(fifo.r_data), phy.tx_stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(phy.tx_stream.ready),
        ]
        return m


def nonzero_bytes(rng, n) -> bytes:
    return bytes(rng.integers(1, 256, n).tolist())  # 0x00 is the filler


# -- arguments ----------------------------------------------------------------------------------
def test_the_oversampling_limit_is_refused_with_a_clear_error():
    assert MIN_CLOCK_RATIO == 4 and check_sclk(48e6, 12e6) == 4.0
    with pytest.raises(HwgenError, match=r"^SPI clock 16 MHz is too fast for a 48 MHz core clock: "
                       r"the SPI target samples SCLK with the core clock and needs core clock >= "
                       r"4 x SCLK \(SCLK at most 12 MHz here\)$"):
        check_sclk(48e6, 16e6)
    with pytest.raises(HwgenError, match=r"SPI clock 12.5 MHz is too fast for a 48 MHz core"):
        SpiController(SpiPhy(), ratio=3.84, clock_hz=48e6)
    with pytest.raises(HwgenError, match="SPI clock must be a positive frequency in Hz, not 0"):
        check_sclk(48e6, 0)
    with pytest.raises(HwgenError, match=r"cut after 1 to 7 bits of a byte, not 8 \(byte 3\)"):
        SimSpi(SpiEcho(), abort={3: 8})


@pytest.mark.parametrize("board, platform, fpga_pins", [
    ("icebreaker", "icebreaker:ICEBreakerPlatform", ["4", "2", "47", "45"]),
    ("ulx3s-85f", "ulx3s:ULX3S_85F_Platform", ["A7", "A8", "C8", "B8"]),
])
def test_board_pins_are_the_documented_ones(board, platform, fpga_pins):
    import importlib

    module, cls = platform.split(":")
    plat = getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)()
    plat.add_resources([spi_target_resource(board)])
    res = plat.lookup("spi_target", 0)
    names = [sub.name for sub in res.ios]
    got = []
    for sub in res.ios:
        (conn_pin,) = sub.ios[0].names  # e.g. "pmod_0:1"
        conn, pin = conn_pin.split(":")
        name, number = conn.rsplit("_", 1)
        got.append(plat.connectors[name, int(number)].mapping[pin])
    assert names == ["cs_n", "mosi", "miso", "sclk"] and got == fpga_pins
    with pytest.raises(HwgenError, match="no SPI target pins are defined for board "
                                         "'orangecrab-85f'; boards: icebreaker, ulx3s-12f, "
                                         "ulx3s-25f, ulx3s-45f, ulx3s-85f"):
        spi_target_resource("orangecrab-85f")


# -- the PHY alone, driven and watched by testbenches ---------------------------------------------
def run_phy(transfers, *, ratio=4.0, jitter=0.5, seed=0, tx=b"", rx_ready=True):
    """Clock ``transfers`` ((data, cut) pairs) into a bare `SpiPhy` with ``tx`` queued on its
    tx_stream; returns (MISO bytes per transfer, received bytes, rx_abort and overrun counts)."""
    dut = SpiPhy()
    ctl = SpiController(dut, ratio=ratio, jitter=jitter, clock_hz=CLOCK_HZ, seed=seed)
    miso, rx, counts = [], [], {"abort": 0, "overrun": 0, "error": 0, "end": 0}
    tx = list(tx)

    async def controller(ctx):
        await ctl.start(ctx)
        for data, cut in transfers:
            miso.append(await ctl.transfer(ctx, data, cut=cut))

    async def streams(ctx):
        ctx.set(dut.rx_stream.ready, rx_ready)
        while True:
            ctx.set(dut.tx_stream.valid, bool(tx))
            ctx.set(dut.tx_stream.payload, tx[0] if tx else 0)
            _, _, rv, rr, rp, tv, tr, ab, ov, er, end = await ctx.tick().sample(
                dut.rx_stream.valid, dut.rx_stream.ready, dut.rx_stream.payload,
                dut.tx_stream.valid, dut.tx_stream.ready, dut.rx_abort, dut.overrun, dut.rx_error,
                dut.rx_end)
            if rv and rr:
                rx.append(rp)
            if tv and tr:
                tx.pop(0)
            counts["abort"] += ab
            counts["overrun"] += ov
            counts["error"] += er
            counts["end"] += end

    sim = Simulator(dut)
    sim.add_clock(1 / CLOCK_HZ)
    sim.add_testbench(controller)
    sim.add_testbench(streams, background=True)
    sim.run()
    return miso, bytes(rx), counts, dut


@pytest.mark.parametrize("ratio, jitter, gaps, seed", TIMINGS)
def test_bytes_both_ways_back_to_back(ratio, jitter, gaps, seed):
    rng = np.random.default_rng(seed)
    sent, reply = nonzero_bytes(rng, 12), nonzero_bytes(rng, 6)
    miso, rx, counts, _ = run_phy([(sent[:9], None), (sent[9:], None)], ratio=ratio,
                                  jitter=jitter, seed=seed, tx=reply)
    assert rx == sent
    # Slot 0 after reset carries the filler; then the queued reply, then filler again.
    assert b"".join(miso) == bytes([FILLER]) + reply + bytes(12 - 1 - len(reply))
    assert counts == {"abort": 0, "overrun": 0, "error": 0, "end": 2}


def test_filler_when_nothing_to_send():
    miso, rx, counts, _ = run_phy([(b"\x5a\xa5\xff", None), (b"\x00\x01", None)])
    assert miso == [bytes(3), bytes(2)] and rx == b"\x5a\xa5\xff\x00\x01"
    assert counts["abort"] == 0


def test_abort_mid_byte_discards_it_resends_the_reply_byte_and_the_next_transfer_works():
    # Transfer 1 is cut after 3 bits of its second byte: 0x22 is never received, and the reply
    # byte 0x81 that was being shifted out comes again, whole, in the next slot.
    miso, rx, counts, _ = run_phy(
        [(b"\x11\x22\x33", (1, 3)), (b"\x44\x55\x66\x77", None)], tx=b"\x81\x82\x83")
    assert rx == b"\x11\x44\x55\x66\x77"
    assert miso == [b"\x00", b"\x81\x82\x83\x00"]
    assert counts == {"abort": 1, "overrun": 0, "error": 0, "end": 1}


def test_a_cut_filler_slot_takes_a_byte_that_became_ready():
    miso, rx, counts, _ = run_phy([(b"\x11", (0, 5)), (b"\x22\x33", None)], tx=b"\x99")
    assert miso == [b"", b"\x99\x00"] and rx == b"\x22\x33" and counts["abort"] == 1


def test_overrun_when_the_consumer_is_not_ready():
    _, rx, counts, dut = run_phy([(b"\x10\x20\x30", None)], rx_ready=False)
    assert rx == b"" and counts["overrun"] == 2  # the first byte waits, the next two are lost


# -- the echo device behind the simulated port -----------------------------------------------------
@pytest.mark.parametrize("ratio, jitter, gaps, seed", TIMINGS)
def test_echo_through_the_simulated_port(ratio, jitter, gaps, seed):
    rng = np.random.default_rng(100 + seed)
    sent = nonzero_bytes(rng, 40)
    with SimSpi(SpiEcho(), ratio=ratio, jitter=jitter, gaps=gaps, seed=seed, clock_hz=CLOCK_HZ,
                timeout=None) as port:
        port.write(sent[:10])
        first = port.read(port.in_waiting)
        # One transfer from idle: two filler slots (the byte for slot k+1 is chosen when slot k
        # ends, before slot k's echo is back), then the echo.
        assert first == bytes(2) + sent[:8]
        cuts = np.sort(rng.choice(np.arange(11, 40), 4, replace=False))
        for a, b in zip([10, *cuts], [*cuts, 40], strict=True):
            port.write(sent[a:b])
        got = first + port.read(port.in_waiting) + port.read(4)
        assert got.replace(b"\x00", b"") == sent  # nothing lost, duplicated or reordered
        assert got.endswith(b"\x00\x00")
        assert port.cycles >= 4 * 8 * 44 and port.sim_seconds == pytest.approx(
            port.cycles / CLOCK_HZ, rel=1e-3)


def test_port_read_timeout_is_simulated_time():
    with SimSpi(SpiEcho(), seed=7, timeout=8 * 8 * 4 / CLOCK_HZ) as port:
        t0 = port.sim_seconds
        got = port.read(100)  # ~8 slots fit in the timeout (jitter makes slots longer)
        assert 4 <= len(got) <= 8 and got == bytes(len(got))
        assert port.sim_seconds - t0 < 2 * port.timeout
        port.write(b"\x42")
        port.reset_input_buffer()
        assert port.in_waiting == 0
        port.idle(1e-6)
        # The read's filler bytes were echoed too: two were queued, the write's slot sent one.
        assert port.read(4) == b"\x00\x42\x00\x00"
    with pytest.raises(HwgenError, match="the simulated SPI port is closed"):
        port.read(1)


def test_port_faults_drop_corrupt_and_abort():
    sent = bytes(range(1, 21))
    with SimSpi(SpiEcho(), seed=3, timeout=None, drop={2}, corrupt={5: 0x80},
                abort={12: 4}) as port:
        port.write(sent[:10])  # byte 2 dropped, byte 5 corrupted
        port.write(sent[10:])  # cut in byte 12 (after 4 bits): 12.. never arrive
        port.write(sent[:3])  # the next transfer works
        got = port.read(port.in_waiting) + port.read(8)
        want = sent[:2] + sent[3:5] + bytes([sent[5] ^ 0x80]) + sent[6:12] + sent[:3]
        assert got.replace(b"\x00", b"") == want


def test_below_the_limit_the_crossing_fails():
    """The simulation models the synchronizers' latency: an SCLK faster than core / 4 (forced
    past the check) garbles the reply, so the tests above do exercise the clock crossing."""
    rng = np.random.default_rng(9)
    sent = nonzero_bytes(rng, 20)
    with SimSpi(SpiEcho(), seed=9, timeout=None) as port:
        port.ctl.ratio = 2.5  # each SCLK phase 1.25 to 1.9 core periods
        port.write(sent)
        assert port.read(port.in_waiting) + port.read(2) != bytes(2) + sent


# -- a core behind SpiPhy + FrameEngine, driven by the host code -------------------------------
def spi_echo_port(*, ratio=4.0, seed=0, **faults):
    dut = SpiLinkedCore(EchoCore(3), CLOCK_HZ, CLOCK_HZ / ratio, timeout=20e-6)
    return SimSpi(dut, ratio=ratio, seed=seed, clock_hz=CLOCK_HZ, timeout=1e-3, **faults)


@pytest.mark.parametrize("ratio, seed", [(4.0, 1), (6.5, 2)])
def test_echo_core_round_trip_over_spi(ratio, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (2, 4, 3))
    with spi_echo_port(ratio=ratio, seed=seed) as port:
        host = StreamHost(Link(port, timeout=1e-3), echo_input_layout(3), echo_output_layout(3))
        out = host.run(x)["y"]
    want = np.stack([echo_golden(x[b], np.arange(4) == 0) for b in range(2)])
    np.testing.assert_array_equal(out, want)


def test_accelerator_over_spi_equals_the_golden_model():
    """Board-level design (SPI link + accelerator with an argmax) driven by the host code."""
    m = make_model("gru", "ternary", inputs=5, hidden=8, outputs=4, argmax=True, seed=3)
    x = random_inputs(m, batch=2, time=3, seed=3)
    dut = SpiLinkedCore(Accelerator(m, 4), CLOCK_HZ, CLOCK_HZ / 5)
    with SimSpi(dut, ratio=5, jitter=0.4, seed=5, clock_hz=CLOCK_HZ, timeout=1e-3) as port:
        host = StreamHost(Link(port, timeout=1e-3), input_layout(m), output_layout(m))
        out = host.run(x)
    g = GoldenModel(m).run(x)
    np.testing.assert_array_equal(out["logits"], g.logits)
    np.testing.assert_array_equal(out["argmax"][..., 0], g.classes)


def test_pipelined_run_frames_reach_the_spi_wire_limit():
    """Full duplex: the replies ride in the slots of the next requests, so RUN frames (MODE
    last) move at the request side's wire limit, SCLK / 8 / (in bytes + 9 / COUNT)."""
    dut = SpiLinkedCore(EchoCore(16, latency=4), CLOCK_HZ, CLOCK_HZ / 4)
    with SimSpi(dut, ratio=4, jitter=0.0, seed=1, clock_hz=CLOCK_HZ, timeout=1e-3) as port:
        link = Link(port, timeout=1e-3)
        info = link.ping()
        rng = np.random.default_rng(0)
        steps = [bytes(rng.integers(0, 256, 17).tolist()) for _ in range(4 * info.max_steps)]
        t0 = port.sim_seconds
        out = link.run_steps(steps, Mode.LAST)
        seconds = port.sim_seconds - t0
    assert len(out) == 4
    limit = CLOCK_HZ / 4 / 8 / (17 + 9 / info.max_steps)
    assert len(steps) / seconds >= 0.9 * limit


def test_spi_linked_core_converts_to_verilog_with_its_pins():
    """What a Verilator board or a bitstream build elaborates: one clock domain, four pins."""
    from amaranth.back import verilog

    text = verilog.convert(SpiLinkedCore(EchoCore(3), 60e6, 15e6), name="top")
    start = text.index("module top(") + len("module top(")
    ports = {p.strip() for p in text[start : text.index(");", start)].split(",")}
    assert ports == {"clk", "rst", "sclk", "cs_n", "mosi", "miso", "miso_oe", "busy", "errors"}


def test_spi_link_checks_the_clock_ratio():
    with pytest.raises(HwgenError, match=r"SPI clock 20 MHz is too fast for a 60 MHz core clock"):
        SpiLinkedCore(EchoCore(3), 60e6, 20e6)
    assert SpiLinkedCore(EchoCore(3), 60e6, 15e6).ratio == 4.0


def test_corrupted_byte_over_spi_gives_a_clear_error_then_the_link_recovers():
    # Bytes 0-6 are the PING frame; byte 7 + 6 is a payload byte of the first STEP frame.
    with spi_echo_port(corrupt={7 + 6: 0x10}) as port:
        host = StreamHost(Link(port, timeout=1e-3), echo_input_layout(3), echo_output_layout(3))
        with pytest.raises(ProtocolError, match=r"the device rejected STEP frame 2: CRC"):
            host.step([1, 2, 3], sos=True)
        assert host.step([1, 2, 3], sos=True)["y"].tolist() == [1, 2, 3]


def test_transfer_aborted_mid_frame_gives_a_clear_error_then_the_link_recovers():
    # PING is bytes 0-6; the STEP frame's payload starts at 7 + 5. The cut (cs_n high after 3
    # bits of a payload byte) ends the frame at once: ERROR TIMEOUT, while the host reads on.
    with spi_echo_port(abort={7 + 6: 3}) as port:
        host = StreamHost(Link(port, timeout=1e-3), echo_input_layout(3), echo_output_layout(3))
        with pytest.raises(ProtocolError, match=r"the device rejected STEP frame 2: TIMEOUT"):
            host.step([4, 5, 6], sos=True)
        assert host.step([4, 5, 6], sos=True)["y"].tolist() == [4, 5, 6]


def bad_length_frame() -> bytes:
    return encode_frame(Cmd.STEP, 9, b"\x01\x02")  # EchoCore(3) takes 4 payload bytes


def test_a_rejected_header_is_answered_once_the_host_pauses():
    """A wrong LEN makes the receiver skip the rest of the frame until the link is quiet for
    its frame timeout (20 us here); then it answers ERROR LENGTH."""
    with spi_echo_port() as port:
        port.write(bad_length_frame())
        port.idle(25e-6)
        frames = FrameParser().feed(port.read(64))
    assert [(f.cmd, f.seq, f.payload[0]) for f in frames] == [(Cmd.ERROR, 9, ErrorCode.LENGTH)]


class SilentTarget(wiring.Component):
    """An SPI target that never answers (MISO low: the filler in every slot)."""

    def __init__(self):
        super().__init__({"sclk": In(1), "cs_n": In(1, init=1), "mosi": In(1), "miso": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.miso.eq(0)  # a clock domain to simulate
        return m


def test_no_reply_over_spi_is_a_timeout_error():
    """An SPI read always yields bytes (the filler): the host's reply deadline restarts only
    when a reply makes progress, so a silent device is a timeout error, not a hang."""
    class Guarded(SimSpi):
        def read(self, size=1):
            if self.sim_seconds > 2e-3:
                raise RuntimeError("the host is still reading after 2 ms of simulated time")
            return super().read(size)

    with Guarded(SilentTarget(), clock_hz=CLOCK_HZ, timeout=1e-4) as port:
        with pytest.raises(ProtocolError, match="no reply from the device"):
            Link(port, timeout=1e-4).ping()


def test_a_rejected_header_is_answered_while_the_host_reads_continuously():
    """The line is never quiet while the host clocks fillers to read the answer: the receiver
    ends the skip of a rejected frame when the host's transfer (the frame) ends."""
    with spi_echo_port() as port:
        port.write(bad_length_frame())
        frames = FrameParser().feed(port.read(400))  # 400 slots: 20 timeouts of 20 us
    assert [(f.cmd, f.seq) for f in frames] == [(Cmd.ERROR, 9)]


# -- the clock crossing, formally (SymbiYosys + yices) ---------------------------------------------
class SpiCrossing(wiring.Component):
    """Formal harness: a nondeterministic mode-0 controller against `SpiPhy`, in continuous time.

    The PHY only sees its pins at core clock edges, and the controller only sees MISO, which
    changes only at those edges: what matters of a real schedule is, for each controller event,
    whether it falls strictly between two edges ("mid" of a cycle) or at an edge, where the first
    synchronizer flip-flop may resolve either way (metastability: a free choice of old or new).
    Positions count half core periods (mid, edge, mid, ...); the contract's ">= 2 T" between
    events is ``min_gap = 4`` positions, ``cs_n`` high >= 4 T is 8. Every interleaving of events,
    waits of any length, transfers of any size, aborts mid-byte, device bytes offered at any time
    and metastable samples are allowed; the host's bytes are one arbitrary pattern (`AnyConst`:
    distinct bits, far cheaper for the solver than a new byte per slot), the device's any byte at
    any time. Checked: every completed slot delivers its byte to the device within 4 cycles
    (intact), and nothing else arrives; each slot carries to the host the byte the PHY took for it
    (the filler where none was offered), and a taken byte is never replaced before a slot
    delivered it; an abort gives exactly one ``rx_abort``, within 4 cycles; MISO never changes at
    the instant the controller samples it, and (``margin``) not in the core period before either.
    The checks are bounded (BMC from reset): the depths in the test below.
    ``checks``: which data checks to add (``"rx0"`` .. ``"rx7"``: that bit of every byte the
    device receives; ``"tx"``: every byte it sends); the controls are always checked.
    """

    def __init__(self, min_gap: int = 4, margin: bool = True, checks=("tx",)):
        self.min_gap, self.margin, self.checks = min_gap, margin, checks
        super().__init__({})

    def elaborate(self, platform):
        from amaranth.asserts import AnyConst, AnySeq
        from amaranth.hdl import Assert, Assume, Cat, Cover, Mux, ResetSignal, Signal

        m = Module()
        m.submodules.dut = dut = SpiPhy()
        m.d.comb += Assume(~ResetSignal())
        cs, sclk, mosi = Signal(init=1), Signal(), Signal()  # the pins after the last event
        bits = Signal(range(9))  # rising edges in the current slot
        mbyte, mshift = Signal(8), Signal(8)  # the controller's byte of the slot; bits left
        dist = Signal(range(16), init=15)  # positions from the last event to this cycle's mid
        ev, at_edge, rise_not_end = AnySeq(1), AnySeq(1), AnySeq(1)
        new_byte, meta = AnyConst(8), AnySeq(3)  # one byte pattern: its bits are distinct

        n_cs, n_sclk, n_mosi, n_bits, n_mbyte, n_mshift = (
            Signal.like(s, name=f"n_{s.name}") for s in (cs, sclk, mosi, bits, mbyte, mshift))
        kind_rise, kind_fall, kind_cs_fall, kind_cs_rise = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            kind_cs_fall.eq(cs),
            kind_rise.eq(~cs & ~sclk & rise_not_end),
            kind_cs_rise.eq(~cs & ~sclk & ~rise_not_end),
            kind_fall.eq(~cs & sclk),
        ]
        need = Mux(kind_cs_fall, 2 * self.min_gap, self.min_gap)
        fire = Signal()
        m.d.comb += fire.eq(ev & (dist + at_edge >= need))
        m.d.comb += [n_cs.eq(cs), n_sclk.eq(sclk), n_mosi.eq(mosi), n_bits.eq(bits),
                     n_mbyte.eq(mbyte), n_mshift.eq(mshift)]
        start_slot = [n_bits.eq(0), n_mbyte.eq(new_byte), n_mshift.eq(new_byte),
                      n_mosi.eq(new_byte[7])]
        with m.If(fire):
            with m.If(kind_cs_fall):
                m.d.comb += [n_cs.eq(0), *start_slot]
            with m.If(kind_cs_rise):
                m.d.comb += n_cs.eq(1)
            with m.If(kind_rise):
                m.d.comb += [n_sclk.eq(1), n_bits.eq(bits + 1)]
            with m.If(kind_fall):
                m.d.comb += n_sclk.eq(0)
                with m.If(bits == 8):
                    m.d.comb += start_slot
                with m.Else():
                    m.d.comb += [n_mshift.eq(mshift << 1), n_mosi.eq(mshift[6])]
        m.d.sync += [cs.eq(n_cs), sclk.eq(n_sclk), mosi.eq(n_mosi), bits.eq(n_bits),
                     mbyte.eq(n_mbyte), mshift.eq(n_mshift)]
        with m.If(fire):
            m.d.sync += dist.eq(2 - at_edge)
        with m.Elif(dist < 14):
            m.d.sync += dist.eq(dist + 2)
        with m.Else():
            m.d.sync += dist.eq(15)
        # What the first synchronizer stage samples at the edge that ends this cycle.
        late = fire & at_edge
        m.d.comb += [
            dut.cs_n.eq(Mux(late & meta[0], cs, n_cs)),
            dut.sclk.eq(Mux(late & meta[1], sclk, n_sclk)),
            dut.mosi.eq(Mux(late & meta[2], mosi, n_mosi)),
        ]

        # MISO as the controller samples it at its rising edges.
        miso_prev = Signal()
        check_next, check_bit = Signal(), Signal()
        m.d.sync += [miso_prev.eq(dut.miso), check_next.eq(0)]
        with m.If(check_next):
            m.d.comb += Assert(dut.miso == check_bit, "MISO changed at the sampling edge")
        rx_miso = Signal(7)
        got = Signal(8)
        m.d.comb += got.eq(Cat(dut.miso, rx_miso))
        chosen, chosen_real, delivered = Signal(8), Signal(), Signal(init=1)
        slots, aborts = Signal(range(4)), Signal(range(4))
        with m.If(fire & kind_rise):
            m.d.sync += rx_miso.eq(Cat(dut.miso, rx_miso[:6]))
            with m.If(at_edge):
                m.d.sync += [check_next.eq(1), check_bit.eq(dut.miso)]
            if self.margin:
                m.d.comb += Assert(at_edge | (dut.miso == miso_prev),
                                   "MISO changed less than 1 T before a sample")
            with m.If(bits == 7):
                if "tx" in self.checks:
                    m.d.comb += Assert(got == chosen, "a slot carried the wrong byte to the host")
                m.d.sync += delivered.eq(1)
                with m.If(slots < 3):
                    m.d.sync += slots.eq(slots + 1)

        # The device's bytes: any valid / payload, held while not taken.
        tv, tp = AnySeq(1), AnySeq(8)
        hold, held = Signal(), Signal(8)
        m.d.sync += [hold.eq(tv & ~dut.tx_stream.ready), held.eq(tp)]
        m.d.comb += [Assume(~hold | (tv & (tp == held))),
                     dut.tx_stream.valid.eq(tv), dut.tx_stream.payload.eq(tp)]
        with m.If(dut.tx_stream.ready):
            m.d.comb += Assert(~chosen_real | delivered, "a byte to send was replaced unsent")
            m.d.sync += [chosen.eq(Mux(tv, tp, FILLER)), chosen_real.eq(tv), delivered.eq(0)]

        # The host's bytes, and aborts.
        m.d.comb += dut.rx_stream.ready.eq(1)
        sent, sent_pending, sent_age = Signal(8), Signal(), Signal(range(8))
        abort_pending, abort_age = Signal(), Signal(range(8))
        m.d.sync += [sent_age.eq(Mux(sent_pending, sent_age + 1, 0)),
                     abort_age.eq(Mux(abort_pending, abort_age + 1, 0))]
        with m.If(fire & kind_rise & (bits == 7)):
            m.d.sync += [sent.eq(mbyte), sent_pending.eq(1)]
        with m.If(dut.rx_stream.valid):
            m.d.comb += Assert(sent_pending, "the device received an extra byte")
            for k in range(8):
                if f"rx{k}" in self.checks:
                    m.d.comb += Assert(sent_pending & (dut.rx_stream.payload[k] == sent[k]),
                                       f"the device received a wrong bit {k}")
            m.d.sync += sent_pending.eq(0)
        m.d.comb += Assert(~sent_pending | (sent_age < 4),
                           "a received byte was not offered within 4 cycles")
        with m.If(fire & kind_cs_rise & (bits != 0)):
            m.d.sync += abort_pending.eq(1)
            with m.If(aborts < 3):
                m.d.sync += aborts.eq(aborts + 1)
        with m.If(dut.rx_abort):
            m.d.comb += Assert(abort_pending, "rx_abort without an abort")
            m.d.sync += abort_pending.eq(0)
        m.d.comb += [Assert(~abort_pending | (abort_age < 4),
                            "an abort was not reported within 4 cycles"),
                     Assert(~dut.overrun & ~dut.rx_error, "overrun or rx_error strobed")]
        m.d.comb += Cover((slots == 3) & (aborts >= 1) & chosen_real)
        return m


@pytest.mark.formal
@pytest.mark.slow  # about 2.5 minutes (yices): -m slow or HWGEN_SLOW=1
def test_the_clock_crossing_holds_formally(tmp_path):
    """Bounded proofs over every schedule the contract allows (see `SpiCrossing`); the data
    checks are split per bit (one byte compare at once is far slower for yices)."""
    from hwgen.formal.runner import Property, run_properties

    def prop(name, what, mode, depth, **kw):
        return Property(f"spi.{name}", what, mode, depth,
                        harness=lambda: SpiCrossing(**kw))

    props = [
        prop("timing", "MISO stable 1 T before each sample; aborts, byte counts, latency",
             "bmc", 60, checks=()),
        *(prop(f"rx{k}", f"bit {k} of every byte received", "bmc", 40, margin=False,
               checks=(f"rx{k}",)) for k in range(8)),
        prop("tx", "every byte sent: the one offered, or the filler", "bmc", 38, margin=False,
             checks=("tx",)),
        prop("cover", "three slots, an abort and a real reply byte", "cover", 120),
        prop("ratio3", "at 3 core cycles per SCLK period MISO is late", "bmc", 30,
             min_gap=3, margin=False, checks=()),
    ]
    results = {r.prop.name: r for r in run_properties(props, tmp_path)}
    lines = "\n".join(r.line() for r in results.values())
    assert [r.status for n, r in results.items() if n != "spi.ratio3"] == \
        ["bounded"] * 10 + ["covered"], lines
    bad = results["spi.ratio3"]
    assert bad.status == "FAILED" and "MISO changed at the sampling edge" in bad.detail, lines
