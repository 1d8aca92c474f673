import numpy as np
import pytest

from rerinv.config import Config


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


@pytest.fixture
def ideal_config() -> Config:
    """Ideal op-amps, fine quantisation, no variation, no wires."""
    return Config().with_overrides(["opamp.model=ideal", "device.bits=24"])
