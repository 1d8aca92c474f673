"""Monte Carlo runs: sweep points x trials, fanned out to local processes or a Dask cluster.

A run is a :class:`SweepSpec`: a base configuration, swept axes (``section.key`` values applied
with :meth:`Config.with_overrides`, plus the pseudo-axes ``n``, ``scheme`` and ``engine``) and a
number of trials per point. Trial ``(p, t)`` draws everything from
``SeedSequence(master_seed).spawn(points)[p].spawn(trials)[t]`` (:func:`trial_seed`), so results
never depend on worker count, order or placement. The driver alone writes the HDF5 file
(:mod:`rerinv.studies.mc.store`), storing each trial by index as it arrives. ngspice keeps global state:
one process runs one trial at a time, never threads.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import pickle
import platform
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import h5py
import numpy as np

import rerinv
from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.seeds import trial_seed
from rerinv.studies.mc.store import PointRecord, ResultStore, RunDescription, describe_mismatch
from rerinv.studies.trial import run_trial

#: Short axis names accepted by :func:`parse_sweep` (and ``--sweep``) for ``simulation.*``.
AXIS_ALIASES = {
    "n": "simulation.n",
    "scheme": "simulation.scheme",
    "engine": "simulation.engine",
    "target_bits": "simulation.target_bits",
    "max_passes": "simulation.max_passes",
}
CRASH_MESSAGE = (
    "WorkerCrash: the worker process died while running this trial (killed, out of memory or "
    "a crash in native code such as ngspice); it was retried alone and died again"
)

TrialFunction = Callable[..., Any]


@dataclass(frozen=True)
class SweepSpec:
    """What a Monte Carlo run computes (everything that defines its stored results).

    Parameters
    ----------
    base : Config
        Configuration every point starts from (``base.simulation`` gives the scheme, engine,
        matrix size, target bits and pass budget where no axis sweeps them).
    axes : tuple of (name, values)
        Swept axes in order; ``name`` is ``section.key`` (``simulation.scheme`` included) and
        ``values`` are the texts given on the command line. Build with :func:`parse_sweep`.
    trials : int
        Trials per point.
    master_seed : int
        Root of every trial's seed, in ``[0, 2**63)``.
    """

    base: Config = field(default_factory=Config)
    axes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    trials: int = 1
    master_seed: int = 0

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise InputError(f"trials must be at least 1, got {self.trials}")
        if not 0 <= self.master_seed < 2**63:
            raise InputError(f"the master seed must be in [0, 2**63), got {self.master_seed}")
        for name, _ in self.axes:
            if name in AXIS_ALIASES:
                raise InputError(f"axis {name!r}: use its full name {AXIS_ALIASES[name]!r}")

    def points(self) -> list[PointRecord]:
        """The cartesian product of the axes, first axis slowest."""
        names = [name for name, _ in self.axes]
        records = []
        for index in itertools.product(*(range(len(values)) for _, values in self.axes)):
            chosen = {name: values[i] for (name, values), i in zip(self.axes, index, strict=True)}
            config = self.base.with_overrides([f"{k}={v}" for k, v in chosen.items()])
            records.append(
                PointRecord(
                    index=tuple(index),
                    label=", ".join(f"{k}={chosen[k]}" for k in names) or "base",
                    config_toml=config.to_toml(),
                )
            )
        return records

    def description(self) -> RunDescription:
        return RunDescription(
            base_config_toml=self.base.to_toml(),
            axes=self.axes,
            points=tuple(self.points()),
            trials=self.trials,
            master_seed=self.master_seed,
        )


def parse_sweep(
    assignments: list[str] | tuple[str, ...], base: Config
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse ``--sweep name=v1,v2,...`` texts into axes, validating every value.

    ``name`` is ``section.key``; the short names of :data:`AXIS_ALIASES` (``n``, ``scheme``,
    ``engine``, ...) stand for their ``simulation.*`` keys.

    Raises
    ------
    InputError, ConfigError
        Malformed text, a repeated axis or value, or a value the configuration rejects.
    """
    axes: list[tuple[str, tuple[str, ...]]] = []
    for text in assignments:
        name, sep, raw = text.partition("=")
        name = AXIS_ALIASES.get(name.strip(), name.strip())
        values = tuple(v.strip() for v in raw.split(","))
        if not sep or not name or not all(values):
            raise InputError(
                f"--sweep {text!r}: expected name=v1,v2,... (e.g. device.sigma_rel=0,0.01)"
            )
        if name in (a for a, _ in axes):
            raise InputError(f"--sweep {name} is given twice; put all its values in one --sweep")
        if len(set(values)) != len(values):
            raise InputError(f"--sweep {text!r}: a value is repeated")
        for value in values:
            try:
                base.with_overrides([f"{name}={value}"])
            except RerinvError as exc:
                raise type(exc)(f"--sweep {name}={value}: {exc}") from exc
        axes.append((name, values))
    return tuple(axes)


