# amaranth: UnusedElaboratable=no
"""The simulated board on Verilator (hwgen.boardsim): the UART board design (LinkedCore + a small
accelerator) driven by the host code through the port, exact against the golden model; faults,
simulated-time timeouts, a slow reader; the C++ SPI controller against a loopback target."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from conftest import random_inputs
from hwgen.api import random_model
from hwgen.boardsim import (
    ReceiveOverflow,
    SpiClock,
    VerilatedBoard,
    board_verilog,
    build_board_sim,
    open_sim_board,
)
from hwgen.gateware.core import Accelerator, input_layout, output_layout
from hwgen.golden import GoldenModel
from hwgen.host import Link, StreamHost
from hwgen.spec import HwgenError
from hwgen.uart.board import LinkedCore
from hwgen.uart.protocol import PROTOCOL_VERSION, Cmd, ProtocolError, encode_frame

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parent.parent
DIV = 4
CLOCK = 12e6
PING_BYTES = len(encode_frame(Cmd.PING, 1))  # StreamHost's first request


@pytest.fixture(scope="module")
def uart_board(tmp_path_factory):
    """A GRU 3-8-4 ternary accelerator (4 lanes, argmax) behind a LinkedCore, compiled once:
    (model, design, its Verilog, the build cache folder)."""
    model = random_model("gru", 3, 8, 4, quant="ternary", argmax=True, seed=5)
    design = LinkedCore(Accelerator(model, 4), DIV)
    text = board_verilog(design)
    cache = tmp_path_factory.mktemp("boardsim")
    said = []
    build = build_board_sim(design, cache_dir=cache, verilog_text=text, progress=said.append)
    assert build.link == "uart" and build.exe.is_file() and build.seconds > 0
    assert said[0].startswith("simulated board: compiling the uart board with Verilator")
    assert said[1].startswith("simulated board: compiled in")
    return model, design, text, cache


def port(uart_board, **options) -> VerilatedBoard:
    _, design, text, cache = uart_board
    options.setdefault("timeout", 0.01)
    return VerilatedBoard(design, clock_hz=CLOCK, divisor=DIV, cache_dir=cache,
                          verilog_text=text, **options)


def test_stream_host_run_equals_the_golden_model(uart_board):
    model = uart_board[0]
    x = random_inputs(model, batch=2, time=4, seed=7)
    with port(uart_board) as p:
        assert p.build_seconds == 0.0  # the module's build, from the cache
        host = StreamHost(Link(p, timeout=30), input_layout(model), output_layout(model))
        out = host.run(x)
        assert p.framing_errors == 0 and p.cycles > 0
        assert p.sim_seconds == pytest.approx(p.cycles / CLOCK)
    g = GoldenModel(model).run(x)
    np.testing.assert_array_equal(out["logits"], g.logits)
    np.testing.assert_array_equal(out["argmax"][..., 0], g.classes)


def test_ping_reports_the_payload_sizes(uart_board):
    model = uart_board[0]
    with port(uart_board) as p:
        info = Link(p, timeout=30).ping()
    assert info.version == PROTOCOL_VERSION and (info.loadable, info.loaded) == (False, True)
    assert (info.in_bytes, info.out_bytes) == (-(-input_layout(model).size // 8),
                                               -(-output_layout(model).size // 8))


def test_runs_are_deterministic(uart_board):
    model = uart_board[0]
    x = random_inputs(model, batch=1, time=2, seed=1)
    runs = []
    for _ in range(2):
        with port(uart_board) as p:
            out = StreamHost(Link(p, timeout=30), input_layout(model),
                             output_layout(model)).run(x)
            runs.append((p.cycles, out["logits"].tolist()))
    assert runs[0] == runs[1]


def test_corrupted_byte_gives_the_crc_error_then_the_link_recovers(uart_board):
    model = uart_board[0]
    x = random_inputs(model, batch=1, time=1, seed=2)[0, 0]
    want = GoldenModel(model).run(x[None, None]).logits[0, 0]
    with port(uart_board, corrupt={PING_BYTES + 6: 0x10}) as p:
        host = StreamHost(Link(p, timeout=30), input_layout(model), output_layout(model))
        with pytest.raises(ProtocolError, match=r"the device rejected STEP frame 2: CRC"):
            host.step(x, sos=True)
        np.testing.assert_array_equal(host.step(x, sos=True)["logits"], want)


def test_dropped_byte_gives_the_device_timeout_then_the_link_recovers(uart_board):
    model = uart_board[0]
    x = random_inputs(model, batch=1, time=1, seed=3)[0, 0]
    want = GoldenModel(model).run(x[None, None]).logits[0, 0]
    with port(uart_board, drop={PING_BYTES + 7}) as p:
        host = StreamHost(Link(p, timeout=30), input_layout(model), output_layout(model))
        with pytest.raises(ProtocolError, match="STEP frame 2: TIMEOUT"):
            host.step(x, sos=True)
        np.testing.assert_array_equal(host.step(x, sos=True)["logits"], want)


def test_read_times_out_in_simulated_time(uart_board):
    with port(uart_board, timeout=0.003) as p:
        t0 = time.monotonic()
        assert p.read(10) == b""  # a silent device
        wall = time.monotonic() - t0
        assert p.cycles == round(0.003 * CLOCK) and p.sim_seconds == pytest.approx(0.003)
        assert wall < 5.0
        p.timeout = 0
        assert p.read(1) == b"" and p.cycles == round(0.003 * CLOCK)  # no time passes


def test_a_slow_reader_keeps_the_reply_or_gets_a_clear_overflow(uart_board):
    ping = encode_frame(Cmd.PING, 1)
    with port(uart_board) as p:  # the host stops reading; the reply waits in its buffer
        p.write(ping)
        p.flush()
        assert p.out_waiting == 0
        p.idle(0.001)
        whole = p.in_waiting
        assert whole > 6 and p.read(whole)[:2] == bytes([0xA5, Cmd.INFO])
    with port(uart_board, rx_buffer=8) as p:  # a buffer smaller than the reply
        p.write(ping)
        p.idle(0.001)
        assert p.in_waiting == 8 and p.overflowed == whole - 8
        with pytest.raises(ReceiveOverflow, match=rf"the host's receive buffer \(8 bytes\) "
                           rf"overflowed: {whole - 8} bytes from the device were lost"):
            p.read(8)
        p.reset_input_buffer()
        assert Link(p, timeout=30).ping().version == PROTOCOL_VERSION  # the link works on


def test_progress_reports_simulated_time_and_bytes(uart_board):
    lines = []
    with port(uart_board, progress=lines.append, progress_s=0.0) as p:
        Link(p, timeout=30).ping()
    assert lines and "ms simulated" in lines[-1] and f"{PING_BYTES} bytes sent" in lines[-1]


def test_open_sim_board_and_bad_arguments(uart_board):
    _, design, text, cache = uart_board
    with open_sim_board(design, clock_hz=CLOCK, divisor=DIV, timeout=0.01, cache_dir=cache,
                        verilog_text=text) as p:
        assert Link(p, timeout=30).ping().version == PROTOCOL_VERSION
    with pytest.raises(HwgenError, match="a UART board needs divisor="):
        VerilatedBoard(design, clock_hz=CLOCK, cache_dir=cache, verilog_text=text)
    with pytest.raises(HwgenError, match=r"Clock frequency \(Hz\) must be greater than 0, not 0"):
        VerilatedBoard(design, clock_hz=0, divisor=DIV)
    with pytest.raises(HwgenError, match="UART divisor must be at least 4, not 3"):
        VerilatedBoard(design, clock_hz=CLOCK, divisor=3)
    with pytest.raises(HwgenError, match="the design has no link pins"):
        build_board_sim(Accelerator(uart_board[0], 2))
    with pytest.raises(HwgenError, match="the simulated board's port is closed"):
        p.read(1)


def test_a_dead_simulator_is_a_clear_error(uart_board):
    p = port(uart_board)
    p._proc.kill()
    p._proc.wait()
    with pytest.raises(HwgenError, match=r"the simulated board stopped \(.*exit -9\)"):
        p.read(1)
    assert not p.is_open
    p.close()


def test_a_missing_verilator_is_a_clear_error(uart_board, monkeypatch):
    monkeypatch.setattr("hwgen.fastsim.verilator_bin", lambda: None)
    with pytest.raises(HwgenError, match="Verilator is not installed"):
        build_board_sim(uart_board[1], cache_dir=uart_board[3] / "none")


def test_the_wheel_ships_the_harnesses():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert data["package-data"]["hwgen.boardsim"] == ["harness.cpp"]
    assert data["package-data"]["hwgen.fastsim"] == ["harness.cpp"]
    assert (ROOT / "hwgen" / "boardsim" / "harness.cpp").is_file()


# -- SPI: the C++ controller against a loopback target ------------------------------------------
class SpiLoopback(wiring.Component):
    """SPI mode-0 target, MSB first: every byte it shifts out is the last byte it received (0 at
    first), so a transfer of A B C reads back P A B (P: the last byte of the transfer before).
    Pins are synchronized into ``sync`` (2 flip-flops); MISO changes 3-4 cycles after SCLK
    falls, so the half period must be at least 5 cycles."""

    def __init__(self):
        super().__init__({"sclk": In(1), "cs_n": In(1, init=1), "mosi": In(1), "miso": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sclk, cs_n, mosi = Signal(), Signal(init=1), Signal()
        m.submodules.s0 = FFSynchronizer(self.sclk, sclk)
        m.submodules.s1 = FFSynchronizer(self.cs_n, cs_n, init=1)
        m.submodules.s2 = FFSynchronizer(self.mosi, mosi)
        sclk_d, cs_d = Signal(), Signal(init=1)
        shift_in, shift_out, last, count = Signal(8), Signal(8), Signal(8), Signal(3)
        m.d.sync += [sclk_d.eq(sclk), cs_d.eq(cs_n)]
        m.d.comb += self.miso.eq(shift_out[7])
        with m.If(cs_n):
            m.d.sync += count.eq(0)
        with m.Elif(cs_d):  # chip select just fell
            m.d.sync += shift_out.eq(last)
        with m.Elif(sclk & ~sclk_d):
            m.d.sync += [shift_in.eq(Cat(mosi, shift_in[:7])), count.eq(count + 1)]
            with m.If(count == 7):
                m.d.sync += last.eq(Cat(mosi, shift_in[:7]))
        with m.Elif(~sclk & sclk_d):
            with m.If(count == 0):
                m.d.sync += shift_out.eq(last)
            with m.Else():
                m.d.sync += shift_out.eq(shift_out << 1)
        return m


@pytest.fixture(scope="module")
def spi_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("boardsim_spi")
    assert build_board_sim(SpiLoopback(), cache_dir=cache).link == "spi"
    return cache


@pytest.mark.parametrize("clock", [SpiClock(half_period=6), SpiClock(6, jitter=5, seed=3),
                                   SpiClock(5, burst=4)])
def test_spi_controller_is_full_duplex_msb_first(spi_cache, clock):
    with VerilatedBoard(SpiLoopback(), clock_hz=CLOCK, spi=clock, timeout=0.001,
                        cache_dir=spi_cache) as p:
        p.write(bytes([0x81, 0x42, 0xC3]))
        assert p.read(3) == bytes([0x00, 0x81, 0x42])  # clocked in while the bytes went out
        assert p.read(2) == bytes([0xC3, 0x00])  # a whole filler burst while the host waits
        assert p.in_waiting == clock.burst - 2
        p.reset_input_buffer()
        p.write(b"\x5a")
        before = p.cycles
        p.flush()  # one transfer, no filler
        assert p.out_waiting == 0 and p.in_waiting == 1
        if clock.jitter == 0:  # setup, SCLK high 8 and low 7 half periods, hold, gap 2
            assert p.cycles - before == 19 * clock.half_period
        before = p.cycles
        p.idle(0.0001)  # the controller clocks nothing by itself
        assert p.in_waiting == 1 and p.cycles == before + round(0.0001 * CLOCK)
        assert p.read(2) == bytes([0x00, 0x5A])


def test_spi_bad_arguments(spi_cache):
    with pytest.raises(HwgenError, match="an SPI board takes spi="):
        VerilatedBoard(SpiLoopback(), clock_hz=CLOCK, divisor=4, cache_dir=spi_cache)
    with pytest.raises(HwgenError, match="SPI half period must be a positive integer, not 0"):
        SpiClock(half_period=0)


def test_spi_linked_core_equals_the_golden_model(tmp_path_factory):
    """The real SPI link (hwgen.uart.spi, from the SPI helper's branch) behind the C++
    controller with a jittered SCLK: StreamHost exact against the golden model."""
    spi = pytest.importorskip("hwgen.uart.spi", reason="the SPI link (wip/spi) is not merged")
    model = random_model("gru", 3, 8, 4, quant="ternary", argmax=True, seed=6)
    x = random_inputs(model, batch=2, time=3, seed=8)
    design = spi.SpiLinkedCore(Accelerator(model, 4), CLOCK, CLOCK / 6)
    with VerilatedBoard(design, clock_hz=CLOCK, spi=SpiClock(3, jitter=2, seed=4), timeout=0.01,
                        cache_dir=tmp_path_factory.mktemp("boardsim_spilink")) as p:
        out = StreamHost(Link(p, timeout=30), input_layout(model), output_layout(model)).run(x)
    g = GoldenModel(model).run(x)
    np.testing.assert_array_equal(out["logits"], g.logits)
    np.testing.assert_array_equal(out["argmax"][..., 0], g.classes)


def test_a_loadable_board_loads_a_model_then_computes_it_exactly(tmp_path_factory):
    """The `hwgen run --port sim --build DIR` case: weights in RAM, written over the link."""
    from hwgen.shape import capacity_model, load_crc, load_images, shape_id, shape_of

    model = random_model("gru", 4, 6, 3, quant="ternary", seed=9)
    shape = shape_of(model, 3)
    sid = shape_id(shape)
    core = Accelerator(capacity_model(model, shape["bias_bits"]), 3, "auto", "spram")
    with VerilatedBoard(LinkedCore(core, DIV, shape_id=sid), clock_hz=CLOCK, divisor=DIV,
                        timeout=0.01, cache_dir=tmp_path_factory.mktemp("boardsim_load")) as p:
        link = Link(p, timeout=30)
        info = link.ping()
        assert info.loadable and not info.loaded and info.shape_id == sid
        images = load_images(shape, model)
        st = link.load(images, info.word_bytes, sid, load_crc(images, info.word_bytes))
        assert st.loaded
        x = random_inputs(model, batch=1, time=3, seed=4)
        out = StreamHost(link, input_layout(core.model), output_layout(core.model)).run(x)
    np.testing.assert_array_equal(out["logits"], GoldenModel(model).run(x).logits)
