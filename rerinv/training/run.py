"""The training driver: run (or resume) a grid of settings x seeds into one HDF5 file.

Runs go to local worker processes (``spawn`` start method, one BLAS thread each, so results
do not depend on the worker count), which die with the driver even when it is SIGKILLed
(Linux ``PR_SET_PDEATHSIG``, as Monte Carlo's workers). The driver alone writes the file,
storing each run at its index as it arrives and saving the whole file atomically at most
every :data:`SAVE_INTERVAL` seconds and at the end (:class:`~rerinv.training.store.
TrainingStore`): the file on disk is always complete, and it is first written once it holds
a run that did not fail, so a grid whose every run fails writes (and replaces) nothing. The
first Ctrl-C (or SIGTERM) stops starting runs and lets the running ones finish and be stored;
a second one abandons them. Either way the file is saved and ``--resume`` completes it.
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
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import rerinv
from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.interrupts import StopOnInterrupt, die_with_parent
from rerinv.nn.backends import make_backend
from rerinv.provenance import provenance
from rerinv.training.levels import describe_level, setting_config
from rerinv.training.results import NEW_STEP_FIELDS, run_settings
from rerinv.training.spec import TrainingSpec
from rerinv.training.store import TrainingStore
from rerinv.training.train import run_seed, train_run

#: Seconds between two saves of the training file while runs arrive (and one at the end).
SAVE_INTERVAL = 1.0
#: The record of a run whose worker process died.
CRASH_MESSAGE = "WorkerCrash: the worker process died while running this run"


@dataclass(frozen=True)
class RunTask:
    """One run, picklable for a worker process."""

    index: int
    spec: TrainingSpec
    config: Config


#: Datasets already loaded in this process, by (network, task, data seed, pool).
_DATASETS: dict[tuple, Any] = {}


def _dataset(spec: TrainingSpec):
    key = (spec.network, spec.task, spec.data_seed, spec.pool)
    if key not in _DATASETS:
        _DATASETS[key] = spec.dataset()
    return _DATASETS[key]


def execute_run(task: RunTask) -> dict[str, Any]:
    """Train run ``task.index`` and return its record (a failure is a record too)."""
    setting, seed_index = run_settings(task.spec)[task.index]
    start = time.perf_counter()
    try:
        rec = train_run(
            task.spec,
            setting,
            setting_config(task.config, setting),
            seed=run_seed(task.spec.master_seed, seed_index),
            dataset=_dataset(task.spec),
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
        for name in NEW_STEP_FIELDS:  # what this network's record holds
            if getattr(rec, name, None) is not None:
                record[name] = getattr(rec, name)
    except Exception as exc:  # a failed run is data, not a crash
        record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    record["run_time"] = time.perf_counter() - start
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def _init_worker(driver_pid: int) -> None:
    """Pool worker initialiser: Ctrl-C (sent to the whole terminal process group) is the
    driver's business; SIGTERM terminates the worker, and so does the death of the driver
    (its parent: ``spawn`` workers are the driver's own children), even by SIGKILL.

    The Monte Carlo pool does the same through ``rerinv.studies.mc.lifeline.watch_driver``,
    which this layer cannot import (``rerinv.studies`` and ``rerinv.training`` are
    independent layers); its kernel request (:func:`rerinv.interrupts.die_with_parent`) is
    shared."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(signal.SIGTERM)
    if os.getppid() != driver_pid:  # the driver died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


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
        make_backend(s.backend, setting_config(config, s), s.bits).describe()
        + (f"; noise {s.noise}: {describe_level(config, s.noise)}" if s.noise else "")
        if s.optimizer == "kfac"
        else ""
        for s in spec.settings()
    ]


