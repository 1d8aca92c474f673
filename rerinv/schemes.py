"""Precision schemes: short loops over the analog machine, with honest bit accounting.

Each scheme uses only ``machine.inv`` (low-precision analog solve), ``machine.vmm`` (high-
precision residual VMM), ``machine.low_vmm`` (RePAST's ``A_L``) and cheap digital vector ops.
Stopping uses what hardware can see: the residual norm ``||b - A x|| / ||b||`` from the VMM and
the pass budget. ``effective_bits`` against the float64 solution of the intended matrix is
measured after every pass for verification only; it never steers a scheme.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.inv import effective_bits
from rerinv.machine import AnalogMachine
from rerinv.matrices import check_matrix, check_vector

SCHEMES = ("single", "repast", "refine", "krylov")
STATUSES = ("converged", "max_passes", "stalled", "diverged")

#: A pass "makes progress" when it lowers the best residual by at least this factor.
PROGRESS = 0.8

#: A residual above this many times ||b|| (far worse than x = 0) means the loop diverged.
DIVERGED_RESIDUAL = 4.0

#: Without progress, a residual this many times the best one seen means divergence.
GROWTH = 2.0


@dataclass
class PassRecord:
    effective_bits: float
    residual_norm: float
    inv_solves: int
    vmm_ops: int


@dataclass
class SolveResult:
    """Outcome of one scheme run; ``to_dict()`` is the CLI's ``--json`` object."""

    n: int
    scheme: str
    engine: str
    status: str
    reached_target: bool
    target_bits: float
    effective_bits: float
    passes: int
    inv_solves: int
    vmm_ops: int
    conversions: int
    history: list[PassRecord] = field(default_factory=list)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["x"] = self.x.tolist()
        for key in ("effective_bits",):
            data[key] = _json_float(data[key])
        for record in data["history"]:
            record["effective_bits"] = _json_float(record["effective_bits"])
            record["residual_norm"] = _json_float(record["residual_norm"])
        return data


def _json_float(value: float):
    return value if math.isfinite(value) else str(value)


class _Run:
    """Records passes and decides the status from hardware-visible residuals."""

    def __init__(self, machine: AnalogMachine, b, x_ref, config: Config, target_bits, max_passes):
        self.machine, self.b, self.x_ref = machine, b, x_ref
        self.b_norm = float(np.linalg.norm(b))
        self.tolerance = 2.0 ** -(target_bits + config.scheme.margin_bits)
        self.stall_passes = config.scheme.stall_passes
        self.max_passes = max_passes
        self.history: list[PassRecord] = []
        self.best = math.inf
        self.since_best = 0
        self.x = np.zeros_like(b)

    def residual(self, x: np.ndarray) -> float:
        """``||b - A x|| / ||b||`` through the residual VMM."""
        return float(np.linalg.norm(self.b - self.machine.vmm(x))) / self.b_norm

    def record(self, x: np.ndarray, residual: float, judge_stall: bool = True) -> str | None:
        """Store one pass; return a final status, or None to go on. ``judge_stall=False``
        for passes whose residual is an estimate (inside a Krylov cycle)."""
        self.x = x
        counters = self.machine.counters
        bits = effective_bits(x, self.x_ref) if np.all(np.isfinite(x)) else -math.inf
        self.history.append(PassRecord(bits, residual, counters.inv_solves, counters.vmm_ops))
        if not (np.all(np.isfinite(x)) and math.isfinite(residual)):
            return "diverged"
        if residual <= self.tolerance:
            return "converged"
        if residual < self.best * PROGRESS:
            self.best, self.since_best = residual, 0
        elif judge_stall:
            self.best = min(self.best, residual)
            self.since_best += 1
        if residual > DIVERGED_RESIDUAL:
            return "diverged"
        if self.since_best >= self.stall_passes:
            # no progress for a while: growing well past the best is divergence
            return "diverged" if residual > GROWTH * self.best else "stalled"
        if len(self.history) >= self.max_passes:
            return "max_passes"
        return None


def _single(run: _Run) -> str:
    x = run.machine.inv(run.b)
    return run.record(x, run.residual(x)) or "max_passes"


def _refine(run: _Run) -> str:
    x, r = np.zeros_like(run.b), run.b.copy()
    while True:
        x = x + run.machine.inv(r)
        r = run.b - run.machine.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status


