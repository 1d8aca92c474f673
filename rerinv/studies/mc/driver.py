"""The Monte Carlo driver: run (or resume) a :class:`~rerinv.studies.mc.spec.SweepSpec`.

Trial ``(p, t)`` draws everything from ``SeedSequence(master_seed).spawn(points)[p]
.spawn(trials)[t]`` (:func:`rerinv.seeds.trial_seed`), so results never depend on worker
count, order or placement. The driver alone writes the HDF5 file
(:mod:`rerinv.studies.mc.store`), storing each trial by index as it arrives.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import rerinv
from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.interrupts import StopOnInterrupt
from rerinv.outputs import remove_stale_temporaries, temporary_sibling
from rerinv.provenance import provenance
from rerinv.seeds import trial_seed
from rerinv.studies.mc.progress import Progress
from rerinv.studies.mc.runners import (
    ClusterLost,
    check_scheduler_address,
    run_dask,
    run_in_process,
    run_pool,
)
from rerinv.studies.mc.spec import SweepSpec, describe_mismatch
from rerinv.studies.mc.store import ResultStore
from rerinv.studies.mc.writes import StoreWriteError
from rerinv.studies.records import failed_record, normalise_record
from rerinv.studies.trial import run_trial

#: ``trial_fn(config, *, seed)`` returning a :class:`rerinv.studies.trial.TrialResult` (or a
#: mapping with its fields).
TrialFunction = Callable[..., Any]


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
    """Run one trial where it lands and return its record (a failure is a record too); the
    record lacks only ``finished_at``, which the driver sets when it stores it."""
    seed = trial_seed(task.master_seed, task.point, task.trial)
    with _ONE_AT_A_TIME:
        start = time.perf_counter()
        try:
            result = task.trial_fn(task.config, seed=seed)
            record = normalise_record(result, task.config.simulation.max_passes)
        except Exception as exc:  # a failed trial is data, not a crash
            record = failed_record(f"{type(exc).__name__}: {exc}")
        record["wall_time"] = time.perf_counter() - start
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
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
    force: bool = False,
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
    force : bool
        Replace an existing ``out`` (without ``resume``): the new run is written to a
        temporary file beside it, which replaces ``out`` when this call ends; a failure before
        any trial is stored leaves ``out`` as it was.
    trial_fn : callable
        ``trial_fn(config, *, seed)`` returning a :class:`rerinv.studies.trial.TrialResult`
        (or a mapping with its fields). Must be a module-level function when it runs in
        other processes. If it has a ``check_config(config)`` attribute, every point's
        configuration goes through it before the first trial (a point its trials cannot run
        is refused, not stored as failed trials).
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
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
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
    check = getattr(trial_fn, "check_config", None)
    for point in description.points if check is not None else ():
        try:
            check(point.config)
        except RerinvError as exc:
            raise type(exc)(f"sweep point {point.label}: {exc}") from exc
    out = Path(out)
    if scheduler is None:  # a Dask cluster's memory is its workers', checked by its trials
        check_memory(description.points)
    remove_stale_temporaries(out)
    created = None  # the file this call creates (a temporary one when it replaces ``out``)
    if resume:
        store = ResultStore.open(out)
        problems = describe_mismatch(store.description(), description)
        if problems:
            original = str(store.file.attrs.get("command_line", "")) or "not recorded"
            store.close()
            raise InputError(
                f"{out} was written for a different run, so it cannot be resumed with these "
                "arguments: " + "; ".join(problems) + f"; its original command: {original}"
            )
    else:
        if out.is_dir():
            raise InputError(f"{out} is a folder; give the results file to write")
        if out.exists() and not force:
            raise InputError(
                f"{out} exists; pass --resume to complete it, --force to replace it, or choose "
                "another --out"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        created = temporary_sibling(out, create=False) if out.exists() else out
        attrs = provenance(
            command_line, ngspice=any(p.engine == "spice" for p in description.points)
        )
        try:
            store = ResultStore.create(created, description, attrs)
        except StoreWriteError as exc:  # e.g. a full disk: no half-made file ("w-": it was new)
            created.unlink(missing_ok=True)
            unchanged = f" ({out} is unchanged)" if created != out else ""
            raise StoreWriteError(
                out, f"{exc.reason}; nothing was kept{unchanged}", exc.broken
            ) from None
        except BaseException:
            created.unlink(missing_ok=True)
            raise
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    ran = failed = 0
    first_error = ""
    interrupted = completed = False
    lost: ClusterLost | None = None
    failed_write = False
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
            nonlocal ran, failed, first_error
            record["finished_at"] = time.time()
            store.write_trial(task.point, task.trial, record)
            ran += 1
            if record["status"] == "failed":
                failed += 1
                first_error = first_error or str(record.get("error", ""))
            progress.update(record["status"] == "failed")

        with StopOnInterrupt(stream, "rerinv mc", "trials") as stop:
            try:
                if scheduler is not None:
                    run_dask(tasks, scheduler, execute_trial, deliver, stop, stream)
                elif workers == 1:
                    run_in_process(tasks, execute_trial, deliver, stop)
                else:
                    run_pool(tasks, workers, execute_trial, deliver, stop)
            except KeyboardInterrupt:
                stop.requested = True
            except ClusterLost as exc:  # what was stored stays: record the session, resume
                lost = exc
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
                "interrupted": interrupted or lost is not None,
            }
        )
        stored = int(store.done.sum())
        store.close()
        completed = True
    except StoreWriteError as exc:  # a full disk: nothing half-written is kept
        failed_write = True
        store.abandon(exc)
        if created is not None:
            created.unlink(missing_ok=True)
            kept = "nothing was kept" + (f" ({out} is unchanged)" if created != out else "")
        else:
            kept = (
                f"{out} holds what was stored before the failure (rerinv report checks it); "
                "resume once the disk has room"
            )
        raise StoreWriteError(out, f"{exc.reason}; {kept}", exc.broken) from None
    finally:
        if not completed and store.file.id.valid and not failed_write:
            store.close()
        nothing = ran == 0 and (not completed or lost is not None)
        all_failed = completed and 0 < ran == failed and not interrupted and lost is None
        if created is not None and created.exists():
            if nothing or all_failed:  # no result: leave no file to block a rerun
                created.unlink(missing_ok=True)
            elif created != out:
                os.replace(created, out)
    hint = (
        f"{command_line} --resume"
        if command_line
        else "run_monte_carlo(..., resume=True) with the same spec"
    )
    if lost is not None:
        if ran == 0 and created is not None:
            raise ClusterLost(f"{lost}; no trial was stored")
        raise ClusterLost(
            f"{lost}; {stored} of {store.done.size} trials stored in {out} (closed cleanly); "
            f"resume with: {hint}"
        )
    if ran and failed == ran and not interrupted:
        kept = (
            f"they are stored in {out}"
            if created is None
            else "no file was kept" + (f" ({out} is unchanged)" if created != out else "")
        )
        raise AllTrialsFailed(
            f"every trial failed ({failed} of {failed}): {kept}; the first error: "
            f"{first_error.splitlines()[0] if first_error else '?'}"
        )
    if interrupted:
        print(
            f"rerinv mc: interrupted; {stored} of {store.done.size} trials stored in {out} "
            f"(closed cleanly, readable). Resume with:\n  {hint}",
            file=stream,
        )
    return RunSummary(
        out, store.done.size, stored, ran, failed, interrupted, time.perf_counter() - start
    )


class AllTrialsFailed(RerinvError):
    """Every trial a run ran failed: nothing it computed is a result."""


#: Bytes of float64 workload arrays one trial holds at the least, per ``n**2``, besides its
#: ``workload.samples_per_n * n`` samples: the factor and its copy (a nodal-engine trial peaks
#: near 1300 ``n**2`` floats, measured at n = 128-512; this bound is the workload alone).
_WORKLOAD_COPIES = 2


def check_memory(points: Any, memory: int | None = None) -> None:
    """Refuse a sweep point whose every trial would fail to allocate its workload: the
    ``samples_per_n * n`` x ``n`` Wishart samples and the factor (float64) need more than
    ``memory`` bytes (default: this machine's physical memory)."""
    memory = physical_memory() if memory is None else memory
    if not memory:
        return
    for point in points:
        config = point.config
        n = config.simulation.n
        samples = max(1, round(config.workload.samples_per_n * n))
        need = 8 * n * (samples + _WORKLOAD_COPIES * n)
        if need > memory:
            per_n2 = 8 * (samples / n + _WORKLOAD_COPIES)
            largest = int(math.sqrt(memory / per_n2))
            where = "" if point.label == "base" else f"sweep point {point.label}: "
            raise InputError(
                f"{where}simulation.n = {n} needs at least {need / 2**30:,.0f} GiB per trial "
                f"for its workload alone, and this machine has {memory / 2**30:,.0f} GiB: the "
                f"largest n it can hold is about {largest} (a nodal-engine trial needs about "
                f"{1300 * 8 * n * n / 2**30:,.0f} GiB at this n); choose a smaller --n"
            )


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
