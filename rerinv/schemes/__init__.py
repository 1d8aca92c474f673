"""Precision schemes: short loops over the analog machine, with honest bit accounting.

Each scheme uses only ``machine.inv`` (low-precision analog solve), ``machine.vmm`` (high-
precision residual VMM), ``machine.low_vmm`` (RePAST's ``A_L``) and cheap digital vector ops.
Stopping uses what hardware can see: the residual norm ``||b - A x|| / ||b||`` from the VMM and
the pass budget. ``effective_bits`` against the float64 solution of the intended matrix is
measured after every pass for verification only; it never steers a scheme.
"""

from __future__ import annotations

import math
import time

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.config import SCHEMES, Config
from rerinv.errors import InputError
from rerinv.matrices import check_matrix, check_nonsingular, check_vector
from rerinv.schemes.loops import LOOPS
from rerinv.schemes.result import (
    STATUSES,
    PassRecord,
    SolveResult,
    componentwise_bits,
    effective_bits,
    final_status,
)
from rerinv.schemes.stopping import Run

__all__ = ["SCHEMES", "STATUSES", "PassRecord", "SolveResult", "effective_bits", "solve"]


def solve(
    a: np.ndarray,
    b: np.ndarray,
    config: Config,
    *,
    seed: int | np.random.SeedSequence = 0,
) -> SolveResult:
    """Solve ``a x = b`` on the analog machine as ``config.simulation`` says.

    Parameters
    ----------
    a, b : numpy.ndarray
        The intended system (float64); ``effective_bits`` is measured against
        ``numpy.linalg.solve(a, b)``.
    config : Config
        ``config.simulation`` names the scheme, the engine, the target bits and the pass
        budget (change them with ``config.with_values("simulation", scheme="krylov")``).
    seed : int or numpy.random.SeedSequence
        Programming draws.
    """
    sim = config.simulation
    scheme, engine, target_bits, max_passes = (
        sim.scheme,
        sim.engine,
        sim.target_bits,
        sim.max_passes,
    )
    start = time.perf_counter()
    a = check_matrix(a)  # larger than one crossbar: a block preconditioner (scheme.blocks)
    b = check_vector(b, a.shape[0])
    check_nonsingular(a)  # before the float64 reference: a clear error, not a traceback
    if not np.any(b):
        raise InputError("the right-hand side is all zeros: x = 0 is the exact answer")
    x_ref = np.linalg.solve(a, b)
    if not np.all(np.isfinite(x_ref)):
        raise InputError("the float64 solution of A x = b overflows: scale b down")
    # the machine works on b / 2**e with max|b / 2**e| in [0.5, 1): exact in floating point,
    # so that a right-hand side of 1e-300 or 1e300 solves like one of 1
    e = int(np.frexp(np.max(np.abs(b)))[1])
    with AnalogMachine(a, config, seed=seed) as machine:
        setup_time = time.perf_counter() - start
        run = Run(machine, np.ldexp(b, -e), np.ldexp(x_ref, -e), config, target_bits, max_passes)
        loop_status = LOOPS[scheme](run)
        counters, plan = machine.counters, machine.residual
        crossbar, route, scaling = machine.crossbar, machine.route, machine.scaling
    x = np.ldexp(run.answer(loop_status), e)
    finite = bool(np.all(np.isfinite(x)))
    bits = effective_bits(x, x_ref) if finite else -math.inf
    reached = bool(bits >= target_bits)
    return SolveResult(
        n=a.shape[0],
        scheme=scheme,
        engine=engine,
        status=final_status(loop_status, reached),
        reached_target=reached,
        target_bits=target_bits,
        effective_bits=bits,
        passes=len(run.history),
        passes_to_target=next(
            (k for k, h in enumerate(run.history, 1) if h.effective_bits >= target_bits), None
        ),
        componentwise_bits=componentwise_bits(x, x_ref) if finite else -math.inf,
        inv_solves=counters.inv_solves,
        vmm_ops=counters.vmm_ops,
        conversions=counters.conversions,
        history=run.history,
        x=x,
        wall_time=time.perf_counter() - start,
        setup_time=setup_time,
        loop_status=loop_status,
        circuit=route,
        scaling=scaling,
        shift=crossbar.arrays.shift if crossbar is not None else 0.0,
        inv_slices=crossbar.arrays.slices if crossbar is not None else 1,
        residual_bits=(plan.weight_bits, plan.input_bits),
        condition_estimate=plan.condition_estimate,
        residual_floor_bits=plan.floor_bits,
        switches=list(run.switches),
        reprograms=counters.reprograms,
        by_level={int(k): dict(v) for k, v in sorted(counters.by_level.items())},
    )