def _repast(run: _Run) -> str:
    """x slicing by residual; each pass's correction is a Neumann series over A_H (INV
    crossbar) and A_L (VMM), one more term per pass up to ``scheme.neumann_terms``."""
    x, r = np.zeros_like(run.b), run.b.copy()
    m = run.machine
    for p in range(10**9):
        y = m.inv(r)
        dx = y
        for _ in range(min(p + 1, m.config.scheme.neumann_terms) - 1):
            y = -m.inv(m.low_vmm(y))
            dx = dx + y
        x = x + dx
        r = run.b - m.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status
    raise AssertionError("unreachable")  # pragma: no cover


def _krylov(run: _Run) -> str:
    """Restarted flexible GMRES, right-preconditioned by the analog INV; one pass = one
    Arnoldi step (one ``inv`` + one ``vmm``); the explicit residual is re-measured at every
    restart and before claiming convergence."""
    m = run.machine
    restart = m.config.scheme.restart
    x = np.zeros_like(run.b)
    r = run.b.copy()
    while True:
        beta = float(np.linalg.norm(r))
        basis = [r / beta]
        directions = []
        h = np.zeros((restart + 1, restart))
        x_step = x
        for j in range(restart):
            z = m.inv(basis[j])
            directions.append(z)
            w = m.vmm(z)
            for _ in range(2):  # classical Gram-Schmidt, twice, for orthogonality
                c = np.array([basis[i] @ w for i in range(j + 1)])
                h[: j + 1, j] += c
                w = w - np.array(basis).T @ c
            h[j + 1, j] = np.linalg.norm(w)
            rhs = np.zeros(j + 2)
            rhs[0] = beta
            y, *_ = np.linalg.lstsq(h[: j + 2, : j + 1], rhs, rcond=None)
            x_step = x + np.array(directions).T @ y
            estimate = float(np.linalg.norm(rhs - h[: j + 2, : j + 1] @ y)) / run.b_norm
            breakdown = h[j + 1, j] <= 1e-14 * beta
            if estimate <= run.tolerance or breakdown or j == restart - 1:
                break  # confirm with the explicit residual below
            status = run.record(x_step, estimate, judge_stall=False)
            if status:
                return status
            basis.append(w / h[j + 1, j])
        x = x_step
        r = run.b - m.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status


_LOOPS = {"single": _single, "repast": _repast, "refine": _refine, "krylov": _krylov}


def solve(
    a: np.ndarray,
    b: np.ndarray,
    config: Config,
    *,
    scheme: str = "refine",
    engine: str = "spice",
    target_bits: float = 16.0,
    max_passes: int = 8,
    seed: int | np.random.SeedSequence = 0,
) -> SolveResult:
    """Solve ``a x = b`` with ``scheme`` on the analog machine.

    Parameters
    ----------
    a, b : numpy.ndarray
        The intended system (float64); ``effective_bits`` is measured against
        ``numpy.linalg.solve(a, b)``.
    config : Config
    scheme : {"single", "repast", "refine", "krylov"}
    engine : {"spice", "nodal"}
    target_bits : float
        Bits the run aims for; sets the residual the loop stops at.
    max_passes : int
        Pass budget.
    seed : int or numpy.random.SeedSequence
        Programming draws.
    """
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if max_passes < 1:
        raise InputError("max_passes must be at least 1")
    start = time.perf_counter()
    a = check_matrix(a, max_size=config.array.max_size)
    b = check_vector(b, a.shape[0])
    x_ref = np.linalg.solve(a, b)
    with AnalogMachine(a, config, engine=engine, seed=seed) as machine:
        run = _Run(machine, b, x_ref, config, target_bits, max_passes)
        status = _LOOPS[scheme](run)
        counters = machine.counters
    final_bits = run.history[-1].effective_bits if run.history else -math.inf
    return SolveResult(
        n=a.shape[0],
        scheme=scheme,
        engine=engine,
        status=status,
        reached_target=bool(final_bits >= target_bits),
        target_bits=target_bits,
        effective_bits=final_bits,
        passes=len(run.history),
        inv_solves=counters.inv_solves,
        vmm_ops=counters.vmm_ops,
        conversions=counters.conversions,
        history=run.history,
        x=run.x,
        wall_time=time.perf_counter() - start,
    )
