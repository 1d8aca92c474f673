"""A small multilayer perceptron in numpy: forward, backward, losses, the K-FAC statistics.

Layer ``l`` holds one weight matrix ``W_l`` of shape ``(out, in + 1)`` whose last column is the
bias, so ``s_l = [a_{l-1}, 1] W_l^T`` (pre-activations) and ``a_l = phi(s_l)``. The K-FAC
statistics of a layer are its homogeneous inputs ``[a_{l-1}, 1]`` (for the factor ``A``) and the
per-sample gradients of the loss with respect to ``s_l`` (for ``G``); the gradient of the
batch-mean loss is ``g^T [a, 1] / B``.

Losses (per sample, averaged over the batch): ``softmax`` outputs use the cross-entropy of the
class label (nats); ``sigmoid`` outputs use the Bernoulli cross-entropy summed over the output
units (nats per sample), as in the K-FAC autoencoder experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.errors import InputError

ACTIVATIONS = ("tanh", "relu")
OUTPUTS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class Architecture:
    """Layer widths ``sizes = (inputs, hidden..., outputs)``, hidden activation and output."""

    sizes: tuple[int, ...]
    activation: str = "tanh"
    output: str = "softmax"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(int(s) < 1 for s in self.sizes):
            raise InputError(f"layer sizes must be >= 2 positive widths, got {self.sizes}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if self.output not in OUTPUTS:
            raise InputError(f"output must be one of {', '.join(OUTPUTS)}")

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Weight shapes ``(out, in + 1)`` per layer."""
        return [(o, i + 1) for i, o in zip(self.sizes[:-1], self.sizes[1:], strict=True)]

    def factor_sizes(self) -> list[tuple[int, int]]:
        """K-FAC factor widths ``(A, G)`` per layer: ``(in + 1, out)``."""
        return [(i, o) for o, i in self.shapes]


def init_weights(arch: Architecture, rng: np.random.Generator) -> list[np.ndarray]:
    """Glorot-uniform weights and zero biases, drawn from ``rng``."""
    weights = []
    for out, inp in arch.shapes:
        limit = np.sqrt(6.0 / (inp - 1 + out))
        w = np.zeros((out, inp))
        w[:, :-1] = rng.uniform(-limit, limit, (out, inp - 1))
        weights.append(w)
    return weights


@dataclass
class Forward:
    """What a forward pass keeps for the backward pass."""

    inputs: list[np.ndarray]  #: homogeneous layer inputs ``[a_{l-1}, 1]``, (B, in + 1)
    pre: list[np.ndarray]  #: pre-activations ``s_l``, (B, out)

    @property
    def logits(self) -> np.ndarray:
        return self.pre[-1]


def _homogeneous(a: np.ndarray) -> np.ndarray:
    return np.hstack([a, np.ones((a.shape[0], 1))])


def forward(arch: Architecture, weights: list[np.ndarray], x: np.ndarray) -> Forward:
    """Forward pass of the batch ``x`` (B, inputs)."""
    inputs, pre = [], []
    a = x
    for index, w in enumerate(weights):
        a_bar = _homogeneous(a)
        s = a_bar @ w.T
        inputs.append(a_bar)
        pre.append(s)
        if index < len(weights) - 1:
            a = np.tanh(s) if arch.activation == "tanh" else np.maximum(s, 0.0)
    return Forward(inputs, pre)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def loss(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> float:
    """Batch-mean loss (nats per sample)."""
    if arch.output == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.mean(log_p[np.arange(len(y)), y]))
    return float(np.mean(np.sum(np.logaddexp(0.0, logits) - y * logits, axis=1)))


def accuracy(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> float:
    """Share of correctly classified samples (NaN for the autoencoder)."""
    if arch.output != "softmax":
        return float("nan")
    return float(np.mean(np.argmax(logits, axis=1) == y))


def output_gradient(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample gradient of the loss with respect to the logits, (B, outputs)."""
    if arch.output == "softmax":
        g = _softmax(logits)
        g[np.arange(len(y)), y] -= 1.0
        return g
    return _sigmoid(logits) - y


def sampled_output_gradient(
    arch: Architecture, logits: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-sample logit gradients for targets drawn from the model's own predictive
    distribution (the true Fisher that K-FAC approximates, not the empirical one)."""
    if arch.output == "softmax":
        p = _softmax(logits)
        u = rng.random((len(p), 1))
        drawn = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
        p[np.arange(len(p)), drawn] -= 1.0
        return p
    q = _sigmoid(logits)
    return q - (rng.random(q.shape) < q)


def backward(
    arch: Architecture, weights: list[np.ndarray], fwd: Forward, top: np.ndarray
) -> list[np.ndarray]:
    """Per-sample pre-activation gradients ``g_l`` (B, out) of every layer, from the logit
    gradient ``top``."""
    grads = [top]
    for index in range(len(weights) - 1, 0, -1):
        back = grads[0] @ weights[index][:, :-1]
        s = fwd.pre[index - 1]
        if arch.activation == "tanh":
            back = back * (1.0 - np.tanh(s) ** 2)
        else:
            back = back * (s > 0)
        grads.insert(0, back)
    return grads


def weight_gradients(fwd: Forward, pre_grads: list[np.ndarray]) -> list[np.ndarray]:
    """Gradients of the batch-mean loss with respect to every ``W_l``."""
    batch = fwd.inputs[0].shape[0]
    return [g.T @ a / batch for g, a in zip(pre_grads, fwd.inputs, strict=True)]
