"""One analog INV solve: check, map, program, build, simulate, read back ``x``.

``x = A^-1 b`` is recovered from the op-amp outputs ``V`` as ``x = factor * diag(col_scale) V``
with ``factor = -scale * r_in / k``, where ``k`` (V per unit of b) sets the DAC voltages
``v_in = k * diag(row_scale) b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.analog.vmm import OUTPUT_HEADROOM
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import UnstableMatrixError
from rerinv.hw.circuit import Circuit, inv_crossbar
from rerinv.hw.mapping import CrossbarArrays, map_matrix, program_conductances
from rerinv.matrices import check_matrix, check_stable, check_vector
from rerinv.seeds import spawn


def row_conductance(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """Total conductance at each row node (S): both arrays plus the input resistor."""
    return arrays.g_pos.sum(axis=1) + arrays.g_neg.sum(axis=1) + 1.0 / config.array.r_in


def loop_matrix(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """``M = D^-1 G``: the closed loop's modes decay like ``exp(-2 pi GBW lambda_k(M) t)``."""
    return arrays.conductance_matrix / row_conductance(arrays, config)[:, None]


def check_loop_stability(arrays: CrossbarArrays, config: Config) -> None:
    """Raise :class:`UnstableMatrixError` unless every eigenvalue of ``D^-1 G`` of the
    programmed arrays has a positive real part."""
    eigenvalues = np.linalg.eigvals(loop_matrix(arrays, config))
    worst = eigenvalues[np.argmin(eigenvalues.real)]
    if worst.real <= 1e-12 * np.max(np.abs(eigenvalues)):
        raise UnstableMatrixError(
            f"the programmed INV crossbar is unstable: D^-1 G has eigenvalue {worst:.4g} with "
            "non-positive real part, so the op-amp outputs would run to the rails. The intended "
            "matrix is stable, but its quantised/programmed form is not: use equilibration, more "
            "bits per cell or a better conditioned matrix."
        )


@dataclass(frozen=True, eq=False)
class InvCrossbar:
    """A programmed INV crossbar and its circuit."""

    matrix: np.ndarray  # the intended matrix A
    arrays: CrossbarArrays  # programmed conductances
    circuit: Circuit
    config: Config


def build_inv(
    a: np.ndarray,
    config: Config,
    *,
    seed: int | np.random.SeedSequence = 0,
    equilibrated: bool = False,
) -> InvCrossbar:
    """Check ``a``, map it, program the arrays from ``seed`` and build the INV circuit."""
    a = check_matrix(a, max_size=config.array.max_size)
    check_stable(a)
    programming, mismatch = spawn(seed, 2)
    target = map_matrix(a, config.device, equilibrated=equilibrated)
    arrays = program_conductances(target, config.device, np.random.default_rng(programming))
    check_loop_stability(arrays, config)
    circuit = inv_crossbar(arrays, config, seed=np.random.default_rng(mismatch))
    return InvCrossbar(a, arrays, circuit, config)


def input_gain(inv: InvCrossbar, b: np.ndarray) -> float:
    """``k`` (V per unit of b): full DAC scale, reduced when the planned outputs (from the
    *target* mapping, as a designer would plan ranges) would exceed the ADC range or rails."""
    cfg = inv.config
    rb = inv.arrays.row_scale * b
    peak_in = np.max(np.abs(rb))
    if peak_in == 0:
        return 1.0
    k = cfg.converters.dac_range / peak_in
    planned = np.linalg.solve(inv.arrays.conductance_matrix, k * rb / cfg.array.r_in)
    limit = OUTPUT_HEADROOM * min(cfg.converters.adc_range, cfg.opamp.v_rail)
    peak_out = np.max(np.abs(planned))
    return k * min(1.0, limit / peak_out) if peak_out > 0 else k


def output_factor(inv: InvCrossbar, k: float) -> np.ndarray:
    """Per-output factor turning op-amp output volts into ``x``."""
    return -inv.arrays.scale * inv.config.array.r_in / k * inv.arrays.col_scale


@dataclass(frozen=True)
class InvSolution:
    x: np.ndarray  # solution estimate, user units
    outputs: np.ndarray  # op-amp output voltages (V)
    inputs: np.ndarray  # DAC voltages (V)
    factor: np.ndarray  # x = factor * outputs


def solve_inv(
    a: np.ndarray,
    b: np.ndarray,
    config: Config,
    *,
    seed: int = 0,
    equilibrated: bool = False,
) -> InvSolution:
    """One analog solve of ``a x = b`` on the INV crossbar (exact DAC voltages, no ADC), on
    the engine ``config.simulation.engine``."""
    inv = build_inv(a, config, seed=seed, equilibrated=equilibrated)
    b = check_vector(b, inv.arrays.n)
    k = input_gain(inv, b)
    inputs = k * inv.arrays.row_scale * b
    session = get_engine(config.simulation.engine).load(inv.circuit)
    try:
        outputs = session.solve(inputs)
    finally:
        session.close()
    factor = output_factor(inv, k)
    return InvSolution(factor * outputs, outputs, inputs, factor)
