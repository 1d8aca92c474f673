"""Diagonal scaling before mapping: ``diag(r) A diag(c)`` suits the cells, applied in digital at
full precision (so exact factors cost nothing). Jacobi scaling for symmetric matrices and for
row- and column-scaled symmetric ones (the Jacobi scaling of the symmetric matrix behind them,
so the input's own row and column scaling changes nothing), Ruiz otherwise (from rows
normalised first, so a row scaling changes nothing)."""

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


#: A row- and column-scaled symmetric matrix ``D1 S D2`` gets Jacobi scaling only when its
#: column factors spread at most this much more than those of Ruiz sweeps (started from the
#: rows, which ignore a row scaling of the input, or the columns, which follow a column
#: scaling): a matrix that is symmetric only up to a wildly varying diagonal similarity of its
#: own (convection-diffusion, whose entries Ruiz leaves alone) would otherwise get unknowns
#: ``y = x / c`` spread over many decades, which no fixed-point VMM or ADC holds.
JACOBI_SPREAD = 2.0**8


def _jacobi_factors(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Jacobi scaling of the symmetric matrix behind ``a`` (see :func:`symmetrising_ratios`):
    ``r, c`` with ``diag(r) a diag(c)`` symmetric with a unit diagonal; None when ``a`` has no
    such form, has a non-positive diagonal entry, or its column factors spread too far
    (:data:`JACOBI_SPREAD`)."""
    diagonal = np.diag(a)
    if not np.all(diagonal > 0):
        return None
    t = symmetrising_ratios(a)
    if t is None:
        return None
    root = np.sqrt(diagonal)
    r, c = 1.0 / (root * np.sqrt(t)), np.sqrt(t) / root
    if not np.all(t == 1.0):
        spreads = [np.max(f) / np.min(f) for f in (
            _ruiz(np.abs(a), rows_first=True)[1], _ruiz(np.abs(a), columns_first=True)[1]
        )]  # fmt: skip
        if np.max(c) / np.min(c) > JACOBI_SPREAD * max(spreads):
            return None
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
      (``iterations`` Ruiz sweeps, exact factors), started from rows divided by their largest
      entry, so that scaling the input's rows changes nothing;
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
    # rows first divided by their largest entry: what a row scaling of the input did is gone
    # before Ruiz starts (the columns' own scale is the unknowns' scale, which Ruiz's column
    # steps follow)
    r, c = _ruiz(magnitude, iterations, rows_first=method == "ruiz")
    if method == "ruiz_pow2":
        return 2.0 ** np.round(np.log2(r)), 2.0 ** np.round(np.log2(c))
    return r, c


def _ruiz(
    magnitude: np.ndarray,
    iterations: int = 20,
    *,
    rows_first: bool = False,
    columns_first: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Ruiz sweeps on ``|A|``, from rows (or columns) first divided by their largest entry."""
    r = 1.0 / magnitude.max(axis=1) if rows_first else np.ones(magnitude.shape[0])
    c = 1.0 / magnitude.max(axis=0) if columns_first else np.ones(magnitude.shape[1])
    for _ in range(iterations):
        scaled = r[:, None] * magnitude * c[None, :]
        row_max, col_max = scaled.max(axis=1), scaled.max(axis=0)
        r /= np.sqrt(row_max)
        c /= np.sqrt(col_max)
    return r, c
