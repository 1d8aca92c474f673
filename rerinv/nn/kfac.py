"""K-FAC (Martens and Grosse, 2015) for MLPs, with the factor inverses from a backend.

Per layer ``l`` the Fisher block is approximated by ``A_l (x) G_l``: ``A_l = E[a a^T]`` over the
homogeneous layer inputs (with the bias 1) and ``G_l = E[g g^T]`` over the pre-activation
gradients for targets *sampled from the model* (true Fisher). Both are exponential running
averages (decay ``min(decay, 1 - 1/(t+1))``, so the first steps are plain averages).

Damping is factored Tikhonov damping: ``A + pi sqrt(lambda) I`` and ``G + sqrt(lambda)/pi I``
with ``pi = sqrt((tr A / dim A) / (tr G / dim G))`` (pi-damping; ``pi = 1`` when switched off).
The damped factors are inverted by the backend every ``inverse_every`` steps (stale in
between), and the step is ``-lr * nu * G^-1 grad A^-1`` with KL-clipping
``nu = min(1, sqrt(kl_clip / (lr^2 sum_l |<V_l, grad_l>|)))`` (Ba, Grosse and Martens, 2017),
plus optional heavy-ball momentum.

An inverse the backend cannot make (an unstable crossbar, a railed solve) keeps the factor's
previous inverse; on the very first update it falls back to ``I / mean(diag)`` (digital and
cheap). Every inverse update is recorded as an :class:`InverseEvent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rerinv.errors import InputError
from rerinv.nn.backends import InverseBackend
from rerinv.seeds import Seed, seed_sequence

FACTOR_KINDS = ("A", "G")


@dataclass(frozen=True)
class KfacSettings:
    """K-FAC hyper-parameters (dimensionless unless stated)."""

    lr: float = 0.5  #: learning rate
    damping: float = 0.01  #: Tikhonov lambda, split over the two factors (see module doc)
    pi_damping: bool = True  #: factored (pi) damping; else sqrt(lambda) on both factors
    decay: float = 0.95  #: running-average decay of the factors
    inverse_every: int = 10  #: T_inv: steps between inverse updates
    kl_clip: float = 0.01  #: KL-clipping budget (nats); 0 switches clipping off
    momentum: float = 0.0  #: heavy-ball momentum on the K-FAC step

    def validate(self) -> None:
        if not (self.lr > 0 and self.damping > 0 and self.kl_clip >= 0):
            raise InputError("K-FAC lr and damping must be > 0 and kl_clip >= 0")
        if not 0.0 <= self.decay < 1.0 or not 0.0 <= self.momentum < 1.0:
            raise InputError("K-FAC decay and momentum must be in [0, 1)")
        if self.inverse_every < 1:
            raise InputError(f"inverse_every (T_inv) must be >= 1, got {self.inverse_every}")


@dataclass
class InverseEvent:
    """One factor inverse made during training."""

    step: int
    layer: int
    kind: str  #: "A" or "G"
    size: int
    damping: float  #: the multiple of I added to this factor
    condition: float  #: 2-norm condition number of the damped factor
    min_bits: float  #: worst column's effective bits (inf for float64)
    median_bits: float
    inv_solves: int
    vmm_ops: int
    passes: int
    blocks: int
    wall_time: float  #: seconds
    error: str  #: "" or why the backend failed (the previous inverse was kept)


#: ``capture(step, layer, kind, damped_factor, damping)``: called for every damped factor
#: before it is inverted (factor capture for the real-matrix suites).
Capture = Callable[[int, int, str, np.ndarray, float], None]


class Kfac:
    """K-FAC state: running factors, their current inverses, momentum.

    Parameters
    ----------
    factor_sizes : list of (int, int)
        ``(dim A, dim G)`` per layer.
    settings : KfacSettings
    backend : InverseBackend
        Makes the factor inverses.
    seed : int or numpy.random.SeedSequence
        Root of the hardware draws: inverse update ``u`` of factor ``f`` programs its crossbar
        from ``SeedSequence(entropy, spawn_key=(*key, u, f))``.
    capture : callable, optional
        See :data:`Capture`.
    """

    def __init__(
        self,
        factor_sizes: list[tuple[int, int]],
        settings: KfacSettings,
        backend: InverseBackend,
        *,
        seed: Seed = 0,
        capture: Capture | None = None,
    ):
        settings.validate()
        self.settings, self.backend, self.capture = settings, backend, capture
        self.sizes = factor_sizes
        self.factors = [[np.zeros((a, a)), np.zeros((g, g))] for a, g in factor_sizes]
        self.inverses: list[list[np.ndarray | None]] = [[None, None] for _ in factor_sizes]
        self.velocity: list[np.ndarray] | None = None
        self.events: list[InverseEvent] = []
        self.updates = 0
        self._seed = seed_sequence(seed)
        self.step_count = 0

    def update_factors(self, inputs: list[np.ndarray], pre_grads: list[np.ndarray]) -> None:
        """Fold one batch's statistics into the running averages: ``inputs[l]`` are the
        homogeneous layer inputs (B, dim A), ``pre_grads[l]`` the sampled pre-activation
        gradients (B, dim G)."""
        t = self.step_count
        rho = min(self.settings.decay, 1.0 - 1.0 / (t + 1))
        for layer, (a, g) in enumerate(zip(inputs, pre_grads, strict=True)):
            batch = a.shape[0]
            for k, stat in enumerate((a.T @ a / batch, g.T @ g / batch)):
                self.factors[layer][k] = rho * self.factors[layer][k] + (1.0 - rho) * stat

    def damped_factors(self, layer: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(A + dA I, G + dG I, dA, dG)`` of ``layer``."""
        a, g = self.factors[layer]
        root = np.sqrt(self.settings.damping)
        pi = 1.0
        if self.settings.pi_damping:
            ta, tg = np.trace(a) / a.shape[0], np.trace(g) / g.shape[0]
            pi = float(np.sqrt(ta / tg)) if ta > 0 and tg > 0 else 1.0
        da, dg = pi * root, root / pi
        return a + da * np.eye(a.shape[0]), g + dg * np.eye(g.shape[0]), da, dg

    def refresh_inverses(self) -> None:
        """Invert every damped factor with the backend (one inverse update)."""
        u = self.updates
        for layer in range(len(self.sizes)):
            a_d, g_d, da, dg = self.damped_factors(layer)
            for k, (matrix, added) in enumerate(((a_d, da), (g_d, dg))):
                f = 2 * layer + k
                if self.capture is not None:
                    self.capture(self.step_count, layer, FACTOR_KINDS[k], matrix, added)
                seed = np.random.SeedSequence(
                    self._seed.entropy, spawn_key=(*self._seed.spawn_key, u, f)
                )
                outcome = self.backend.invert(matrix, seed=seed)
                bits = outcome.column_bits
                self.events.append(
                    InverseEvent(
                        step=self.step_count,
                        layer=layer,
                        kind=FACTOR_KINDS[k],
                        size=matrix.shape[0],
                        damping=float(added),
                        condition=float(np.linalg.cond(matrix)),
                        min_bits=float(np.min(bits)) if bits.size else float("nan"),
                        median_bits=float(np.median(bits)) if bits.size else float("nan"),
                        inv_solves=outcome.inv_solves,
                        vmm_ops=outcome.vmm_ops,
                        passes=outcome.passes,
                        blocks=outcome.blocks,
                        wall_time=outcome.wall_time,
                        error=outcome.error,
                    )
                )
                if outcome.inverse is not None:
                    self.inverses[layer][k] = outcome.inverse
                elif self.inverses[layer][k] is None:
                    self.inverses[layer][k] = np.eye(matrix.shape[0]) / np.mean(np.diag(matrix))
        self.updates += 1

    def step(self, grads: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        """The parameter changes for ``grads`` (refreshing the inverses when due) and the
        KL-clipping factor ``nu`` used."""
        s = self.settings
        if self.step_count % s.inverse_every == 0:
            self.refresh_inverses()
        natural = [
            inv_g @ grad @ inv_a for grad, (inv_a, inv_g) in zip(grads, self.inverses, strict=True)
        ]
        nu = 1.0
        if s.kl_clip > 0:
            quad = sum(abs(float(np.sum(v * g))) for v, g in zip(natural, grads, strict=True))
            if quad > 0:
                nu = min(1.0, float(np.sqrt(s.kl_clip / (s.lr**2 * quad))))
        delta = [-s.lr * nu * v for v in natural]
        if s.momentum > 0:
            if self.velocity is None:
                self.velocity = [np.zeros_like(d) for d in delta]
            self.velocity = [s.momentum * v + d for v, d in zip(self.velocity, delta, strict=True)]
            delta = self.velocity
        self.step_count += 1
        return delta, nu
