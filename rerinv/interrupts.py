"""Ctrl-C and SIGTERM for long runs (Monte Carlo, training): stop cleanly, resume later; helper
processes that die with their parent."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import threading
from typing import Any, TextIO

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int) -> bool:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux only);
    True when set."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class StopOnInterrupt:
    """First Ctrl-C (SIGINT) or SIGTERM: ``requested`` turns True (stop submitting work, let
    running work finish); a second one raises KeyboardInterrupt (running work is abandoned).

    Parameters
    ----------
    stream : file
        Where the notice goes.
    who, what : str
        The command and its units of work, for the notice (``"rerinv mc"``, ``"trials"``).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stream: TextIO, who: str = "rerinv", what: str = "tasks"):
        self.stream, self.who, self.what = stream, who, what
        self.requested, self._previous = False, {}

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{self.who}: stopping; finishing the running {self.what} "
            "(Ctrl-C again to abandon them)",
            file=self.stream,
            flush=True,
        )

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
