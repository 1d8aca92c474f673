"""First-order baselines: SGD with heavy-ball momentum, and Adam (Kingma and Ba, 2015)."""

from __future__ import annotations

import numpy as np

from rerinv.errors import InputError


class Sgd:
    """SGD with momentum: ``v <- mu v - lr g``, ``W <- W + v``."""

    def __init__(self, lr: float, momentum: float = 0.9):
        if not lr > 0 or not 0.0 <= momentum < 1.0:
            raise InputError(f"SGD needs lr > 0 and momentum in [0, 1), got {lr}, {momentum}")
        self.lr, self.momentum = lr, momentum
        self.velocity: list[np.ndarray] | None = None

    def step(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.velocity is None:
            self.velocity = [np.zeros_like(g) for g in grads]
        self.velocity = [
            self.momentum * v - self.lr * g for v, g in zip(self.velocity, grads, strict=True)
        ]
        return self.velocity


class Adam:
    """Adam with bias correction (``beta1 = 0.9``, ``beta2 = 0.999``, ``eps = 1e-8``)."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        if not lr > 0:
            raise InputError(f"Adam needs lr > 0, got {lr}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m: list[np.ndarray] | None = None
        self.v: list[np.ndarray] | None = None
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.m is None or self.v is None:
            self.m = [np.zeros_like(g) for g in grads]
            self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.m = [b1 * m + (1 - b1) * g for m, g in zip(self.m, grads, strict=True)]
        self.v = [b2 * v + (1 - b2) * g * g for v, g in zip(self.v, grads, strict=True)]
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        return [
            -self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
            for m, v in zip(self.m, self.v, strict=True)
        ]
