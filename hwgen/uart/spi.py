"""SPI target PHY: a byte-stream PHY (docs/spi.md) for SPI mode 0, clocked by the core clock.

`SpiPhy` implements the byte-stream PHY interface that `UartPhy` implements for the UART
(``rx_stream``, ``tx_stream``, ``rx_error``, ``rx_abort``, ``overrun``; plus ``rx_end``, the end
of a transfer), so the same frame engine runs behind either link. The SPI clock is unrelated to
the core clock: the target synchronizes ``sclk``, ``cs_n`` and ``mosi`` (two flip-flops each)
and oversamples them, which needs a core clock of at least `MIN_CLOCK_RATIO` x SCLK
(`check_sclk` refuses anything faster).

`SpiLinkedCore` puts a core (the accelerator, or `EchoCore`) behind a `SpiPhy` and the link's
`FrameEngine`: the SPI counterpart of `hwgen.uart.board.LinkedCore`, pins ``sclk`` / ``cs_n`` /
``mosi`` / ``miso``. `hwgen.uart.spisim.SimSpi` drives it in simulation.
"""

from __future__ import annotations

import math

from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError, check_finite
from .engine import FrameEngine

__all__ = ["SpiPhy", "SpiLinkedCore", "FILLER", "MIN_CLOCK_RATIO", "check_sclk",
           "spi_target_resource"]

FILLER = 0x00
"""The byte the target sends in a slot where it has nothing to send."""

MIN_CLOCK_RATIO = 4
"""Core clock cycles per SCLK period, at least (each SCLK phase at least half of that)."""


def spi_target_resource(board, number: int = 0) -> Resource:
    """The ``spi_target`` resource of a board (its `hwgen.board.catalog.Board.spi_pins`), for
    ``platform.add_resources``: subsignals ``cs_n``, ``mosi``, ``sclk`` (in) and ``miso`` (out),
    each the raw pin (``cs_n`` stays active low: `SpiPhy` takes it as it is). `HwgenError` for
    a board without SPI pins."""
    from ..board.catalog import BOARDS, get_board

    b = get_board(board)
    if b.spi_pins is None:
        raise HwgenError(f"no SPI target pins are defined for board {b.name!r}; boards: "
                         f"{', '.join(n for n, x in BOARDS.items() if x.spi_pins)}")
    conn, pins, attrs = b.spi_pins
    return Resource(
        "spi_target", number,
        *(Subsignal(name, Pins(pin, dir=d, conn=conn))
          for name, pin, d in zip(("cs_n", "mosi", "miso", "sclk"), pins, "iioi", strict=True)),
        Attrs(**attrs))


