"""When HDF5 fails to write a Monte Carlo results file (a full disk, an I/O error): the one-line
error, and letting go of the file without HDF5 crashing the process.

HDF5 2.0 crashes closing a file whose metadata flush failed (even at interpreter exit), and h5py
prints an "Exception ignored" traceback for every object it releases after a failed write; a
command reports :class:`StoreWriteError` in one line and, when ``broken``, exits at once.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py

from rerinv.errors import RerinvError


@contextlib.contextmanager
def quiet_release() -> Iterator[None]:
    """Release HDF5 objects after a failed write without h5py's "Exception ignored ..."
    tracebacks: HDF5 retries the writes it could not do while its objects are released."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # h5py also prints each traceback
            yield
            gc.collect()
    finally:
        sys.unraisablehook = hook


def close_quietly(f: h5py.File) -> None:
    """Let go of ``f`` after a failed write, writing nothing more to it: its descriptor is
    pointed at ``/dev/null``, and it is not closed (HDF5 2.0 crashes closing a file whose
    metadata flush failed); HDF5 closes it, writing to ``/dev/null``, when Python exits."""
    with quiet_release(), contextlib.suppress(Exception):
        handle = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, handle)
        os.close(null)


def write_failure(path: str | Path, exc: BaseException) -> StoreWriteError:
    """The one-line error of a failed write; the HDF5 objects of the failed call (held by the
    tracebacks of ``exc`` and its context) are released quietly first."""
    reason = write_reason(exc)
    with quiet_release():
        cause: BaseException | None = exc
        while cause is not None:
            cause.__traceback__ = None
            cause = cause.__context__
    return StoreWriteError(path, reason, broken=True)


class StoreWriteError(RerinvError):
    """The results file cannot be written (a full disk, an I/O error).

    ``broken`` is True when the HDF5 library itself failed a write: HDF5 2.0 then crashes
    when it closes the file (even when Python exits), so a process should exit at once
    (``os._exit``) after reporting it."""

    def __init__(self, path: str | Path, reason: str, broken: bool = False):
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason, self.broken = path, reason, broken

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.broken)


def write_reason(exc: BaseException) -> str:
    """A one-line reason of an HDF5 write failure (h5py's messages span several lines)."""
    text = str(exc)
    if (
        getattr(exc, "errno", None) == errno.ENOSPC
        or "No space left" in text
        or "errno = 28" in text
    ):
        return "no space left on device"
    return getattr(exc, "strerror", None) or text.splitlines()[0] if text else type(exc).__name__
