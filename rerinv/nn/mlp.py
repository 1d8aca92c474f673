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
from rerinv.nn import losses
from rerinv.nn.layers import ACTIVATIONS, Activation, Dense
from rerinv.nn.losses import OUTPUTS
from rerinv.nn.network import Network


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


def network(arch: Architecture, name: str = "mlp") -> Network:
    """The same MLP as a :class:`~rerinv.nn.network.Network` (dense layers with the hidden
    activation between them; the same Glorot draws as :func:`init_weights`)."""
    layers: list = []
    for index, (n_in, n_out) in enumerate(zip(arch.sizes[:-1], arch.sizes[1:], strict=True)):
        if index:
            layers.append(Activation(arch.activation))
        layers.append(Dense(n_in, n_out))
    return Network((arch.sizes[0],), tuple(layers), arch.output, name)


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


def loss(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> float:
    """Batch-mean loss (nats per sample)."""
    return losses.loss(arch.output, logits, y)


def accuracy(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> float:
    """Share of correctly classified samples (NaN for the autoencoder)."""
    return losses.accuracy(arch.output, logits, y)


def output_gradient(arch: Architecture, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample gradient of the loss with respect to the logits, (B, outputs)."""
    return losses.output_gradient(arch.output, logits, y)


def sampled_output_gradient(
    arch: Architecture, logits: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-sample logit gradients for targets drawn from the model's own predictive
    distribution (the true Fisher that K-FAC approximates, not the empirical one)."""
    return losses.sampled_output_gradient(arch.output, logits, rng)


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