@dataclass(frozen=True)
class TrialTask:
    """One unit of work, picklable for a process pool or a Dask worker."""

    point: int
    trial: int
    config: Config  #: the point's configuration (``simulation`` says what to run)
    master_seed: int
    trial_fn: TrialFunction


_ONE_AT_A_TIME = threading.Lock()  # one trial per process even on a multi-threaded Dask worker


def execute_trial(task: TrialTask) -> dict[str, Any]:
    """Run one trial where it lands and return its record (a failure is a record too)."""
    seed = trial_seed(task.master_seed, task.point, task.trial)
    with _ONE_AT_A_TIME:
        start = time.perf_counter()
        try:
            result = task.trial_fn(task.config, seed=seed)
            record = _record(result, task.config.simulation.max_passes)
        except Exception as exc:  # a failed trial is data, not a crash
            record = failed_record(f"{type(exc).__name__}: {exc}")
        record["wall_time"] = time.perf_counter() - start
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return record


def failed_record(message: str) -> dict[str, Any]:
    """The stored record of a trial that failed with ``message``."""
    return {
        "status": "failed",
        "reached_target": False,
        "effective_bits": math.nan,
        "passes": 0,
        "inv_solves": 0,
        "vmm_ops": 0,
        "conversions": 0,
        "history_bits": [],
        "history_residual": [],
        "error": message,
        "wall_time": math.nan,
        "worker": "",
    }


def _record(result: Any, max_passes: int) -> dict[str, Any]:
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    record = {
        "status": str(data["status"]),
        "reached_target": bool(data["reached_target"]),
        "effective_bits": float(data["effective_bits"]),
        **{k: int(data[k]) for k in ("passes", "inv_solves", "vmm_ops", "conversions")},
        "history_bits": [float(v) for v in data.get("history_bits", [])],
        "history_residual": [float(v) for v in data.get("history_residual", [])],
        "error": str(data.get("error", "")),
    }
    longest = max(len(record["history_bits"]), len(record["history_residual"]))
    if longest > max_passes:
        raise InputError(f"the trial reported {longest} passes, more than max_passes={max_passes}")
    return record


@dataclass(frozen=True)
class RunSummary:
    """What one call of :func:`run_monte_carlo` did."""

    path: Path
    total: int  #: trials in the run
    stored: int  #: trials stored in the file (done) after this call
    ran: int  #: trials stored by this call
    failed: int  #: trials of this call stored as failed
    interrupted: bool
    elapsed: float  #: seconds


