"""UART host link: PHY, framing protocol, link gateware, board tops and a simulated serial port.

See docs/uart.md for the protocol and hwgen/host.py for the host side.
"""

from .link import UartLink
from .phy import UartRx, UartTx
from .protocol import Cmd, ErrorCode, crc8, encode_frame

__all__ = ["UartRx", "UartTx", "UartLink", "Cmd", "ErrorCode", "crc8", "encode_frame"]
