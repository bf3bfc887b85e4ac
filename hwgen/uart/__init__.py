"""UART host link: PHY, framing protocol, link gateware, board tops and a simulated serial port.

See docs/uart.md for the protocol and hwgen/host.py for the host side. The gateware names below
are imported on first use, so the host side (`hwgen.host`, `protocol`, `host_link`) runs
without Amaranth.
"""

from importlib import import_module

from .protocol import Cmd, ErrorCode, Mode, crc16, encode_frame

__all__ = ["UartRx", "UartTx", "UartPhy", "FrameEngine", "UartLink", "Cmd", "ErrorCode", "Mode",
           "crc16", "encode_frame"]

_GATEWARE = {"FrameEngine": "engine", "UartLink": "link", "UartPhy": "phy", "UartRx": "phy",
             "UartTx": "phy"}


def __getattr__(name: str):
    if name in _GATEWARE:
        return getattr(import_module(f".{_GATEWARE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
