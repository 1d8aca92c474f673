"""The plain VMM crossbar: one ``device.bits`` array pair computing ``A^T v``.

This is the one place where a VMM crossbar is built from a matrix and where its input gain
is planned; the netlist writer, the settling study and calibration all use it. (The
high-precision residual VMM of the schemes is :mod:`rerinv.analog.bitsliced`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.config import Config
from rerinv.engines import Engine
from rerinv.hw.circuit import Circuit, vmm_crossbar
from rerinv.hw.converters import Converter
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


@dataclass(frozen=True, eq=False)
class VmmRead:
    """One read of a VMM crossbar through its converters, and what it should have read."""

    y: np.ndarray  #: ``A^T v`` as the DAC, crossbar and ADC produced it
    exact: np.ndarray  #: ``A^T v_in`` in float64, ``v_in`` the DAC-quantised input
    v_in: np.ndarray  #: the input as the DAC represents it (in the units of ``v``)
    lsb: float  #: one ADC step, in the units of ``y``
    full_scale: float  #: the largest ``|exact|``: errors are quoted relative to it
    inputs: np.ndarray  #: the voltages the crossbar's inputs were driven with (V)

    @property
    def error(self) -> np.ndarray:
        return self.y - self.exact


def read_vmm(crossbar: VmmCrossbar, v: np.ndarray, engine: Engine) -> VmmRead:
    """Read ``A^T v`` once: ``v`` scaled to the DAC's full scale and quantised by it, the
    crossbar solved by ``engine`` at the input gain a designer plans (:func:`input_gain`), the
    outputs quantised by the ADC and scaled back to the units of ``v``."""
    cfg = crossbar.config.converters
    dac, adc = Converter(cfg.dac_bits, cfg.dac_range), Converter(cfg.adc_bits, cfg.adc_range)
    v = np.asarray(v, dtype=float)
    peak = float(np.max(np.abs(v)))
    unit = peak / cfg.dac_range if peak > 0 else 1.0  # units of v per DAC volt
    v_in = dac.convert(v / unit)
    gain = input_gain(crossbar, v_in)
    inputs = gain * v_in
    session = engine.load(crossbar.circuit)
    try:
        volts = session.solve(inputs)
    finally:
        session.close()
    factor = output_factor(crossbar, gain) * unit
    exact = crossbar.matrix.T @ (v_in * unit)
    return VmmRead(adc.convert(volts) * factor, exact, v_in * unit, adc.lsb * abs(factor),
                   float(np.max(np.abs(exact))), inputs)  # fmt: skip
