"""A core behind a link: `LinkedCore` (any core with ``i_stream`` / ``o_stream``, the
accelerator or `EchoCore`, wired to a `UartLink`; its only ports are the serial pins ``rx`` /
``tx``). The same component runs in simulation (`hwgen.uart.sim.SimSerial`) and on a board
(`hwgen.board.top.BoardTop` adds the clock and the pins; `hwgen.board.build` the bitstream).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec import HwgenError
from .link import LoadSpec, UartLink

__all__ = ["LinkedCore", "load_spec", "class_field", "stream_bits", "connect_core"]


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
        self._in_bits, self._out_bits = stream_bits(core, "UART")
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
        ]
        connect_core(m, link, core, self._in_bits)
        return m


def stream_bits(core, link: str) -> tuple[int, int]:
    """(input, output) payload bits of a core's streams; `HwgenError` for a core without."""
    try:
        return (Shape.cast(_payload_shape(core, "i_stream")).width,
                Shape.cast(_payload_shape(core, "o_stream")).width)
    except (AttributeError, KeyError):
        raise HwgenError(
            f"a core behind a {link} link needs i_stream and o_stream members, not {core!r}"
        ) from None


def connect_core(m: Module, engine, core, in_bits: int) -> None:
    """Wire a frame engine (or a link holding one) to a core: the engine's ``o_stream`` (whole
    bytes) into the core's ``i_stream`` (its ``in_bits``), the core's ``o_stream`` back, and the
    load port of a loadable core."""
    m.d.comb += [
        core.i_stream.payload.as_value().eq(engine.o_stream.payload[:in_bits]),
        core.i_stream.valid.eq(engine.o_stream.valid),
        engine.o_stream.ready.eq(core.i_stream.ready),
        engine.i_stream.payload.eq(core.o_stream.payload.as_value()),
        engine.i_stream.valid.eq(core.o_stream.valid),
        core.o_stream.ready.eq(engine.i_stream.ready),
    ]
    if "load" in core.signature.members:
        wiring.connect(m, engine.load, core.load)


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
