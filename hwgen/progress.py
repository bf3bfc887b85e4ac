"""Progress lines for long steps: elapsed time, what runs now and, where known, how long is left.

A `Progress` is a callable taking one line of text; it prints ``[m:ss] text`` on stderr (never on
stdout, which holds results and ``--json`` output). Library functions take ``progress=None`` (a
callable or None) and call it at stage boundaries; `Ticker` repeats a status line every few
seconds while a tool runs in another process.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

__all__ = ["Progress", "Ticker", "format_seconds", "eta"]


def format_seconds(s: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def eta(done: float, total: float, elapsed: float) -> str:
    """``about 40 s left`` from a linear extrapolation, or ``""`` before anything is done."""
    if done <= 0 or total <= done or elapsed <= 0:
        return ""
    return f"about {format_seconds(elapsed * (total - done) / done)} left"


class Progress:
    """Prints ``[m:ss] text`` lines on ``stream`` (default stderr); silent when ``quiet``."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, text: str) -> None:
        if self.quiet:
            return
        e = int(self.elapsed)
        with self._lock:
            print(f"[{e // 60}:{e % 60:02d}] {text}", file=self.stream or sys.stderr, flush=True)


class Ticker:
    """While the ``with`` block runs, call ``progress(status())`` every ``every`` seconds
    (``status`` returns a line, or None to skip). A no-op when ``progress`` is None."""

    def __init__(self, progress: Callable[[str], None] | None, status: Callable[[], str | None],
                 every: float = 10.0):
        self.progress, self.status, self.every = progress, status, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                line = self.status()
            except Exception:  # a status line must never break the work it reports on
                line = None
            if line:
                self.progress(line)

    def __enter__(self) -> Ticker:
        if self.progress is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
