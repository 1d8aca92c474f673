"""Stopping rules: a scheme run records its passes here and is told when to stop.

A run works in the scaled system the crossbars hold, ``A~ y = b~`` with ``A~ = diag(r) A
diag(c)``, ``b~ = diag(r) b`` and ``x = diag(c) y`` (:meth:`Run.inv`, :meth:`Run.vmm`): every
decision (residuals, contraction, divergence) is then blind to how the user scaled the rows and
columns of ``A``. Stopping uses what hardware can see: the residual norm ``||b~ - A~ y|| /
||b~||`` from the VMM and the pass budget. ``effective_bits`` of ``x`` against float64 is
recorded for verification only.
"""

from __future__ import annotations

import math

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.config import Config
from rerinv.schemes.result import PassRecord, componentwise_bits, effective_bits

#: A pass "makes progress" when it lowers the best residual by at least this factor.
PROGRESS = 0.8

#: A residual above this many times ||b|| (worse than x = 0) on ``scheme.stall_passes``
#: consecutive passes, and not falling across them, means the loop diverged. One bad pass
#: never decides it, and a falling residual is never divergence (the first pass of a good loop
#: on an ill-conditioned matrix can leave a residual far above ||b||: its ADC error, small in
#: x, is multiplied by A).
DIVERGED_RESIDUAL = 4.0

#: Without progress, a residual this many times the best one seen means divergence.
GROWTH = 2.0