def run_training(
    spec: TrainingSpec,
    config: Config,
    out: str | Path,
    *,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
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
        Open ``out``, verify its checksums, check it was written for this spec and
        configuration, run what is missing.
    force : bool
        Replace an existing ``out`` (without ``resume``); it is replaced only once the new
        grid holds a run that did not fail.
    command_line : str, optional
        Stored as provenance; printed with ``--resume`` when interrupted.
    stream : file, optional
        Progress and messages (default ``sys.stderr``).

    Raises
    ------
    InputError
        One line, before any run: an impossible grid (e.g. a batch larger than the training
        set), an existing ``out`` without ``resume`` or ``force``, a file that cannot be
        resumed. After the runs: every run failed (nothing is written, or only the runs this
        call completed, when resuming), or the file could not be saved (``out`` then holds
        its last complete save, or nothing).
    """
    stream = sys.stderr if stream is None else stream
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    spec.check_dataset()
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
                "arguments: " + "; ".join(problems)
            )
    else:
        if out.is_dir():
            raise InputError(f"{out} is a folder; give the training file to write")
        if (out.exists() or out.is_symlink()) and not force:
            raise InputError(
                f"{out} exists; pass --resume to complete it, --force to replace it, or choose "
                "another --out"
            )
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
    # written once it holds a run that did not fail (a resumed file already does)
    worth_saving = resume
    first_error = ""

    def deliver(task: RunTask, record: dict[str, Any]) -> None:
        nonlocal ran, failed, worth_saving, first_error
        record["finished_at"] = time.time()
        store.write_run(task.index, record)
        ran += 1
        if record["status"] == "failed":
            failed += 1
            first_error = first_error or str(record.get("error", ""))
        else:
            worth_saving = True
        progress.update(f"{runs[task.index][0].label}, seed {runs[task.index][1]}")
        if worth_saving:
            store.save(interval=SAVE_INTERVAL)

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
        if worth_saving:
            store.save()
        stored = int(store.done.sum())
    except InputError as exc:  # the file could not be saved (e.g. a full disk)
        progress.close()
        if store.on_disk:
            kept = f"{out} keeps its last complete save; free space and complete it with --resume"
        else:
            kept = "nothing was written"
        raise InputError(f"{exc}; {kept}") from None
    finally:
        store.close()
    if ran and not worth_saving and not interrupted:
        raise InputError(
            f"every one of the {failed} runs failed (the first: {_one_line(first_error)}); "
            f"nothing was written to {out}"
        )
    if interrupted:
        if store.on_disk and command_line:
            print(
                f"rerinv train: interrupted; to complete it run:\n  {command_line} --resume",
                file=stream,
            )
        elif not store.on_disk:
            print("rerinv train: interrupted before any run was stored; nothing was written",
                  file=stream)  # fmt: skip
    return TrainingSummary(
        out, len(runs), stored, ran, failed, interrupted, time.perf_counter() - start
    )


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_pool(tasks: deque, workers: int, deliver, stop: StopOnInterrupt) -> None:
    """Run ``tasks`` on local worker processes; a pool broken by a dying worker is replaced
    (the runs it was running are stored as failed, unless a stop was requested: then they
    are left for ``--resume``)."""
    while tasks and not stop.requested:
        _pool_pass(tasks, workers, deliver, stop)


def _pool_pass(tasks: deque, workers: int, deliver, stop: StopOnInterrupt) -> None:
    context = multiprocessing.get_context("spawn")
    workers = min(workers, len(tasks))
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )
    running: dict = {}
    broken = False
    try:
        while (tasks and not stop.requested and not broken) or running:
            while tasks and len(running) < workers and not stop.requested and not broken:
                task = tasks.popleft()
                try:
                    running[pool.submit(execute_run, task)] = task
                except BrokenProcessPool:
                    tasks.appendleft(task)
                    broken = True
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool:
                    broken = True
                    if stop.requested:  # killed along with the stop: --resume runs it
                        continue
                    record = {"status": "failed", "error": CRASH_MESSAGE}
                    record.update(run_time=float("nan"), worker="")
                except Exception as exc:  # e.g. a result that cannot be unpickled
                    record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    record.update(run_time=float("nan"), worker="")
                deliver(task, record)
    except BaseException:  # second Ctrl-C or a driver error: do not wait for the workers
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        raise
    pool.shutdown(wait=True, cancel_futures=True)