def check_sclk(clock_hz: float, sclk_hz: float) -> float:
    """The ratio ``clock_hz / sclk_hz``, or `HwgenError` when the SPI clock is faster than
    `SpiPhy` can follow (``clock_hz < MIN_CLOCK_RATIO * sclk_hz``) or either value is not a
    positive finite number."""
    for name, v in (("Core clock", clock_hz), ("SPI clock", sclk_hz)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v <= 0:
            raise HwgenError(f"{name} must be a positive frequency in Hz, not {v!r}")
    ratio = clock_hz / sclk_hz
    if ratio < MIN_CLOCK_RATIO:
        raise HwgenError(
            f"SPI clock {sclk_hz / 1e6:g} MHz is too fast for a {clock_hz / 1e6:g} MHz core clock: "
            f"the SPI target samples SCLK with the core clock and needs core clock >= "
            f"{MIN_CLOCK_RATIO} x SCLK (SCLK at most {clock_hz / MIN_CLOCK_RATIO / 1e6:g} MHz "
            f"here)")
    return ratio


class SpiPhy(wiring.Component):
    """SPI mode-0 target (CPOL 0, CPHA 0, MSB first, chip select ``cs_n`` active low).

    Every byte slot the controller clocks (8 SCLK rising edges while ``cs_n`` is low) moves one
    byte each way (full duplex).

    Clocking contract (all in core clock periods T; the pins are unrelated to the core clock)
    -----------------------------------------------------------------------------------------
    - SCLK period >= 4 T and each SCLK phase (high, low) >= 2 T: core clock >= 4 x SCLK
      (`MIN_CLOCK_RATIO`, checked by `check_sclk`).
    - ``cs_n`` falling to the first SCLK rising edge >= 2 T, the last SCLK falling edge before
      ``cs_n`` rises (mode 0 ends with SCLK low), and ``cs_n`` high >= 4 T between transfers.
      An MCU's SPI peripheral at SCLK <= core / 4 meets these with half-period lead / lag times.
    - MOSI is sampled on the SCLK rising edge (as seen 2-3 T after it, through the
      synchronizers; the controller holds MOSI until its falling edge, >= 2 T later).
    - MISO changes at most 3 T after a SCLK rising edge (the controller has just sampled the
      previous bit) and is stable at least 1 T before the next one. The first bit of a slot is on
      MISO before the slot begins: the slot's byte is chosen at the end of the previous slot or
      when ``cs_n`` rises, never while the controller may be clocking it.

    Byte-stream contract
    --------------------
    - rx: the byte of a slot is offered on ``rx_stream`` 3 T after the slot's 8th SCLK rising
      edge and stays valid until taken. Filler bytes the controller sends (while it reads) are
      bytes like any other; the frame engine skips non-SYNC bytes between frames. A byte
      completed while the previous one is still not taken is dropped and ``overrun`` strobes;
      a consumer that keeps ``ready`` high never loses a byte (a byte slot lasts >= 32 T).
    - tx: ``tx_stream`` fills a one-byte buffer (``ready`` is registered: high while the
      buffer is empty, so a byte is taken the cycle after it becomes valid at the earliest). The
      byte for slot k+1 is chosen in the cycle the end of slot k is seen: the buffered byte if
      there is one, else the filler `FILLER` (0x00). When ``cs_n`` rises with a filler chosen
      for the next slot, the choice is made again then. So a byte that becomes valid at least
      2 T before the end of a slot goes out in the next slot; one that becomes valid while
      ``cs_n`` is high goes out in the second slot of the next transfer (the first carries what
      was chosen when ``cs_n`` rose).
    - ``cs_n`` rising at a byte boundary ends a transfer and nothing else: the frame state is
      not touched (a frame may span transfers; a transfer may carry several frames). ``rx_end``
      strobes (not part of the byte-stream PHY interface: an SPI frame engine may use it where
      the UART waits for a quiet line, e.g. to end the skipping of a rejected frame).
    - ``cs_n`` rising in the middle of a byte: ``rx_abort`` strobes one cycle, the partial
      received byte is discarded (the frame engine drops the frame in progress), and a byte
      that was partly shifted out is re-sent whole in the next slot (the host discards the bits
      of a cut byte; a reply is never cut silently, nor a byte duplicated).
    - SCLK edges while ``cs_n`` is high are ignored (a shared bus); ``miso_oe`` is high while
      selected, for a board top that tri-states MISO.

    Members
    -------
    sclk, cs_n, mosi : In(1) pins (``cs_n`` idles high).
    miso : Out(1) pin; ``miso_oe`` : Out(1), MISO should be driven (``cs_n`` low, synchronized).
    rx_stream : Out(stream.Signature(8)); tx_stream : In(stream.Signature(8)).
    rx_error : Out(1), always 0 (SPI has no framing bits; the frame CRC catches damage).
    rx_abort : Out(1) strobe; overrun : Out(1) strobe; rx_end : Out(1) strobe (see above).
    """

    def __init__(self):
        super().__init__({
            "sclk": In(1),
            "cs_n": In(1, init=1),
            "mosi": In(1),
            "miso": Out(1),
            "miso_oe": Out(1),
            "rx_stream": Out(stream.Signature(8)),
            "tx_stream": In(stream.Signature(8)),
            "rx_error": Out(1),
            "rx_abort": Out(1),
            "overrun": Out(1),
            "rx_end": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sclk, mosi = Signal(), Signal()
        cs_n = Signal(init=1)
        m.submodules.sync_sclk = FFSynchronizer(self.sclk, sclk)
        m.submodules.sync_cs_n = FFSynchronizer(self.cs_n, cs_n, init=1)
        m.submodules.sync_mosi = FFSynchronizer(self.mosi, mosi)
        sclk_d, cs_n_d = Signal(), Signal(init=1)
        m.d.sync += [sclk_d.eq(sclk), cs_n_d.eq(cs_n)]
        rise = Signal()
        cs_rise = Signal()
        m.d.comb += [rise.eq(sclk & ~sclk_d & ~cs_n), cs_rise.eq(cs_n & ~cs_n_d)]

        bit = Signal(range(8))  # bits of the current slot already clocked
        rx_sr = Signal(7)
        tx_sr = Signal(8, init=FILLER)
        held = Signal(8, init=FILLER)  # the byte of the current slot, for a re-send
        held_real = Signal()  # ... taken from tx_stream (not the filler)
        m.d.comb += [self.miso.eq(tx_sr[7]), self.miso_oe.eq(~cs_n)]

        # -- receive ---------------------------------------------------------------------------
        with m.If(self.rx_stream.ready):
            m.d.sync += self.rx_stream.valid.eq(0)
        with m.If(cs_n):
            m.d.sync += bit.eq(0)
            with m.If(cs_rise & (bit != 0)):
                m.d.comb += self.rx_abort.eq(1)
            with m.If(cs_rise & (bit == 0)):
                m.d.comb += self.rx_end.eq(1)
        with m.Elif(rise):
            m.d.sync += [bit.eq(bit + 1), rx_sr.eq(Cat(mosi, rx_sr[:6]))]
            with m.If(bit == 7):
                with m.If(self.rx_stream.valid & ~self.rx_stream.ready):
                    m.d.comb += self.overrun.eq(1)
                with m.Else():
                    m.d.sync += [self.rx_stream.payload.eq(Cat(mosi, rx_sr)),
                                 self.rx_stream.valid.eq(1)]

        # -- transmit --------------------------------------------------------------------------
        # a one-byte buffer between tx_stream and the shift register: ``ready`` is a flip-flop,
        # so the synchronized SCLK / CS edges never reach the frame engine's reply logic in the
        # cycle they are seen (that path, 4 LUT levels and 13 ns of routing, limited the iCE40
        # SPI board build to 53-55 MHz where the same core behind the UART placed at 62-63)
        buf = Signal(8)
        buf_valid = Signal()
        m.d.comb += self.tx_stream.ready.eq(~buf_valid)
        with m.If(self.tx_stream.valid & ~buf_valid):
            m.d.sync += [buf.eq(self.tx_stream.payload), buf_valid.eq(1)]
        take = Signal()
        m.d.comb += take.eq((rise & (bit == 7)) | (cs_rise & ~held_real))
        with m.If(take):
            with m.If(buf_valid):
                m.d.sync += [tx_sr.eq(buf), held.eq(buf), held_real.eq(1), buf_valid.eq(0)]
            with m.Else():
                m.d.sync += [tx_sr.eq(FILLER), held.eq(FILLER), held_real.eq(0)]
        with m.Elif(cs_rise):  # a real byte: re-sent whole (a no-op at a byte boundary)
            m.d.sync += tx_sr.eq(held)
        with m.Elif(rise):
            m.d.sync += tx_sr.eq(Cat(0, tx_sr[:7]))
        return m


class SpiLinkedCore(wiring.Component):
    """``core`` behind a `SpiPhy` and a `FrameEngine` (the frames of docs/uart.md over SPI).

    Parameters
    ----------
    core : a wiring.Component with ``i_stream`` (In) and ``o_stream`` (Out) stream members; a
        loadable accelerator (with a ``load`` member) gets the link's load commands.
    clock_hz : the core clock.
    sclk_hz : the fastest SCLK the controller will use; `HwgenError` unless
        ``clock_hz >= MIN_CLOCK_RATIO * sclk_hz`` (`check_sclk`).
    timeout : seconds a frame may pause between two bytes before it is abandoned (TIMEOUT), and
        the quiet time after which the engine answers a frame it skipped.
    shape_id : what a loadable device reports as its shape (`hwgen.shape.shape_id`).
    max_steps : the most steps of a RUN frame (`FrameEngine`; default: its default).

    Members
    -------
    sclk, cs_n, mosi : In(1); miso, miso_oe : Out(1) (see `SpiPhy`).
    busy : Out(1), a request is being handled; errors : Out(8), rejected frames (wraps).
    """

    def __init__(self, core, clock_hz: float, sclk_hz: float, *, timeout: float = 1e-3,
                 shape_id: int = 0, max_steps: int | None = None):
        from .board import class_field, load_spec, stream_bits

        self._ratio = check_sclk(clock_hz, sclk_hz)
        timeout = check_finite("Frame timeout", timeout, minimum=0, strict_min=True)
        self._in_bits, self._out_bits = stream_bits(core, "SPI")
        self.core = core
        self._engine_args = (-(-self._in_bits // 8), -(-self._out_bits // 8))
        self._engine_kw = dict(timeout_cycles=max(1, math.ceil(timeout * clock_hz)),
                               load=load_spec(core, shape_id), max_steps=max_steps,
                               class_field=class_field(core))
        super().__init__({"sclk": In(1), "cs_n": In(1, init=1), "mosi": In(1),
                          "miso": Out(1), "miso_oe": Out(1), "busy": Out(1), "errors": Out(8)})

    @property
    def ratio(self) -> float:
        """Core clock cycles per period of the fastest SCLK."""
        return self._ratio

    def elaborate(self, platform):
        from .board import connect_core

        m = Module()
        m.submodules.phy = phy = SpiPhy()
        m.submodules.engine = eng = FrameEngine(*self._engine_args, **self._engine_kw)
        m.submodules.core = core = self.core
        wiring.connect(m, phy.rx_stream, eng.rx_stream)
        wiring.connect(m, eng.tx_stream, phy.tx_stream)
        m.d.comb += [
            phy.sclk.eq(self.sclk), phy.cs_n.eq(self.cs_n), phy.mosi.eq(self.mosi),
            self.miso.eq(phy.miso), self.miso_oe.eq(phy.miso_oe),
            eng.rx_error.eq(phy.rx_error), eng.rx_abort.eq(phy.rx_abort),
            eng.overrun.eq(phy.overrun), eng.rx_end.eq(phy.rx_end),
            self.busy.eq(eng.busy), self.errors.eq(eng.errors),
        ]
        connect_core(m, eng, core, self._in_bits)
        return m