class Run:
    """Records passes and decides the loop's status from hardware-visible residuals.

    The run also keeps the iterate with the smallest *measured* residual: that is what the
    hardware returns (a later, worse pass never replaces it).
    """

    def __init__(self, machine: AnalogMachine, b, x_ref, config: Config, target_bits, max_passes):
        self.machine, self.x_ref = machine, x_ref
        self.col_scale = machine.col_scale
        self.b = machine.row_scale * np.asarray(b, dtype=float)  # b~
        self.b_norm = float(np.linalg.norm(self.b))
        self.target_bits = target_bits
        self.tolerance = 2.0 ** -(target_bits + config.scheme.margin_bits)
        self.step_tolerance = 2.0**-target_bits
        self.stall_passes = config.scheme.stall_passes
        self.max_passes = max_passes
        self.history: list[PassRecord] = []
        self.best = math.inf
        self.since_best = 0
        self.measured: list[float] = []  # measured residuals since the last change of loop
        self.best_correction = self.last_correction = math.inf  # refinement corrections
        self.shrinking = False  # the last correction was smaller than the one before
        self.y = np.zeros_like(self.b)
        self.y_best, self.best_measured = np.zeros_like(self.b), 1.0  # y = 0 has residual 1
        self.switches: list[tuple[int, str]] = []  # (pass, what the loop switched to)

    # -- the machine in the scaled system --------------------------------------------------
    def inv(self, v: np.ndarray) -> np.ndarray:
        return self.machine.scaled_inv(v)

    def vmm(self, y: np.ndarray) -> np.ndarray:
        return self.machine.scaled_vmm(y)

    def low_vmm(self, y: np.ndarray) -> np.ndarray:
        return self.machine.scaled_low_vmm(y)

    def norm(self, r: np.ndarray) -> float:
        """``||r|| / ||b~||`` of a scaled residual."""
        return float(np.linalg.norm(r)) / self.b_norm

    def residual(self, y: np.ndarray) -> float:
        """``||b~ - A~ y|| / ||b~||`` through the residual VMM."""
        return self.norm(self.b - self.vmm(y))

    # -- user units ------------------------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        """The last iterate, in the user's units."""
        return self.col_scale * self.y

    def answer(self, status: str) -> np.ndarray:
        """The iterate the hardware returns (user units): the last one when it converged (its
        residual was just measured), else the one with the smallest measured residual."""
        return self.col_scale * (self.y if status == "converged" else self.y_best)

    # -- bookkeeping -----------------------------------------------------------------------
    def record(
        self,
        y: np.ndarray,
        residual: float,
        judge_stall: bool = True,
        step: np.ndarray | None = None,
        correction: bool = False,
    ) -> str | None:
        """Store one pass; return the loop's final status, or None to go on.
        ``judge_stall=False`` for passes whose residual is an estimate (inside a Krylov
        cycle): they never decide stall or divergence and are never returned as the answer.
        ``step`` is what this pass added to ``y``: the loop converges only when the residual
        is below the tolerance *and* that step is below ``2**-target_bits`` of ``y`` (the error
        left is smaller than the last correction; a small residual alone does not bound the
        error of an ill-conditioned system). ``correction``: the step is a refinement
        correction, which measures the error the pass started from: a shrinking correction is
        progress even while the residual (of an ill-conditioned system, dominated by the ADC
        error of ``x`` multiplied by ``A``) is not."""
        self.y = y
        x = self.x
        counters = self.machine.counters
        finite = bool(np.all(np.isfinite(x)) and math.isfinite(residual))
        bits, worst = (
            (effective_bits(x, self.x_ref), componentwise_bits(x, self.x_ref))
            if np.all(np.isfinite(x))
            else (-math.inf, -math.inf)
        )
        self.history.append(
            PassRecord(
                bits,
                residual,
                counters.inv_solves,
                counters.vmm_ops,
                worst,
                self.machine.preconditioner,
            )
        )
        if not finite:
            return "diverged"
        if judge_stall and self.machine.follow_unknowns(y):
            width = self.machine.residual.weight_bits
            self.switches.append((len(self.history), f"residual {width} bits for the unknowns"))
        if judge_stall and residual < self.best_measured:
            self.y_best, self.best_measured = y, residual
        if residual <= self.tolerance and self._step_small(y, step):
            return "converged"
        shrank = False
        if judge_stall and not correction:
            self.shrinking = False  # a Krylov iterate: no correction to judge it by
        if judge_stall and correction and step is not None:
            size = float(np.max(np.abs(step)))
            shrank = size < self.best_correction * PROGRESS
            self.shrinking = size < self.last_correction
            self.best_correction = min(self.best_correction, size)
            self.last_correction = size
        if residual < self.best * PROGRESS or shrank:
            self.best, self.since_best = min(self.best, residual), 0
        elif judge_stall:
            self.best = min(self.best, residual)
            self.since_best += 1
        if judge_stall:
            self.measured.append(residual)
            if self._diverging():
                return "diverged"
        if self.since_best >= self.stall_passes:
            # no progress for a while: growing well past the best is divergence
            return "diverged" if residual > GROWTH * self.best else "stalled"
        if len(self.history) >= self.max_passes:
            return "max_passes"
        return None

    def _step_small(self, y: np.ndarray, step: np.ndarray | None) -> bool:
        """The last step below ``2**-target_bits`` of the iterate, both in the user's units
        (``x = diag(c) y``: what the bits are counted in; the host applies ``c``)."""
        if step is None:
            return True
        size = float(np.max(np.abs(self.col_scale * step)))
        return size <= self.step_tolerance * float(np.max(np.abs(self.col_scale * y)))

    def _diverging(self) -> bool:
        """The last ``stall_passes`` measured residuals are all above
        :data:`DIVERGED_RESIDUAL` and the last is not below the first of them."""
        window = self.measured[-self.stall_passes :]
        return (
            len(window) == self.stall_passes
            and min(window) > DIVERGED_RESIDUAL
            and window[-1] >= window[0]
        )

    def restart_judgement(self) -> None:
        """Forget progress and divergence counts (after the loop changed what it does)."""
        self.best, self.since_best, self.measured = self.best_measured, 0, []
        self.best_correction = self.last_correction = math.inf

    def restart_point(self) -> np.ndarray:
        """Where a changed loop goes on from: the newest iterate while refinement corrections
        still shrink (the error is falling, whatever the residual says), else the iterate with
        the smallest measured residual."""
        return self.y if self.shrinking else self.y_best

    @property
    def passes_left(self) -> int:
        return self.max_passes - len(self.history)
