# amaranth: UnusedElaboratable=no
"""UART PHY, framing protocol, host link and a full round trip over a simulated serial line."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from conftest import make_model, random_inputs
from hwgen.gateware.core import Accelerator, input_layout, output_layout
from hwgen.golden import GoldenModel
from hwgen.host import Link, StreamHost, first_mismatch, pack, payload_bytes, unpack
from hwgen.payload import fields_of
from hwgen.spec import HwgenError
from hwgen.uart.board import LinkedCore
from hwgen.uart.echo import EchoCore, echo_golden, echo_input_layout, echo_output_layout
from hwgen.uart.link import UartLink
from hwgen.uart.phy import UartRx, UartTx, uart_divisor
from hwgen.uart.protocol import Cmd, Frame, FrameParser, ProtocolError, crc16, encode_frame
from hwgen.uart.sim import SimSerial

DIV = 4  # clock cycles per bit in simulation


# -- protocol (pure Python) ---------------------------------------------------------------------
def test_crc16_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1  # the catalogue check value of CRC-16/CCITT-FALSE
    assert crc16(b"") == 0xFFFF


@pytest.mark.parametrize("data", [b"123456789", bytes(range(0, 256, 7))])
def test_bit_serial_crc16_equals_the_hosts(data):
    """`crc16_serial` (the receiver's and reply framer's CRC-16) gives `crc16` of the bytes it
    takes, a byte every 9 cycles (the closest it allows), and stays idle until the next."""
    from amaranth.hdl import Signal

    from hwgen.uart.crc import CRC16_INIT, crc16_serial

    m = Module()
    crc, load, byte = Signal(16, init=CRC16_INIT), Signal(), Signal(8)
    idle = crc16_serial(m, crc, load, byte)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        for b in data:
            ctx.set(load, 1)
            ctx.set(byte, b)
            await ctx.tick()
            ctx.set(load, 0)
            ctx.set(byte, 0xA5)  # the byte is taken in the load cycle only
            for _ in range(8):
                assert not ctx.get(idle)
                await ctx.tick()
        assert ctx.get(idle)
        seen.append(ctx.get(crc))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [crc16(data)]


def test_frames_round_trip_through_the_parser():
    raw = encode_frame(Cmd.STEP, 7, b"\x01\x02\x03") + encode_frame(Cmd.PING, 8)
    assert raw[:5] == bytes([0xA5, 0x02, 7, 3, 0])
    p = FrameParser()
    assert p.feed(b"\x00\x13" + raw[:4]) == [] and p.skipped == 2
    assert p.feed(raw[4:]) == [Frame(0x02, 7, b"\x01\x02\x03"), Frame(0x01, 8, b"")]


def test_parser_rejects_bad_checksum_and_absurd_length():
    bad = bytearray(encode_frame(Cmd.OUTPUT, 3, b"\x10\x20"))
    bad[5] ^= 0x04
    with pytest.raises(ProtocolError, match=r"bad checksum \(cmd 0x82, seq 3, 2 bytes"):
        FrameParser().feed(bytes(bad))
    with pytest.raises(ProtocolError, match="announcing 4096 payload bytes"):
        FrameParser(max_payload=64).feed(bytes([0xA5, 0x82, 1, 0x00, 0x10]))


def test_pack_unpack_follow_the_accelerator_layout():
    m = make_model("gru", inputs=3, hidden=4, outputs=2, argmax=True)
    lay = input_layout(m)
    assert [(f["name"], f["offset"], f["width"]) for f in fields_of(lay)] == [
        ("sos", 0, 1), ("x", 1, 24)]
    assert fields_of(lay)[1]["element_width"] == 8 and fields_of(lay)[1]["count"] == 3
    raw = pack(lay, {"sos": 1, "x": [-1, 5, -128]})
    assert raw == (1 | 0xFF << 1 | 5 << 9 | 0x80 << 17).to_bytes(4, "little")
    got = unpack(lay, raw)
    assert got["sos"].tolist() == [1] and got["x"].tolist() == [-1, 5, -128]
    with pytest.raises(HwgenError, match=r"x\[0\] = 200 does not fit 8 signed bits"):
        pack(lay, {"sos": 0, "x": [200, 0, 0]})
    assert set(unpack(output_layout(m), bytes(16))) == {"logits", "argmax"}


def test_the_host_side_runs_from_a_manifest_without_amaranth():
    """`hwgen.host` imports no Amaranth, and packs with a manifest's field list exactly as with
    the Amaranth layout it was written from (a host with numpy and pyserial runs a board)."""
    import subprocess
    import sys

    code = ("import sys, hwgen.host, hwgen.uart.host_link, hwgen.uart.protocol; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    m = make_model("lstm", inputs=5, hidden=6, outputs=3, argmax=True)
    for lay in (input_layout(m), output_layout(m)):
        fields = fields_of(lay)  # what the manifest's streams hold
        values = {f["name"]: ([(-1) ** k * k for k in range(f["count"])] if "count" in f
                              else 1) for f in fields}
        assert pack(fields, values) == pack(lay, values)
        assert payload_bytes(fields) == payload_bytes(lay) == -(-lay.size // 8)
        raw = pack(lay, values)
        assert {k: v.tolist() for k, v in unpack(fields, raw).items()} == \
            {k: v.tolist() for k, v in unpack(lay, raw).items()}


# -- PHY -----------------------------------------------------------------------------------------
class Loopback(wiring.Component):
    def __init__(self, tx_div=DIV, rx_div=DIV):
        self.divs = tx_div, rx_div
        super().__init__({"tx_in": In(stream.Signature(8)), "rx_out": Out(stream.Signature(8)),
                          "framing_error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = UartTx(self.divs[0])
        m.submodules.rx = rx = UartRx(self.divs[1])
        m.d.comb += [
            tx.i_stream.payload.eq(self.tx_in.payload),
            tx.i_stream.valid.eq(self.tx_in.valid),
            self.tx_in.ready.eq(tx.i_stream.ready),
            self.rx_out.payload.eq(rx.o_stream.payload),
            self.rx_out.valid.eq(rx.o_stream.valid),
            rx.o_stream.ready.eq(self.rx_out.ready),
            rx.rx.eq(tx.tx),
            self.framing_error.eq(rx.framing_error),
        ]
        return m


@pytest.mark.parametrize("tx_div, rx_div", [(DIV, DIV), (50, 49), (50, 51), (13, 13)])
def test_uart_tx_to_rx_loopback(tx_div, rx_div):
    """Also across a 2% baud-rate mismatch (the most `uart_divisor` accepts)."""
    dut = Loopback(tx_div, rx_div)
    sent, got = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80], []
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def producer(ctx):
        for b in sent:
            ctx.set(dut.tx_in.payload, b)
            ctx.set(dut.tx_in.valid, 1)
            await ctx.tick().until(dut.tx_in.ready)
        ctx.set(dut.tx_in.valid, 0)

    async def consumer(ctx):
        ctx.set(dut.rx_out.ready, 1)
        while len(got) < len(sent):
            _, _, valid, payload, ferr = await ctx.tick().sample(
                dut.rx_out.valid, dut.rx_out.payload, dut.framing_error)
            assert not ferr
            if valid:
                got.append(payload)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * 12 * max(tx_div, rx_div) * 10)
    assert got == sent


def test_uart_divisor_refuses_more_than_2_percent_baud_error():
    assert uart_divisor(12e6, 115200) == 104 and uart_divisor(12e6, 3_000_000) == 4
    assert uart_divisor(60e6, 3_000_000) == 20 and uart_divisor(200e6, 3_000_000) == 67
    with pytest.raises(HwgenError, match=r"^3000000 baud is 2.6% off what a 40 MHz clock makes "
                       r"\(divisor 13: 3076923 baud; at most 2% works\): the nearest rates it "
                       r"makes are 3076923 baud \(divisor 13\) or 2857143 baud \(divisor 14\)"):
        uart_divisor(40e6, 3_000_000)
    with pytest.raises(HwgenError, match=r"^4000000 baud is too fast for a 12 MHz clock: the "
                       r"UART needs at least 4 clock cycles per bit, so at most 3000000 baud"):
        uart_divisor(12e6, 4_000_000)


def test_phy_and_link_check_arguments():
    with pytest.raises(HwgenError, match="UART divisor must be at least 4 clock cycles per bit"):
        UartRx(3)
    with pytest.raises(HwgenError, match="Input byte count must be a positive integer, not 0"):
        UartLink(0, 1, 4)
    with pytest.raises(HwgenError, match="Output byte count must be at most 65535, not 65536"):
        UartLink(1, 65536, 4)
    with pytest.raises(HwgenError, match="Steps per RUN frame must be at most 255, not 256"):
        UartLink(1, 1, 4, max_steps=256)


# -- the link over a simulated serial line -------------------------------------------------------
def echo_port(**faults):
    return SimSerial(LinkedCore(EchoCore(3), DIV), DIV, timeout=0.2, **faults)


def test_echo_round_trip_over_the_simulated_line():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (2, 5, 3))
    with echo_port() as port:
        host = StreamHost(Link(port, timeout=10), echo_input_layout(3), echo_output_layout(3))
        out = host.run(x)["y"]
    want = np.stack([echo_golden(x[b], np.arange(5) == 0) for b in range(2)])
    np.testing.assert_array_equal(out, want)


def test_ping_reports_the_payload_sizes():
    with echo_port() as port:
        info = Link(port, timeout=10).ping()
    assert (info.version, info.in_bytes, info.out_bytes) == (3, 4, 3)
    assert (info.loadable, info.loaded) == (False, True)  # a ROM device always computes


def test_corrupted_byte_gives_a_clear_error_then_the_link_recovers():
    # Bytes 0-6 are the PING frame; byte 7 + 6 is a payload byte of the first STEP frame.
    with echo_port(corrupt={7 + 6: 0x10}) as port:
        link = Link(port, timeout=10)
        host = StreamHost(link, echo_input_layout(3), echo_output_layout(3))
        with pytest.raises(ProtocolError, match=r"the device rejected STEP frame 2: CRC: the "
                           r"frame's checksum did not match \(a byte was corrupted or lost"):
            host.step([1, 2, 3], sos=True)
        assert host.step([1, 2, 3], sos=True)["y"].tolist() == [1, 2, 3]


def test_lost_byte_gives_a_clear_error_not_a_hang():
    with echo_port(drop={7 + 7}) as port:
        host = StreamHost(Link(port, timeout=10), echo_input_layout(3), echo_output_layout(3))
        with pytest.raises(ProtocolError, match="STEP frame 2: TIMEOUT: the frame stopped "
                           "arriving before it was complete"):
            host.step([4, 5, 6], sos=True)
        assert host.step([4, 5, 6], sos=False)["y"].tolist() == [4, 5, 6]


def test_lost_header_byte_is_reported():
    # A lost LEN byte: the next byte is read as the length (wrong for STEP) -> LENGTH error.
    with echo_port(drop={7 + 3}) as port:
        host = StreamHost(Link(port, timeout=10), echo_input_layout(3), echo_output_layout(3))
        with pytest.raises(ProtocolError, match="STEP frame 2: LENGTH"):
            host.step([4, 5, 6], sos=True)


class DeadPort:
    """A port whose device never answers."""

    def write(self, data):
        return len(data)

    def read(self, n=1):
        return b""


def test_no_reply_is_a_timeout_error():
    with pytest.raises(ProtocolError, match=r"no reply from the device within 0.2 s to PING "
                       r"frame 1 \(0 bytes of a reply received\)"):
        Link(DeadPort(), timeout=0.2).ping()


def test_wrong_bitstream_is_detected_by_ping():
    with echo_port() as port:
        with pytest.raises(HwgenError, match="the device was built for 4-byte inputs and 3-byte "
                           "outputs; this model needs 2 and 1"):
            StreamHost(Link(port, timeout=10), echo_input_layout(1), echo_output_layout(1))


@pytest.mark.parametrize("cell, quant, tokens, argmax, lanes", [
    ("gru", "ternary", None, True, 4),  # vector inputs, argmax output field
    ("lstm", "exp", 11, False, 3),  # token inputs (embedding ROM), padded lanes
])
def test_accelerator_round_trip_equals_the_golden_model(cell, quant, tokens, argmax, lanes):
    """Board-level design (link + accelerator) in simulation, driven by the host code."""
    m = make_model(cell, quant, inputs=5, hidden=8, outputs=4, tokens=tokens, argmax=argmax,
                   seed=3)
    x = random_inputs(m, batch=2, time=4, seed=3)
    with SimSerial(LinkedCore(Accelerator(m, lanes), DIV), DIV, timeout=0.2) as port:
        host = StreamHost(Link(port, timeout=20), input_layout(m), output_layout(m))
        out = host.run(x)
    g = GoldenModel(m).run(x)
    assert first_mismatch(out["logits"], g.logits) is None
    np.testing.assert_array_equal(out["logits"], g.logits)
    if argmax:
        np.testing.assert_array_equal(out["argmax"][..., 0], g.classes)
    else:
        assert set(out) == {"logits"}
