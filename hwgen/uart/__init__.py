"""UART host link: PHY, framing protocol, link gateware, board tops and a simulated serial port.

See docs/uart.md for the protocol and hwgen/host.py for the host side.
"""

from .engine import FrameEngine
from .link import UartLink
from .phy import UartPhy, UartRx, UartTx
from .protocol import Cmd, ErrorCode, Mode, crc16, encode_frame

__all__ = ["UartRx", "UartTx", "UartPhy", "FrameEngine", "UartLink", "Cmd", "ErrorCode", "Mode",
           "crc16", "encode_frame"]
