"""A sequential network: the one interface K-FAC and the training loop see.

A :class:`Network` is plain data: the input shape of one sample, a tuple of layers
(:mod:`rerinv.nn.layers`) and the output kind (:mod:`rerinv.nn.losses`). Its weights are a
list with one ``(out, in + 1)`` matrix per layer that has weights, in order; those layers are
the K-FAC layers, each with the factor widths ``(in + 1, out)`` (the homogeneous input, and
the outputs per location). Dense MLPs (:func:`rerinv.nn.mlp.network`), autoencoders and CNNs
are all Networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rerinv.errors import InputError
from rerinv.nn import losses
from rerinv.nn.layers import Layer


@dataclass
class Trace:
    """What a forward pass keeps: every layer's cache and the logits (B, outputs)."""

    caches: list
    logits: np.ndarray


@dataclass(frozen=True)
class Network:
    """A sequential network (see the module docstring).

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample, e.g. ``(64,)`` (dense), ``(1, 40)`` (1-D conv), ``(1, 8, 8)``.
        Inputs of any shape with the same number of entries per sample are reshaped to it.
    layers : tuple of Layer
    output : {"softmax", "sigmoid"}
    name : str
    """

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    output: str = "softmax"
    name: str = ""
    shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        losses.check_output(self.output)
        object.__setattr__(self, "input_shape", tuple(int(n) for n in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        shapes = [self.input_shape]
        for layer in self.layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        if len(shapes[-1]) != 1 or not any(lay.has_weights for lay in self.layers):
            raise InputError(
                f"a network ends in a flat output and has weights; {self.name or 'this one'} "
                f"ends in shape {shapes[-1]}"
            )
        object.__setattr__(self, "shapes", tuple(shapes))

    # -- structure ----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return self.shapes[-1][0]

    @property
    def weighted(self) -> list[int]:
        """Indices (into ``layers``) of the layers with weights: the K-FAC layers."""
        return [i for i, layer in enumerate(self.layers) if layer.has_weights]

    def weight_shapes(self) -> list[tuple[int, int]]:
        return [self.layers[i].weight_shape() for i in self.weighted]

    def factor_sizes(self) -> list[tuple[int, int]]:
        """K-FAC factor widths ``(dim A, dim G) = (in + 1, out)`` per weighted layer."""
        return [(i, o) for o, i in self.weight_shapes()]

    def parameter_count(self) -> int:
        return int(sum(o * i for o, i in self.weight_shapes()))

    def describe(self) -> str:
        body = " ".join(layer.describe() for layer in self.layers)
        return f"{self.name or 'network'}: {self.input_shape} {body} -> {self.output}"

    def init_weights(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Glorot-uniform weights and zero biases, drawn from ``rng`` layer by layer."""
        return [self.layers[i].init(rng) for i in self.weighted]

    # -- passes -------------------------------------------------------------------------
    def _pairs(self, weights):
        if len(weights) != len(self.weighted):
            raise InputError(f"expected {len(self.weighted)} weight matrices, got {len(weights)}")
        given = dict(zip(self.weighted, weights, strict=True))
        return [(layer, given.get(i)) for i, layer in enumerate(self.layers)]

    def forward(self, weights: list[np.ndarray], x: np.ndarray) -> Trace:
        """Forward pass of the batch ``x`` (B, ...)."""
        a = np.asarray(x, dtype=float).reshape(len(x), *self.input_shape)
        caches = []
        for layer, w in self._pairs(weights):
            a, cache = layer.forward(w, a)
            caches.append(cache)
        return Trace(caches, a)

    def predict(self, weights: list[np.ndarray], x: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Logits of ``x``, ``chunk`` samples at a time (no caches kept: for evaluation)."""
        parts = [self.forward(weights, x[i : i + chunk]).logits for i in range(0, len(x), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_outputs))

    def backward(self, weights: list[np.ndarray], trace: Trace, top: np.ndarray):
        """Per-sample output gradients ``g_l`` of every weighted layer (K-FAC layout: (B, out)
        or (B, T, out)), from the per-sample logit gradient ``top`` (B, outputs)."""
        grads = []
        dy = top
        pairs = self._pairs(weights)
        first = self.weighted[0]  # nothing below the first weighted layer needs a gradient
        for index in range(len(pairs) - 1, first - 1, -1):
            layer, w = pairs[index]
            dy, g = layer.backward(w, trace.caches[index], dy, need_dx=index > first)
            if layer.has_weights:
                grads.insert(0, g)
        return grads

    def weight_gradients(self, trace: Trace, grads) -> list[np.ndarray]:
        """Gradients of the batch-mean loss with respect to every weight matrix."""
        return [
            self.layers[i].weight_gradient(trace.caches[i], g)
            for i, g in zip(self.weighted, grads, strict=True)
        ]

    def kfac_inputs(self, trace: Trace) -> list[np.ndarray]:
        """Homogeneous inputs of every weighted layer: (B, in + 1) or (B, T, in + 1)."""
        return [self.layers[i].kfac_input(trace.caches[i]) for i in self.weighted]

    def tangent(self, weights, trace: Trace, directions) -> np.ndarray:
        """``J d``: the change of the logits (B, outputs) along the weight change
        ``directions`` (forward mode, exact; the Jacobian at ``trace``)."""
        dws = dict(zip(self.weighted, directions, strict=True))
        dx = None
        for index, (layer, w) in enumerate(self._pairs(weights)):
            dx = layer.tangent(w, dws.get(index), trace.caches[index], dx)
        return dx

    # -- the output ---------------------------------------------------------------------
    def loss(self, logits: np.ndarray, y: np.ndarray) -> float:
        return losses.loss(self.output, logits, y)

    def accuracy(self, logits: np.ndarray, y: np.ndarray) -> float:
        return losses.accuracy(self.output, logits, y)

    def output_gradient(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        return losses.output_gradient(self.output, logits, y)

    def sampled_output_gradient(self, logits, rng: np.random.Generator) -> np.ndarray:
        return losses.sampled_output_gradient(self.output, logits, rng)

    def gradients(self, weights, x, y) -> tuple[Trace, list[np.ndarray], float]:
        """``(trace, weight gradients, batch-mean loss)`` of the batch ``(x, y)``."""
        trace = self.forward(weights, x)
        top = self.output_gradient(trace.logits, y)
        grads = self.weight_gradients(trace, self.backward(weights, trace, top))
        return trace, grads, self.loss(trace.logits, y)


def quadratic_model(
    net: Network, weights, trace: Trace, grads, delta
) -> tuple[float, float, float]:
    """``(M, g.d, d^T F d)`` for the step ``delta``: the quadratic model
    ``M(d) = g.d + d^T F d / 2`` of the batch loss, with ``F`` the exact Fisher of the batch
    (``J^T F_R J`` averaged over the samples, Martens and Grosse 2015 section 6.5)."""
    linear = float(sum(np.sum(g * d) for g, d in zip(grads, delta, strict=True)))
    v = net.tangent(weights, trace, delta)
    curvature = losses.fisher_quadratic(net.output, trace.logits, v)
    return linear + 0.5 * curvature, linear, curvature


def reduction_ratio(
    net: Network, weights, trace: Trace, grads, delta, x, y, loss_before: float
) -> float:
    """Levenberg-Marquardt reduction ratio ``rho = (h(w + d) - h(w)) / M(d)`` on the batch
    ``(x, y)``; ``-inf`` when the model predicts no decrease (``M(d) >= 0``: a non-descent
    step, which the rule answers with more damping)."""
    model, _, _ = quadratic_model(net, weights, trace, grads, delta)
    if not model < 0:
        return -np.inf
    moved = [w + d for w, d in zip(weights, delta, strict=True)]
    after = net.loss(net.forward(moved, x).logits, y)
    return float((after - loss_before) / model) if np.isfinite(after) else -np.inf
