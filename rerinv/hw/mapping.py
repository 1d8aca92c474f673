"""Matrix -> conductances, and the programmed conductances a real array ends up with.

A matrix ``A`` (optionally equilibrated to ``diag(r) A diag(c)``) maps onto a differential pair
of arrays: ``G+ - G- = scale * A_q``, where ``A_q`` is ``A`` quantised to the cell levels. A cell
holds one of ``2**bits`` levels evenly spaced in ``[g_min, g_max]``; an entry that is zero, or
of the other sign, sits at ``g_min`` in that array so that the pair cancels.

:func:`program_conductances` then draws what the arrays really hold (programming error, stuck
cells) from an explicit seed. :meth:`CrossbarArrays.implemented_matrix` tells which matrix the
arrays implement, in the coordinates of the user's matrix.

**Finer slices** (``slices > 1``, the way HP-INV slices a matrix): what the first pair of
arrays leaves over, ``scale * A - (G+ - G-)``, goes onto further pairs of arrays whose columns
are driven by *attenuated* copies of the amplifier outputs (a power-of-two ``attenuation``), so
the loop sees ``G = (G+ - G-) + sum_k a_k (F+_k - F-_k)``: every slice adds about ``bits`` bits
of matrix precision with the same cells. Each slice is programmed after the one above it and
holds what that one *really* left over (program and verify: the host reads the programmed
conductances back, as write-verify does, and targets the difference; the read-back is taken as
exact to the finer slice's resolution).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rerinv.config import DeviceConfig
from rerinv.errors import InputError
from rerinv.hw.scaling import equilibrate


@dataclass(frozen=True, eq=False)
class FineSlice:
    """A lower slice of a crossbar's matrix: a differential pair of arrays whose columns are
    driven by ``+-attenuation`` times the outputs, adding ``attenuation * (g_pos - g_neg)``."""

    g_pos: np.ndarray
    g_neg: np.ndarray
    attenuation: float  #: power of two (< 1)


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
    fine : tuple of FineSlice
        Lower slices driven by attenuated outputs (empty: one slice).
    balance_below : float
        Finer slices at attenuations up to this are balanced pairs (:func:`_levels`): what
        they load the rows with does not depend on what they hold.
    """

    g_pos: np.ndarray
    g_neg: np.ndarray
    scale: float
    row_scale: np.ndarray
    col_scale: np.ndarray
    scaling: str = "none"
    shift: float = 0.0
    fine: tuple[FineSlice, ...] = ()
    balance_below: float = 0.0

    @property
    def n(self) -> int:
        return self.g_pos.shape[0]

    @property
    def slices(self) -> int:
        """Pairs of arrays holding the matrix (1 + finer slices)."""
        return 1 + len(self.fine)

    @property
    def conductance_matrix(self) -> np.ndarray:
        """``G = g_pos - g_neg`` plus every finer slice times its attenuation (S): the matrix
        the circuit sees."""
        g = self.g_pos - self.g_neg
        for part in self.fine:
            g = g + part.attenuation * (part.g_pos - part.g_neg)
        return g

    @property
    def total_conductance(self) -> np.ndarray:
        """Every cell's conductance summed per row (S): what loads each row node."""
        total = self.g_pos.sum(axis=1) + self.g_neg.sum(axis=1)
        for part in self.fine:
            total = total + part.g_pos.sum(axis=1) + part.g_neg.sum(axis=1)
        return total

    def implemented_matrix(self) -> np.ndarray:
        """The matrix these arrays implement, in the user's coordinates (undoes scale and
        equilibration): ``diag(1/r) (G / scale) diag(1/c)``."""
        mapped = self.conductance_matrix / self.scale
        return mapped / self.row_scale[:, None] / self.col_scale[None, :]


