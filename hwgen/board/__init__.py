"""Boards: descriptions (`catalog`), PLL solvers (`pll`), the clock domain (`clocking`), the
board top (`top`) and the bitstream build (`build`). See docs/uart.md and docs/synthesis.md."""

from .catalog import BOARDS, Board, board_names, get_board

__all__ = ["BOARDS", "Board", "board_names", "get_board"]
