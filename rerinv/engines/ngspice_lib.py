"""The ngspice shared library: finding and loading it (one instance per process), its version,
and the matrix solver circuits are loaded with (KLU when the library has it, else Sparse 1.3,
with one note on stderr per process)."""

from __future__ import annotations

import ctypes.util
import glob
import logging
import os
import re
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from rerinv.errors import InputError, NgspiceMissingError, SimulationError

_INSTALL_HINT = (
    "install it with `apt-get install -y ngspice libngspice0` (Debian/Ubuntu; ngspice >= 42 "
    "from bookworm-backports on Debian 12, see README) or point NGSPICE_LIBRARY_PATH at "
    "libngspice.so"
)

#: ngspice's matrix solvers: KLU (ngspice >= 42 built with it) and Sparse 1.3 (every version).
SOLVERS = ("klu", "sparse")
#: Environment variable that picks the solver: ``klu``, ``sparse`` or ``auto`` (the default).
SOLVER_ENV = "RERINV_NGSPICE_SOLVER"
#: First ngspice release with the KLU solver (built in by default from 43).
KLU_FIRST_VERSION = 42

_shared = None  # the process's NgSpiceShared instance
_solver: str | None = None  # the solver of circuits loaded from now on; chosen on first use
_has_klu: bool | None = None
_noted_sparse = False  # the "no KLU" note went to stderr (once per process)

#: glibc's ``M_TRIM_THRESHOLD`` (``mallopt``), and the free heap top kept from the OS (bytes).
_M_TRIM_THRESHOLD, KEEP_HEAP_BYTES = -1, 1 << 30


def find_ngspice_library() -> str:
    """Path (or soname) of the ngspice shared library.

    Looks at ``NGSPICE_LIBRARY_PATH``, then the linker's ``libngspice``, then the usual
    library folders, accepting Debian's ``libngspice.so.0`` as well as ``libngspice.so``.
    """
    explicit = os.environ.get("NGSPICE_LIBRARY_PATH")
    if explicit:
        if Path(explicit).exists():
            return explicit
        raise NgspiceMissingError(
            f"NGSPICE_LIBRARY_PATH={explicit} does not exist; {_INSTALL_HINT}"
        )
    candidates = []
    for prefix in (sys.prefix, "/usr/local", "/usr", "/opt/homebrew"):
        for pattern in ("lib/libngspice.so*", "lib/*/libngspice.so*", "lib/libngspice*.dylib"):
            candidates += sorted(glob.glob(os.path.join(prefix, pattern)))
    if candidates:
        return candidates[0]
    soname = ctypes.util.find_library("ngspice")
    if soname:
        return soname
    raise NgspiceMissingError(f"the ngspice shared library was not found; {_INSTALL_HINT}")


def ngspice():
    """The process's ngspice instance, started on first use."""
    global _shared
    if _shared is None:
        path = find_ngspice_library()
        os.environ.setdefault("NGSPICE_LIBRARY_PATH", path)
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported version 39"
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
        except ImportError as exc:  # pragma: no cover - broken install
            raise NgspiceMissingError(f"PySpice is not installed: {exc}") from exc
        NgSpiceShared.LIBRARY_PATH = path
        _keep_freed_memory()
        try:
            _shared = NgSpiceShared.new_instance()
        except OSError as exc:
            raise NgspiceMissingError(
                f"cannot load ngspice from {path}: {exc}; {_INSTALL_HINT}"
            ) from exc
    return _shared


