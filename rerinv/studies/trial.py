"""One Monte Carlo trial: draw a workload matrix and programming error, run a scheme, report.

This is the unit of work the Monte Carlo driver fans out to processes or a Dask cluster: a
pure function of its arguments (every random draw flows from ``seed``), returning plain data.
"""

from __future__ import annotations

import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.schemes import solve
from rerinv.seeds import spawn
from rerinv.studies.records import result_class

#: What one trial produced: one attribute per result field of
#: :data:`rerinv.studies.records.RESULT_FIELDS` (status, reached_target, effective_bits,
#: passes, inv_solves, vmm_ops, conversions, history_bits, history_residual, error), plus
#: ``to_dict()`` and ``TrialResult.failed(message)``. The driver times the trial itself.
TrialResult = result_class("TrialResult", __name__)


def run_trial(config: Config, *, seed: int | np.random.SeedSequence) -> TrialResult:
    """Draw a K-FAC-like ``simulation.n x simulation.n`` factor and right-hand side from
    ``seed``, program the arrays from ``seed`` (and, with transistor-level mismatch, the
    amplifiers' devices: :func:`with_amplifier_seed`), solve as ``config.simulation`` says
    (scheme, engine, target, budget) and return the result.

    A trial that raises inside the solve returns ``status="failed"`` with the message
    (rather than propagating), so one bad trial never kills a Monte Carlo run.
    """
    workload_seed, device_seed, amplifier_seed = spawn(seed, 3)
    config = with_amplifier_seed(config, amplifier_seed)
    try:
        a, b = workload_matrix(config, config.simulation.n, workload_seed)
        result = solve(a, b, config, seed=device_seed)
    except Exception as exc:  # a failed trial is data, not a crash
        return TrialResult.failed(f"{type(exc).__name__}: {exc}")
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
    )


def with_amplifier_seed(config: Config, seed: np.random.SeedSequence) -> Config:
    """``config`` with ``opamp.mismatch_seed`` drawn from ``seed`` when the transistor-level
    amplifiers draw mismatch (``opamp.model = sky130``, ``opamp.mismatch``): every trial is
    another chip, the same one for the same trial seed. Other configurations are returned
    unchanged (their trials draw exactly what they drew before)."""
    if config.opamp.model != "sky130" or not config.opamp.mismatch:
        return config
    value = int(seed.generate_state(1, np.uint64)[0] >> np.uint64(1))  # in [0, 2**63)
    return config.with_values("opamp", mismatch_seed=value)


def check_trial_config(config: Config) -> None:
    """Refuse a configuration every trial of :func:`run_trial` would fail on (the Monte Carlo
    driver calls it for each sweep point before the first trial)."""
    sim = config.simulation
    if sim.scheme == "repast" and sim.n > config.array.max_size:
        raise InputError(
            f"scheme repast needs the whole matrix on one INV crossbar, but simulation.n = "
            f"{sim.n} > array.max_size = {config.array.max_size}; use scheme auto, refine or "
            "krylov (block preconditioner), or raise array.max_size"
        )


run_trial.check_config = check_trial_config  # type: ignore[attr-defined]


def workload_matrix(
    config: Config, n: int, seed: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """The K-FAC-like factor and right-hand side a trial solves (``config.workload``)."""
    w = config.workload
    matrix_seed, rhs_seed = spawn(seed, 2)
    if not w.fresh_matrix:
        matrix_seed = np.random.SeedSequence(seed.entropy)  # one matrix per master seed
    rng = np.random.default_rng(matrix_seed)
    a = wishart_factor(
        n, seed=rng, samples=max(1, round(w.samples_per_n * n)), spread=w.spread, damping=w.damping
    )
    return a, random_rhs(n, seed=np.random.default_rng(rhs_seed))
