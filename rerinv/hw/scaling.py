"""Diagonal scaling before mapping: ``diag(r) A diag(c)`` suits the cells, applied in digital at
full precision (so exact factors cost nothing). Jacobi scaling for symmetric matrices and for
row- and column-scaled symmetric ones (the Jacobi scaling of the symmetric matrix behind them,
so the input's own row and column scaling changes nothing), Ruiz otherwise (from the
log-balanced matrix, the same for any row and column scaling). Either way the scaled matrix
does not depend on how the input's rows and columns were scaled; what does is how far the
column factors spread the unknowns, which the residual VMM follows
(:meth:`rerinv.analog.machine.AnalogMachine.follow_unknowns`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from rerinv.errors import InputError

#: Diagonal scaling methods, applied in digital at full precision before mapping.
SCALINGS = ("none", "jacobi", "ruiz", "ruiz_pow2")


def is_symmetric(a: np.ndarray) -> bool:
    """True when ``a`` equals its transpose to 1e-12 of its largest entry."""
    a = np.asarray(a, dtype=float)
    return bool(np.allclose(a, a.T, rtol=0.0, atol=1e-12 * float(np.max(np.abs(a)))))


def choose_scaling(a: np.ndarray) -> str:
    """``jacobi`` for a matrix that is a symmetric matrix with a positive diagonal up to row
    and column scaling (:func:`symmetrising_ratios`), else ``ruiz``."""
    a = np.asarray(a, dtype=float)
    return "jacobi" if _jacobi_factors(a) is not None else "ruiz"


def symmetrising_ratios(a: np.ndarray) -> np.ndarray | None:
    """``t`` with ``a_ij / a_ji = t_i / t_j`` on every non-zero pair, when ``a = D1 S D2`` with
    ``S`` symmetric and ``D1, D2`` positive diagonal (``t = d1 / d2`` up to a constant); ones for
    a symmetric ``a``; None when ``a`` is not of that form (to 1e-9 in the ratios)."""
    a = np.asarray(a, dtype=float)
    if is_symmetric(a):
        return np.ones(a.shape[0])
    nonzero = a != 0
    if not np.array_equal(nonzero, nonzero.T):
        return None
    i, j = np.nonzero(np.triu(nonzero, 1))
    if i.size == 0 or np.any(np.sign(a[i, j]) != np.sign(a[j, i])):
        return None
    # log t_i - log t_j = log(a_ij / a_ji) on the graph of the non-zero pattern, least squares
    ratio = np.log(a[i, j] / a[j, i])
    edges = i.size
    incidence = scipy.sparse.csr_matrix(
        (np.r_[np.ones(edges), -np.ones(edges)], (np.r_[range(edges), range(edges)], np.r_[i, j])),
        shape=(edges, a.shape[0]),
    )
    log_t = scipy.sparse.linalg.lsqr(incidence, ratio, atol=1e-15, btol=1e-15, iter_lim=10_000)[0]
    if np.max(np.abs(incidence @ log_t - ratio)) > 1e-9 * max(1.0, np.max(np.abs(ratio))):
        return None
    return np.exp(log_t - np.mean(log_t))


def _jacobi_factors(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Jacobi scaling of the symmetric matrix behind ``a`` (see :func:`symmetrising_ratios`):
    ``r, c`` with ``diag(r) a diag(c)`` symmetric with a unit diagonal; None when ``a`` has no
    such form or has a non-positive diagonal entry."""
    diagonal = np.diag(a)
    if not np.all(diagonal > 0):
        return None
    t = symmetrising_ratios(a)
    if t is None:
        return None
    root = np.sqrt(diagonal)
    r, c = 1.0 / (root * np.sqrt(t)), np.sqrt(t) / root
    return r, c