def _keep_freed_memory() -> None:
    """Let glibc keep up to :data:`KEEP_HEAP_BYTES` of freed heap instead of returning it.

    Every ngspice analysis un-sets and sets the circuit up again (``CKTdoJob``), freeing and
    re-allocating its matrix; glibc would hand that memory back to the OS and page-fault it in
    again at the next analysis (benchmarks/process_settings.py measures the difference).
    No-op off glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt(_M_TRIM_THRESHOLD, KEEP_HEAP_BYTES)


def ngspice_version() -> str:
    """Version string of the loaded ngspice library."""
    return str(ngspice().ngspice_version)


def _major(version: str) -> int:
    match = re.match(r"\s*(\d+)", version)
    return int(match.group(1)) if match else 0


def ngspice_has_klu() -> bool:
    """Whether the loaded ngspice has the KLU matrix solver: version >= 42 and a banner
    (``version -f``) that says "Compiled with KLU"."""
    global _has_klu
    if _major(ngspice_version()) < KLU_FIRST_VERSION:
        return False  # not cached: the version decides (tests simulate an old one)
    if _has_klu is None:
        _has_klu = "klu" in _command("version -f").lower()
    return _has_klu


def ngspice_solver() -> str:
    """The matrix solver, ``"klu"`` or ``"sparse"``, of the circuits this process loads.

    Chosen on first use: the ``RERINV_NGSPICE_SOLVER`` environment variable (``klu``,
    ``sparse`` or ``auto``) when set, else KLU when the loaded ngspice has it. Without KLU
    (ngspice < 42) the answer is ``"sparse"``, and one line on stderr says so, once per process.
    """
    global _solver
    if _solver is None:
        _solver = _choose_solver(os.environ.get(SOLVER_ENV) or "auto", SOLVER_ENV)
    return _solver


def set_ngspice_solver(name: str | None) -> str:
    """Load circuits from now on with solver ``name`` (``"klu"``, ``"sparse"``, or ``None`` /
    ``"auto"`` for the default choice of :func:`ngspice_solver`); returns the solver chosen.

    Sessions already loaded keep their solver. Raises :class:`InputError` for an unknown name
    or for ``"klu"`` on an ngspice without KLU.
    """
    global _solver
    _solver = _choose_solver(name or "auto", "the solver")
    return _solver


def _choose_solver(name: str, what: str) -> str:
    name = name.strip().lower()
    if name not in (*SOLVERS, "auto"):
        raise InputError(f"{what} must be one of klu, sparse, auto; got {name!r}")
    if name == "sparse":
        return "sparse"
    if ngspice_has_klu():
        return "klu"
    if name == "klu":
        raise InputError(
            f"ngspice {ngspice_version()} has no KLU solver; install ngspice >= 42 from "
            "bookworm-backports (see README) or use the sparse solver"
        )
    _note_sparse()
    return "sparse"


def _note_sparse() -> None:
    global _noted_sparse
    if not _noted_sparse:
        _noted_sparse = True
        print(
            f"rerinv: ngspice {ngspice_version()} has no KLU solver; using Sparse (slow for "
            "N >= 64). Install ngspice >= 42 from bookworm-backports: see README",
            file=sys.stderr,
            flush=True,
        )


def solver_options(solver: str | None = None) -> str:
    """``.options`` content that selects ``solver`` (default :func:`ngspice_solver`): ``klu``
    or ``sparse``, and nothing on an ngspice without KLU (its only solver is Sparse)."""
    solver = solver or ngspice_solver()
    if solver not in SOLVERS:
        raise InputError(f"unknown ngspice solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    return solver if ngspice_has_klu() else ""


#: Seconds after a Ctrl-C that ngspice is still busy before the notice goes to stderr.
INTERRUPT_NOTICE_AFTER = 1.0


@contextmanager
def held_interrupts():
    """Ctrl-C while ngspice computes in this process, taken when it returns.

    ngspice runs in C and calls back into Python (its output, its progress), so the
    ``KeyboardInterrupt`` of a Ctrl-C would be raised inside a callback, where cffi prints
    "Exception ignored" and drops it: the command went on and exited 0. Here a Ctrl-C only
    marks the command interrupted; when ngspice returns, the handler that was installed
    before gets the signal (Python's default raises ``KeyboardInterrupt``, exit 130; a Monte
    Carlo driver's stops submitting work). A notice goes to stderr when ngspice is still busy
    after :data:`INTERRUPT_NOTICE_AFTER` seconds; a second Ctrl-C quits at once (exit 130).
    Nothing changes outside the main thread or where Ctrl-C is ignored (worker processes)."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    pending: list[threading.Timer] = []

    def take(signum, frame) -> None:
        if pending:  # the second Ctrl-C: no waiting for ngspice
            print("rerinv: interrupted", file=sys.stderr, flush=True)
            os._exit(130)
        notice = threading.Timer(INTERRUPT_NOTICE_AFTER, _interrupt_notice)
        notice.daemon = True
        notice.start()
        pending.append(notice)

    signal.signal(signal.SIGINT, take)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        for notice in pending:
            notice.cancel()
        if pending:  # also when ngspice failed: the interrupt is what the user asked for
            previous(signal.SIGINT, None)


def _interrupt_notice() -> None:
    print(
        "rerinv: Ctrl-C: stopping when ngspice returns from the running analysis "
        "(Ctrl-C again to quit at once)",
        file=sys.stderr,
        flush=True,
    )


def _command(command: str, *, analysis: bool = False) -> str:
    """Run an ngspice command. An analysis holds Ctrl-C until it returns
    (:func:`held_interrupts`; the short commands between analyses, thousands of ``alter``
    per solve, are not worth the 15 us it costs), and its notes on stderr (gmin or source
    stepping) are not failures by themselves: the caller judges the plot it produced."""
    ng = ngspice()
    try:
        if not analysis:
            return ng.exec_command(command)
        with held_interrupts():
            return ng.exec_command(command)
    except Exception as exc:
        if analysis and "NgSpiceCommandError" in type(exc).__name__:
            return ng.stdout
        raise SimulationError(
            f"ngspice failed on `{command[:200]}`: {' '.join(ng._stderr)[-600:] or exc}"
        ) from exc
