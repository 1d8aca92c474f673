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

import math
from dataclasses import dataclass

import numpy as np

from rerinv.analog.bitsliced import BitSlicedVMM, DigitalVMM
from rerinv.analog.inv import build_preconditioner, output_factor, stabilised_inv
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import SaturationError
from rerinv.hw.converters import Converter
from rerinv.hw.mapping import map_matrix, read_conductances
from rerinv.seeds import spawn

MAX_RANGE_RETRIES = 12


#: Residual widths (auto) exceed target + log2(kappa) by this many bits.
RESIDUAL_MARGIN_BITS = 3.0

#: INV solves of the condition estimate (Hager-style sign iterations).
CONDITION_SOLVES = 4


@dataclass(frozen=True)
class ResidualPlan:
    """Widths of the high-precision residual VMM and the accuracy floor they set."""

    weight_bits: int
    input_bits: int
    condition_estimate: float  #: kappa_inf of the scaled matrix (nan when not estimated)
    floor_bits: float  #: about min(widths) - log2(kappa): bits the residual can resolve
    source: str  #: auto | configured | digital (float64)


@dataclass
class Counters:
    """Operations used so far (conversions count single DAC/ADC samples)."""

    inv_solves: int = 0
    vmm_ops: int = 0
    conversions: int = 0
    reprograms: int = 0  #: INV crossbar rewrites (a larger stabilising shift)


