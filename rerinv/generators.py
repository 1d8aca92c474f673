"""Generated matrices: K-FAC-like factors (the diagonal-dominant Wishart generator of the
Monte Carlo workloads, and the correlated generator whose spectrum is like that of factors
captured from training), classic test matrices, right-hand sides. Every draw from an explicit
seed. Re-exported by :mod:`rerinv.matrices`."""

from __future__ import annotations

import numpy as np

from rerinv.errors import InputError

CLASSIC_MATRICES = (
    "identity",
    "laplacian_1d",
    "diag_dominant",
    "random_spd",
    "nonsymmetric_stable",
)


def _positive_int(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)  # Haar-distributed


def _factor_sizes(n, samples, damping) -> tuple[int, int]:
    """``(n, m)`` of a generated factor (``m`` samples, default ``8 n``), checked."""
    n = _positive_int(n, "n")
    m = 8 * n if samples is None else _positive_int(samples, "samples")
    if not damping >= 0.0 or (damping == 0.0 and m < n):
        raise InputError(f"damping must be >= 0, and > 0 when samples < n; got {damping!r}")
    return n, m


def _damped_gram(x: np.ndarray, damping: float) -> np.ndarray:
    """``X^T X / m + damping * mean(diag) * I``, exactly symmetric."""
    a = x.T @ x / x.shape[0]
    a += damping * np.mean(np.diag(a)) * np.eye(a.shape[0])
    return (a + a.T) / 2


def correlated_factor(
    n: int,
    *,
    seed: int | np.random.Generator,
    samples: int | None = None,
    decay: float = 1.5,
    damping: float = 1e-2,
) -> np.ndarray:
    """A K-FAC-like factor of correlated activations: ``A = X^T X / m + damping * tr/n * I``
    with the rows of ``X`` drawn from a covariance whose eigenvalues fall as ``k**-decay``
    along random orthogonal directions (a smooth, decaying spectrum that diagonal scaling does
    not remove), damped at K-FAC's usual scale (``damping`` times the mean eigenvalue).

    With the defaults its Jacobi-scaled spectrum is like that of the factors captured from a
    64-512-256-10 tanh MLP trained on digits (``tests/data/kfac_factors``, checked in
    ``tests/test_precision_frontier.py``): condition number 3.9e3 at ``n = 256`` and 9.3e3 at
    ``n = 512`` (seed 0; captured: 1.5e3 to 3.7e4), scaled eigenvalues from about 0.01 to
    75-150 (captured: 0.002-0.03 to 28-256).

    Parameters
    ----------
    n : int
        Size of the factor.
    seed : int or numpy.random.Generator
        Random source, passed to :func:`numpy.random.default_rng`.
    samples : int, optional
        Rows ``m`` of ``X`` (default ``8 * n``).
    decay : float
        Power-law exponent of the activation spectrum (>= 0; 0 is white).
    damping : float
        Tikhonov damping relative to the mean diagonal (>= 0; > 0 if ``samples < n``).
    """
    n, m = _factor_sizes(n, samples, damping)
    if not decay >= 0.0:
        raise InputError(f"decay must be >= 0 (power-law exponent), got {decay!r}")
    rng = np.random.default_rng(seed)
    scales = np.arange(1, n + 1, dtype=float) ** (-decay / 2)
    x = (rng.standard_normal((m, n)) * scales) @ _orthogonal(n, rng).T
    return _damped_gram(x, damping)


