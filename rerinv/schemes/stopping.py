"""Stopping rules: a scheme run records its passes here and is told when to stop.

Stopping uses what hardware can see: the residual norm ``||b - A x|| / ||b||`` from the VMM
and the pass budget. ``effective_bits`` against float64 is recorded for verification only.
"""

from __future__ import annotations

import math

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.config import Config
from rerinv.schemes.result import PassRecord, effective_bits

#: A pass "makes progress" when it lowers the best residual by at least this factor.
PROGRESS = 0.8

#: A residual above this many times ||b|| (worse than x = 0) on ``scheme.stall_passes``
#: consecutive passes means the loop diverged (one bad pass alone never decides it).
DIVERGED_RESIDUAL = 4.0

#: Without progress, a residual this many times the best one seen means divergence.
GROWTH = 2.0


class Run:
    """Records passes and decides the loop's status from hardware-visible residuals.

    The run also keeps the iterate with the smallest *measured* residual: that is what the
    hardware returns (a later, worse pass never replaces it).
    """

    def __init__(self, machine: AnalogMachine, b, x_ref, config: Config, target_bits, max_passes):
        self.machine, self.b, self.x_ref = machine, b, x_ref
        self.b_norm = float(np.linalg.norm(b))
        self.tolerance = 2.0 ** -(target_bits + config.scheme.margin_bits)
        self.stall_passes = config.scheme.stall_passes
        self.max_passes = max_passes
        self.history: list[PassRecord] = []
        self.best = math.inf
        self.since_best = 0
        self.above = 0  # consecutive measured passes with residual > DIVERGED_RESIDUAL
        self.x = np.zeros_like(b)
        self.x_best, self.best_measured = np.zeros_like(b), 1.0  # x = 0 has residual 1
        self.switches: list[tuple[int, str]] = []  # (pass, what the loop switched to)

    def residual(self, x: np.ndarray) -> float:
        """``||b - A x|| / ||b||`` through the residual VMM."""
        return float(np.linalg.norm(self.b - self.machine.vmm(x))) / self.b_norm

    def record(self, x: np.ndarray, residual: float, judge_stall: bool = True) -> str | None:
        """Store one pass; return the loop's final status, or None to go on.
        ``judge_stall=False`` for passes whose residual is an estimate (inside a Krylov
        cycle): they never decide stall or divergence and are never returned as the answer."""
        self.x = x
        counters = self.machine.counters
        finite = bool(np.all(np.isfinite(x)) and math.isfinite(residual))
        bits = effective_bits(x, self.x_ref) if np.all(np.isfinite(x)) else -math.inf
        self.history.append(PassRecord(bits, residual, counters.inv_solves, counters.vmm_ops))
        if not finite:
            return "diverged"
        if judge_stall and residual < self.best_measured:
            self.x_best, self.best_measured = x, residual
        if residual <= self.tolerance:
            return "converged"
        if residual < self.best * PROGRESS:
            self.best, self.since_best = residual, 0
        elif judge_stall:
            self.best = min(self.best, residual)
            self.since_best += 1
        if judge_stall:
            self.above = self.above + 1 if residual > DIVERGED_RESIDUAL else 0
            if self.above >= self.stall_passes:
                return "diverged"
        if self.since_best >= self.stall_passes:
            # no progress for a while: growing well past the best is divergence
            return "diverged" if residual > GROWTH * self.best else "stalled"
        if len(self.history) >= self.max_passes:
            return "max_passes"
        return None

    def restart_judgement(self) -> None:
        """Forget progress and divergence counts (after the loop changed what it does)."""
        self.best, self.since_best, self.above = self.best_measured, 0, 0

    def answer(self, status: str) -> np.ndarray:
        """The iterate the hardware returns: the last one when it converged (its residual
        was just measured), else the one with the smallest measured residual."""
        return self.x if status == "converged" else self.x_best
