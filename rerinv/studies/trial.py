"""One Monte Carlo trial: draw a workload matrix and programming error, run a scheme, report.

This is the unit of work the Monte Carlo driver fans out to processes or a Dask cluster: a
pure function of its arguments (every random draw flows from ``seed``), returning plain data.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from rerinv.config import Config
from rerinv.matrices import kfac_factor, random_rhs
from rerinv.schemes import solve
from rerinv.seeds import spawn


@dataclass
class TrialResult:
    """What one trial produced (all plain Python/numpy data, picklable).

    Attributes
    ----------
    status : str
        ``converged`` | ``max_passes`` | ``stalled`` | ``diverged`` | ``failed``.
    reached_target : bool
    effective_bits : float
        Final bits against the float64 solution of the intended matrix (nan when failed).
    passes, inv_solves, vmm_ops, conversions : int
    history_bits, history_residual : list of float
        Per pass: effective bits and hardware-visible residual norm (relative to ||b||).
    wall_time : float
        Seconds.
    error : str
        The error message when ``status == "failed"``, else "".
    """

    status: str
    reached_target: bool
    effective_bits: float
    passes: int
    inv_solves: int
    vmm_ops: int
    conversions: int
    history_bits: list[float] = field(default_factory=list)
    history_residual: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def run_trial(config: Config, *, seed: int | np.random.SeedSequence) -> TrialResult:
    """Draw a K-FAC-like ``simulation.n x simulation.n`` factor and right-hand side from
    ``seed``, program the arrays from ``seed``, solve as ``config.simulation`` says (scheme,
    engine, target, budget) and return the result.

    A trial that raises inside the solve returns ``status="failed"`` with the message
    (rather than propagating), so one bad trial never kills a Monte Carlo run.
    """
    start = time.perf_counter()
    workload_seed, device_seed = spawn(seed, 2)
    try:
        a, b = workload_matrix(config, config.simulation.n, workload_seed)
        result = solve(a, b, config, seed=device_seed)
    except Exception as exc:  # a failed trial is data, not a crash
        return TrialResult(
            status="failed",
            reached_target=False,
            effective_bits=math.nan,
            passes=0,
            inv_solves=0,
            vmm_ops=0,
            conversions=0,
            wall_time=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
        )
    return TrialResult(
        status=result.status,
        reached_target=result.reached_target,
        effective_bits=result.effective_bits,
        passes=result.passes,
        inv_solves=result.inv_solves,
        vmm_ops=result.vmm_ops,
        conversions=result.conversions,
        history_bits=[h.effective_bits for h in result.history],
        history_residual=[h.residual_norm for h in result.history],
        wall_time=time.perf_counter() - start,
    )


def workload_matrix(
    config: Config, n: int, seed: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """The K-FAC-like factor and right-hand side a trial solves (``config.workload``)."""
    w = config.workload
    matrix_seed, rhs_seed = seed.spawn(2)
    if not w.fresh_matrix:
        matrix_seed = np.random.SeedSequence(seed.entropy)  # one matrix per master seed
    rng = np.random.default_rng(matrix_seed)
    a = kfac_factor(
        n, seed=rng, samples=max(1, round(w.samples_per_n * n)), spread=w.spread, damping=w.damping
    )
    return a, random_rhs(n, seed=np.random.default_rng(rhs_seed))
