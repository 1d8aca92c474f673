"""Engine sessions in worker processes, so that independent solves run at the same time.

ngspice keeps global state (one instance per process), so parallel solves need processes. A
:class:`PooledEngine` starts ``workers`` processes on its first load, each with its own engine
of the same name, and returns proxy sessions: a circuit read only in batches goes to the worker
holding the fewest resistors; any other is loaded in every worker, and its batches (DAC slices,
BlockAMC's Schur-complement columns) are split between them. A worker serves one request at a
time; requests to different workers made from different threads (:func:`parallel_map`) run in
parallel. The caller's logic (ranging, counting, random draws) stays in the calling process.
A split batch starts each part's ``dc`` sweep afresh, so it agrees with the unsplit batch to
the solver's tolerance (bit for bit in the tests so far).

Workers ignore Ctrl-C (the caller handles it and stops them), end when the caller closes their
pipe, and get ``SIGTERM`` from Linux when the caller dies, even inside ngspice. A request
interrupted in the caller, or a worker that died, stops the whole pool: the next use starts a
fresh one (its sessions are gone; a :class:`SimulationError` says so).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

import numpy as np

from rerinv.errors import InputError, RerinvError, SimulationError
from rerinv.hw.circuit import Circuit
from rerinv.interrupts import die_with_parent

__all__ = ["PooledEngine", "parallel_map", "resolve_workers", "shared_pool"]

_JOIN_TIMEOUT = 5.0  # s a closed worker gets to exit before it is terminated
_THREADS = "rerinv-engine"  # name prefix of parallel_map's threads


def resolve_workers(workers: int) -> int:
    """Worker processes for ``simulation.workers``: 0 means one per CPU this process may use."""
    if workers < 0:
        raise InputError(f"simulation.workers must be >= 0, got {workers}")
    if workers:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def parallel_map(engine, fn, items) -> list:
    """``[fn(item) for item in items]``, run from ``engine.workers`` threads when ``engine``
    is pooled (each ``fn`` should use sessions of that engine), else in order here; also in
    order when called from one of those threads (a batch split inside a parallel block)."""
    items = list(items)
    workers = getattr(engine, "workers", 1)
    nested = threading.current_thread().name.startswith(_THREADS)  # would wait on itself
    if workers <= 1 or len(items) <= 1 or nested:
        return [fn(item) for item in items]
    return list(engine.executor().map(fn, items))


def _serve(fd: int, name: str) -> None:
    """A worker (``python -c``, see :class:`_Worker`): load circuits and answer
    ``(operation, session id, *arguments)`` requests on the socket ``fd``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGTERM)
    from rerinv.engines import get_engine

    conn = Connection(fd)
    engine, sessions = get_engine(name), {}
    while True:
        try:
            operation, sid, *args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if operation == "load":
                sessions[sid] = engine.load(args[0], batches=args[1])
                value = None
            elif operation == "close":
                sessions.pop(sid).close()
                value = None
            else:
                value = getattr(sessions[sid], operation)(*args)
            reply = ("ok", value)
        except RerinvError as exc:
            reply = ("err", exc)
        except Exception as exc:  # an unexpected failure: its text, not its (unpicklable) self
            reply = ("err", SimulationError(f"engine worker: {type(exc).__name__}: {exc}"))
        try:
            conn.send(reply)
        except Exception as exc:  # an error that does not pickle
            conn.send(("err", SimulationError(f"engine worker: {reply[1]!r} ({exc})")))


