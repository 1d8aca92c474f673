"""Where trials run: local worker processes or a Dask cluster, and stopping on a signal.

A runner takes picklable tasks (each with a ``trial_fn``), a module-level ``execute(task)``
returning the task's record, and ``deliver(task, record)``, called in the driver for every
finished trial. ngspice keeps global state: one process runs one trial at a time, never
threads.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TextIO

from rerinv.errors import InputError, RerinvError
from rerinv.interrupts import StopOnInterrupt
from rerinv.studies.mc import lifeline
from rerinv.studies.records import failed_record

#: A picklable unit of work (the driver's ``TrialTask``); the runners only pass it on.
Task = Any
Execute = Callable[[Task], dict[str, Any]]
Deliver = Callable[[Task, dict[str, Any]], None]

CRASH_MESSAGE = (
    "WorkerCrash: the worker process died while running this trial (killed, out of memory or "
    "a crash in native code such as ngspice); it was retried alone and died again"
)
#: Modules the fork server imports once, so that every worker starts with them loaded; the
#: first makes the fork server die with the driver (:mod:`rerinv.studies.mc.lifeline`).
PRELOAD = ["rerinv.studies.mc.lifeline", "rerinv.studies.trial", "rerinv.studies.mc.driver"]
#: How long a Dask client waits for the scheduler.
SCHEDULER_TIMEOUT = "20s"
#: Seconds a run waits for a Dask worker: before the first trial, and whenever none is left.
WORKER_TIMEOUT = 20.0
#: Address schemes of a Dask scheduler that ``--scheduler`` accepts.
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<port>[0-9]{1,5})"
)


class ClusterLost(RerinvError):
    """The Dask cluster went away during a run: its scheduler, or every worker for
    :data:`WORKER_TIMEOUT` seconds. The trials stored so far stay; the run can be resumed."""


def check_scheduler_address(address: str) -> str:
    """``address`` if it is a Dask scheduler address (``tcp://HOST:PORT``, ``HOST:PORT``, or
    another scheme of :data:`SCHEDULER_SCHEMES`), else one-line :class:`InputError`."""
    match = _ADDRESS.fullmatch(address.strip()) if isinstance(address, str) else None
    scheme = match and (match["scheme"] or "tcp")
    if match is None or scheme not in SCHEDULER_SCHEMES or not 0 < int(match["port"]) < 65536:
        raise InputError(
            f"--scheduler {address!r} is not a Dask scheduler address; give tcp://HOST:PORT "
            "(what `dask scheduler` prints, e.g. tcp://10.0.0.5:8786)"
        )
    return address.strip()


def run_in_process(
    tasks: Sequence[Task], execute: Execute, deliver: Deliver, stop: StopOnInterrupt
) -> None:
    """Run ``tasks`` one after the other in this process."""
    for task in tasks:
        if stop.requested:
            break
        deliver(task, execute(task))


def _init_worker(driver_pid: int) -> None:
    """Pool worker initialiser: Ctrl-C (sent to the whole terminal process group) is the
    driver's business, which stops the run cleanly and kills its workers itself when told
    twice; SIGTERM terminates the worker, and so does the death of the driver or of the fork
    server (:func:`rerinv.studies.mc.lifeline.watch_driver`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifeline.watch_driver(driver_pid)


def _worker_ready(trial_fn: Any) -> None:
    """A no-op run first on every pool: unpickling ``trial_fn`` imports its module."""


def _pool_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers never inherit the driver's ngspice, threads or open HDF5 file
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    os.environ[lifeline.DRIVER_ENV] = str(os.getpid())  # read by the fork server it starts
    return context


def run_pool(
    tasks: Sequence[Task],
    workers: int,
    execute: Execute,
    deliver: Deliver,
    stop: StopOnInterrupt,
) -> None:
    """Run ``tasks`` on local worker processes; a trial that kills its worker is retried
    alone, and stored as failed if it kills that worker too."""
    queue = deque(tasks)
    while queue and not stop.requested:
        for task in _pool_pass(queue, workers, execute, deliver, stop):
            if stop.requested:
                break
            if _pool_pass(deque([task]), 1, execute, deliver, stop):
                deliver(task, failed_record(CRASH_MESSAGE))


def _pool_pass(
    queue: deque, workers: int, execute: Execute, deliver: Deliver, stop: StopOnInterrupt
) -> list[Task]:
    """Work through ``queue`` with one pool; return the trials in flight if the pool broke."""
    pool = ProcessPoolExecutor(
        workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(os.getpid(),)
    )
    in_flight: dict[Any, Task] = {}
    broken: list[Task] = []
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
                    in_flight[pool.submit(execute, task)] = task
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


def run_dask(
    tasks: Sequence[Task],
    address: str,
    execute: Execute,
    deliver: Deliver,
    stop: StopOnInterrupt,
    stream: TextIO,
) -> None:
    """Run ``tasks`` through the Dask scheduler at ``address``, one future per trial."""
    from distributed import Client, as_completed

    address = check_scheduler_address(address)
    with _quiet_dask_logs():
        _run_dask(tasks, address, execute, deliver, stop, stream, Client, as_completed)


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Drop Dask's own log records (a lost scheduler is logged as tracebacks at ERROR level on
    stderr) while a run uses the cluster: rerinv says what happened in one line."""
    drop = logging.Filter("\0")  # a filter whose name matches no logger drops every record
    handlers = {
        handler
        for name, logger in list(logging.root.manager.loggerDict.items())
        if name.split(".")[0] in ("distributed", "dask") and isinstance(logger, logging.Logger)
        for handler in logger.handlers
    }
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


def _run_dask(tasks, address, execute, deliver, stop, stream, Client, as_completed) -> None:
    try:
        client = Client(address, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise InputError(
                f"the Dask scheduler at {address} has no worker (waited {WORKER_TIMEOUT:g} s); "
                f"start one with: dask worker {address} --nthreads 1"
            ) from exc
        if max(client.nthreads().values(), default=1) > 1:
            print(
                "rerinv mc: note: a Dask worker process runs one trial at a time (ngspice is "
                "per process); start workers with --nthreads 1 --nworkers K to use K cores",
                file=stream,
            )
        try:
            _follow_dask(client, address, tasks, execute, deliver, stop, as_completed)
        except ClusterLost:
            raise
        except (OSError, TimeoutError, CancelledError) as exc:  # the scheduler went away
            raise ClusterLost(
                f"lost the Dask scheduler at {address} ({type(exc).__name__})"
            ) from exc
    finally:
        try:
            client.close(timeout=5)
        except Exception:  # a client of a dead scheduler may fail to close; nothing to keep
            pass


def _follow_dask(client, address, tasks, execute, deliver, stop, as_completed) -> None:
    """Submit every task, deliver results as they come, watch the scheduler and workers."""
    futures = {client.submit(execute, task, pure=False): task for task in tasks}
    completed = as_completed(list(futures))
    cancelled = False
    workers_seen, next_check = time.monotonic(), 0.0
    while futures:
        if stop.requested and not cancelled:  # cancel what no worker is running
            cancelled = True
            running = {key for keys in client.processing().values() for key in keys}
            queued = [future for future in futures if future.key not in running]
            client.cancel(queued)
            for future in queued:
                del futures[future]
        now = time.monotonic()
        if now >= next_check:  # the scheduler is there, and has a worker
            next_check = now + 1.0
            if client.status != "running":
                raise ClusterLost(f"lost the Dask scheduler at {address} (client {client.status})")
            if client.nthreads():
                workers_seen = now
            elif now - workers_seen > WORKER_TIMEOUT:
                raise ClusterLost(
                    f"the Dask scheduler at {address} has had no worker for "
                    f"{WORKER_TIMEOUT:g} s (start one with: dask worker {address} --nthreads 1)"
                )
        batch = completed.next_batch(block=False) if completed.has_ready() else []
        if not batch:
            time.sleep(0.05)
        for future in batch:
            task = futures.pop(future, None)
            if task is None:  # cancelled by the stop above
                continue
            if future.cancelled():  # not by us: the cluster dropped it
                raise ClusterLost(
                    f"the Dask scheduler at {address} cancelled trials that this run did not "
                    "cancel (it stopped or restarted)"
                )
            try:
                record = future.result()
            except CancelledError as exc:
                raise ClusterLost(
                    f"the Dask scheduler at {address} cancelled a trial (it stopped or restarted)"
                ) from exc
            except Exception as exc:  # KilledWorker, lost results, ...
                record = failed_record(f"{type(exc).__name__} on the Dask cluster: {exc}")
            deliver(task, record)
