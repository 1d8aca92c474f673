"""The scheme loops: each uses only ``machine.inv``, ``machine.vmm``, ``machine.low_vmm`` and
cheap digital vector ops, and reports every pass to the :class:`~rerinv.schemes.stopping.Run`."""

from __future__ import annotations

import itertools

import numpy as np

from rerinv.schemes.stopping import Run


def single(run: Run) -> str:
    x = run.machine.inv(run.b)
    return run.record(x, run.residual(x)) or "max_passes"


def refine(run: Run) -> str:
    x, r = np.zeros_like(run.b), run.b.copy()
    while True:
        x = x + run.machine.inv(r)
        r = run.b - run.machine.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status


def repast(run: Run) -> str:
    """x slicing by residual; each pass's correction is a Neumann series over A_H (INV
    crossbar) and A_L (VMM), one more term per pass up to ``scheme.neumann_terms``."""
    x, r = np.zeros_like(run.b), run.b.copy()
    m = run.machine
    for p in itertools.count():
        y = m.inv(r)
        dx = y
        for _ in range(min(p + 1, m.config.scheme.neumann_terms) - 1):
            y = -m.inv(m.low_vmm(y))
            dx = dx + y
        x = x + dx
        r = run.b - m.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


#: Krylov stops as stalled when a measured residual exceeds its own estimate this much.
FLOOR_GAP = 8.0


def krylov(run: Run, x0: np.ndarray | None = None) -> str:
    """Restarted flexible GMRES, right-preconditioned by the analog INV; one pass = one
    Arnoldi step (one ``inv`` + one ``vmm``); the explicit residual is re-measured at every
    restart and before claiming convergence. ``x0`` (default 0) is the starting iterate."""
    m = run.machine
    restart = m.config.scheme.restart
    x = np.zeros_like(run.b) if x0 is None else x0
    r = run.b.copy() if x0 is None else run.b - m.vmm(x)
    while True:
        beta = float(np.linalg.norm(r))
        basis = [r / beta]
        directions = []
        h = np.zeros((restart + 1, restart))
        x_step = x
        for j in range(restart):
            z = m.inv(basis[j])
            directions.append(z)
            w = m.vmm(z)
            for _ in range(2):  # classical Gram-Schmidt, twice, for orthogonality
                c = np.array([basis[i] @ w for i in range(j + 1)])
                h[: j + 1, j] += c
                w = w - np.array(basis).T @ c
            h[j + 1, j] = np.linalg.norm(w)
            rhs = np.zeros(j + 2)
            rhs[0] = beta
            y, *_ = np.linalg.lstsq(h[: j + 2, : j + 1], rhs, rcond=None)
            x_step = x + np.array(directions).T @ y
            estimate = float(np.linalg.norm(rhs - h[: j + 2, : j + 1] @ y)) / run.b_norm
            breakdown = h[j + 1, j] <= 1e-14 * beta
            last = j == restart - 1 or len(run.history) + 1 >= run.max_passes
            if estimate <= run.tolerance or breakdown or last:
                break  # confirm with the explicit residual below
            status = run.record(x_step, estimate, judge_stall=False)
            if status:
                return status
            basis.append(w / h[j + 1, j])
        x = x_step
        r = run.b - m.vmm(x)
        residual = float(np.linalg.norm(r)) / run.b_norm
        status = run.record(x, residual)
        if status:
            return status
        if residual > FLOOR_GAP * max(estimate, run.tolerance):
            # the measured residual is far above what the Arnoldi recurrence predicts: the
            # residual VMM cannot resolve it (a floor), more Krylov steps will not help
            return "stalled"


#: ``auto`` refines while every pass lowers the measured residual at least this much (one
#: bit); the first pass that does not makes it switch to flexible GMRES from the best iterate.
CONTRACTION = 0.5


def auto(run: Run) -> str:
    """Iterative refinement while it contracts, else Krylov: refinement is the cheapest loop
    when ``rho(I - P^-1 A)`` is small (one INV solve and one VMM per pass, ~3 bits per pass on
    equilibrated K-FAC factors); flexible GMRES keeps converging where it does not (a
    stabilised or generalised-inverse preconditioner far from ``A``, programming error). The
    decision uses only the measured residuals.

    When the loop stalls with budget left, the residual VMM (if its widths are automatic) is
    widened by :data:`WIDEN_BITS` and Krylov goes on from the best iterate: a stall is what a
    residual floor looks like from the hardware."""
    status = _refine_then_krylov(run)
    while (
        status in ("stalled", "diverged")
        and len(run.history) < run.max_passes
        and np.all(np.isfinite(run.x_best))
        and run.machine.widen_residual(WIDEN_BITS)
    ):
        run.switches.append((len(run.history), f"residual {run.machine.residual.weight_bits} bits"))
        run.restart_judgement()
        status = krylov(run, run.x_best)
    return status


#: Bits added to an automatic residual VMM when ``auto`` stalls.
WIDEN_BITS = 8


def _refine_then_krylov(run: Run) -> str:
    x, r, previous = np.zeros_like(run.b), run.b.copy(), None
    while True:
        x_new = x + run.machine.inv(r)
        r_new = run.b - run.machine.vmm(x_new)
        residual = float(np.linalg.norm(r_new)) / run.b_norm
        status = run.record(x_new, residual)
        if status:
            return status
        if previous is None and residual > 1.0 and run.machine.stiffen():
            # one preconditioned step made things worse than x = 0: the crossbar holds a
            # nearly singular copy of A (its smallest eigenvalue lost to the cell levels);
            # re-program it with a larger diagonal shift and start again
            shift = run.machine.crossbar.arrays.shift
            run.switches.append((len(run.history), f"re-programmed with shift {shift:g}"))
            run.restart_judgement()
            x, r = np.zeros_like(run.b), run.b.copy()
            continue
        if previous is not None and residual > CONTRACTION * previous:
            run.switches.append((len(run.history), "krylov"))
            return krylov(run, run.x_best)
        x, r, previous = x_new, r_new, residual


LOOPS = {"auto": auto, "single": single, "repast": repast, "refine": refine, "krylov": krylov}
