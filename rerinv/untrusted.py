"""Reading files that may be damaged without hanging: one call, :func:`read_untrusted`.

HDF5's own reader can loop forever on a damaged file (a zero-filled stretch, or one flipped
bit in a global heap), holding the interpreter inside C where no signal reaches Python. So
a file a command did not just write is read in two steps:

1. a **structure check** before the HDF5 library sees the file: every global heap collection
   (where HDF5 keeps variable-length strings, without a checksum) is walked the way HDF5 walks
   it, and an object that would not advance the walk (the loop HDF5 falls into) or would leave
   its collection is refused at once;
2. the reader itself runs in a **child process with a time limit** (forked, so it starts in
   milliseconds with every module already imported): whatever it returns is handed back;
   whatever it raises is raised here; if it has not finished in time, or dies, the child is
   killed and the file is refused. The child also kills itself (``SIGALRM``) shortly after
   the limit, so even an orphan never outlives it.

A refusal is one line, :class:`DamagedFileError` (an :class:`~rerinv.errors.InputError`):
``<path>: damaged file (...)``.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rerinv.errors import InputError

T = TypeVar("T")

#: Environment variable overriding the time limit (seconds) of :func:`read_untrusted`.
TIMEOUT_ENV = "RERINV_READ_TIMEOUT"
#: Time limit of a read: this many seconds, plus one second per :data:`BYTES_PER_SECOND` of
#: file (a good Monte Carlo file, checksums verified, reads at about 13 MB/s on a 2-core VM;
#: see ``docs/hdf5-layout.md``, *Integrity*).
BASE_TIMEOUT = 10.0
BYTES_PER_SECOND = 2e6
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_GCOL = b"GCOL"


class DamagedFileError(InputError):
    """A file is damaged in a way that would hang or crash its reader."""


def read_untrusted(
    path: str | os.PathLike,
    reader: Callable[..., T],
    *args: Any,
    timeout: float | None = None,
    what: str = "file",
) -> T:
    """``reader(path, *args)``, run so that a damaged ``path`` cannot hang the caller.

    Parameters
    ----------
    path : str or PathLike
        The file to read (an HDF5 file gets the structure check; any file the time limit).
    reader : callable
        Reads the file and returns a picklable value (arrays, dataclasses, dicts); it runs in
        a forked child process, so it may be any function, and what it changes there (caches,
        globals) does not reach the caller. Exceptions it raises are raised here.
    timeout : float, optional
        Seconds the read may take; default :func:`default_timeout` (``$RERINV_READ_TIMEOUT``
        if set).
    what : str
        How the file is named in messages (``"results file"``, ``"training file"``).

    Returns
    -------
    The value ``reader`` returned.

    Raises
    ------
    DamagedFileError
        The structure check failed, the read did not finish within ``timeout`` seconds, or the
        reading process died (e.g. the HDF5 library crashed).
    """
    path = Path(path)
    problem = hdf5_structure_problem(path)
    if problem:
        raise DamagedFileError(f"{path}: damaged {what} ({problem}); restore a copy or rerun")
    if "fork" not in multiprocessing.get_all_start_methods():  # Windows: no guard but the check
        return reader(path, *args)
    limit = default_timeout(path) if timeout is None else float(timeout)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(send, limit, reader, path, args), daemon=True, name="rerinv-read"
    )
    child.start()
    send.close()
    try:
        finished = receive.poll(limit)
        message = None
        if finished:
            try:
                ok, value = receive.recv()
            except (EOFError, OSError):
                finished = False
        if not finished:
            if child.is_alive():
                child.kill()
            child.join()
            code = child.exitcode
            message = (
                f"reading it did not finish within {limit:.0f} s: the HDF5 library loops on "
                f"some damaged structures ({TIMEOUT_ENV}=SECONDS allows a slow disk more time)"
                if code in (-signal.SIGKILL, -signal.SIGALRM)
                else f"the process reading it died ({_exit_reason(code)})"
            )
            raise DamagedFileError(f"{path}: damaged {what} ({message}); restore a copy or rerun")
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if ok:
        return value
    raise value


def default_timeout(path: str | os.PathLike) -> float:
    """Seconds :func:`read_untrusted` allows for ``path``: ``$RERINV_READ_TIMEOUT``, else
    :data:`BASE_TIMEOUT` plus one second per :data:`BYTES_PER_SECOND` of file."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not value > 0 or math.isinf(value):
            raise InputError(f"{TIMEOUT_ENV}={text!r}: give a number of seconds > 0")
        return value
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return BASE_TIMEOUT + size / BYTES_PER_SECOND


