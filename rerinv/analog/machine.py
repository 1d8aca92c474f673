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
from rerinv.analog.blocks import make_inverse
from rerinv.analog.inv import InvCrossbar, resolve_scaling
from rerinv.analog.units import Counters, InvUnit, dac_slices_for
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError
from rerinv.hw.mapping import map_matrix
from rerinv.hw.scaling import equilibrate
from rerinv.matrices import check_matrix
from rerinv.seeds import spawn

__all__ = ["AnalogMachine", "Counters", "ResidualPlan"]

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


class AnalogMachine:
    """Programmed crossbars for ``a`` and the two operations the schemes may use.

    Parameters
    ----------
    a : numpy.ndarray
        The intended (full-precision) matrix.
    config : Config
        ``config.simulation.engine`` names the engine (``spice`` or ``nodal``);
        ``config.scheme`` the scaling, circuit route, block structure and residual widths.
    seed : int or numpy.random.SeedSequence
        Every programming and read-noise draw (INV arrays, residual VMM slices, A_L slices)
        flows from it.

    Attributes
    ----------
    unit : InvUnit or BlockInverse or BlockJacobi
        What ``inv`` runs on: one crossbar when ``a`` fits ``array.max_size``, else a block
        preconditioner (``scheme.blocks``).
    crossbar : InvCrossbar or None
        The single crossbar (route, scaling, shift); None for a block preconditioner.
    residual : ResidualPlan
        Widths of the residual VMM, the condition estimate they follow and the floor they set.
    """

    def __init__(self, a, config: Config, *, seed=0):
        self._seeds = dict(zip(("inv", "vmm", "low", "read"), spawn(seed, 4), strict=True))
        self.config = config
        self.engine = get_engine(config.simulation.engine, config.simulation.workers)
        self.a = check_matrix(a)
        self.n = self.a.shape[0]
        self.counters = Counters()
        read_rng = np.random.default_rng(self._seeds["read"])
        self._read_rng = read_rng
        self.unit = make_inverse(
            self.a, config, self.engine, self._seeds["inv"], self.counters, read_rng, level=0
        )
        self.blocks = not isinstance(self.unit, InvUnit)
        # the residual VMM holds diag(r) A diag(c); the scaling is undone in digital
        if self.blocks:
            self.scaling = resolve_scaling(self.a, config)
            self.row_scale, self.col_scale = equilibrate(self.a, self.scaling)
        else:
            arrays = self.unit.crossbar.arrays
            self.scaling, self.row_scale, self.col_scale = (
                arrays.scaling,
                arrays.row_scale,
                arrays.col_scale,
            )
        self._vmm = self._low_vmm = None
        self._kappa: float | None = None  # the hardware's condition estimate, when made
        self.residual = self._plan_residual()
        self._tune_dac()
        self._vmm = self._residual_vmm(self.a, self._seeds["vmm"], self.residual.weight_bits)

    @property
    def crossbar(self) -> InvCrossbar | None:
        return None if self.blocks else self.unit.crossbar

    @property
    def preconditioner(self) -> str:
        """What the INV crossbar holds now, in a few words (it can change during a run)."""
        return self.route if self.blocks else self.unit.crossbar.label

    @property
    def route(self) -> str:
        """inv | inv_shifted | ginv for one crossbar; blockamc | jacobi for blocks."""
        return self.config.scheme.blocks if self.blocks else self.unit.crossbar.route

    # -- the two operations --------------------------------------------------------------
    def inv(self, v: np.ndarray) -> np.ndarray:
        """``~A^-1 v`` through DAC slices, the INV crossbar(s) and the ADC (user units)."""
        return self.unit(v)

    def vmm(self, x: np.ndarray) -> np.ndarray:
        """``~A x`` on the high-precision residual VMM."""
        return self._apply(self._vmm, x)

    def low_vmm(self, x: np.ndarray) -> np.ndarray:
        """``~A_L x`` with ``A_L = A - A_H`` (RePAST's A slicing), on its own bit-sliced VMM."""
        return self._apply(self._low(), x)

    # -- the same in the scaled system the crossbars hold -----------------------------------
    # ``A~ = diag(r) A diag(c)``, ``b~ = diag(r) b``, ``x = diag(c) y``: a loop that works on
    # these sees neither the row nor the column scaling of the user's matrix.
    def scaled_inv(self, v: np.ndarray) -> np.ndarray:
        """``~A~^-1 v`` (``inv`` in the scaled system)."""
        v = np.asarray(v, dtype=float)
        rows, cols = self._scales(v)
        return self.inv(v / rows) / cols

    def scaled_vmm(self, y: np.ndarray) -> np.ndarray:
        """``~A~ y`` (``vmm`` in the scaled system)."""
        return self._count(self._vmm, y)

    def scaled_low_vmm(self, y: np.ndarray) -> np.ndarray:
        """``~A~_L y`` (``low_vmm`` in the scaled system)."""
        return self._count(self._low(), y)

    def _scales(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if v.ndim == 2:
            return self.row_scale[:, None], self.col_scale[:, None]
        return self.row_scale, self.col_scale

    # -- helpers ---------------------------------------------------------------------------
    def _low(self):
        """RePAST's ``A_L`` VMM, built on first use: ``A - A_H`` with ``A_H`` the (sliced)
        ``device.bits`` matrix the INV crossbar is meant to hold."""
        if self._low_vmm is None:
            if self.blocks:
                raise InputError(
                    "RePAST's A slicing needs one INV crossbar; for a matrix larger than "
                    "array.max_size use scheme auto, refine or krylov"
                )
            arrays, sign = self.crossbar.arrays, self.crossbar.sign
            target = map_matrix(  # A_H: the target of what the crossbar holds
                sign * self.a,
                self.config.device,
                scaling=arrays.scaling,
                shift=arrays.shift,
                slices=arrays.slices,
            )
            self._low_vmm = self._residual_vmm(
                self.a - sign * target.implemented_matrix(), self._seeds["low"], 16
            )
        return self._low_vmm

    def _residual_vmm(self, w, seed, weight_bits):
        scaled = self.row_scale[:, None] * w * self.col_scale[None, :]
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
        kappa = self._condition()
        auto = int(np.clip(math.ceil(target + math.log2(kappa) + RESIDUAL_MARGIN_BITS), 16, 52))
        weight = scheme.vmm_weight_bits or auto
        inputs = scheme.vmm_input_bits or auto
        floor = min(weight, inputs) - math.log2(kappa)
        return ResidualPlan(weight, inputs, kappa, floor, "auto")

    def add_slice(self) -> bool:
        """Re-program the INV crossbar on one more slice (a rewrite, counted in
        ``counters.reprograms``); False when that is not possible (generalised inverse, block
        preconditioner, most slices already)."""
        if not self.unit.add_slice():
            return False
        # the finer crossbar sees more of the spectrum: estimate again (a crossbar that could
        # not hold the smallest eigenvalues underestimates kappa), and let the DAC slices and
        # an automatic residual follow the larger estimate
        previous, self._kappa = self.residual, None
        self._tune_dac()
        plan = self._plan_residual()
        if plan.source == "auto" and plan.weight_bits > previous.weight_bits:
            self.residual = plan
            self._vmm.close()
            self._vmm = self._residual_vmm(self.a, self._seeds["vmm"], plan.weight_bits)
        return True

    def _condition(self) -> float:
        if self._kappa is None:
            self._kappa = self.condition_estimate()
        return self._kappa

    def _tune_dac(self) -> None:
        """``scheme.dac_slices = 0`` (auto): as many DAC slices as the estimated condition
        number needs (:func:`rerinv.analog.units.dac_slices_for`)."""
        if self.config.scheme.dac_slices == 0:
            bits = self.config.converters.dac_bits
            self.unit.set_dac_slices(dac_slices_for(self._condition(), bits))

    def widen_residual(self, extra_bits: int) -> bool:
        """Rebuild an automatic residual VMM ``extra_bits`` wider (at most 52); False when the
        widths are configured, digital or already at 52."""
        plan = self.residual
        if plan.source != "auto" or min(plan.weight_bits, plan.input_bits) >= 52:
            return False
        widths = (plan.weight_bits, plan.input_bits)
        self._rebuild_residual(*(min(52, b + extra_bits) for b in widths))
        return True

    def follow_unknowns(self, y: np.ndarray) -> bool:
        """Widen an automatic residual VMM by the bits the column scaling costs the user's
        answer: the hardware resolves ``y`` to a fraction of its largest entry, and ``x =
        diag(c) y`` magnifies that error by ``max(c) ||y|| / ||diag(c) y||`` relative to ``x``
        (1 when the scaling does not spread the unknowns; up to the spread of ``c``). True
        when it widened."""
        plan = self.residual
        x_norm = float(np.max(np.abs(self.col_scale * y)))
        if plan.source != "auto" or x_norm == 0.0 or not np.all(np.isfinite(y)):
            return False
        magnification = float(np.max(self.col_scale) * np.max(np.abs(y))) / x_norm
        target = self.config.simulation.target_bits
        need = math.log2(plan.condition_estimate) + RESIDUAL_MARGIN_BITS + target
        need = int(min(52, math.ceil(need + math.log2(magnification))))
        if need <= min(plan.weight_bits, plan.input_bits):
            return False
        self._rebuild_residual(max(need, plan.weight_bits), max(need, plan.input_bits))
        return True

    def _rebuild_residual(self, weight: int, inputs: int) -> None:
        kappa = self.residual.condition_estimate
        self.residual = ResidualPlan(
            weight, inputs, kappa, min(weight, inputs) - math.log2(kappa), "auto"
        )
        self._vmm.close()
        self._vmm = self._residual_vmm(self.a, self._seeds["vmm"], weight)

    def condition_estimate(self) -> float:
        """``kappa_inf`` of the scaled matrix the residual VMM holds, as the hardware can form
        it: ``||A~||_inf`` (digital, the host programs A~) times ``||A~^-1||_inf`` estimated
        from :data:`CONDITION_SOLVES` INV solves (from all ones and from seeded random signs,
        each followed by the signs of its solution: Hager's idea with the analog inverse). A
        shifted preconditioner hides the smallest eigenvalues, so its shift bounds the
        estimate from below (``1 / shift``)."""
        rows, cols = self.row_scale, self.col_scale
        scaled = rows[:, None] * self.a * cols[None, :]
        norm = float(np.max(np.abs(scaled).sum(axis=1)))
        inverse_norm = 0.0
        random_signs = np.where(self._read_rng.random(self.n) < 0.5, -1.0, 1.0)
        v = np.column_stack([np.ones(self.n), random_signs])  # all ones: exact for M-matrices
        for _ in range(CONDITION_SOLVES // 2):  # the two starts side by side, one batch
            z = self.inv(v / rows[:, None]) / cols[:, None]  # A~^-1 v
            inverse_norm = max(inverse_norm, float(np.max(np.abs(z))))
            v = np.where(z < 0, -1.0, 1.0)
        kappa = norm * inverse_norm
        if self.crossbar is not None and self.crossbar.arrays.shift:
            kappa = max(kappa, 1.0 / self.crossbar.arrays.shift)
        return max(kappa, 1.0)

    def _apply(self, vmm, x) -> np.ndarray:
        return self._count(vmm, np.asarray(x, dtype=float) / self.col_scale) / self.row_scale

    def _count(self, vmm, y) -> np.ndarray:
        """``vmm(y)`` in the scaled system, its operations counted."""
        ops, conversions = vmm.ops, vmm.conversions
        out = vmm(np.asarray(y, dtype=float))
        self.counters.vmm_ops += vmm.ops - ops
        self.counters.conversions += vmm.conversions - conversions
        return out

    def close(self) -> None:
        """Free the engine sessions (ngspice circuits)."""
        self.unit.close()
        for vmm in (self._vmm, self._low_vmm):
            if vmm is not None:
                vmm.close()

    def __enter__(self) -> AnalogMachine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