class AnalogMachine:
    """Programmed crossbars for ``a`` and the two operations the schemes may use.

    Parameters
    ----------
    a : numpy.ndarray
        The intended (full-precision) matrix.
    config : Config
        ``config.simulation.engine`` names the engine (``spice`` or ``nodal``);
        ``config.scheme`` the scaling, circuit route and residual widths.
    seed : int or numpy.random.SeedSequence
        Every programming and read-noise draw (INV arrays, residual VMM slices, A_L slices)
        flows from it.

    Attributes
    ----------
    crossbar : InvCrossbar
        The crossbar holding the preconditioner (``crossbar.route``: inv, inv_shifted, ginv).
    residual : ResidualPlan
        Widths of the residual VMM, the condition estimate they follow and the floor they set.
    """

    def __init__(self, a, config: Config, *, seed=0):
        self._seeds = dict(zip(("inv", "vmm", "low", "read"), spawn(seed, 4), strict=True))
        self.config = config
        self.engine = get_engine(config.simulation.engine)
        self.crossbar = build_preconditioner(a, config, seed=self._seeds["inv"])
        self.a = self.crossbar.matrix
        self.n = self.a.shape[0]
        self.counters = Counters()
        self.dac = Converter(config.converters.dac_bits, 1.0)  # codes in units of full scale
        self.adc = Converter(config.converters.adc_bits, config.converters.adc_range)
        self.alpha = 1.0
        self._read_rng = np.random.default_rng(self._seeds["read"])
        self._inv = None if config.device.read_noise else self.engine.load(self.crossbar.circuit)
        self._vmm = self._low_vmm = None
        self.residual = self._plan_residual()
        # the residual VMMs hold diag(r) A diag(c); the scaling is undone in digital
        self._vmm = self._residual_vmm(self.a, self._seeds["vmm"], self.residual.weight_bits)

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
            arrays, sign = self.crossbar.arrays, self.crossbar.sign
            target = map_matrix(  # A_H: the target of what the crossbar holds
                sign * self.a, self.config.device, scaling=arrays.scaling, shift=arrays.shift
            )
            self._low_vmm = self._residual_vmm(
                self.a - sign * target.implemented_matrix(), self._seeds["low"], 16
            )
        return self._apply(self._low_vmm, x)

    # -- helpers ---------------------------------------------------------------------------
    def _residual_vmm(self, w, seed, weight_bits):
        arrays = self.crossbar.arrays
        scaled = arrays.row_scale[:, None] * w * arrays.col_scale[None, :]
        if self.config.scheme.residual == "digital" or not scaled.any():
            return DigitalVMM(scaled)
        return BitSlicedVMM(
            scaled,
            self.config,
            self.engine,
            seed,
            weight_bits=weight_bits,
            input_bits=self.residual.input_bits,
        )

    def _plan_residual(self) -> ResidualPlan:
        """Residual widths: as configured, or (0 = auto) ``target + log2(kappa) + margin``
        with ``kappa`` estimated by the hardware itself (INV solves, counted)."""
        scheme, target = self.config.scheme, self.config.simulation.target_bits
        if scheme.residual == "digital":
            return ResidualPlan(52, 52, math.nan, math.inf, "digital (float64)")
        if scheme.vmm_weight_bits and scheme.vmm_input_bits:
            return ResidualPlan(
                scheme.vmm_weight_bits, scheme.vmm_input_bits, math.nan, math.nan, "configured"
            )
        kappa = self.condition_estimate()
        auto = int(np.clip(math.ceil(target + math.log2(kappa) + RESIDUAL_MARGIN_BITS), 16, 52))
        weight = scheme.vmm_weight_bits or auto
        inputs = scheme.vmm_input_bits or auto
        floor = min(weight, inputs) - math.log2(kappa)
        return ResidualPlan(weight, inputs, kappa, floor, "auto")

    def stiffen(self) -> bool:
        """Re-program the INV crossbar with the next larger stabilising diagonal shift (a
        rewrite of the arrays, counted in ``counters.reprograms``); False for the
        generalised-inverse circuit or when no larger shift is stable."""
        if self.crossbar.route == "ginv":
            return False
        shifted = stabilised_inv(
            self.crossbar, self._seeds["inv"], above=self.crossbar.arrays.shift
        )
        if shifted is None:
            return False
        if self._inv is not None:
            self._inv.close()
            self._inv = self.engine.load(shifted.circuit)
        self.crossbar = shifted
        self.counters.reprograms += 1
        self.alpha = 1.0
        return True

    def widen_residual(self, extra_bits: int) -> bool:
        """Rebuild an automatic residual VMM ``extra_bits`` wider (at most 52); False when the
        widths are configured, digital or already at 52."""
        plan = self.residual
        if plan.source != "auto" or min(plan.weight_bits, plan.input_bits) >= 52:
            return False
        weight, inputs = (min(52, b + extra_bits) for b in (plan.weight_bits, plan.input_bits))
        kappa = plan.condition_estimate
        self.residual = ResidualPlan(
            weight, inputs, kappa, min(weight, inputs) - math.log2(kappa), "auto"
        )
        self._vmm.close()
        self._vmm = self._residual_vmm(self.a, self._seeds["vmm"], weight)
        return True

    def condition_estimate(self) -> float:
        """``kappa_inf`` of the scaled matrix the residual VMM holds, as the hardware can form
        it: ``||A~||_inf`` (digital, the host programs A~) times ``||A~^-1||_inf`` estimated
        from :data:`CONDITION_SOLVES` INV solves (from all ones and from seeded random signs,
        each followed by the signs of its solution: Hager's idea with the analog inverse). A
        shifted preconditioner hides the smallest eigenvalues, so its shift bounds the
        estimate from below (``1 / shift``)."""
        arrays = self.crossbar.arrays
        scaled = arrays.row_scale[:, None] * self.a * arrays.col_scale[None, :]
        norm = float(np.max(np.abs(scaled).sum(axis=1)))
        inverse_norm = 0.0
        random_signs = np.where(self._read_rng.random(self.n) < 0.5, -1.0, 1.0)
        for start in (np.ones(self.n), random_signs):  # all ones: exact for M-matrices
            v = start
            for _ in range(CONDITION_SOLVES // 2):
                z = self.inv(v / arrays.row_scale) / arrays.col_scale  # A~^-1 v
                inverse_norm = max(inverse_norm, float(np.max(np.abs(z))))
                v = np.where(z < 0, -1.0, 1.0)
        kappa = norm * inverse_norm
        if arrays.shift:
            kappa = max(kappa, 1.0 / arrays.shift)
        return max(kappa, 1.0)

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
                volts = self._inv_read(alpha * self.config.converters.dac_range * codes)
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

    def _inv_read(self, inputs: np.ndarray) -> np.ndarray:
        """One INV solve; with read noise, on a fresh read of the programmed arrays."""
        if self._inv is not None:
            return self._inv.solve(inputs)
        noisy = read_conductances(self.crossbar.arrays, self.config.device, self._read_rng)
        session = self.engine.load(self.crossbar.circuit_for(noisy))
        try:
            return session.solve(inputs)
        finally:
            session.close()

    def close(self) -> None:
        """Free the engine sessions (ngspice circuits)."""
        if self._inv is not None:
            self._inv.close()
        for vmm in (self._vmm, self._low_vmm):
            if vmm is not None:
                vmm.close()

    def __enter__(self) -> AnalogMachine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
