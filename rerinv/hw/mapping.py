"""Matrix -> conductances, and the programmed conductances a real array ends up with.

A matrix ``A`` (optionally equilibrated to ``diag(r) A diag(c)``) maps onto a differential pair
of arrays: ``G+ - G- = scale * A_q``, where ``A_q`` is ``A`` quantised to the cell levels. A cell
holds one of ``2**bits`` levels evenly spaced in ``[g_min, g_max]``; an entry that is zero, or
of the other sign, sits at ``g_min`` in that array so that the pair cancels.

:func:`program_conductances` then draws what the arrays really hold (programming error, stuck
cells) from an explicit seed. :meth:`CrossbarArrays.implemented_matrix` tells which matrix the
arrays implement, in the coordinates of the user's matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rerinv.config import DeviceConfig
from rerinv.errors import InputError


@dataclass(frozen=True, eq=False)
class CrossbarArrays:
    """A matrix held as a differential pair of conductance arrays.

    Attributes
    ----------
    g_pos, g_neg : numpy.ndarray
        Conductances of the positive and negative arrays (S), shape (N, N).
    scale : float
        Siemens per unit matrix entry:
        ``g_pos - g_neg = scale * diag(row_scale) A diag(col_scale)``.
    row_scale, col_scale : numpy.ndarray
        Diagonal scaling factors (all ones when scaling is off).
    scaling : str
        The scaling method that produced them (:data:`SCALINGS`).
    shift : float
        Diagonal shift added before quantisation (relative to the largest scaled entry);
        0 when the arrays hold the matrix itself.
    """

    g_pos: np.ndarray
    g_neg: np.ndarray
    scale: float
    row_scale: np.ndarray
    col_scale: np.ndarray
    scaling: str = "none"
    shift: float = 0.0

    @property
    def n(self) -> int:
        return self.g_pos.shape[0]

    @property
    def conductance_matrix(self) -> np.ndarray:
        """``G = g_pos - g_neg`` (S): the matrix the circuit sees."""
        return self.g_pos - self.g_neg

    def implemented_matrix(self) -> np.ndarray:
        """The matrix these arrays implement, in the user's coordinates (undoes scale and
        equilibration): ``diag(1/r) (G / scale) diag(1/c)``."""
        mapped = self.conductance_matrix / self.scale
        return mapped / self.row_scale[:, None] / self.col_scale[None, :]


#: Diagonal scaling methods, applied in digital at full precision before mapping.
SCALINGS = ("none", "jacobi", "ruiz", "ruiz_pow2")


def is_symmetric(a: np.ndarray) -> bool:
    """True when ``a`` equals its transpose to 1e-12 of its largest entry."""
    a = np.asarray(a, dtype=float)
    return bool(np.allclose(a, a.T, rtol=0.0, atol=1e-12 * float(np.max(np.abs(a)))))


def choose_scaling(a: np.ndarray) -> str:
    """``jacobi`` for a symmetric matrix with a positive diagonal, else ``ruiz``."""
    a = np.asarray(a, dtype=float)
    return "jacobi" if is_symmetric(a) and np.all(np.diag(a) > 0) else "ruiz"


def equilibrate(
    a: np.ndarray, method: str = "ruiz", iterations: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal scaling factors ``r, c`` so that ``diag(r) A diag(c)`` suits the cells.

    - ``jacobi``: ``r = c = 1 / sqrt(diag(A))`` (symmetric, positive diagonal): the scaled
      matrix keeps its symmetry and has a unit diagonal;
    - ``ruiz``: every row and column of the scaled matrix has max-abs entry close to 1
      (``iterations`` Ruiz sweeps), exact factors;
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
        diagonal = np.diag(a)
        if not np.all(diagonal > 0):
            raise InputError("jacobi scaling needs a positive diagonal; use scheme.scaling=ruiz")
        r = 1.0 / np.sqrt(diagonal)
        return r, r.copy()
    magnitude = np.abs(a)
    r, c = np.ones(a.shape[0]), np.ones(a.shape[1])
    for _ in range(iterations):
        scaled = r[:, None] * magnitude * c[None, :]
        row_max, col_max = scaled.max(axis=1), scaled.max(axis=0)
        if np.any(row_max == 0) or np.any(col_max == 0):
            raise InputError("cannot equilibrate a matrix with an all-zero row or column")
        r /= np.sqrt(row_max)
        c /= np.sqrt(col_max)
    if method == "ruiz_pow2":
        return 2.0 ** np.round(np.log2(r)), 2.0 ** np.round(np.log2(c))
    return r, c


def map_matrix(
    a: np.ndarray, device: DeviceConfig, *, scaling: str = "none", shift: float = 0.0
) -> CrossbarArrays:
    """Map ``a`` to the *target* conductances of a differential pair of arrays.

    Parameters
    ----------
    a : numpy.ndarray
        Square matrix, finite (checked by the caller).
    device : DeviceConfig
        Conductance window and bits per cell.
    scaling : str
        One of :data:`SCALINGS` (see :func:`equilibrate`).
    shift : float
        Added to the diagonal of the scaled matrix before quantisation, in units of its
        largest entry: the arrays then hold a *stabilised* approximation
        ``diag(r) A diag(c) + shift * max|.| * I`` (see :func:`rerinv.analog.inv.build_inv`).
    """
    a = np.asarray(a, dtype=float)
    row_scale, col_scale = equilibrate(a, scaling)
    mapped = row_scale[:, None] * a * col_scale[None, :]
    peak = np.max(np.abs(mapped))
    if peak == 0:
        raise InputError("the matrix is all zeros: nothing to map")
    if shift:
        mapped = mapped + shift * peak * np.eye(a.shape[0])
        peak = np.max(np.abs(mapped))
    window = device.g_max - device.g_min
    scale = window / peak
    step = window / (2**device.bits - 1)
    magnitude = np.round(np.abs(mapped) * scale / step) * step
    g_pos = device.g_min + np.where(mapped > 0, magnitude, 0.0)
    g_neg = device.g_min + np.where(mapped < 0, magnitude, 0.0)
    return CrossbarArrays(g_pos, g_neg, scale, row_scale, col_scale, scaling, shift)


def program_conductances(
    target: CrossbarArrays, device: DeviceConfig, seed: int | np.random.Generator
) -> CrossbarArrays:
    """Draw the conductances the arrays hold after programming ``target``.

    Each cell gets ``G = G_t + N(0, sigma_abs * g_max) + G_t * N(0, sigma_rel)``, clipped to
    ``[g_min, g_max]``; then cells stick at ``g_min`` with probability ``p_stuck_low`` and at
    ``g_max`` with probability ``p_stuck_high``. Same seed, same conductances.
    """
    rng = np.random.default_rng(seed)
    programmed = []
    for g in (target.g_pos, target.g_neg):
        noise = device.sigma_abs * device.g_max * rng.standard_normal(g.shape)
        noise += device.sigma_rel * g * rng.standard_normal(g.shape)
        g = np.clip(g + noise, device.g_min, device.g_max)
        u = rng.random(g.shape)
        g = np.where(u < device.p_stuck_low, device.g_min, g)
        g = np.where(
            (u >= device.p_stuck_low) & (u < device.p_stuck_low + device.p_stuck_high),
            device.g_max,
            g,
        )
        programmed.append(g)
    return replace(target, g_pos=programmed[0], g_neg=programmed[1])


def read_conductances(
    arrays: CrossbarArrays, device: DeviceConfig, rng: np.random.Generator
) -> CrossbarArrays:
    """One read of the arrays: every cell off by ``N(0, read_noise)`` relative to its
    programmed conductance, drawn afresh for each read (no-op when ``read_noise`` is 0)."""
    if device.read_noise == 0:
        return arrays
    noisy = [
        np.maximum(g * (1 + device.read_noise * rng.standard_normal(g.shape)), 1e-3 * device.g_min)
        for g in (arrays.g_pos, arrays.g_neg)
    ]
    return replace(arrays, g_pos=noisy[0], g_neg=noisy[1])
