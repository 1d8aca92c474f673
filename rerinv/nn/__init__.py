"""The model room of training in the loop: networks, K-FAC, optimisers, inverse backends, data.

Pure numpy: layers (dense, 1-D and 2-D convolutions, pooling) with their forward, backward
and tangent passes, sequential networks (:class:`~rerinv.nn.network.Network`; the benchmark
MLPs and CNNs by name in :mod:`rerinv.nn.benchmarks`), K-FAC (Martens and Grosse 2015) with
KFC for convolutions (Grosse and Martens 2016) whose factor inverses come from a pluggable
backend (float64, the analog machine with any scheme and engine, or a cheap k-bit
stand-in), SGD and Adam, and the offline datasets (digits, MNIST-1D). The study that runs
grids of these and reports them is :mod:`rerinv.training`; the PyTorch adapter is
:mod:`rerinv.torch`. See docs/nn.md.
"""

from rerinv.nn.backends import (
    AnalogInverse,
    Float64Inverse,
    InverseBackend,
    InverseOutcome,
    QuantisedInverse,
    make_backend,
)
from rerinv.nn.layers import Activation, Conv, Dense, Flatten, Pool
from rerinv.nn.network import Network

__all__ = [
    "Activation",
    "AnalogInverse",
    "Conv",
    "Dense",
    "Flatten",
    "Float64Inverse",
    "InverseBackend",
    "InverseOutcome",
    "Network",
    "Pool",
    "QuantisedInverse",
    "make_backend",
]
