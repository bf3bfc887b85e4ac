"""Board tops: a core behind a `UartLink` on a real board, and the bitstream build.

- `LinkedCore`: any core with ``i_stream`` / ``o_stream`` (the accelerator, or `EchoCore`) wired
  to a `UartLink`; its only ports are the serial pins ``rx`` / ``tx``. The same component runs
  in simulation (`hwgen.uart.sim.SimSerial`) and on the board.
- `BoardTop`: board-agnostic; requests the platform's ``uart`` and derives the divisor from the
  platform's default clock and the baud rate. An ``led`` (or the OrangeCrab's ``rgb_led``) lights
  while a request is being handled.
- `BOARDS` / `build_board`: iCEBreaker (iCE40 UP5K, FTDI UART), ULX3S 85F (ECP5-85k, FTDI UART),
  OrangeCrab r0.2 85F (ECP5-85k; it has no USB-UART bridge: a 3.3 V USB-serial adapter goes on
  feather pins 0 = RX and 1 = TX). Builds run Yosys / nextpnr / pack through amaranth-boards
  (``do_program=False``) after the fit check, and report resources and Fmax at the board clock.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.build import Attrs, Resource, Subsignal
from amaranth.build.dsl import Pins
from amaranth.hdl import Module, Shape
from amaranth.lib import data, io, wiring
from amaranth.lib.wiring import In, Out

from ..gateware.loadable import STRIP_INIT_PATTERN
from ..spec import HwgenError, check_positive_int
from ..toolenv import tool_env
from .link import LoadSpec, UartLink

__all__ = ["LinkedCore", "load_spec", "class_field", "BoardTop", "Board", "BOARDS", "BuildResult",
           "build_board", "get_board"]


def _payload_shape(core, name: str):
    return core.signature.members[name].signature.members["payload"].shape


class LinkedCore(wiring.Component):
    """``core`` behind a `UartLink` (see the module docstring).

    Parameters
    ----------
    core : a wiring.Component with ``i_stream`` (In) and ``o_stream`` (Out) stream members; a
        loadable accelerator (with a ``load`` member) gets the link's load commands.
    divisor : clock cycles per UART bit.
    timeout_bits : the link's inter-byte timeout in bit times.
    shape_id : what a loadable device reports as its shape (`hwgen.shape.shape_id`).
    max_steps : the most steps of a RUN frame (`FrameEngine`).

    Members
    -------
    rx : In(1); tx : Out(1); busy : Out(1); errors : Out(8) (see `UartLink`).
    """

    def __init__(self, core, divisor: int, timeout_bits: int = 40, shape_id: int = 0, *,
                 max_steps: int | None = None):
        try:
            self._in_bits = Shape.cast(_payload_shape(core, "i_stream")).width
            self._out_bits = Shape.cast(_payload_shape(core, "o_stream")).width
        except (AttributeError, KeyError):
            raise HwgenError(
                f"a core behind a UART link needs i_stream and o_stream members, not {core!r}"
            ) from None
        self.core = core
        self.link = UartLink(-(-self._in_bits // 8), -(-self._out_bits // 8), divisor,
                             timeout_bits, load_spec(core, shape_id), max_steps=max_steps,
                             class_field=class_field(core))
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "errors": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.core = core = self.core
        m.d.comb += [
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            self.busy.eq(link.busy),
            self.errors.eq(link.errors),
            core.i_stream.payload.as_value().eq(link.o_stream.payload[: self._in_bits]),
            core.i_stream.valid.eq(link.o_stream.valid),
            link.o_stream.ready.eq(core.i_stream.ready),
            link.i_stream.payload.eq(core.o_stream.payload.as_value()),
            link.i_stream.valid.eq(core.o_stream.valid),
            core.o_stream.ready.eq(link.i_stream.ready),
        ]
        if "load" in core.signature.members:
            wiring.connect(m, link.load, core.load)
        return m


def class_field(core) -> tuple[int, int] | None:
    """(bit offset, bits) of the ``argmax`` field of the core's output transfer, or None."""
    shape = _payload_shape(core, "o_stream")
    if isinstance(shape, data.StructLayout) and "argmax" in shape.members:
        f = shape["argmax"]
        return f.offset, Shape.cast(f.shape).width
    return None


