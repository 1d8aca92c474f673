"""The model room of training in the loop: networks, K-FAC, optimisers, inverse backends, data.

Pure numpy: layers with their forward and backward passes, K-FAC (Martens and Grosse 2015)
whose factor inverses come from a pluggable backend (float64, the analog machine with any
scheme and engine, or a cheap k-bit stand-in), SGD and Adam, and the offline datasets. The
study that runs grids of these and reports them is :mod:`rerinv.training`; the PyTorch
adapter is :mod:`rerinv.torch`.
"""

from rerinv.nn.backends import (
    AnalogInverse,
    Float64Inverse,
    InverseBackend,
    InverseOutcome,
    QuantisedInverse,
    make_backend,
)

__all__ = [
    "AnalogInverse",
    "Float64Inverse",
    "InverseBackend",
    "InverseOutcome",
    "QuantisedInverse",
    "make_backend",
]