class _Worker:
    """One worker process: a fresh interpreter (not multiprocessing, which would re-import the
    caller's main script) talking over a socket pair."""

    def __init__(self, name: str):
        ours, theirs = socket.socketpair()
        fd = theirs.fileno()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread, as in rerinv.cli
        ngspice = sys.modules.get("rerinv.engines.ngspice_lib")
        if ngspice is not None and ngspice._solver is not None:  # the solver chosen here
            env[ngspice.SOLVER_ENV] = ngspice._solver
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from rerinv.engines.pool import _serve; _serve({fd}, {name!r})",
            ],
            pass_fds=(fd,),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.lock = threading.Lock()
        self.resistors = 0  # size of the circuits placed here (load balancing)

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, *message):
        with self.lock:
            try:
                self.conn.send(message)
                status, value = self.conn.recv()
            except (EOFError, OSError) as exc:
                raise SimulationError(
                    f"engine worker {self.process.pid} died ({type(exc).__name__}); its "
                    "circuits are gone"
                ) from None
        if status == "err":
            raise value
        return value

    def stop(self) -> None:
        self.conn.close()  # the worker ends at end of file
        try:
            self.process.wait(_JOIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PooledEngine:
    """The engine ``name`` in ``workers`` processes (see the module docstring)."""

    def __init__(self, name: str, workers: int):
        self.name, self.workers = name, workers
        self._workers: list[_Worker] = []
        self._executor: ThreadPoolExecutor | None = None
        self._next_id = 0
        self._start_lock = threading.Lock()
        atexit.register(self.shutdown)

    def _started(self) -> list[_Worker]:
        with self._start_lock:
            if not self._workers:
                self._workers = [_Worker(self.name) for _ in range(self.workers)]
            return self._workers

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=_THREADS)
        return self._executor

    def load(self, circuit: Circuit, *, batches: bool = False) -> RemoteSession:
        """A session of ``circuit``. One read only in batches (``batches``: the residual VMM's
        tiles, which are read in parallel with each other) lives on the worker holding the
        fewest resistors; any other circuit on every worker (parsed in parallel), so that its
        batches are split across them and its single solves take turns between workers."""
        workers = self._started()
        self._next_id += 1
        if batches:
            placed = [min(workers, key=lambda w: w.resistors)]
        else:
            turn = self._next_id % len(workers)
            placed = workers[turn:] + workers[:turn]  # the first serves single solves
        session = RemoteSession(circuit, self, placed, self._next_id)
        parallel_map(self, lambda w: session._call(w, "load", circuit, batches), placed)
        for worker in placed:
            worker.resistors += len(circuit.resistors)
        return session

    def shutdown(self) -> None:
        """Stop every worker (their sessions are gone); the next load starts new ones."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


class RemoteSession:
    """A session living in one or more worker processes (the same circuit loaded in each); the
    Session protocol of the local engines."""

    def __init__(self, circuit: Circuit, engine: PooledEngine, workers: list[_Worker], sid: int):
        self.circuit, self.engine, self.workers, self.sid = circuit, engine, workers, sid
        self.closed = False

    @property
    def worker(self) -> _Worker:
        """The worker that serves single solves."""
        return self.workers[0]

    def _call(self, worker: _Worker, operation: str, *args):
        if self.closed:
            raise SimulationError("this circuit was closed; load it again")
        if worker not in self.engine._workers:
            raise SimulationError("the engine workers holding this circuit were stopped")
        try:
            return worker.call(operation, self.sid, *args)
        except (KeyboardInterrupt, SimulationError) as exc:
            if isinstance(exc, KeyboardInterrupt) or not worker.alive():
                self.engine.shutdown()  # replies are out of step, or a worker is gone
            raise

    def solve(self, inputs=None):
        return self._call(self.worker, "solve", inputs)

    def solve_batch(self, inputs):
        """Outputs (K, n_outputs); the K vectors are split across the workers holding the
        circuit (each part one ``dc`` sweep there)."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        parts = min(len(self.workers), inputs.shape[0])
        if parts <= 1:
            return self._call(self.worker, "solve_batch", inputs)
        chunks = np.array_split(inputs, parts)
        return np.concatenate(
            parallel_map(
                self.engine,
                lambda k: self._call(self.workers[k], "solve_batch", chunks[k]),
                range(parts),
            )
        )

    def close(self) -> None:
        if not self.closed:
            for worker in self.workers:
                if worker in self.engine._workers:
                    self._call(worker, "close")
                    worker.resistors -= len(self.circuit.resistors)
        self.closed = True


_POOLS: dict[tuple[str, int], PooledEngine] = {}


def shared_pool(name: str, workers: int) -> PooledEngine:
    """This process's pool of ``workers`` processes running engine ``name`` (started on its
    first load, kept for later machines)."""
    return _POOLS.setdefault((name, workers), PooledEngine(name, workers))