def wishart_factor(
    n: int,
    *,
    seed: int | np.random.Generator,
    samples: int | None = None,
    spread: float = 1e2,
    damping: float = 1e-3,
) -> np.ndarray:
    """A damped, mildly correlated, diagonal-dominant Wishart matrix (rerinv's Monte Carlo
    workloads). Not what real K-FAC factors look like: its ill-conditioning comes from unequal
    column variances, which Jacobi scaling removes (real factors keep theirs:
    :func:`correlated_factor`, and the factors captured in ``tests/data/kfac_factors``).

    ``A = X^T X / m + damping * mean(diag(X^T X / m)) * I`` with ``X`` an ``m x n`` Gaussian
    matrix whose column standard deviations are log-spaced from 1 to ``sqrt(spread)`` (randomly
    permuted), mixed with a random orthogonal rotation, ``X <- X (0.75 I + 0.25 Q)``.
    The result is symmetric positive definite. Its condition number grows with ``spread`` and
    shrinks with ``damping``; with the defaults it is about 2e2 at ``n = 32`` (measured:
    208 for seed 0, 165 to 238 over seeds 0-9; 9.2 with ``spread=1``).

    Parameters
    ----------
    n : int
        Size of the factor.
    seed : int or numpy.random.Generator
        Random source, passed to :func:`numpy.random.default_rng`.
    samples : int, optional
        Rows ``m`` of ``X`` (default ``8 * n``: a K-FAC factor averages over a batch of many
        more samples than the layer is wide).
    spread : float
        Ratio of the largest to the smallest column variance (>= 1).
    damping : float
        Tikhonov damping relative to the mean diagonal (>= 0; > 0 if ``samples < n``).
    """
    n, m = _factor_sizes(n, samples, damping)
    if not spread >= 1.0:
        raise InputError(f"spread must be >= 1 (ratio of column variances), got {spread!r}")
    rng = np.random.default_rng(seed)
    scales = rng.permutation(np.logspace(0.0, 0.5 * np.log10(spread), n))
    x = rng.standard_normal((m, n)) * scales
    x = x @ (0.75 * np.eye(n) + 0.25 * _orthogonal(n, rng))
    return _damped_gram(x, damping)


def classic_matrix(name: str, n: int, *, seed: int | np.random.Generator = 0) -> np.ndarray:
    """A classic test matrix; every one has eigenvalues with positive real parts.

    Parameters
    ----------
    name : str
        One of :data:`CLASSIC_MATRICES`:

        - ``"identity"``
        - ``"laplacian_1d"``: tridiagonal (-1, 2, -1) plus ``1e-2 * I`` so that the condition
          number stays below 401 for every ``n`` (pure Dirichlet Laplacian grows as ``n**2``).
        - ``"diag_dominant"``: random nonsymmetric, strictly diagonally dominant rows with a
          positive diagonal (Gershgorin: stable).
        - ``"random_spd"``: ``Q diag(logspace(0, -2, n)) Q^T``, condition number 100.
        - ``"nonsymmetric_stable"``: random Gaussian matrix shifted by a multiple of ``I`` so that
          every eigenvalue has real part >= 0.1 * spectral radius (checked).
    n : int
        Size.
    seed : int or numpy.random.Generator
        Random source for the random ones.

    Raises InputError for an unknown name.
    """
    n = _positive_int(n, "n")
    rng = np.random.default_rng(seed)
    if name == "identity":
        return np.eye(n)
    if name == "laplacian_1d":
        off = -np.ones(n - 1)
        return np.diag(np.full(n, 2.0 + 1e-2)) + np.diag(off, 1) + np.diag(off, -1)
    if name == "diag_dominant":
        a = rng.uniform(-1.0, 1.0, (n, n))
        np.fill_diagonal(a, 0.0)
        np.fill_diagonal(a, np.abs(a).sum(axis=1) + rng.uniform(0.5, 1.0, n))
        return a
    if name == "random_spd":
        q = _orthogonal(n, rng)
        a = (q * np.logspace(0.0, -2.0, n)) @ q.T
        return (a + a.T) / 2
    if name == "nonsymmetric_stable":
        a = rng.standard_normal((n, n)) / np.sqrt(n)
        eig = np.linalg.eigvals(a)
        # min Re + s >= 0.11 (rho + s) >= 0.11 * rho(shifted): margin over the 0.1 promised
        a += max((0.11 * np.max(np.abs(eig)) - np.min(eig.real)) / 0.89, 0.0) * np.eye(n)
        eig = np.linalg.eigvals(a)
        if np.min(eig.real) <= 0 or np.min(eig.real) < 0.1 * np.max(np.abs(eig)):
            raise RuntimeError("internal error: nonsymmetric_stable shift failed; please report")
        return a
    raise InputError(
        f"unknown classic matrix {name!r}; choose one of {', '.join(CLASSIC_MATRICES)}"
    )


def random_rhs(n: int, *, seed: int | np.random.Generator) -> np.ndarray:
    """A standard-normal right-hand side of length ``n`` (seed as in :func:`wishart_factor`)."""
    return np.random.default_rng(seed).standard_normal(_positive_int(n, "n"))
