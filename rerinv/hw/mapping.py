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
import scipy.sparse
import scipy.sparse.linalg

from rerinv.config import DeviceConfig
from rerinv.errors import InputError


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


#: A row- and column-scaled symmetric matrix ``D1 S D2`` gets Jacobi scaling only when the
#: spread of its column factors stays within this factor of the spread of ``1 / diag(A)``:
#: user scaling moves both together, while a matrix that is symmetric only up to a wildly
#: varying diagonal similarity of its own (convection-diffusion) has a flat diagonal and would
#: get an unknown ``y = x / c`` spread over many decades, which no fixed-point VMM or ADC holds.
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
        spread = np.max(c) / np.min(c)
        if spread > JACOBI_SPREAD * np.max(diagonal) / np.min(diagonal):
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
        factors = _jacobi_factors(a)
        if factors is None:
            raise InputError(
                "jacobi scaling needs a symmetric matrix (up to row and column scaling) with a "
                "positive diagonal; use scheme.scaling=ruiz"
            )
        return factors
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
