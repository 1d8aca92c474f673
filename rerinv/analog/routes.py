"""Which crossbar holds the preconditioner: the routes of :mod:`rerinv.analog.inv` chosen for a
matrix (``scheme.circuit``), the number of slices its matrix needs (``scheme.inv_slices``), the
smallest stabilising shift, and one more slice when a pass contracts poorly.

``auto`` takes the INV crossbar on the fewest slices whose programmed loop is stable (finer
slices: :mod:`rerinv.hw.mapping`), else the stabilised INV (the smallest power-of-two diagonal
shift on the most slices) when every eigenvalue of the scaled matrix has a positive real part,
else the generalised-inverse crossbar.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rerinv.analog.inv import InvCrossbar, program_crossbar, resolve_scaling, unstable_reason
from rerinv.config import Config
from rerinv.errors import UnstableMatrixError
from rerinv.hw.scaling import equilibrate
from rerinv.matrices import check_matrix, check_nonsingular

#: A shifted INV must have ``min Re eig(D^-1 G) > 2**-bits * max |eig|``: robust to one level.
_SHIFT_MARGIN_LEVELS = 1.0


def slice_counts(config: Config) -> tuple[int, ...]:
    """The numbers of slices the INV crossbar may hold its matrix on, fewest first:
    ``scheme.inv_slices`` when set, else 1 up to :data:`MAX_AUTO_SLICES`."""
    fixed = config.scheme.inv_slices
    return (fixed,) if fixed else tuple(range(1, MAX_AUTO_SLICES + 1))


#: ``scheme.inv_slices = 0`` (auto) uses at most this many slices (24-bit matrices from 8-bit
#: cells).
MAX_AUTO_SLICES = 3


def build_preconditioner(
    a: np.ndarray,
    config: Config,
    *,
    seed: int | np.random.SeedSequence = 0,
    slices: int | None = None,
    tiled: bool = False,
) -> InvCrossbar:
    """The crossbar the schemes solve with, as ``config.scheme.circuit`` says (see the module
    docstring); ``auto`` takes the INV crossbar on the fewest slices (:func:`slice_counts`, or
    ``slices`` and more) whose programmed loop is stable, else the stabilised INV (the smallest
    shift on the most slices) when every eigenvalue of ``a`` has a positive real part, else the
    generalised-inverse crossbar (one slice). ``tiled``: ``a`` may be wider than
    ``array.max_size`` (one loop over crossbar tiles).

    Raises
    ------
    InputError
        ``a`` is singular.
    UnstableMatrixError
        No allowed route gives a stable circuit; the message names the cause and the
        parameter to change.
    """
    a = check_matrix(a, max_size=None if tiled else config.array.max_size)
    check_nonsingular(a)
    choice, scaling = config.scheme.circuit, resolve_scaling(a, config)
    counts = [k for k in slice_counts(config) if slices is None or k >= slices] or [slices]
    reasons, remedies = [], []
    if choice in ("auto", "inv", "inv_shifted"):
        rows, cols = equilibrate(a, scaling)
        sign = _stable_sign(rows[:, None] * a * cols[None, :])  # what the crossbar holds
        if sign is None:
            reasons.append(
                "the matrix has eigenvalues on both sides of the imaginary axis (the INV loop "
                "cannot hold it or its negative)"
            )
            remedies.append("use the generalised-inverse circuit: --set scheme.circuit=auto")
        else:
            for k in counts:
                inv = program_crossbar(
                    a, config, seed, scaling=scaling, route="inv", sign=sign, slices=k
                )
                reason = unstable_reason(inv)
                if reason is None:
                    return inv
            reasons.append(f"INV: {reason}")
            if choice == "inv":
                remedies.append("let rerinv stabilise it: --set scheme.circuit=auto")
            else:
                shifted = stabilised_inv(inv, seed)
                if shifted is not None:
                    return shifted
                reasons.append("no diagonal shift up to the largest entry stabilises it")
    if choice in ("auto", "ginv"):
        inv = program_crossbar(a, config, seed, scaling=scaling, route="ginv")
        reason = unstable_reason(inv)
        if reason is None:
            return inv
        reasons.append(f"generalised inverse: {reason}")
    if not remedies or choice in ("auto", "ginv", "inv_shifted"):
        remedies.append(
            "change what makes the programmed circuit unstable (programming error: --set "
            "device.sigma_rel=0; inverter mismatch: --set array.inverter_mismatch=0; cell "
            "levels: --set device.bits=12)"
        )
    raise UnstableMatrixError(
        f"no stable analog circuit for this matrix with scheme.circuit={choice}: "
        + "; ".join(reasons)
        + ". To fix it, "
        + ", or ".join(remedies)
    )


def with_more_slices(inv: InvCrossbar, seed) -> InvCrossbar | None:
    """``inv`` re-programmed on one more slice (unshifted when that loop is stable, else with
    the smallest stabilising shift), or None: a generalised-inverse crossbar, or already on
    the most slices :func:`slice_counts` allows."""
    slices = inv.arrays.slices + 1
    if inv.route == "ginv" or slices > max(slice_counts(inv.config)):
        return None
    try:
        return build_preconditioner(inv.matrix, inv.config, seed=seed, slices=slices, tiled=True)
    except UnstableMatrixError:
        return None


def _stable_sign(a: np.ndarray) -> float | None:
    """+1 when every eigenvalue of ``a`` has a positive real part, -1 when every one has a
    negative real part (the INV crossbar then holds ``-A`` and the read-out flips the sign),
    None otherwise (same tolerance as :func:`rerinv.matrices.check_stable`; one
    eigen-decomposition, the caller has checked that ``a`` is not singular)."""
    eig = np.linalg.eigvals(a)
    margin = 1e-12 * np.max(np.abs(eig))
    if np.all(eig.real > margin):
        return 1.0
    if np.all(eig.real < -margin):
        return -1.0
    return None


def stabilised_inv(inv: InvCrossbar, seed) -> InvCrossbar | None:
    """``inv`` re-programmed (on as many slices) with the smallest power-of-two diagonal shift
    (from one level of its finest slice up to the largest entry) whose programmed loop is
    robustly stable: the smallest eigenvalue of ``D^-1 G`` at least one finest level of the
    largest; None when no shift does."""
    levels = inv.config.device.bits * inv.arrays.slices
    margin = _SHIFT_MARGIN_LEVELS * 2.0**-levels

    def program(k: int) -> InvCrossbar:
        return program_crossbar(
            inv.matrix,
            inv.config,
            seed,
            scaling=inv.arrays.scaling,
            shift=2.0 ** (k - levels),
            route="inv",
            sign=inv.sign,
            slices=inv.arrays.slices,
        )

    # bisection over the exponent: a larger shift only moves the spectrum further right
    low, high, best = 0, levels, program(levels)  # invariant: program(high) is stable
    if unstable_reason(best, margin) is not None:
        return None
    while low < high:
        middle = (low + high) // 2
        candidate = program(middle)
        if unstable_reason(candidate, margin) is None:
            high, best = middle, candidate
        else:
            low = middle + 1
    return replace(best, route="inv_shifted")
