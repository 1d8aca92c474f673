"""K-FAC (Martens and Grosse, 2015) and KFC (Grosse and Martens, 2016), with the factor
inverses from a backend.

Per layer ``l`` the Fisher block is approximated by ``A_l (x) G_l``. A dense layer gives
``A_l = E[a a^T]`` over the homogeneous layer inputs (with the bias 1) and ``G_l = E[g g^T]``
over the output gradients for targets *sampled from the model* (true Fisher). A convolution
(KFC) has the patches ``a_t`` and output gradients ``g_t`` of its ``|T|`` locations: under
KFC's independence, spatial homogeneity and spatially uncorrelated derivatives the block is
``Omega (x) Gamma`` with ``Omega = E[sum_t a_t a_t^T]`` and ``Gamma = E[g_t g_t^T]`` (one
location), and here ``A_l`` is the mean over batch *and* locations of ``a_t a_t^T`` while
``G_l = E[sum_t g_t g_t^T]`` (``|T|`` times the mean over locations): the same product, with
``|T|`` carried by ``G``. Both are exponential running averages (decay
``min(decay, 1 - 1/(t+1))``, so the first steps are plain averages).

Damping is factored Tikhonov damping: ``A + pi sqrt(lambda) I`` and ``G + sqrt(lambda)/pi I``
with ``pi = sqrt((tr A / dim A) / (tr G / dim G))`` (pi-damping; ``pi = 1`` when switched off).
The damped factors are inverted by the backend every ``inverse_every`` steps (stale in
between), and the step is ``-lr * nu * V`` with ``V_l = G^-1 grad_l A^-1`` and KL-clipping
``nu = min(1, sqrt(kl_clip / (lr^2 sum_l <V_l, grad_l>)))`` (Ba, Grosse and Martens, 2017),
plus optional heavy-ball momentum. The sum is *signed*: an inexact inverse can give a layer
direction with ``<V_l, grad_l> <= 0`` (no descent); such layers are counted every step
(:attr:`Kfac.last_products`, :attr:`Kfac.non_descent_by_layer`), and when the whole sum is
``<= 0`` there is no KL estimate to clip with and ``nu = 1``.

Adaptive damping (optional) is the Levenberg-Marquardt rule of Martens and Grosse (2015,
section 6.5): every ``adapt_every`` (``T1``) steps the caller measures the reduction ratio
``rho = (h(w + d) - h(w)) / M(d)`` of the batch loss against its quadratic model (see
:func:`rerinv.nn.network.reduction_ratio`) and :meth:`Kfac.adapt_damping` multiplies
``lambda`` by ``omega = (19/20)**T1`` when ``rho > 3/4`` and divides it by ``omega`` when
``rho < 1/4``. A new ``lambda`` reaches the factors at the next inverse update.

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

    lr: float = 1.0  #: learning rate
    damping: float = 0.003  #: Tikhonov lambda, split over the two factors (see module doc)
    pi_damping: bool = True  #: factored (pi) damping; else sqrt(lambda) on both factors
    decay: float = 0.95  #: running-average decay of the factors
    inverse_every: int = 10  #: T_inv: steps between inverse updates
    kl_clip: float = 0.1  #: KL-clipping budget (nats); 0 switches clipping off
    momentum: float = 0.0  #: heavy-ball momentum on the K-FAC step
    adaptive_damping: bool = False  #: Levenberg-Marquardt adaptation of lambda (module doc)
    adapt_every: int = 5  #: T1: steps between adaptations; omega = (19/20)**T1
    min_damping: float = 1e-8  #: adaptive lambda never goes below this
    max_damping: float = 1.0  #: ... nor above this

    def validate(self) -> None:
        if not (self.lr > 0 and self.damping > 0 and self.kl_clip >= 0):
            raise InputError("K-FAC lr and damping must be > 0 and kl_clip >= 0")
        bounded = 0 < self.min_damping <= self.damping <= self.max_damping
        if self.adapt_every < 1 or (self.adaptive_damping and not bounded):
            raise InputError(
                "adaptive damping needs adapt_every >= 1 and 0 < min_damping <= damping <= "
                f"max_damping, got {self.adapt_every}, {self.min_damping} <= {self.damping} "
                f"<= {self.max_damping}"
            )
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
    blocks: int  #: crossbar blocks per side (1: the factor fits one crossbar)
    wall_time: float  #: seconds
    error: str  #: "" or why the backend failed (the previous inverse was kept)
    route: str = ""  #: what held the factor (analog: e.g. "inv 2x2 tiles"); "" digital

    @classmethod
    def of(cls, step: int, layer: int, k: int, matrix: np.ndarray, added: float, outcome):
        """The event of inverting ``matrix`` (factor ``k``: 0 = A, 1 = G, damped by ``added``)
        with the backend's :class:`InverseOutcome`."""
        bits = outcome.column_bits
        return cls(
            step=step,
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
            route=outcome.route,
        )


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
        self.damping = float(settings.damping)  #: lambda now (adaptive damping changes it)
        self.last_products = np.full(len(factor_sizes), np.nan)  #: <V_l, grad_l>, last step
        self.non_descent_by_layer = np.zeros(len(factor_sizes), dtype=np.int64)

    @staticmethod
    def statistics(a: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batch's ``(A, G)``: dense ``a`` (B, dim A), ``g`` (B, dim G) give the batch
        means of ``a a^T`` and ``g g^T``; convolutional (B, T, dim) arrays give ``A`` = the
        mean over batch and locations and ``G`` = the batch mean of the sum over locations
        (KFC, see the module docstring)."""
        batch = a.shape[0]
        a2, g2 = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
        return a2.T @ a2 / a2.shape[0], g2.T @ g2 / batch

    def update_factors(self, inputs: list[np.ndarray], pre_grads: list[np.ndarray]) -> None:
        """Fold one batch's statistics into the running averages: ``inputs[l]`` are the
        homogeneous layer inputs, (B, dim A) or (B, T, dim A), ``pre_grads[l]`` the sampled
        output gradients, (B, dim G) or (B, T, dim G) (see :meth:`statistics`)."""
        t = self.step_count
        rho = min(self.settings.decay, 1.0 - 1.0 / (t + 1))
        for layer, (a, g) in enumerate(zip(inputs, pre_grads, strict=True)):
            for k, stat in enumerate(self.statistics(a, g)):
                self.factors[layer][k] = rho * self.factors[layer][k] + (1.0 - rho) * stat

    def damped_factors(self, layer: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(A + dA I, G + dG I, dA, dG)`` of ``layer``."""
        a, g = self.factors[layer]
        root = np.sqrt(self.damping)
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
                self.events.append(
                    InverseEvent.of(self.step_count, layer, k, matrix, added, outcome)
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
        self.last_products = np.array(
            [float(np.sum(v * g)) for v, g in zip(natural, grads, strict=True)]
        )
        self.non_descent_by_layer += self.last_products <= 0
        nu = 1.0
        quad = float(np.sum(self.last_products))  # signed: see the module docstring
        if s.kl_clip > 0 and quad > 0:
            nu = min(1.0, float(np.sqrt(s.kl_clip / (s.lr**2 * quad))))
        delta = [-s.lr * nu * v for v in natural]
        if s.momentum > 0:
            if self.velocity is None:
                self.velocity = [np.zeros_like(d) for d in delta]
            self.velocity = [s.momentum * v + d for v, d in zip(self.velocity, delta, strict=True)]
            delta = self.velocity
        self.step_count += 1
        return delta, nu

    @property
    def non_descent(self) -> int:
        """Layers whose direction of the last step had ``<V_l, grad_l> <= 0``."""
        return int(np.sum(self.last_products <= 0))

    def adapt_due(self) -> bool:
        """Whether the step just taken is one where adaptive damping measures ``rho``."""
        s = self.settings
        return s.adaptive_damping and self.step_count % s.adapt_every == 0

    def adapt_damping(self, rho: float) -> float:
        """The Levenberg-Marquardt rule on the reduction ratio ``rho``; returns the new
        lambda (kept within ``[min_damping, max_damping]``)."""
        s = self.settings
        omega = (19.0 / 20.0) ** s.adapt_every
        if rho > 0.75:
            self.damping *= omega
        elif rho < 0.25:
            self.damping /= omega
        self.damping = float(np.clip(self.damping, s.min_damping, s.max_damping))
        return self.damping
