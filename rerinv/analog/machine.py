"""The analog machine the precision schemes talk to.

Two operations, each through DAC and ADC with auto-ranging and saturation, on the ``spice`` or
``nodal`` engine:

- ``inv(v)``: ``~A^-1 v`` from the INV crossbar holding the low-precision (``device.bits``)
  programmed matrix; ``v`` goes in as ``scheme.dac_slices`` DAC slices (b slicing), each one
  INV solve whose outputs an ADC reads.
- ``vmm(x)``: ``~A x`` from the high-precision bit-sliced VMM (or exact, with
  ``scheme.residual = "digital"``).

``low_vmm(x)`` gives ``A_L x`` for RePAST's A slicing (``A = A_H + A_L``, ``A_H`` the
``device.bits`` matrix the INV crossbar is meant to hold).

Auto-ranging: the DAC reference is scaled by a power-of-two attenuation ``alpha``; a solve whose
outputs rail or overrange the ADC is repeated at ``alpha / 4`` (and counted), and an
under-ranged result raises ``alpha`` for the next solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.analog.bitsliced import BitSlicedVMM, DigitalVMM
from rerinv.analog.inv import build_inv, output_factor
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError, SaturationError
from rerinv.hw.converters import Converter
from rerinv.hw.mapping import map_matrix
from rerinv.seeds import spawn

MAX_RANGE_RETRIES = 12


@dataclass
class Counters:
    """Operations used so far (conversions count single DAC/ADC samples)."""

    inv_solves: int = 0
    vmm_ops: int = 0
    conversions: int = 0


class AnalogMachine:
    """Programmed crossbars for ``a`` and the two operations the schemes may use.

    Parameters
    ----------
    a : numpy.ndarray
        The intended (full-precision) matrix.
    config : Config
        ``config.simulation.engine`` names the engine (``spice`` or ``nodal``).
    seed : int or numpy.random.SeedSequence
        Every programming draw (INV arrays, residual VMM slices, A_L slices) flows from it.
    """

    def __init__(self, a, config: Config, *, seed=0):
        if config.device.read_noise > 0:
            raise InputError(
                "device.read_noise is not modelled by the analog machine yet (each read would "
                "need new conductances); set it to 0"
            )
        self._seeds = dict(zip(("inv", "vmm", "low"), spawn(seed, 3), strict=True))
        self.config = config
        self.engine = get_engine(config.simulation.engine)
        self.crossbar = build_inv(
            a, config, seed=self._seeds["inv"], equilibrated=config.scheme.equilibrate
        )
        self.a = self.crossbar.matrix
        self.n = self.a.shape[0]
        self.counters = Counters()
        self.dac = Converter(config.converters.dac_bits, 1.0)  # codes in units of full scale
        self.adc = Converter(config.converters.adc_bits, config.converters.adc_range)
        self.alpha = 1.0
        self._inv = self.engine.load(self.crossbar.circuit)
        # the residual VMMs hold diag(r) A diag(c) too: powers of two, so undoing it is exact
        self._vmm = self._residual_vmm(self.a, self._seeds["vmm"])
        self._low_vmm = None

    # -- the two operations --------------------------------------------------------------
    def inv(self, v: np.ndarray) -> np.ndarray:
        """``~A^-1 v`` through DAC slices, the INV crossbar and the ADC (user units)."""
        arrays, cfg = self.crossbar.arrays, self.config
        u = arrays.row_scale * np.asarray(v, dtype=float)
        peak = float(np.max(np.abs(u)))
        x = np.zeros(self.n)
        if peak == 0:
            return x
        remainder = u / peak
        for s in range(cfg.scheme.dac_slices):
            weight = 2.0 ** (-s * (self.dac.bits - 1))
            codes = self.dac.convert(remainder / weight)
            remainder = remainder - codes * weight
            if not codes.any():
                continue
            volts, alpha = self._solve_ranged(codes)
            k = alpha * cfg.converters.dac_range / (peak * weight)  # volts per unit of v
            x += output_factor(self.crossbar, k) * volts
        return x

    def vmm(self, x: np.ndarray) -> np.ndarray:
        """``~A x`` on the high-precision residual VMM."""
        return self._apply(self._vmm, x)

    def low_vmm(self, x: np.ndarray) -> np.ndarray:
        """``~A_L x`` with ``A_L = A - A_H`` (RePAST's A slicing), on its own bit-sliced VMM."""
        if self._low_vmm is None:
            target = map_matrix(
                self.a, self.config.device, equilibrated=self.config.scheme.equilibrate
            )
            self._low_vmm = self._residual_vmm(
                self.a - target.implemented_matrix(), self._seeds["low"], 16
            )
        return self._apply(self._low_vmm, x)

    # -- helpers ---------------------------------------------------------------------------
    def _residual_vmm(self, w, seed, weight_bits=None):
        arrays = self.crossbar.arrays
        scaled = arrays.row_scale[:, None] * w * arrays.col_scale[None, :]
        if self.config.scheme.residual == "digital" or not scaled.any():
            return DigitalVMM(scaled)
        return BitSlicedVMM(scaled, self.config, self.engine, seed, weight_bits=weight_bits)

    def _apply(self, vmm, x) -> np.ndarray:
        arrays = self.crossbar.arrays
        ops, conversions = vmm.ops, vmm.conversions
        y = vmm(np.asarray(x, dtype=float) / arrays.col_scale) / arrays.row_scale
        self.counters.vmm_ops += vmm.ops - ops
        self.counters.conversions += vmm.conversions - conversions
        return y

    def _solve_ranged(self, codes: np.ndarray) -> tuple[np.ndarray, float]:
        """One INV solve of DAC ``codes`` (units of full scale), auto-ranged; returns the
        ADC-quantised outputs (V) and the attenuation used."""
        full_scale = self.config.converters.adc_range
        for _ in range(MAX_RANGE_RETRIES):
            alpha = self.alpha
            self.counters.inv_solves += 1
            self.counters.conversions += 2 * self.n
            try:
                volts = self._inv.solve(alpha * self.config.converters.dac_range * codes)
            except SaturationError:
                self.alpha /= 4
                continue
            if self.adc.saturated(volts):
                self.alpha /= 4
                continue
            if np.max(np.abs(volts)) < full_scale / 4 and self.alpha < 1:
                self.alpha = min(1.0, self.alpha * 2)
            return self.adc.convert(volts), alpha
        raise SaturationError(
            f"INV outputs stay beyond the ADC range after {MAX_RANGE_RETRIES} range reductions"
        )

    def close(self) -> None:
        """Free the engine sessions (ngspice circuits)."""
        self._inv.close()
        for vmm in (self._vmm, self._low_vmm):
            if vmm is not None:
                vmm.close()

    def __enter__(self) -> AnalogMachine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
