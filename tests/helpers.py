"""Shared test helpers: small matrices, error measures and one-line solves."""

import numpy as np

from rerinv.config import Config
from rerinv.schemes import SolveResult, solve


def spd(n: int, seed: int = 0) -> np.ndarray:
    """SPD test matrix with negative off-diagonal entries."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, n))
    return q @ q.T / n + np.eye(n)


def nonsymmetric(n: int, seed: int = 0) -> np.ndarray:
    """Non-symmetric, diagonally dominant (hence stable) matrix with negative entries."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (n, n))
    np.fill_diagonal(a, np.abs(a).sum(axis=1) + 0.5)
    return a


def rel_err(x, ref) -> float:
    return float(np.max(np.abs(np.asarray(x) - ref)) / np.max(np.abs(ref)))


def solve_with(a, b, config: Config, *, seed=0, **simulation) -> SolveResult:
    """``schemes.solve`` with ``simulation.*`` values given as keywords
    (``scheme="krylov", engine="nodal", max_passes=20``)."""
    return solve(a, b, config.with_values("simulation", **simulation), seed=seed)