def map_matrix(
    a: np.ndarray,
    device: DeviceConfig,
    *,
    scaling: str = "none",
    shift: float = 0.0,
    slices: int = 1,
    correction: np.ndarray | None = None,
    balance_below: float = 0.0,
) -> CrossbarArrays:
    """Map ``a`` to the *target* conductances of a differential pair of arrays (and, with
    ``slices > 1``, of finer slices: see the module docstring).

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
    slices : int
        Pairs of arrays holding the matrix: each one after the first holds what the slices
        above it leave over, driven at a power-of-two attenuation.
    correction : numpy.ndarray, optional
        Conductances (S) the circuit adds to what the arrays hold (e.g. its amplifiers' finite
        gain): the arrays hold the matrix minus it, so that the circuit implements the matrix.
    balance_below : float
        Finer slices at attenuations up to this are balanced pairs (see
        :class:`CrossbarArrays`).
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
    scale = (device.g_max - device.g_min) / peak
    intended = mapped * scale if correction is None else mapped * scale - correction
    g_pos, g_neg = _levels(intended, device)
    coarse = CrossbarArrays(
        g_pos, g_neg, scale, row_scale, col_scale, scaling, shift, balance_below=balance_below
    )
    return replace(coarse, fine=_fine_slices(intended, coarse, device, slices - 1))


def _levels(
    siemens: np.ndarray, device: DeviceConfig, balanced: bool = False, diffuse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Target conductances of a differential pair holding ``siemens`` (at most
    :func:`_span` in magnitude), each cell on one of the ``2**bits`` levels: the nearest level
    in one array and ``g_min`` in the other, or (``balanced``) both cells symmetric about the
    middle level so that their sum, what loads the row, does not depend on the entry.

    ``diffuse``: each entry's rounding error is carried into the next entry of its row (the
    rounded running sum), so that every row sum is within half a level: the errors of many
    equal entries (the zeros of a sparse matrix, once a correction is added) no longer add up
    along smooth vectors, where an ill-conditioned matrix keeps its smallest eigenvalues."""
    step = (device.g_max - device.g_min) / (2**device.bits - 1)
    unit = 2 * step if balanced else step
    if diffuse:
        running = np.round(np.cumsum(siemens / unit, axis=1))
        q = np.diff(running, axis=1, prepend=0.0)
    else:
        q = np.round(siemens / unit)
    if balanced:
        half = 2 ** (device.bits - 1) - 1
        q = np.clip(q, -half, half)
        centre = device.g_min + half * step
        return centre + q * step, centre - q * step
    q = np.clip(q, -(2**device.bits - 1), 2**device.bits - 1)
    return (
        device.g_min + np.where(q > 0, q, 0.0) * step,
        device.g_min + np.where(q < 0, -q, 0.0) * step,
    )


def _span(device: DeviceConfig, balanced: bool) -> float:
    """Largest entry (S) a pair holds (see :func:`_levels`)."""
    window = device.g_max - device.g_min
    if not balanced:
        return window
    return 2 * (2 ** (device.bits - 1) - 1) * window / (2**device.bits - 1)


def _fine_slices(
    intended: np.ndarray,
    held: CrossbarArrays,
    device: DeviceConfig,
    count: int,
    program=None,
) -> tuple[FineSlice, ...]:
    """``count`` finer slices for what ``held`` leaves of ``intended`` (S), each at the largest
    power-of-two attenuation whose span covers what is left (balanced pairs at attenuations
    up to ``held.balance_below``; the finest rounded with its errors diffused along the rows,
    see :func:`_levels`); ``program`` (target pair -> programmed pair) draws what each slice
    really holds before the next one is targeted."""
    fine: list[FineSlice] = []
    have = held.conductance_matrix
    for k in range(count):
        rest = intended - have
        peak = float(np.max(np.abs(rest)))
        if peak == 0:
            break  # nothing left over: no more arrays
        attenuation = float(2.0 ** np.ceil(np.log2(peak / _span(device, False))))
        balanced = attenuation <= held.balance_below
        if balanced:
            attenuation = float(2.0 ** np.ceil(np.log2(peak / _span(device, True))))
        pair = _levels(rest / attenuation, device, balanced, diffuse=k == count - 1)
        g_pos, g_neg = program(*pair) if program else pair
        fine.append(FineSlice(g_pos, g_neg, attenuation))
        have = have + attenuation * (g_pos - g_neg)
    return tuple(fine)


def program_conductances(
    target: CrossbarArrays, device: DeviceConfig, seed: int | np.random.Generator
) -> CrossbarArrays:
    """Draw the conductances the arrays hold after programming ``target``.

    Each cell gets ``G = G_t + N(0, sigma_abs * g_max) + G_t * N(0, sigma_rel)``, clipped to
    ``[g_min, g_max]``; then cells stick at ``g_min`` with probability ``p_stuck_low`` and at
    ``g_max`` with probability ``p_stuck_high``. Same seed, same conductances. Finer slices are
    re-targeted, one after the other, at what the slices above them really hold (program and
    verify, see the module docstring).
    """
    rng = np.random.default_rng(seed)

    def program(g_pos: np.ndarray, g_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        programmed = []
        for g in (g_pos, g_neg):
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
        return programmed[0], programmed[1]

    g_pos, g_neg = program(target.g_pos, target.g_neg)
    coarse = replace(target, g_pos=g_pos, g_neg=g_neg, fine=())
    if not target.fine:
        return coarse
    fine = _fine_slices(target.conductance_matrix, coarse, device, len(target.fine), program)
    return replace(coarse, fine=fine)


def read_conductances(
    arrays: CrossbarArrays, device: DeviceConfig, rng: np.random.Generator
) -> CrossbarArrays:
    """One read of the arrays: every cell off by ``N(0, read_noise)`` relative to its
    programmed conductance, drawn afresh for each read (no-op when ``read_noise`` is 0)."""
    if device.read_noise == 0:
        return arrays

    def noisy(g: np.ndarray) -> np.ndarray:
        return np.maximum(
            g * (1 + device.read_noise * rng.standard_normal(g.shape)), 1e-3 * device.g_min
        )

    fine = tuple(replace(f, g_pos=noisy(f.g_pos), g_neg=noisy(f.g_neg)) for f in arrays.fine)
    return replace(arrays, g_pos=noisy(arrays.g_pos), g_neg=noisy(arrays.g_neg), fine=fine)