def equilibrate(
    a: np.ndarray, method: str = "ruiz", iterations: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal scaling factors ``r, c`` so that ``diag(r) A diag(c)`` suits the cells.

    - ``jacobi``: ``r = c = 1 / sqrt(diag(A))`` for a symmetric matrix with a positive
      diagonal: the scaled matrix keeps its symmetry and has a unit diagonal. A row- and
      column-scaled symmetric matrix ``D1 S D2`` gets the factors that give the same scaled
      matrix as ``S`` would (so scaling the input's rows or columns changes nothing);
    - ``ruiz``: every row and column of the scaled matrix has max-abs entry close to 1
      (``iterations`` Ruiz sweeps, exact factors), started from the log-balanced matrix, so
      that scaling the input's rows or columns changes nothing;
    - ``ruiz_pow2``: the same rounded to powers of two (the earlier default; the rounding can
      leave the diagonal spread over 4x, which can ruin refinement on stiff matrices);
    - ``none``: ones.

    The scaling is done in digital at full precision, so exact factors cost nothing.
    """
    a = np.asarray(a, dtype=float)
    if method not in SCALINGS:
        raise InputError(f"unknown scaling {method!r}; choose one of {', '.join(SCALINGS)}")
    if method == "none":
        return np.ones(a.shape[0]), np.ones(a.shape[1])
    if method == "jacobi":
        factors = _jacobi_factors(a)
        if factors is None:
            raise InputError(
                "jacobi scaling needs a symmetric matrix (up to row and column scaling) with a "
                "positive diagonal; use scheme.scaling=ruiz"
            )
        return factors
    magnitude = np.abs(a)
    if np.any(magnitude.max(axis=1) == 0) or np.any(magnitude.max(axis=0) == 0):
        raise InputError("cannot equilibrate a matrix with an all-zero row or column")
    r, c = _ruiz(magnitude, iterations)
    if method == "ruiz_pow2":
        return 2.0 ** np.round(np.log2(r)), 2.0 ** np.round(np.log2(c))
    return r, c


def _ruiz(magnitude: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Ruiz max-norm sweeps on ``|A|``, started from :func:`_log_balance`'s canonical scaling,
    so that the scaled matrix is the same for any row and column scaling of the input (the
    max-norm scaling alone is not unique: sweeps from different starts stop in different
    places). When that balance would spread the unknowns beyond :data:`UNKNOWNS_SPREAD`, the
    sweeps start from rows divided by their largest entry instead: a row scaling of the input
    still changes nothing, a column scaling a little."""
    r, c = _log_balance(magnitude)
    if np.max(c) / np.min(c) > UNKNOWNS_SPREAD:
        r, c = 1.0 / magnitude.max(axis=1), np.ones(magnitude.shape[1])
    for _ in range(iterations):
        scaled = r[:, None] * magnitude * c[None, :]
        r /= np.sqrt(scaled.max(axis=1))
        c /= np.sqrt(scaled.max(axis=0))
    return r, c


#: Column factors spread wider than this (float64's 52 bits, the widest residual) make the
#: canonical balance unusable: the unknowns ``y = x / c`` of a matrix with nearly vanishing
#: entries would span more than any residual VMM resolves.
UNKNOWNS_SPREAD = 2.0**52


def _log_balance(magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``r, c`` minimising the spread of ``log |r_i a_ij c_j|`` over the non-zero entries
    (least squares). The scaled matrix is the projection of ``log |A|`` away from every row and
    column scaling, so it is the same, to the solver's precision, for any row and column scaling
    of the input, whatever the sparsity (Sinkhorn-Knopp's limit is canonical too, but takes
    thousands of sweeps, or never arrives, on matrices without total support)."""
    i, j = np.nonzero(magnitude)
    entries, rows = i.size, magnitude.shape[0]
    incidence = scipy.sparse.csr_matrix(
        (np.ones(2 * entries), (np.r_[range(entries), range(entries)], np.r_[i, rows + j])),
        shape=(entries, rows + magnitude.shape[1]),
    )
    log_scale = scipy.sparse.linalg.lsqr(
        incidence, -np.log(magnitude[i, j]), atol=1e-14, btol=1e-14, iter_lim=20_000
    )[0]
    shift = np.mean(log_scale[:rows]) - np.mean(log_scale[rows:])  # r and c of the same size
    return np.exp(log_scale[:rows] - shift / 2), np.exp(log_scale[rows:] + shift / 2)