def hdf5_structure_problem(path: str | os.PathLike) -> str | None:
    """What in ``path``'s HDF5 structure would make the HDF5 library loop, or None.

    Checks every global heap collection (signature ``GCOL``, version 1) as HDF5 walks it:
    each object must advance the walk and end inside its collection. A file that is not HDF5,
    or cannot be read, is left to the reader (None)."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < len(_HDF5_SIGNATURE):
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _structure_problem(data)
    except (OSError, ValueError):
        return None


def _structure_problem(data: mmap.mmap) -> str | None:
    lengths = _size_of_lengths(data)
    if lengths is None:
        return None  # not HDF5: h5py will say so
    header = 8 + lengths  # signature, version, 3 reserved bytes, collection size
    object_header = 8 + lengths  # index, reference count, 4 reserved bytes, object size
    end_of_file = len(data)
    position = data.find(_GCOL)
    while position != -1:
        if data[position + 4 : position + 8] == b"\x01\0\0\0":  # version 1, reserved zeros
            size = int.from_bytes(data[position + 8 : position + header], "little")
            if size < header or position + size > end_of_file:
                return f"global heap at byte {position} claims {size} bytes"
            problem = _walk_collection(data, position, size, header, object_header)
            if problem:
                return f"global heap at byte {position}: {problem}"
        position = data.find(_GCOL, position + 1)
    return None


def _walk_collection(
    data: mmap.mmap, start: int, size: int, header: int, object_header: int
) -> str | None:
    """HDF5's walk over one collection's objects (``H5HG__cache_heap_deserialize``)."""
    p, end = start + header, start + size
    while p < end:
        if p + object_header > end:  # a tail too small for an object is free space
            break
        index = int.from_bytes(data[p : p + 2], "little")
        length = int.from_bytes(data[p + 8 : p + object_header], "little")
        need = object_header + 8 * ((length + 7) // 8) if index else length
        if need == 0:
            return f"free-space object of size 0 at byte {p}"
        if p + need > end:
            return f"object {index} at byte {p} of {length} bytes runs past the collection"
        p += need
    return None


def _size_of_lengths(data: mmap.mmap) -> int | None:
    """The superblock's "size of lengths" (bytes), or None when the file is not HDF5."""
    base = 0
    while base + 16 <= len(data):  # the superblock is at 0, 512, 1024, 2048, ...
        if data[base : base + 8] == _HDF5_SIGNATURE:
            version = data[base + 8]
            size = data[base + 14] if version < 2 else data[base + 10]
            return size if size in (2, 4, 8, 16) else 8
        base = 512 if base == 0 else 2 * base
    return None


def _child(send: Any, limit: float, reader: Callable[..., Any], path: Path, args: tuple) -> None:
    """The reading process: Ctrl-C is the parent's business; it kills itself after the limit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, math.ceil(limit)) + 2)
    try:
        outcome: tuple[bool, Any] = (True, reader(path, *args))
    except BaseException as exc:  # raised again in the caller
        outcome = (False, exc)
    try:
        send.send(outcome)
    except Exception as exc:  # an unpicklable value or exception
        send.send((False, RuntimeError(f"{type(exc).__name__} returning the read: {exc}")))
    finally:
        send.close()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
