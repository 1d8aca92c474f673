"""Layers of a sequential network: forward, backward, tangent (forward-mode) passes.

Arrays carry the batch first; convolutional arrays are channels-first, ``(B, C, L)`` (1-D)
or ``(B, C, H, W)`` (2-D). A layer with weights holds one matrix ``W`` of shape
``(out, in_features + 1)`` whose last column is the bias: it acts on *homogeneous* inputs
``[a, 1]`` (Martens and Grosse 2015, section 2.1). For a convolution the inputs are the
unfolded patches of every output location ``t``, one row of ``C * prod(kernel)`` entries plus
the 1, and ``s_t = W [a_t, 1]`` (Grosse and Martens 2016, eq. 6).

Every layer has

- ``output_shape(in_shape)`` (shapes without the batch);
- ``forward(w, x) -> (y, cache)``;
- ``backward(w, cache, dy, need_dx=True) -> (dx, g)``: the gradient for the input (None
  when not ``need_dx``: the first layer's is never used), and for a layer with
  weights ``g``, the gradients of the per-sample loss with respect to its outputs in K-FAC
  layout, ``(B, out)`` (dense) or ``(B, T, out)`` (convolution, T locations);
- ``tangent(w, dw, cache, dx) -> dy``: the directional derivative of the output along a
  weight change ``dw`` and an input change ``dx`` (None: the input does not change).

Layers with weights also give ``kfac_input(cache)`` (the homogeneous inputs, ``(B, in + 1)``
or ``(B, T, in + 1)``) and ``weight_gradient(cache, g)`` (of the batch-mean loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.errors import InputError
from rerinv.nn.conv import fold, output_shape, unfold

ACTIVATIONS = ("tanh", "relu")
POOLS = ("avg", "max")


def _flat_matmul(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``a @ m`` for ``a`` (B, T, n) as one 2-D product (numpy would loop over B)."""
    return (a.reshape(-1, a.shape[-1]) @ m).reshape(*a.shape[:-1], m.shape[1])


