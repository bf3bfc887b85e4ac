# amaranth: UnusedElaboratable=no
"""`memory.RegisteredMemory` alone: a ROM and a writable memory (two ports, single port) read
in READ_LATENCY cycles, and its argument errors (checked exactly)."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from hwgen.gateware.loadable import LoadableMemory
from hwgen.gateware.memory import RegisteredMemory
from hwgen.gateware.rom import Rom
from hwgen.gateware.schedule import READ_LATENCY
from hwgen.spec import HwgenError


def _reads(mem, addrs, writes=()):
    """Write ``writes`` (address, word) one a cycle, then present ``addrs`` one a cycle; returns
    ``data`` READ_LATENCY cycles after each address."""
    got = []

    async def bench(ctx):
        for a, w in writes:
            ctx.set(mem.wr_en, 1)
            ctx.set(mem.wr_addr, a)
            ctx.set(mem.wr_data, w)
            await ctx.tick()
        if writes:
            ctx.set(mem.wr_en, 0)
        for a in [*addrs, *[0] * READ_LATENCY]:
            ctx.set(mem.addr, a)
            await ctx.tick()
            got.append(ctx.get(mem.data))

    sim = Simulator(mem)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got[READ_LATENCY - 1 : READ_LATENCY - 1 + len(addrs)]


def test_rom_reads_its_words_in_read_latency():
    words = [5, 0, 7, 3, 1]
    rom = Rom(words, 3)
    assert rom.LATENCY == 2 and rom.data.shape().width == 3
    assert "wr_en" not in rom.signature.members
    order = [4, 0, 2, 2, 3, 1]
    assert _reads(rom, order) == [words[a] for a in order]


@pytest.mark.parametrize("single_port", [False, True])
def test_writable_memory_reads_what_was_written(single_port):
    mem = LoadableMemory(width=8, depth=6, single_port=single_port, block=not single_port)
    assert "wr_en" in mem.signature.members and mem.wr_data.shape().width == 8
    writes = [(a, 17 * a + 3) for a in range(6)]
    order = [5, 1, 0, 3]
    assert _reads(mem, order, writes) == [17 * a + 3 for a in order]


def test_errors():
    with pytest.raises(HwgenError, match=r"^a ROM needs at least one word$"):
        RegisteredMemory(width=8)
    with pytest.raises(HwgenError, match=r"^a ROM of depth 3 needs 3 words, not 2$"):
        RegisteredMemory(width=8, depth=3, init=[1, 2])
    with pytest.raises(HwgenError, match=r"^ROM words must be non-negative and fit 4 bits$"):
        RegisteredMemory(width=4, init=[-1])
    with pytest.raises(HwgenError, match=r"^Memory width must be a positive integer, not 0$"):
        RegisteredMemory(width=0, init=[0])
    with pytest.raises(HwgenError, match=r"^Memory depth must be a positive integer, not 0$"):
        RegisteredMemory(width=8, depth=0, writable=True)
    with pytest.raises(HwgenError, match=r"^a writable memory has no initial words$"):
        RegisteredMemory(width=8, depth=2, init=[1, 2], writable=True)
    with pytest.raises(HwgenError, match=r"^a single-port memory must be writable$"):
        RegisteredMemory(width=8, init=[1], single_port=True)
