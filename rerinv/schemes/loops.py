"""The scheme loops: each uses only the analog machine's ``inv``, ``vmm`` and ``low_vmm``
(through :class:`~rerinv.schemes.stopping.Run`, in the scaled system the crossbars hold) and
cheap digital vector ops, and reports every pass to the run."""

from __future__ import annotations

import itertools

import numpy as np

from rerinv.schemes.stopping import Run


def single(run: Run) -> str:
    y = run.inv(run.b)
    return run.record(y, run.residual(y)) or "max_passes"


def refine(run: Run) -> str:
    y, r = np.zeros_like(run.b), run.b.copy()
    while True:
        step = run.inv(r)
        y = y + step
        r = run.b - run.vmm(y)
        status = run.record(y, run.norm(r), step=step, correction=True)
        if status:
            return status


def repast(run: Run) -> str:
    """x slicing by residual; each pass's correction is a Neumann series over A_H (INV
    crossbar) and A_L (VMM), one more term per pass up to ``scheme.neumann_terms``."""
    y, r = np.zeros_like(run.b), run.b.copy()
    terms = run.machine.config.scheme.neumann_terms
    for p in itertools.count():
        term = run.inv(r)
        dy = term
        for _ in range(min(p + 1, terms) - 1):
            term = -run.inv(run.low_vmm(term))
            dy = dy + term
        y = y + dy
        r = run.b - run.vmm(y)
        status = run.record(y, run.norm(r), step=dy, correction=True)
        if status:
            return status
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


#: Krylov stops as stalled when a measured residual exceeds its own estimate this much.
FLOOR_GAP = 8.0


def krylov(run: Run, y0: np.ndarray | None = None) -> str:
    """Restarted flexible GMRES, right-preconditioned by the analog INV; one pass = one
    Arnoldi step (one ``inv`` + one ``vmm``); the explicit residual is re-measured at every
    restart and before claiming convergence. ``y0`` (default 0) is the starting iterate."""
    restart = run.machine.config.scheme.restart
    y = np.zeros_like(run.b) if y0 is None else y0
    r = run.b.copy() if y0 is None else run.b - run.vmm(y)
    while True:
        beta = float(np.linalg.norm(r))
        basis = [r / beta]
        directions = []
        h = np.zeros((restart + 1, restart))
        y_step = y_last = y
        for j in range(restart):
            z = run.inv(basis[j])
            directions.append(z)
            w = run.vmm(z)
            for _ in range(2):  # classical Gram-Schmidt, twice, for orthogonality
                c = np.array([basis[i] @ w for i in range(j + 1)])
                h[: j + 1, j] += c
                w = w - np.array(basis).T @ c
            h[j + 1, j] = np.linalg.norm(w)
            rhs = np.zeros(j + 2)
            rhs[0] = beta
            coefficients, *_ = np.linalg.lstsq(h[: j + 2, : j + 1], rhs, rcond=None)
            y_last, y_step = y_step, y + np.array(directions).T @ coefficients
            estimate = run.norm(rhs - h[: j + 2, : j + 1] @ coefficients)
            breakdown = h[j + 1, j] <= 1e-14 * beta
            last = j == restart - 1 or run.passes_left <= 1
            if estimate <= run.tolerance or breakdown or last:
                break  # confirm with the explicit residual below
            status = run.record(y_step, estimate, judge_stall=False, step=y_step - y_last)
            if status:
                return status
            basis.append(w / h[j + 1, j])
        y, step = y_step, y_step - y_last
        r = run.b - run.vmm(y)
        residual = run.norm(r)
        status = run.record(y, residual, step=step)
        if status:
            return status
        if residual > FLOOR_GAP * max(estimate, run.tolerance):
            # the measured residual is far above what the Arnoldi recurrence predicts: the
            # residual VMM cannot resolve it (a floor), more Krylov steps will not help
            return "stalled"


#: ``auto`` refines while every correction is at most this fraction of the one before (about
#: 1.3 bits per pass: the corrections measure the error); a pass that does not first makes it
#: add a slice to the INV crossbar, then switch to flexible GMRES.
CONTRACTION = 0.4

#: Bits added to an automatic residual VMM when ``auto`` stalls.
WIDEN_BITS = 8


def auto(run: Run) -> str:
    """Iterative refinement while it contracts, a finer preconditioner when it does not, else
    Krylov. Refinement is the cheapest loop when ``rho(I - P^-1 A)`` is small (one INV solve
    and one VMM per pass); when a pass's correction is not below :data:`CONTRACTION` of the
    one before (less than about 1.3 bits gained), the INV crossbar is re-programmed on one
    more slice (more matrix bits in the loop, counted) while ``scheme.inv_slices`` allows, and
    flexible GMRES takes over
    once it does not. Contraction is judged on the size of the corrections, which the INV
    solves measure and which follow the error (the residual of an ill-conditioned system is
    dominated by the ADC error of ``x`` multiplied by ``A`` and says little about it).

    When the loop stalls with budget left, a slice is added if it can be, else the residual
    VMM (if its widths are automatic) is widened by :data:`WIDEN_BITS` and Krylov goes on from
    the best iterate: a stall is what a residual floor looks like from the hardware."""
    status = _refine_then_krylov(run)
    while (
        status in ("stalled", "diverged")
        and run.passes_left > 0
        and np.all(np.isfinite(run.y_best))
    ):
        start = run.restart_point()
        if _add_slice(run):
            status = _refine_then_krylov(run, start)
        elif run.machine.widen_residual(WIDEN_BITS):
            run.switches.append(
                (len(run.history), f"residual {run.machine.residual.weight_bits} bits")
            )
            run.restart_judgement()
            status = krylov(run, start)
        else:
            break
    return status


def _add_slice(run: Run) -> bool:
    """Re-program the INV crossbar on one more slice; note it and forget the progress counts
    (a new preconditioner)."""
    if not run.machine.add_slice():
        return False
    run.switches.append((len(run.history), f"re-programmed: {run.machine.preconditioner}"))
    run.restart_judgement()
    return True


def _refine_then_krylov(run: Run, y0: np.ndarray | None = None) -> str:
    y = np.zeros_like(run.b) if y0 is None else y0
    r = run.b.copy() if y0 is None else run.b - run.vmm(y)
    previous = None  # size of the last correction: what the error was before it
    while True:
        step = run.inv(r)
        y_new = y + step
        r_new = run.b - run.vmm(y_new)
        status = run.record(y_new, run.norm(r_new), step=step, correction=True)
        if status:
            return status
        size = float(np.max(np.abs(step)))
        if previous is not None and size > CONTRACTION * previous:
            # the correction shrank by less than a bit: the loop contracts poorly. Go on from
            # the newest iterate while corrections still shrink (the residual of an
            # ill-conditioned system says little about the error), else from the best one
            start = run.restart_point()
            if _add_slice(run):
                y, r, previous = start, run.b - run.vmm(start), None
                continue
            run.switches.append((len(run.history), "krylov"))
            return krylov(run, start)
        y, r, previous = y_new, r_new, size


LOOPS = {"auto": auto, "single": single, "repast": repast, "refine": refine, "krylov": krylov}
