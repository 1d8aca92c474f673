"""The K-FAC statistics of one PyTorch layer: ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d``.

A layer's parameters are seen as one matrix ``W`` of shape ``(out, in + 1)`` (``(out,
in_channels * kernel + 1)`` for a convolution), the bias its last column, as in
:mod:`rerinv.nn.mlp`. The factor ``A`` is built from the homogeneous layer inputs (a 1
appended where there is a bias), ``G`` from the per-sample gradients of the loss with respect
to the layer outputs (pre-activations), both divided by the batch size ``B``:

- ``nn.Linear``: ``A = a^T a / B``, ``G = g^T g / B`` (Martens and Grosse, 2015), for inputs
  of shape ``(B, in)`` (a Linear applied along a sequence, ``(B, ..., in)``, is refused: its
  weight sharing needs conventions of its own).
- convolutions (KFC, Grosse and Martens, 2016): ``a`` holds one row per output position
  ``t`` of every sample (the input patch at ``t``, im2col), ``g`` one row per position of the
  output gradient; ``A = sum_{n,t} a a^T / (B T)`` and ``G = sum_{n,t} g g^T / B`` with ``T``
  the number of output positions, as :class:`rerinv.nn.kfac.Kfac` takes them: ``A (x) G``
  is ``Omega (x) Gamma`` of the KFC paper with the ``T`` carried by ``G`` (with pi-damping
  the damped product does not depend on which factor carries it). The patch order is
  ``weight.reshape(out, -1)``'s (input channel, then kernel positions), as ``F.unfold``
  gives it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rerinv.errors import InputError

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


class KfacLayer:
    """One registered layer: its statistics, its gradient as one matrix, and the write-back.

    Parameters
    ----------
    name : str
        The module's name in the model (``model.named_modules()``).
    module : nn.Linear, nn.Conv1d or nn.Conv2d
    """

    def __init__(self, name: str, module: nn.Module):
        if not isinstance(module, SUPPORTED):
            raise InputError(
                f"layer {name!r} is a {type(module).__name__}; K-FAC here takes "
                "nn.Linear, nn.Conv1d and nn.Conv2d"
            )
        self.name, self.module = name, module
        self.conv = not isinstance(module, nn.Linear)
        self.has_bias = module.bias is not None
        if self.conv:
            if module.groups != 1:
                raise InputError(
                    f"layer {name!r} is a grouped convolution (groups={module.groups}), which "
                    "K-FAC here does not take; leave it out with skip=[...]"
                )
            if module.padding_mode != "zeros":
                raise InputError(
                    f"layer {name!r} pads with {module.padding_mode!r}; K-FAC here takes "
                    "zero padding only; leave it out with skip=[...]"
                )
        weight = module.weight
        self.dim_g = weight.shape[0]
        self.dim_a = math.prod(weight.shape[1:]) + int(self.has_bias)

    # -- statistics -------------------------------------------------------------------------
    def a_factor(self, x: torch.Tensor) -> torch.Tensor:
        """This batch's ``A`` from the layer input ``x`` (see the module docstring)."""
        if not self.conv and x.dim() != 2:
            raise InputError(
                f"layer {self.name!r} (nn.Linear) got an input of shape {tuple(x.shape)}; "
                "K-FAC here takes (batch, features) inputs; leave it out with skip=[...]"
            )
        rows = self._patches(x) if self.conv else x
        if self.has_bias:
            rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
        return rows.T @ rows / rows.shape[0]  # B T rows for a convolution, B for a Linear

    def g_factor(self, gy: torch.Tensor, batch: int) -> torch.Tensor:
        """This batch's ``G`` from the per-sample output gradients ``gy`` (the gradient of
        the summed per-sample losses with respect to the layer output)."""
        if self.conv:  # (B, out, *positions) -> one row per (sample, position)
            gy = gy.reshape(gy.shape[0], gy.shape[1], -1).transpose(1, 2).reshape(-1, gy.shape[1])
        return gy.T @ gy / batch

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """im2col of ``x``: one row per (sample, output position), ``in_channels * kernel``
        columns in the order of ``weight.reshape(out, -1)`` (``F.unfold``'s order; taken
        with ``Tensor.unfold`` views, which need no threads: ``F.unfold`` was 100 times
        slower on a loaded two-core machine)."""
        m = self.module
        pads = _paddings(m, m.kernel_size, m.dilation)
        if any(pads):
            x = F.pad(x, pads)
        for axis, (k, s, d) in enumerate(zip(m.kernel_size, m.stride, m.dilation, strict=True)):
            x = x.unfold(2 + axis, d * (k - 1) + 1, s)  # (..., window) appended last
            if d > 1:
                x = x[..., ::d]
        if len(m.kernel_size) == 1:  # (B, C, L_out, k) -> (B, L_out, C, k)
            x = x.permute(0, 2, 1, 3)
        else:  # (B, C, H_out, W_out, kh, kw) -> (B, H_out, W_out, C, kh, kw)
            x = x.permute(0, 2, 3, 1, 4, 5)
        return x.reshape(-1, self.dim_a - int(self.has_bias))

    # -- gradient ---------------------------------------------------------------------------
    def grad_matrix(self) -> torch.Tensor:
        """``.grad`` of weight and bias as one ``(out, dim_a)`` matrix."""
        weight, bias = self.module.weight, self.module.bias
        if weight.grad is None or (self.has_bias and bias.grad is None):
            raise InputError(
                f"layer {self.name!r} has no gradient: call loss.backward() before "
                "preconditioner.step() (or leave the layer out with skip=[...])"
            )
        grad = weight.grad.reshape(self.dim_g, -1)
        if self.has_bias:
            grad = torch.cat([grad, bias.grad.reshape(-1, 1)], dim=1)
        return grad

    def set_grad(self, matrix: torch.Tensor) -> None:
        """Write ``matrix`` (``(out, dim_a)``) back into weight and bias ``.grad``."""
        weight, bias = self.module.weight, self.module.bias
        columns = self.dim_a - int(self.has_bias)
        weight.grad.copy_(matrix[:, :columns].reshape(weight.shape))
        if self.has_bias:
            bias.grad.copy_(matrix[:, columns])


def _paddings(module: nn.Module, kernel, dilation) -> tuple[int, ...]:
    """``F.pad``'s padding (last dimension first, left then right) of ``module``'s input."""
    padding = module.padding
    if padding == "valid":
        return (0,) * (2 * len(kernel))
    out = []
    for axis in reversed(range(len(kernel))):
        if padding == "same":  # PyTorch puts the odd one out on the right
            total = dilation[axis] * (kernel[axis] - 1)
            out += [total // 2, total - total // 2]
        else:
            out += [padding[axis], padding[axis]]
    return tuple(out)