def run_monte_carlo(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    trial_fn: TrialFunction = run_trial,
    command_line: str | None = None,
    stream: TextIO | None = None,
) -> RunSummary:
    """Run (or resume) the Monte Carlo ``spec``, storing every trial in ``out``.

    Parameters
    ----------
    spec : SweepSpec
    out : str or Path
        HDF5 file to create, or to complete with ``resume=True``.
    workers : int, optional
        Local worker processes (default ``os.cpu_count()``); 1 runs in this process.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:port``); excludes ``workers``.
    resume : bool
        Open the existing ``out``, check it was written for the same ``spec`` and run only the
        trials it lacks.
    trial_fn : callable
        ``trial_fn(config, *, seed)`` returning a
        :class:`rerinv.studies.trial.TrialResult` (or a dict with its fields). Must be a module-level
        function when it runs in other processes.
    command_line : str, optional
        Stored as provenance and printed (with ``--resume``) when interrupted.
    stream : file, optional
        Progress and messages (default ``sys.stderr``).

    Returns
    -------
    RunSummary
        ``interrupted`` is True after Ctrl-C; the file is closed cleanly and resumable.
    """
    stream = sys.stderr if stream is None else stream
    if scheduler is not None and workers is not None:
        raise InputError("give either workers (local processes) or a Dask scheduler, not both")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if scheduler is not None or workers > 1:
        try:
            pickle.dumps(trial_fn)
        except Exception as exc:
            raise InputError(
                f"the trial function cannot be sent to worker processes ({exc}); use a "
                "module-level function"
            ) from exc
    function_name = (
        f"{getattr(trial_fn, '__module__', '?')}:{getattr(trial_fn, '__qualname__', '?')}"
    )
    description = replace(spec.description(), trial_function=function_name)
    out = Path(out)
    if resume:
        store = ResultStore.open(out)
        problems = describe_mismatch(store.description(), description)
        if problems:
            original = str(store.file.attrs.get("command_line", "")) or "not recorded"
            store.close()
            raise InputError(
                f"{out} was written for a different run, so it cannot be resumed with these "
                f"arguments:\n  " + "\n  ".join(problems) + f"\nits original command: {original}"
            )
    else:
        if out.exists():
            raise InputError(f"{out} exists; pass --resume to complete it or choose another --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        store = ResultStore.create(out, description, provenance(description, command_line))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    ran = failed = 0
    interrupted = False
    try:
        configs = [Config.from_toml(p.config_toml) for p in description.points]
        tasks = [
            TrialTask(p, t, configs[p], spec.master_seed, trial_fn)
            for p in range(len(description.points))
            for t in range(spec.trials)
            if not store.done[p, t]
        ]
        progress = Progress(store.done.size, int(store.done.sum()), stream)

        def deliver(task: TrialTask, record: dict[str, Any]) -> None:
            nonlocal ran, failed
            record["finished_at"] = time.time()
            store.write_trial(task.point, task.trial, record)
            ran += 1
            failed += record["status"] == "failed"
            progress.update(record["status"] == "failed")

        with _StopOnInterrupt(stream) as stop:
            try:
                if scheduler is not None:
                    _run_dask(tasks, scheduler, deliver, stop, stream)
                elif workers == 1:
                    for task in tasks:
                        if stop.requested:
                            break
                        deliver(task, execute_trial(task))
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
                "backend": scheduler or f"{workers} local process(es)",
                "rerinv_version": rerinv.__version__,
                "stored": ran,
                "interrupted": interrupted,
            }
        )
        stored = int(store.done.sum())
    finally:
        store.close()
    if interrupted:
        hint = (
            f"{command_line} --resume"
            if command_line
            else "run_monte_carlo(..., resume=True) with the same spec"
        )
        print(
            f"rerinv mc: interrupted; {stored} of {store.done.size} trials stored in {out} "
            f"(closed cleanly, readable). Resume with:\n  {hint}",
            file=stream,
        )
    return RunSummary(
        out, store.done.size, stored, ran, failed, interrupted, time.perf_counter() - start
    )


def provenance(description: RunDescription, command_line: str | None) -> dict[str, Any]:
    """Root attributes of a new results file: versions, time, command line."""
    if any(p.config.simulation.engine == "spice" for p in description.points):
        from rerinv.engines.ngspice import ngspice_version

        ngspice = ngspice_version()
    else:
        ngspice = "not used"
    return {
        "rerinv_version": rerinv.__version__,
        "ngspice_version": ngspice,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "hdf5_version": h5py.version.hdf5_version,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command_line": command_line or "",
    }


# -- execution -----------------------------------------------------------------------------
Deliver = Callable[[TrialTask, dict[str, Any]], None]


