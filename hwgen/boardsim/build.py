"""A board-level design -> Verilog -> a Verilated executable with the host harness (cached).

The design is an Amaranth component with one clock domain ``sync`` and the pins of one link:
``rx`` / ``tx`` (UART) or ``sclk`` / ``cs_n`` / ``mosi`` / ``miso`` (SPI). Its Verilog
(`amaranth.back.verilog.convert`, module ``board``, ports ``clk``, ``rst`` and the component's
members) is compiled with ``harness.cpp`` by `hwgen.fastsim.compile_harness` (the same Verilator
flags as ``hwgen sim --fast``). Builds are cached by the SHA-256 of the Verilog, the harness and
its port header: a folder per digest under the cache root (the executable, the Verilog, the build
log: a few MB; delete the cache root at any time), filled in a scratch folder and renamed into
place, so concurrent builds of the same design never see a half-written one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..fastsim import _require_tools, compile_harness, verilated_name
from ..spec import HwgenError

__all__ = ["HARNESS", "UART_PINS", "SPI_PINS", "BoardBuild", "link_kind", "board_verilog",
           "build_board_sim", "cache_root"]

HARNESS = Path(__file__).resolve().parent / "harness.cpp"
UART_PINS = ("rx", "tx")
SPI_PINS = ("sclk", "cs_n", "mosi", "miso")
_TOP = "board"
_EXE = "hwgen_boardsim"


@dataclass(frozen=True)
class BoardBuild:
    """A compiled simulated board: ``exe`` runs it (see harness.cpp for its command line),
    ``link`` is ``"uart"`` or ``"spi"``, ``seconds`` the compile time (0.0 when cached),
    ``digest`` the cache key."""

    exe: Path
    link: str
    seconds: float
    digest: str


def link_kind(design) -> str:
    """``"uart"`` or ``"spi"`` from the design's signature members; HwgenError otherwise."""
    members = getattr(getattr(design, "signature", None), "members", None)
    if members is None:
        raise HwgenError(f"a simulated board needs an Amaranth component (wiring.Component) "
                         f"with link pins, not {design!r}")
    names = set(members.keys())
    if set(SPI_PINS) <= names:
        return "spi"
    if set(UART_PINS) <= names:
        return "uart"
    raise HwgenError(f"the design has no link pins: a simulated board needs {'/'.join(UART_PINS)} "
                     f"(UART) or {'/'.join(SPI_PINS)} (SPI); it has {', '.join(sorted(names))}")


def board_verilog(design) -> str:
    """The design's Verilog: module ``board`` with ports ``clk``, ``rst`` and its members."""
    from amaranth.back import verilog

    return verilog.convert(design, name=_TOP, emit_src=False)


def _header(link: str) -> str:
    pins = {"HW_CLK": "clk", "HW_RST": "rst"}
    if link == "uart":
        pins |= {"HW_RX": "rx", "HW_TX": "tx"}
    else:
        pins |= {"HW_SCLK": "sclk", "HW_CS_N": "cs_n", "HW_MOSI": "mosi", "HW_MISO": "miso"}
    lines = ["// written by hwgen.boardsim", "#pragma once", f'#include "V{_TOP}.h"',
             f"#define HW_TOP V{_TOP}", f"#define HW_{link.upper()} 1"]
    lines += [f"#define {k} {verilated_name(v)}" for k, v in pins.items()]
    return "\n".join(lines) + "\n"


def cache_root() -> Path:
    """Where builds are kept: ``$HWGEN_CACHE/boardsim``, else ``$XDG_CACHE_HOME/hwgen/boardsim``,
    else ``~/.cache/hwgen/boardsim``."""
    if os.environ.get("HWGEN_CACHE"):
        return Path(os.environ["HWGEN_CACHE"]) / "boardsim"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwgen" / "boardsim"


def build_board_sim(design, *, cache_dir=None, verilog_text: str | None = None,
                    progress=None) -> BoardBuild:
    """Compile ``design`` (or its already converted ``verilog_text``) with the harness, or reuse
    the cached build of the same Verilog and harness under ``cache_dir`` (default `cache_root`).
    ``progress(msg)`` hears of a compile before and after it. Raises HwgenError when the design
    has no link pins, Verilator / g++ / make is missing, or the build fails (naming the build
    log)."""
    link = link_kind(design)
    _require_tools()  # before the conversion: a missing tool is named at once
    text = board_verilog(design) if verilog_text is None else verilog_text
    header = _header(link)
    digest = hashlib.sha256()
    for blob in (HARNESS.read_bytes(), header.encode(), text.encode()):
        digest.update(hashlib.sha256(blob).digest())
    key = digest.hexdigest()[:24]
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    final = root / key
    exe = final / _EXE
    if exe.is_file():
        return BoardBuild(exe, link, 0.0, key)
    root.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress(f"simulated board: compiling the {link} board with Verilator (once per design, "
                 f"kept in {root})")
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    (scratch / "hw_ports.h").write_text(header)
    (scratch / "board.v").write_text(text)
    shutil.copyfile(HARNESS, scratch / "harness.cpp")
    try:
        seconds = compile_harness(scratch, _TOP, [scratch / "board.v"], _EXE)
    except HwgenError as e:
        failed = root / f"{key}.failed"  # kept for its build.log
        shutil.rmtree(failed, ignore_errors=True)
        scratch.rename(failed)
        raise HwgenError(str(e).replace(str(scratch), str(failed))) from None
    # the executable needs nothing else: drop Verilator's objects (tens of MB a design)
    (scratch / "obj" / _EXE).rename(scratch / _EXE)
    shutil.rmtree(scratch / "obj", ignore_errors=True)
    if final.exists() and not exe.is_file():  # a folder left half-deleted by hand
        shutil.rmtree(final, ignore_errors=True)
    try:
        scratch.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(scratch, ignore_errors=True)
        if not exe.is_file():
            raise
    if progress is not None:
        progress(f"simulated board: compiled in {seconds:.0f} s")
    return BoardBuild(exe, link, seconds, key)
