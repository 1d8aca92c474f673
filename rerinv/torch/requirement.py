"""PyTorch, the optional extra of :mod:`rerinv.torch`, imported with a message that says how
to install it."""

from __future__ import annotations

from types import ModuleType

#: the PyTorch release the extra pins (CPU wheels of it exist for every supported Python)
TORCH_PIN = "torch==2.13.0"

INSTALL_HINT = (
    "rerinv.torch needs PyTorch, the optional extra `torch`: "
    f"pip install 'rerinv[torch]' (or pip install '{TORCH_PIN}')"
)


def require_torch() -> ModuleType:
    """The ``torch`` module; :class:`ImportError` with :data:`INSTALL_HINT` when missing."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return torch
