"""Progress of a Monte Carlo run on the terminal."""

from __future__ import annotations

import math
import time
from typing import TextIO


class Progress:
    """Done/total, rate and ETA: one updating line on a TTY, a line every ~10 % otherwise."""

    def __init__(self, total: int, done: int, stream: TextIO):
        self.total, self.done, self.failed, self.stream = total, done, 0, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start, self.ran, self.shown = time.perf_counter(), 0, 0.0
        self.next_step = math.floor(10 * done / max(total, 1)) + 1
        if self.done:
            print(f"rerinv mc: resuming, {done} of {total} trials already stored", file=stream)

    def update(self, failed: bool) -> None:
        self.done, self.ran, self.failed = self.done + 1, self.ran + 1, self.failed + failed
        now = time.perf_counter()
        if self.tty:
            if now - self.shown >= 0.1 or self.done == self.total:
                self.shown = now
                print(f"\r{self._line(now)}\x1b[K", end="", file=self.stream, flush=True)
        elif 10 * self.done >= self.next_step * self.total:
            self.next_step = math.floor(10 * self.done / self.total) + 1
            print(self._line(now), file=self.stream, flush=True)

    def _line(self, now: float) -> str:
        rate = self.ran / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        eta_text = "-" if not math.isfinite(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"rerinv mc: {self.done}/{self.total} trials{failed}, {rate:.3g} trials/s, "
            f"ETA {eta_text}"
        )

    def close(self) -> None:
        if self.tty and self.ran:
            print(file=self.stream, flush=True)
