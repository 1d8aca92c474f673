"""The training driver: run (or resume) a grid of settings x seeds into one HDF5 file.

Runs go to local worker processes (``spawn`` start method, one BLAS thread each, so results
do not depend on the worker count); the driver alone writes the file, storing each run at its
index as it arrives. The first Ctrl-C (or SIGTERM) stops starting runs and lets the running
ones finish and be stored; a second one abandons them. Either way the file is closed cleanly
and ``--resume`` completes it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import rerinv
from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.interrupts import StopOnInterrupt
from rerinv.provenance import provenance
from rerinv.training.backends import make_backend
from rerinv.training.spec import TrainingSpec
from rerinv.training.store import TrainingStore, run_settings
from rerinv.training.train import run_seed, train_run


@dataclass(frozen=True)
class RunTask:
    """One run, picklable for a worker process."""

    index: int
    spec: TrainingSpec
    config: Config


def execute_run(task: RunTask) -> dict[str, Any]:
    """Train run ``task.index`` and return its record (a failure is a record too)."""
    setting, seed_index = run_settings(task.spec)[task.index]
    start = time.perf_counter()
    try:
        rec = train_run(
            task.spec, setting, task.config, seed=run_seed(task.spec.master_seed, seed_index)
        )
        record: dict[str, Any] = {
            "train_loss": rec.train_loss,
            "test_loss": rec.test_loss,
            "test_accuracy": rec.test_accuracy,
            "batch_loss": rec.batch_loss,
            "nu": rec.nu,
            "wall_time": rec.wall_time,
            "status": rec.status,
            "events": [{**asdict(e), "inverse_wall_time": e.wall_time} for e in rec.events],
        }
    except Exception as exc:  # a failed run is data, not a crash
        record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    record["run_time"] = time.perf_counter() - start
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def _ignore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _Progress:
    """Runs done / total, the last run, rate and ETA on one line (stderr)."""

    def __init__(self, total: int, done: int, stream: TextIO):
        self.total, self.done, self.ran, self.stream = total, done, 0, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.next_line = 20 * done // max(total, 1) + 1
        if done:
            print(f"rerinv train: resuming, {done} of {total} runs already stored", file=stream)

    def update(self, label: str) -> None:
        self.done, self.ran = self.done + 1, self.ran + 1
        elapsed = time.perf_counter() - self.start
        eta = (self.total - self.done) * elapsed / self.ran
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = (
            f"rerinv train [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"runs, {elapsed:.0f} s, ETA {eta:.0f} s ({label})"
        )
        if self.tty:
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)
        elif 20 * self.done >= self.next_line * self.total:  # a line every ~5 %
            self.next_line = 20 * self.done // self.total + 1
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.ran:
            print(file=self.stream, flush=True)


@dataclass(frozen=True)
class TrainingSummary:
    """What one call of :func:`run_training` did."""

    path: Path
    total: int
    stored: int
    ran: int
    failed: int
    interrupted: bool
    elapsed: float  #: seconds


def describe_backends(spec: TrainingSpec, config: Config) -> list[str]:
    """One line per setting on how its K-FAC inverses are made (``""`` for baselines)."""
    return [
        make_backend(s.backend, config, s.bits).describe() if s.optimizer == "kfac" else ""
        for s in spec.settings()
    ]


def run_training(
    spec: TrainingSpec,
    config: Config,
    out: str | Path,
    *,
    workers: int | None = None,
    resume: bool = False,
    command_line: str | None = None,
    stream: TextIO | None = None,
) -> TrainingSummary:
    """Run (or resume) the grid ``spec`` with the hardware ``config``, storing every run in
    ``out``.

    Parameters
    ----------
    spec : TrainingSpec
    config : Config
        Hardware and scheme budget of the analog inverse backends.
    out : str or Path
        HDF5 file to create, or to complete with ``resume=True``.
    workers : int, optional
        Local worker processes (default ``os.cpu_count()``); 1 runs in this process.
    resume : bool
        Open ``out``, check it was written for this spec and configuration, run what is missing.
    command_line : str, optional
        Stored as provenance; printed with ``--resume`` when interrupted.
    stream : file, optional
        Progress and messages (default ``sys.stderr``).
    """
    stream = sys.stderr if stream is None else stream
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    if resume:
        store = TrainingStore.open(out)
        spec_json, config_toml = store.stored_spec()
        problems = []
        if spec_json != spec.to_json():
            old, new = TrainingSpec.from_json(spec_json), spec
            problems += [
                f"spec {k}: stored {getattr(old, k)!r}, given {getattr(new, k)!r}"
                for k in asdict(new)
                if getattr(old, k) != getattr(new, k)
            ]
        if config_toml != config.to_toml():
            problems.append("the hardware configuration differs (--config/--set/--engine)")
        if problems:
            store.close()
            raise InputError(
                f"{out} was written for a different grid, so it cannot be resumed with these "
                "arguments:\n  " + "\n  ".join(problems)
            )
    else:
        if out.exists():
            raise InputError(f"{out} exists; pass --resume to complete it or choose another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        uses_spice = config.simulation.engine == "spice" and any(
            s.optimizer == "kfac" and s.backend not in ("float64", "quantised")
            for s in spec.settings()
        )
        store = TrainingStore.create(
            out,
            spec,
            config,
            provenance(command_line, ngspice=uses_spice),
            describe_backends(spec, config),
        )
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    runs = run_settings(spec)
    tasks = deque(RunTask(r, spec, config) for r in range(len(runs)) if not store.done[r])
    progress = _Progress(len(runs), int(store.done.sum()), stream)
    ran = failed = 0

    def deliver(task: RunTask, record: dict[str, Any]) -> None:
        nonlocal ran, failed
        record["finished_at"] = time.time()
        store.write_run(task.index, record)
        ran += 1
        failed += record["status"] == "failed"
        progress.update(f"{runs[task.index][0].label}, seed {runs[task.index][1]}")

    interrupted = False
    try:
        with StopOnInterrupt(stream, "rerinv train", "runs") as stop:
            try:
                if workers == 1:
                    while tasks and not stop.requested:
                        task = tasks.popleft()
                        deliver(task, execute_run(task))
                else:
                    _run_pool(tasks, workers, deliver, stop)
            except KeyboardInterrupt:
                stop.requested = True
            interrupted = stop.requested and not store.done.all()
        progress.close()
        store.add_session(
            {
                "started": started,
                "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command_line": command_line or "",
                "workers": workers,
                "rerinv_version": rerinv.__version__,
                "stored": ran,
                "interrupted": interrupted,
            }
        )
        stored = int(store.done.sum())
    finally:
        store.close()
    if interrupted and command_line:
        print(
            f"rerinv train: interrupted; to complete it run:\n  {command_line} --resume",
            file=stream,
        )
    return TrainingSummary(
        out, len(runs), stored, ran, failed, interrupted, time.perf_counter() - start
    )


def _run_pool(tasks: deque, workers: int, deliver, stop: StopOnInterrupt) -> None:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_signals)
    running: dict = {}
    try:
        while (tasks and not stop.requested) or running:
            while tasks and len(running) < workers and not stop.requested:
                task = tasks.popleft()
                running[pool.submit(execute_run, task)] = task
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    record = future.result()
                except Exception as exc:  # the worker died (killed, out of memory)
                    record = {"status": "failed", "error": f"WorkerCrash: {exc}"}
                    record.update(run_time=float("nan"), worker="")
                deliver(task, record)
    except KeyboardInterrupt:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
