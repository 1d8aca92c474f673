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


def krylov(run: Run) -> str:
    """Restarted flexible GMRES, right-preconditioned by the analog INV; one pass = one
    Arnoldi step (one ``inv`` + one ``vmm``); the explicit residual is re-measured at every
    restart and before claiming convergence."""
    m = run.machine
    restart = m.config.scheme.restart
    x = np.zeros_like(run.b)
    r = run.b.copy()
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
            if estimate <= run.tolerance or breakdown or j == restart - 1:
                break  # confirm with the explicit residual below
            status = run.record(x_step, estimate, judge_stall=False)
            if status:
                return status
            basis.append(w / h[j + 1, j])
        x = x_step
        r = run.b - m.vmm(x)
        status = run.record(x, float(np.linalg.norm(r)) / run.b_norm)
        if status:
            return status


LOOPS = {"single": single, "repast": repast, "refine": refine, "krylov": krylov}
