"""The plain VMM crossbar: one ``device.bits`` array pair computing ``A^T v``.

This is the one place where a VMM crossbar is built from a matrix and where its input gain
is planned; the netlist writer, the settling study and calibration all use it. (The
high-precision residual VMM of the schemes is :mod:`rerinv.analog.bitsliced`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.config import Config
from rerinv.hw.circuit import Circuit, vmm_crossbar
from rerinv.hw.mapping import CrossbarArrays, map_matrix, program_conductances

#: Outputs are planned to peak at this fraction of min(ADC range, rails).
OUTPUT_HEADROOM = 0.8


@dataclass(frozen=True, eq=False)
class VmmCrossbar:
    """A programmed VMM crossbar: ``y = -r_f G^T v`` with ``G = scale * A`` (ideally)."""

    matrix: np.ndarray  #: the intended matrix A (crossbar rows are the inputs)
    target: CrossbarArrays  #: the mapped (quantised) conductances
    arrays: CrossbarArrays  #: the programmed conductances
    circuit: Circuit
    config: Config


def build_vmm(a: np.ndarray, config: Config, *, seed: int | np.random.SeedSequence) -> VmmCrossbar:
    """Map ``a`` (no equilibration), program it from ``seed`` and build the VMM circuit."""
    a = np.asarray(a, dtype=float)
    target = map_matrix(a, config.device)
    arrays = program_conductances(target, config.device, np.random.default_rng(seed))
    return VmmCrossbar(a, target, arrays, vmm_crossbar(arrays, config), config)


def input_gain(vmm: VmmCrossbar, v: np.ndarray) -> float:
    """``k`` (V per unit of v): full DAC scale, reduced when the outputs planned from the
    intended matrix (as a designer plans ranges) would pass :data:`OUTPUT_HEADROOM` of the
    ADC range or the rails."""
    cfg = vmm.config
    peak_in = float(np.max(np.abs(v)))
    k = cfg.converters.dac_range / peak_in if peak_in > 0 else 1.0
    planned = cfg.array.r_f * vmm.target.scale * k * float(np.max(np.abs(vmm.matrix.T @ v)))
    limit = OUTPUT_HEADROOM * min(cfg.converters.adc_range, cfg.opamp.v_rail)
    return k * min(1.0, limit / planned) if planned > 0 else k


def output_factor(vmm: VmmCrossbar, k: float) -> float:
    """Factor turning TIA output volts into ``A^T v`` for inputs ``k * v``."""
    return -1.0 / (vmm.config.array.r_f * vmm.arrays.scale * k)