def load_spec(core, shape_id: int = 0) -> LoadSpec | None:
    """The link's view of a loadable accelerator (None for a core without a load port)."""
    if "load" not in getattr(core, "signature", wiring.Signature({})).members:
        return None
    images = core.plan.load_images()
    port = core.signature.members["load"].signature.members
    data_bits = Shape.cast(port["data"].shape).width
    return LoadSpec(word_bytes=-(-data_bits // 8), depths=tuple(im.depth for im in images),
                    addr_bits=Shape.cast(port["addr"].shape).width, data_bits=data_bits,
                    shape_id=int(shape_id))


class BoardTop(wiring.Component):
    """A core on a board's UART (no ports: pins come from ``platform.request``)."""

    def __init__(self, core, baud: int = 115200, shape_id: int = 0):
        self.core, self.baud = core, check_positive_int("Baud rate", baud)
        self.shape_id = int(shape_id)
        super().__init__({})

    def divisor(self, platform) -> int:
        return round(platform.default_clk_frequency / self.baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.linked = linked = LinkedCore(self.core, self.divisor(platform),
                                                  shape_id=self.shape_id)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [linked.rx.eq(rx.i), tx.o.eq(linked.tx)]
        names = {r.name for r in platform.resources.values()}
        led = None
        if "led" in names:
            led = platform.request("led", 0, dir="-")
        elif "rgb_led" in names:
            led = platform.request("rgb_led", 0, dir="-").g
        if led is not None:
            m.submodules.led_buffer = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(linked.busy)
        return m


# -- boards ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Board:
    name: str
    target: str  # hwgen.targets name used by the fit check
    platform: str  # amaranth_boards module:class
    clock_hz: float
    notes: str

    def make_platform(self):
        import importlib

        mod, cls = self.platform.split(":")
        platform_cls = getattr(importlib.import_module(mod), cls)
        if self.name.startswith("orangecrab"):

            class OrangeCrabUart(platform_cls):
                resources = platform_cls.resources + [
                    Resource("uart", 0,
                             Subsignal("rx", Pins("0", dir="i", conn=("io", 0))),
                             Subsignal("tx", Pins("1", dir="o", conn=("io", 0))),
                             Attrs(IO_TYPE="LVCMOS33")),
                ]

            return OrangeCrabUart()
        return platform_cls()


BOARDS = {
    b.name: b
    for b in (
        Board("icebreaker", "ice40-up5k", "amaranth_boards.icebreaker:ICEBreakerPlatform", 12e6,
              "iCE40 UP5K, 12 MHz, UART on the FTDI's second channel"),
        Board("ulx3s-85f", "ecp5-85k", "amaranth_boards.ulx3s:ULX3S_85F_Platform", 25e6,
              "ECP5 LFE5U-85F, 25 MHz, UART on the FTDI (US1 port)"),
        Board("orangecrab-85f", "ecp5-85k",
              "amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_85FPlatform", 48e6,
              "ECP5 LFE5U-85F, 48 MHz; no USB-UART bridge: UART on feather pins 0 (RX), 1 (TX)"),
    )
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise HwgenError(f"unknown board {name!r}; expected one of {', '.join(BOARDS)}") from None


@dataclass
class BuildResult:
    board: str
    bitstream: Path
    divisor: int
    baud: int
    cells: dict[str, int]
    utilization: dict[str, dict]
    fmax_mhz: float | None
    clock_mhz: float

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "bitstream": str(self.bitstream),
            "divisor": self.divisor,
            "baud": self.baud,
            "cells": self.cells,
            "utilization": self.utilization,
            "fmax_mhz": self.fmax_mhz,
            "clock_mhz": self.clock_mhz,
        }


def build_board(core, board: str | Board, out_dir, *, baud: int = 115200,
                name: str = "top", timeout: float | None = None,
                shape_id: int = 0, seed: int = 1) -> BuildResult:
    """Build a bitstream of ``core`` behind a UART on ``board`` in ``out_dir`` (never programs).

    Runs the amaranth-boards build script with captured output; a failing tool raises
    `HwgenError` with its error lines, a run past ``timeout`` seconds too. ``seed``: nextpnr's
    placement seed. The caller does the fit check first (`hwgen.fit`).
    """
    from ..synth import parse_nextpnr_report, parse_yosys_stat

    b = board if isinstance(board, Board) else get_board(board)
    platform = b.make_platform()
    top = BoardTop(core, baud, shape_id)
    divisor = top.divisor(platform)
    if divisor < 4:
        raise HwgenError(
            f"{baud} baud is too fast for {b.name}'s {platform.default_clk_frequency / 1e6:g} MHz "
            "clock (the UART needs at least 4 clock cycles per bit)"
        )
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    overrides = {
        "nextpnr_opts": f"--report {name}.report.json --seed {int(seed)}",
        # loadable memories carry no initial contents (so iCE40 SPRAM can hold them)
        "script_after_read": f"delete {STRIP_INIT_PATTERN}",
        "script_after_synth": f"tee -q -o {name}.stat.json stat -json",
    }
    if b.target == "ice40-up5k":
        overrides["synth_opts"] = "-spram"
    plan = platform.build(top, name=name, build_dir=str(out), do_build=False, **overrides)
    plan.extract(str(out))
    try:
        proc = subprocess.run(["sh", f"build_{name}.sh"], cwd=out, env=tool_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HwgenError(f"the {b.name} build did not finish in {timeout:.0f} s ({out}); a "
                         "nearly full device can leave the router looping: try another "
                         "--seed, fewer --lanes or a smaller model") from None
    (out / "build.log").write_text(proc.stdout)
    if proc.returncode != 0:
        lines = proc.stdout.splitlines()
        errors = [ln.strip() for ln in lines if "ERROR" in ln]
        detail = "; ".join(errors[:5]) if errors else " | ".join(lines[-8:])
        raise HwgenError(f"the {b.name} build failed: {detail} (log: {out / 'build.log'})")
    bit = out / f"{name}.bit" if (out / f"{name}.bit").exists() else out / f"{name}.bin"
    if not bit.exists():
        raise HwgenError(f"the {b.name} build wrote no bitstream ({out})")
    stat = json.loads((out / f"{name}.stat.json").read_text())
    cells, _ = parse_yosys_stat(stat, name)
    fmax, util = parse_nextpnr_report(out / f"{name}.report.json")
    result = BuildResult(b.name, bit, divisor, baud, cells,
                         {k: v for k, v in util.items() if v["used"]},
                         None if fmax is None else round(fmax, 2), b.clock_hz / 1e6)
    (out / "build_report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result
