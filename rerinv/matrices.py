"""Matrices and vectors: loading (``.npy``, ``.csv``, ``.txt``, ``.mtx``), validation, workloads.

The ``check_*`` functions return clean float64 copies or raise :class:`~rerinv.errors.InputError`
saying what is wrong and how to fix it. The generators (explicit ``seed``, no global RNG) give
K-FAC-like Kronecker factors and classic matrices whose eigenvalues all have positive real parts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse

from rerinv.errors import InputError, UnstableMatrixError
from rerinv.generators import (  # the generators, re-exported where they always were
    CLASSIC_MATRICES,
    classic_matrix,
    correlated_factor,
    random_rhs,
    wishart_factor,
)

__all__ = [
    "CLASSIC_MATRICES",
    "SINGULAR_CONDITION",
    "check_matrix",
    "check_nonsingular",
    "check_stable",
    "check_vector",
    "classic_matrix",
    "condition_number",
    "correlated_factor",
    "load_matrix",
    "load_matrix_set",
    "load_vector",
    "random_rhs",
    "wishart_factor",
]

SUPPORTED_FORMATS = (".npy", ".csv", ".txt", ".mtx")
_FORMATS = "supported formats: .npy, .csv (comma separated), .txt (whitespace or comma), .mtx"


def _read(path: Path, suffix: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".mtx":
        data = scipy.io.mmread(path)
        return data.toarray() if scipy.sparse.issparse(data) else np.asarray(data)
    lines = [ln for ln in path.read_text().splitlines() if ln.split("#")[0].strip()]
    if not lines:
        return np.empty(0)
    comma = suffix == ".csv" or "," in lines[0].split("#")[0]
    return np.loadtxt(path, delimiter="," if comma else None, dtype=np.float64)


def load_matrix(path: str | os.PathLike) -> np.ndarray:
    """Load a matrix (or a vector) from a file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.csv`` (comma separated), ``.txt`` (whitespace or comma separated, detected
        from the first data line; ``#`` starts a comment) or ``.mtx`` (Matrix Market, made dense).

    Returns
    -------
    numpy.ndarray
        float64; 2-D for a matrix, 1-D for a text file of one row or one column.

    Raises
    ------
    InputError
        Unknown extension, missing file, or content that is not a real numeric array.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise InputError(f"cannot load {str(path)!r}: unknown extension {suffix!r}; {_FORMATS}")
    if not path.is_file():  # never open a FIFO or device: the read could block forever
        what = "not a regular file (a folder, FIFO or device)" if path.exists() else "no such file"
        raise InputError(f"cannot load {str(path)!r}: {what}; check the path ({_FORMATS})")
    try:
        data = _read(path, suffix)
    except Exception as exc:  # numpy/scipy raise many types for bad content
        raise InputError(
            f"cannot read {str(path)!r} as {suffix} ({type(exc).__name__}: {exc}); {_FORMATS}"
        ) from exc
    data = np.atleast_1d(_as_float(data, repr(str(path))))
    if data.size == 0:
        raise InputError(f"{str(path)!r} holds no numbers; write the matrix into it ({_FORMATS})")
    return data


def load_vector(path: str | os.PathLike) -> np.ndarray:
    """Load a 1-D vector like :func:`load_matrix`; an ``N x 1`` or ``1 x N`` array is flattened.

    Raises InputError as :func:`load_matrix` does, or if the file holds a genuine matrix.
    """
    data = load_matrix(path)
    if data.ndim == 2 and 1 in data.shape:
        data = data.ravel()
    if data.ndim != 1:
        raise InputError(
            f"{str(path)!r} holds an array of shape {data.shape}, not a vector; "
            "store one row or one column of numbers"
        )
    return data


def _non_finite(a: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{name} has {int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} inf entries "
            f"(first at index {first} = {a[first]}); replace them with finite numbers"
        )


def _as_float(a, name: str) -> np.ndarray:
    try:
        complex_ = np.iscomplexobj(a)
        out = None if complex_ else np.array(a, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not a real numeric array ({exc}); give numbers") from exc
    if complex_:
        raise InputError(f"{name} is complex; rerinv solves real systems only")
    return out


#: The largest entry of a matrix rerinv maps onto conductances must lie in this range.
SCALE_LIMITS = (1e-150, 1e150)


def check_matrix(a, *, max_size: int | None = None, name: str = "matrix") -> np.ndarray:
    """Validate a square matrix and return a float64 copy.

    Parameters
    ----------
    a : array_like
        The matrix.
    max_size : int, optional
        Largest ``N`` one crossbar holds (``array.max_size`` in the configuration).
    name : str
        What to call the matrix in error messages.

    Raises InputError if ``a`` is not 2-D, empty, not square, holds NaN or inf, has its
    largest entry outside :data:`SCALE_LIMITS`, or exceeds ``max_size``.
    """
    a = _as_float(a, name)
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got {a.ndim}-D with shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{name} is empty (shape {a.shape}); give at least a 1 x 1 matrix")
    if a.shape[0] != a.shape[1]:
        raise InputError(f"{name} must be square, got shape {a.shape}; INV solves N x N systems")
    _non_finite(a, name)
    peak = float(np.max(np.abs(a)))
    if peak and not SCALE_LIMITS[0] <= peak <= SCALE_LIMITS[1]:
        raise InputError(
            f"{name}'s largest entry is {peak:.3g}: conductances, gains and output factors "
            f"are planned from it and leave float64 beyond [{SCALE_LIMITS[0]:.0e}, "
            f"{SCALE_LIMITS[1]:.0e}]; scale the matrix (the solution scales with it)"
        )
    if max_size is not None and a.shape[0] > max_size:
        raise InputError(
            f"{name} is {a.shape[0]} x {a.shape[0]}, larger than array.max_size = {max_size}; "
            "block mode is not available for single crossbar solves: raise array.max_size "
            "(e.g. --set array.max_size=N) or pass a smaller matrix"
        )
    return a


def check_vector(b, n: int, *, name: str = "rhs") -> np.ndarray:
    """Validate a length-``n`` vector and return a float64 copy; InputError if its shape is not
    ``(n,)`` or it holds NaN or inf."""
    b = _as_float(b, name)
    if b.shape != (n,):
        raise InputError(
            f"{name} must have shape ({n},) to match the {n} x {n} matrix, got shape {b.shape}; "
            "pass a 1-D vector (flatten column vectors with numpy.ravel)"
        )
    _non_finite(b, name)
    return b


#: A matrix with a 2-norm condition number above this is numerically singular in float64.
SINGULAR_CONDITION = 1e15


def check_nonsingular(a, *, name: str = "matrix") -> float:
    """Return the 2-norm condition number of ``a`` with its rows, then its columns, divided by
    their largest entry (a row or column scaling of the input is not singularity); InputError
    when it is singular or numerically singular (above :data:`SINGULAR_CONDITION`)."""
    a = check_matrix(a, name=name)
    magnitude = np.abs(a)
    rows = magnitude.max(axis=1)
    cols = (magnitude / np.where(rows > 0, rows, 1.0)[:, None]).max(axis=0)
    with np.errstate(all="ignore"):
        if np.all(rows > 0) and np.all(cols > 0):
            cond = float(np.linalg.cond(a / rows[:, None] / cols[None, :]))
        else:
            cond = math.inf  # an all-zero row or column
    if not cond <= SINGULAR_CONDITION:
        raise InputError(
            f"{name} is singular (condition number {cond:.3g} > {SINGULAR_CONDITION:g}): "
            "A x = b has no unique solution; regularise it (e.g. add a small multiple of the "
            "identity)"
        )
    return cond


def check_stable(a, *, name: str = "matrix") -> None:
    """Refuse matrices the closed-loop INV circuit cannot solve.

    Raises
    ------
    InputError
        The matrix is singular (2-norm condition number above 1e15), or fails :func:`check_matrix`.
    UnstableMatrixError
        An eigenvalue has real part ``<= 1e-12 * max|eig|``.
    """
    a = check_matrix(a, name=name)
    check_nonsingular(a, name=name)
    eig = np.linalg.eigvals(a)
    bad = eig.real <= 1e-12 * np.max(np.abs(eig))
    if bad.any():
        worst = eig[np.argmin(eig.real)]
        raise UnstableMatrixError(
            f"{name} has {int(bad.sum())} eigenvalue(s) without a positive real part "
            f"(e.g. {worst:.6g}): the closed-loop INV circuit is stable only if every eigenvalue "
            "of the mapped matrix has a positive real part; its outputs would run to the rails. "
            "The generalised-inverse circuit holds any non-singular matrix stably: "
            "--set scheme.circuit=auto (or ginv)"
        )


def condition_number(a) -> float:
    """2-norm condition number ``sigma_max / sigma_min`` (``inf`` for a singular matrix)."""
    return float(np.linalg.cond(check_matrix(a)))


#: Format attribute of a matrix-set file (HDF5 group ``factors``: one dataset per matrix,
#: its metadata as attributes), as ``rerinv train`` captures K-FAC factors.
MATRIX_SET_FORMAT = "rerinv-factor-set"


def load_matrix_set(path: str | os.PathLike) -> list[tuple[str, np.ndarray, dict]]:
    """The ``(name, matrix, metadata)`` items of a matrix-set file, sorted by name.

    Raises InputError if the file is missing or is not a matrix set.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such matrix-set file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({exc})") from exc
    with f:
        if f.attrs.get("format") != MATRIX_SET_FORMAT or "factors" not in f:
            raise InputError(f"{path} is not a rerinv matrix set (format attribute)")
        items = []
        for name in sorted(f["factors"]):
            dataset = f["factors"][name]
            metadata = {k: v.item() if isinstance(v, np.generic) else v
                        for k, v in dataset.attrs.items()}  # fmt: skip
            items.append((name, np.asarray(dataset[...], dtype=np.float64), metadata))
    return items