class _StopOnInterrupt:
    """First Ctrl-C (SIGINT) or SIGTERM: stop submitting, let running trials finish
    (``requested``). A second one raises KeyboardInterrupt: running trials are abandoned."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stream: TextIO):
        self.stream, self.requested, self._previous = stream, False, {}

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nrerinv mc: stopping; finishing the running trials (Ctrl-C again to abandon them)",
            file=self.stream,
            flush=True,
        )

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _ignore_stop_signals() -> None:
    """Pool worker initialiser: Ctrl-C and SIGTERM are the driver's business (it stops the run
    cleanly, and kills its workers itself when told twice)."""
    for sig in _StopOnInterrupt.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _worker_ready(trial_fn: TrialFunction) -> None:
    """A no-op run first on every pool: unpickling ``trial_fn`` imports its module."""


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers never inherit the driver's ngspice, threads or open HDF5 file
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rerinv.studies.trial"])
    return context


def _run_pool(tasks: list[TrialTask], workers: int, deliver: Deliver, stop: Any) -> None:
    """Run ``tasks`` on local worker processes; a trial that kills its worker is retried
    alone, and stored as failed if it kills that worker too."""
    queue = deque(tasks)
    while queue and not stop.requested:
        for task in _pool_pass(queue, workers, deliver, stop):
            if stop.requested:
                break
            if _pool_pass(deque([task]), 1, deliver, stop):
                deliver(task, failed_record(CRASH_MESSAGE))


def _pool_pass(queue: deque, workers: int, deliver: Deliver, stop: Any) -> list[TrialTask]:
    """Work through ``queue`` with one pool; return the trials in flight if the pool broke."""
    pool = ProcessPoolExecutor(
        workers, mp_context=_pool_context(), initializer=_ignore_stop_signals
    )
    in_flight: dict[Any, TrialTask] = {}
    broken: list[TrialTask] = []
    cancelled = False
    try:
        try:  # a worker that cannot even start (or import the trial function) is no trial's fault
            pool.submit(_worker_ready, queue[0].trial_fn).result()
        except BrokenProcessPool as exc:
            raise RerinvError(
                "local worker processes die before running any trial: they cannot start or "
                f"import the trial function {queue[0].trial_fn!r} (see the traceback above)"
            ) from exc
        while (queue and not stop.requested and not broken) or in_flight:
            while queue and not stop.requested and not broken and len(in_flight) < 2 * workers:
                task = queue.popleft()
                try:
                    in_flight[pool.submit(execute_trial, task)] = task
                except BrokenProcessPool:
                    broken.append(task)
            if stop.requested and not cancelled:  # cancel what has not started
                cancelled = True
                for future in [f for f in in_flight if f.cancel()]:
                    del in_flight[future]
            finished, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                task = in_flight.pop(future)
                try:
                    record = future.result()
                except BrokenProcessPool:
                    broken.append(task)
                    continue
                except Exception as exc:  # e.g. a result that cannot be unpickled
                    record = failed_record(f"{type(exc).__name__}: {exc}")
                deliver(task, record)
    except BaseException:  # second Ctrl-C or a driver error: do not wait for the workers
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    return broken


def _run_dask(
    tasks: list[TrialTask], address: str, deliver: Deliver, stop: Any, stream: TextIO
) -> None:
    """Run ``tasks`` through the Dask scheduler at ``address``, one future per trial."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        if max(client.nthreads().values(), default=1) > 1:
            print(
                "rerinv mc: note: a Dask worker process runs one trial at a time (ngspice is "
                "per process); start workers with --nthreads 1 --nworkers K to use K cores",
                file=stream,
            )
        futures = {client.submit(execute_trial, task, pure=False): task for task in tasks}
        completed = as_completed(list(futures))
        cancelled = False
        while futures:
            if stop.requested and not cancelled:  # cancel what no worker is running
                cancelled = True
                running = {key for keys in client.processing().values() for key in keys}
                queued = [future for future in futures if future.key not in running]
                client.cancel(queued)
                for future in queued:
                    del futures[future]
            batch = completed.next_batch(block=False) if completed.has_ready() else []
            if not batch:
                time.sleep(0.05)
            for future in batch:
                task = futures.pop(future, None)
                if task is None or future.cancelled():
                    continue
                try:
                    record = future.result()
                except Exception as exc:  # KilledWorker, lost results, ...
                    record = failed_record(f"{type(exc).__name__} on the Dask cluster: {exc}")
                deliver(task, record)
    finally:
        client.close()


# -- progress ------------------------------------------------------------------------------
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


# -- command line --------------------------------------------------------------------------
