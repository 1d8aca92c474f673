"""Local worker processes die with the Monte Carlo driver, even when it is SIGKILLed.

A local pool has three kinds of helper processes: the fork server (a child of the driver), the
workers (children of the fork server) and multiprocessing's resource tracker (a child of the
driver, which exits once every process holding its pipe is gone). A killed driver runs no
clean-up code, so each helper watches for itself:

- the fork server imports this module first (it is the first of
  :data:`rerinv.studies.mc.runners.PRELOAD`): when its parent is the driver named in
  :data:`DRIVER_ENV`, it asks Linux for ``SIGKILL`` when that parent dies
  (``prctl(PR_SET_PDEATHSIG)``);
- every worker (:func:`watch_driver`, run by the pool initialiser) asks for ``SIGTERM`` when
  its parent, the fork server, dies, and runs a watchdog thread that sends itself ``SIGTERM``
  when the driver is gone (zombies count as gone); workers keep ``SIGTERM``'s default action,
  so they honour it at once, even inside native code.

Elsewhere (no Linux ``prctl``) only the watchdog runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from rerinv.interrupts import die_with_parent

#: Environment variable holding the pid of the driver that starts a local pool.
DRIVER_ENV = "RERINV_MC_DRIVER_PID"
#: Seconds between two checks of the watchdog.
WATCH_INTERVAL = 0.25


def alive(pid: int) -> bool:
    """Is process ``pid`` running (a zombie, which a killed driver is until reaped, is not)?"""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_driver(driver_pid: int) -> None:
    """In a worker: die (``SIGTERM``, default action) when the fork server or the driver
    ``driver_pid`` is gone."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    die_with_parent(signal.SIGTERM)
    if not alive(parent) or not alive(driver_pid):  # died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

    def watchdog() -> None:
        while alive(driver_pid):
            time.sleep(WATCH_INTERVAL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watchdog, name="rerinv-driver-watchdog", daemon=True).start()


def _fork_server_lifeline() -> None:
    """Run on import: in the fork server (imported from ``multiprocessing.forkserver.main``,
    its parent the driver of :data:`DRIVER_ENV`), die with the driver."""
    if os.environ.get(DRIVER_ENV) != str(os.getppid()):
        return
    import multiprocessing.forkserver

    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is multiprocessing.forkserver.main.__code__:
            die_with_parent(signal.SIGKILL)
            return
        frame = frame.f_back


_fork_server_lifeline()
