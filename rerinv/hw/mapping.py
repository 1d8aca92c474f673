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
        Diagonal equilibration factors (all ones when equilibration is off).
    """

    g_pos: np.ndarray
    g_neg: np.ndarray
    scale: float
    row_scale: np.ndarray
    col_scale: np.ndarray

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


def equilibrate(a: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Ruiz diagonal equilibration: ``r, c`` such that ``diag(r) A diag(c)`` has every row and
    column with max-abs entry close to 1. Powers of two, so the scaling itself is exact."""
    a = np.abs(np.asarray(a, dtype=float))
    r = np.ones(a.shape[0])
    c = np.ones(a.shape[1])
    for _ in range(iterations):
        scaled = r[:, None] * a * c[None, :]
        row_max = scaled.max(axis=1)
        col_max = scaled.max(axis=0)
        if np.any(row_max == 0) or np.any(col_max == 0):
            raise InputError("cannot equilibrate a matrix with an all-zero row or column")
        r /= np.sqrt(row_max)
        c /= np.sqrt(col_max)
    return 2.0 ** np.round(np.log2(r)), 2.0 ** np.round(np.log2(c))


def map_matrix(
    a: np.ndarray, device: DeviceConfig, *, equilibrated: bool = False
) -> CrossbarArrays:
    """Map ``a`` to the *target* conductances of a differential pair of arrays.

    Parameters
    ----------
    a : numpy.ndarray
        Square matrix, finite (checked by the caller).
    device : DeviceConfig
        Conductance window and bits per cell.
    equilibrated : bool
        Apply diagonal (Ruiz) equilibration before mapping.
    """
    a = np.asarray(a, dtype=float)
    if equilibrated:
        row_scale, col_scale = equilibrate(a)
    else:
        row_scale, col_scale = np.ones(a.shape[0]), np.ones(a.shape[1])
    mapped = row_scale[:, None] * a * col_scale[None, :]
    peak = np.max(np.abs(mapped))
    if peak == 0:
        raise InputError("the matrix is all zeros: nothing to map")
    window = device.g_max - device.g_min
    scale = window / peak
    step = window / (2**device.bits - 1)
    magnitude = np.round(np.abs(mapped) * scale / step) * step
    g_pos = device.g_min + np.where(mapped > 0, magnitude, 0.0)
    g_neg = device.g_min + np.where(mapped < 0, magnitude, 0.0)
    return CrossbarArrays(g_pos, g_neg, scale, row_scale, col_scale)


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

