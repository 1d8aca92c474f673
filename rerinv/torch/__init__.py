"""The PyTorch entry point: K-FAC whose factor inverses come from rerinv's inverse backends.

:class:`KfacPreconditioner` registers the ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d``
layers of a model, keeps their Kronecker factors and rewrites each layer's ``.grad`` into
the preconditioned (natural) gradient before a stock ``torch.optim`` step, the way
kfac-pytorch's ``KFACPreconditioner`` does. Its conventions (statistics, damping, decay
schedule, inverse refresh, KL clip, hardware seeds) are those of :mod:`rerinv.nn.kfac`, and
the inverses come from any :class:`rerinv.nn.backends.InverseBackend`: float64, the k-bit
stand-in, or the analog machine on the nodal or ngspice engine (docs/torch.md).

PyTorch is the optional extra ``torch`` (``pip install 'rerinv[torch]'``). Importing this
package does not import PyTorch; the first use of one of its names does, and says how to
install it when it is missing. ``python -m rerinv.torch.example`` trains a small 1-D CNN on
MNIST-1D with it.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "KfacPreconditioner": "rerinv.torch.preconditioner",
    "inverse_backend": "rerinv.torch.backend",
    "BACKEND_KINDS": "rerinv.torch.backend",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rerinv.torch' has no attribute {name!r}")
    import importlib

    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        from rerinv.torch.requirement import INSTALL_HINT

        raise ImportError(INSTALL_HINT) from None
    return getattr(found, name)