def _glorot(out: int, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Glorot-uniform weights ``(out, fan_in + 1)`` with a zero bias column."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    w = np.zeros((out, fan_in + 1))
    w[:, :-1] = rng.uniform(-limit, limit, (out, fan_in))
    return w


class Layer:
    """Base of the layers (see the module docstring)."""

    has_weights = False

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return in_shape

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Dense(Layer):
    """Fully connected: ``(B, n_in) -> (B, n_out)``."""

    n_in: int
    n_out: int
    has_weights = True

    def __post_init__(self) -> None:
        if min(self.n_in, self.n_out) < 1:
            raise InputError(f"dense widths must be >= 1, got {self.n_in} -> {self.n_out}")

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.n_in,):
            raise InputError(f"Dense({self.n_in}, {self.n_out}) cannot take inputs {in_shape}")
        return (self.n_out,)

    def weight_shape(self) -> tuple[int, int]:
        return (self.n_out, self.n_in + 1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return _glorot(self.n_out, self.n_in, self.n_out, rng)

    def forward(self, w, x):
        a = np.empty((x.shape[0], self.n_in + 1))
        a[:, :-1], a[:, -1] = x, 1.0
        return a @ w.T, a

    def backward(self, w, cache, dy, need_dx=True):
        return (dy @ w[:, :-1] if need_dx else None), dy

    def tangent(self, w, dw, cache, dx):
        dy = cache @ dw.T
        return dy if dx is None else dy + dx @ w[:, :-1].T

    def kfac_input(self, cache):
        return cache

    def weight_gradient(self, cache, g):
        return g.T @ cache / cache.shape[0]

    def describe(self) -> str:
        return f"Dense({self.n_in}->{self.n_out})"


@dataclass(frozen=True)
class Conv(Layer):
    """Convolution (cross-correlation, as in every deep-learning library) over 1 or 2 spatial
    axes: ``(B, c_in, *S) -> (B, c_out, *O)`` with ``O = (S + 2 padding - k) // stride + 1``."""

    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    has_weights = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", tuple(int(k) for k in self.kernel))
        if len(self.kernel) not in (1, 2) or min(self.kernel) < 1:
            raise InputError(f"a kernel is 1 or 2 positive sizes, got {self.kernel}")
        if min(self.c_in, self.c_out, self.stride) < 1 or self.padding < 0:
            raise InputError("channels and stride must be >= 1 and padding >= 0")

    @property
    def features(self) -> int:
        return self.c_in * int(np.prod(self.kernel))

    def output_shape(self, in_shape):
        if len(in_shape) != 1 + len(self.kernel) or in_shape[0] != self.c_in:
            raise InputError(
                f"{self.describe()} needs inputs (channels={self.c_in}, "
                f"{len(self.kernel)} spatial axes), got {in_shape}"
            )
        spatial = output_shape(tuple(in_shape[1:]), self.kernel, self.stride, self.padding)
        return (self.c_out, *spatial)

    def weight_shape(self) -> tuple[int, int]:
        return (self.c_out, self.features + 1)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        size = int(np.prod(self.kernel))
        return _glorot(self.c_out, self.features, self.c_out * size, rng)

    def _patches(self, x):
        return unfold(x, self.kernel, self.stride, self.padding, homogeneous=True)

    def forward(self, w, x):
        a = self._patches(x)
        out = output_shape(x.shape[2:], self.kernel, self.stride, self.padding)
        s = _flat_matmul(a, w.T)  # (B, T, out)
        return np.moveaxis(s.reshape(x.shape[0], *out, self.c_out), -1, 1), (a, x.shape)

    def backward(self, w, cache, dy, need_dx=True):
        a, shape = cache
        g = np.moveaxis(dy, 1, -1).reshape(dy.shape[0], -1, self.c_out)
        if not need_dx:
            return None, g
        dx = fold(_flat_matmul(g, w[:, :-1]), shape, self.kernel, self.stride, self.padding)
        return dx, g

    def tangent(self, w, dw, cache, dx):
        a, shape = cache
        s = _flat_matmul(a, dw.T)
        if dx is not None:
            cols = unfold(dx, self.kernel, self.stride, self.padding)
            s = s + _flat_matmul(cols, w[:, :-1].T)
        out = output_shape(shape[2:], self.kernel, self.stride, self.padding)
        return np.moveaxis(s.reshape(shape[0], *out, self.c_out), -1, 1)

    def kfac_input(self, cache):
        return cache[0]

    def weight_gradient(self, cache, g):
        a = cache[0]
        return g.reshape(-1, self.c_out).T @ a.reshape(-1, a.shape[-1]) / a.shape[0]

    def describe(self) -> str:
        k = "x".join(map(str, self.kernel))
        shape = f"k={k}, s={self.stride}, p={self.padding}"
        return f"Conv{len(self.kernel)}d({self.c_in}->{self.c_out}, {shape})"


@dataclass(frozen=True)
class Activation(Layer):
    """Element-wise ``tanh`` or ``relu``."""

    kind: str = "tanh"

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATIONS:
            raise InputError(f"activation must be one of {', '.join(ACTIVATIONS)}")

    def forward(self, w, x):
        y = np.tanh(x) if self.kind == "tanh" else np.maximum(x, 0.0)
        return y, y

    def _slope(self, y):
        return 1.0 - y * y if self.kind == "tanh" else (y > 0).astype(float)

    def backward(self, w, cache, dy, need_dx=True):
        return dy * self._slope(cache), None

    def tangent(self, w, dw, cache, dx):
        return None if dx is None else dx * self._slope(cache)

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Pool(Layer):
    """Non-overlapping average or max pooling over windows ``size`` (stride = size); every
    spatial size must be a multiple of the window."""

    size: tuple[int, ...] = (2,)
    kind: str = "avg"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(k) for k in self.size))
        if self.kind not in POOLS or len(self.size) not in (1, 2) or min(self.size) < 1:
            raise InputError(f"pooling is avg or max over 1 or 2 axes, got {self.kind} {self.size}")

    def output_shape(self, in_shape):
        spatial = in_shape[1:]
        if len(spatial) != len(self.size) or any(
            n % k for n, k in zip(spatial, self.size, strict=True)
        ):
            raise InputError(
                f"{self.describe()} needs spatial sizes divisible by it, got {in_shape}"
            )
        return (in_shape[0], *(n // k for n, k in zip(spatial, self.size, strict=True)))

    def _windows(self, x):
        """(B, C, *S) -> (B, C, *O, K)."""
        b, c, *spatial = x.shape
        split = [d for n, k in zip(spatial, self.size, strict=True) for d in (n // k, k)]
        nd = len(self.size)
        order = (0, 1, *range(2, 2 + 2 * nd, 2), *range(3, 3 + 2 * nd, 2))
        out = [n // k for n, k in zip(spatial, self.size, strict=True)]
        return x.reshape(b, c, *split).transpose(order).reshape(b, c, *out, -1)

    def _unwindows(self, v, shape):
        b, c, *spatial = shape
        nd = len(self.size)
        out = [n // k for n, k in zip(spatial, self.size, strict=True)]
        v = v.reshape(b, c, *out, *self.size)
        order = [0, 1] + [i for d in range(nd) for i in (2 + d, 2 + nd + d)]
        return v.transpose(order).reshape(shape)

    def forward(self, w, x):
        win = self._windows(x)
        if self.kind == "avg":
            return win.mean(axis=-1), (x.shape, None)
        index = np.argmax(win, axis=-1)[..., None]
        return np.take_along_axis(win, index, -1)[..., 0], (x.shape, index)

    def backward(self, w, cache, dy, need_dx=True):
        shape, index = cache
        k = int(np.prod(self.size))
        if self.kind == "avg":
            win = np.repeat(dy[..., None] / k, k, axis=-1)
        else:
            win = np.zeros((*dy.shape, k))
            np.put_along_axis(win, index, dy[..., None], -1)
        return self._unwindows(win, shape), None

    def tangent(self, w, dw, cache, dx):
        if dx is None:
            return None
        win = self._windows(dx)
        if self.kind == "avg":
            return win.mean(axis=-1)
        return np.take_along_axis(win, cache[1], -1)[..., 0]

    def describe(self) -> str:
        return f"{self.kind}pool({'x'.join(map(str, self.size))})"


@dataclass(frozen=True)
class Flatten(Layer):
    """``(B, *shape) -> (B, prod(shape))``."""

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, w, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, w, cache, dy, need_dx=True):
        return dy.reshape(cache), None

    def tangent(self, w, dw, cache, dx):
        return None if dx is None else dx.reshape(dx.shape[0], -1)

    def describe(self) -> str:
        return "flatten"
