"""The benchmark networks and their datasets, by name.

========  ============================  ==================================================
name      data                          network (default widths)
========  ============================  ==================================================
mlp       digits 8x8, classify or       dense ``64-32-10`` (tanh, softmax) or the
          autoencode (flat 64 pixels)   ``64-16-64`` autoencoder (sigmoid outputs)
cnn1d     MNIST-1D (1 x 40 signals)     conv1d 1->8 (k5, pad 2), avgpool 2, conv1d 8->16
                                        (k5, pad 2), flatten, dense 320->10
cnn2d     digits (1 x 8 x 8 images)     conv2d 1->8 (3x3, pad 1), avgpool 2x2, conv2d
                                        8->20 (3x3, pad 1), flatten, dense 320->10
========  ============================  ==================================================

The hidden activation (tanh by default) follows both convolutions. The CNNs are sized so
that one K-FAC factor of each is wider than one 256-wide crossbar (``array.max_size``): ``A``
of the dense layer is 321 wide, so it takes the analog machine's multi-crossbar route, while
a step stays cheap in numpy (about 40-60 kFLOP per sample forward). Factor widths
``(A, G)``: cnn1d ``(6, 8), (41, 16), (321, 10)``; cnn2d ``(10, 8), (73, 20), (321, 10)``;
mlp ``(65, 32), (33, 10)``.
"""

from __future__ import annotations

import math

from rerinv.errors import InputError
from rerinv.nn import mlp
from rerinv.nn.data import Dataset, digits_dataset, mnist1d_dataset
from rerinv.nn.layers import Activation, Conv, Dense, Flatten, Pool
from rerinv.nn.network import Network

NETWORKS = ("mlp", "cnn1d", "cnn2d")
#: Conv channel widths when ``hidden`` is not given.
DEFAULT_CHANNELS = {"cnn1d": (8, 16), "cnn2d": (8, 20)}
#: Hidden widths of the MLP when ``hidden`` is not given, per task.
DEFAULT_HIDDEN = {"classify": (32,), "autoencode": (16,)}


def _check(network: str, task: str) -> None:
    if network not in NETWORKS:
        raise InputError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    if network != "mlp" and task != "classify":
        raise InputError(f"the {network} network classifies (task classify), not {task!r}")


def load_dataset(network: str, task: str = "classify", *, seed: int = 0, pool: int = 1) -> Dataset:
    """The dataset ``network`` trains on: digits for ``mlp`` (``task``, ``pool``) and
    ``cnn2d`` (``pool`` 1 or 2), MNIST-1D for ``cnn1d``; split by the data ``seed``."""
    _check(network, task)
    if network == "cnn1d":
        if pool != 1:
            raise InputError("MNIST-1D is not pooled (pool must be 1 for cnn1d)")
        return mnist1d_dataset(seed=seed)
    if network == "cnn2d" and pool not in (1, 2):
        raise InputError("cnn2d needs 8x8 or 4x4 images (pool 1 or 2)")
    return digits_dataset(task, seed=seed, pool=pool)


def build_network(
    network: str,
    dataset: Dataset,
    *,
    hidden: tuple[int, ...] = (),
    activation: str = "tanh",
) -> Network:
    """The ``network`` for ``dataset``: ``hidden`` are the MLP's hidden widths or the CNN's two
    convolution channel widths (empty: the defaults in the module docstring)."""
    _check(network, dataset.task)
    output = "softmax" if dataset.task == "classify" else "sigmoid"
    if network == "mlp":
        widths = tuple(hidden) or DEFAULT_HIDDEN[dataset.task]
        arch = mlp.Architecture((dataset.n_inputs, *widths, dataset.n_outputs), activation, output)
        return mlp.network(arch, name="mlp")
    widths = tuple(hidden) or DEFAULT_CHANNELS[network]
    if len(widths) != 2 or min(widths) < 1:
        raise InputError(f"{network} takes two positive channel widths, got {hidden}")
    c1, c2 = widths
    shape = dataset.input_shape
    if network == "cnn1d":
        kernel, pad, size = (5,), 2, (2,)
    else:
        kernel, pad, size = (3, 3), 1, (2, 2)
    spatial = [n // 2 for n in shape[1:]]
    if any(n * 2 != m for n, m in zip(spatial, shape[1:], strict=True)):
        raise InputError(f"{network} needs even spatial sizes, got {shape}")
    flat = c2 * math.prod(spatial)
    layers = (
        Conv(shape[0], c1, kernel, padding=pad),
        Activation(activation),
        Pool(size, "avg"),
        Conv(c1, c2, kernel, padding=pad),
        Activation(activation),
        Flatten(),
        Dense(flat, dataset.n_outputs),
    )
    return Network(shape, layers, output, name=network)
