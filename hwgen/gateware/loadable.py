"""Loadable cores: their memories written at run time and the load port that writes them.

A `LoadableMemory` (weights, biases and embedding of a loadable accelerator) is a writable
`memory.RegisteredMemory`: it reads like a `Rom` (``data`` is ``mem[addr]``
`schedule.READ_LATENCY` = 2 cycles after ``addr``) and is written through ``wr_en``,
``wr_addr``, ``wr_data``; its contents are undefined until written (`STRIP_INIT_PATTERN`). The
core never reads while it is being written (the link writes only between timesteps).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .arith import register
from .memory import MEMORY_NAME, STRIP_INIT_PATTERN, RegisteredMemory

__all__ = ["LoadableMemory", "MEMORY_NAME", "STRIP_INIT_PATTERN",
           "load_signature", "load_signature_of", "load_address_bits", "register_load_port"]


class LoadableMemory(RegisteredMemory):
    """A RAM read in `schedule.READ_LATENCY` cycles and written at run time (a writable
    `memory.RegisteredMemory`).

    Parameters (keyword-only)
    ----------
    width : bits per word.
    depth : words.
    single_port : share one address between reads and writes (SPRAM): ``wr_en`` selects the
        write address and holds the read.
    block : ask for block RAM (``ram_style = "block"``); off for SPRAM (on iCE40 synthesis sends
        single-port memories there: `memory.SPRAM_STYLE_COMMAND`).

    Members
    -------
    addr : In(range(depth)), read address; data : Out(width), registered.
    wr_en : In(1); wr_addr : In(range(depth)); wr_data : In(width).
    """

    def __init__(self, *, width: int, depth: int, single_port: bool = False, block: bool = True):
        super().__init__(width=width, depth=depth, writable=True, single_port=single_port,
                         block=block)


def load_address_bits(images) -> int:
    """Bits of a word address on the load port: enough for the deepest `plan.LoadImage`."""
    return max(1, (max(im.depth for im in images) - 1).bit_length())


def load_signature_of(memories: int, addr_bits: int, data_bits: int) -> wiring.Signature:
    """The load port (driven by the link, `hwgen.uart.link`): in a cycle with ``valid``, word
    ``data[:width]`` is written at ``addr`` of memory ``mem`` (`plan.LoadImage.index`)."""
    return wiring.Signature({
        "valid": Out(1),
        "mem": Out(range(max(memories, 2))),
        "addr": Out(addr_bits),
        "data": Out(data_bits),
    })


def load_signature(images) -> wiring.Signature:
    """The load port of a core with these memories: ``data`` as wide as the widest word."""
    return load_signature_of(len(images), load_address_bits(images),
                             max(im.width for im in images))


def register_load_port(m, port, images) -> dict:
    """The load ``port`` of a loadable core registered once (its fan-out to every memory stays
    off the link's paths), in ``m``: memory name -> (its `plan.LoadImage`, write enable, word
    address, word), each a register (the enable with a reset). One place for the dense core
    (`core.Accelerator`) and the delta core (`delta_weights.LoadBus`)."""
    addr = register(m, port.addr, "load_addr")
    data = register(m, port.data, "load_data")
    out = {}
    for im in images:
        en = register(m, port.valid & (port.mem == im.index), f"load_en_{im.name}", reset=True)
        out[im.name] = (im, en, addr, data)
    return out
