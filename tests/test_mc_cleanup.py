"""A SIGKILLed ``mc`` driver leaves no process behind; workers honour SIGTERM.

The driver runs in a subprocess (``python -m rerinv.cli.mc --workers 2``) with
:func:`sleepy_trial`, a FAKE trial that sleeps, so that the fork server, the resource tracker
and both workers are alive when the driver is killed. Processes are found through ``/proc``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rerinv.studies.mc import load_results
from rerinv.studies.mc.lifeline import alive

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists() or not sys.platform.startswith("linux"),
    reason="needs Linux /proc",
)


def sleepy_trial(config, *, seed):
    """FAKE trial: sleeps (a worker busy in a long trial), then returns a plausible record."""
    time.sleep(60)
    return {"status": "converged", "reached_target": True, "effective_bits": 20.0, "passes": 1,
            "inv_solves": 1, "vmm_ops": 1, "conversions": 1}  # fmt: skip


def _parents() -> dict[int, int]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def _descendants(root: int) -> set[int]:
    parents, found, frontier = _parents(), set(), [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _start_driver(tmp_path: Path) -> tuple[subprocess.Popen, set[int]]:
    """The driver with its fork server, resource tracker and two busy workers."""
    command = [sys.executable, "-m", "rerinv.cli.mc", "--trials", "4", "--engine", "nodal",
               "--n", "4", "--workers", "2", "--out", str(tmp_path / "r.h5"),
               "--trial-function", f"{__name__}:sleepy_trial"]  # fmt: skip
    driver = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    helpers: set[int] = set()
    while time.monotonic() < deadline:  # fork server + resource tracker + 2 workers
        helpers = _descendants(driver.pid)
        if len(helpers) >= 4:
            time.sleep(0.5)  # let both workers take a trial
            return driver, _descendants(driver.pid)
        time.sleep(0.1)
    driver.kill()
    pytest.fail(f"the pool did not start within 30 s (helpers seen: {sorted(helpers)})")


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


def test_workers_honour_sigterm_and_nothing_outlives_a_sigkilled_driver(tmp_path):
    driver, helpers = _start_driver(tmp_path)
    try:
        assert len(helpers) >= 4
        workers = [p for p in helpers if _parents().get(p) not in (driver.pid, None)]
        assert workers, helpers
        os.kill(workers[0], signal.SIGTERM)  # the driver retries its trial on a new pool
        assert not _wait_gone({workers[0]}, 2.0), "a worker ignored SIGTERM"
        time.sleep(1.0)
        helpers |= _descendants(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        survivors = _wait_gone(helpers, 5.0)
        assert not survivors, f"still running 5 s after SIGKILL of the driver: {survivors}"
        # the killed run's file stays readable and resumable (no "open for write" mark)
        assert load_results(tmp_path / "r.h5").done.size == 4
    finally:
        for pid in helpers | {driver.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
