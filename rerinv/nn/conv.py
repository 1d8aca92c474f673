"""Unfolding (im2col) for 1-D and 2-D convolutions, and its adjoint (col2im).

A convolution with ``C`` input channels, kernel ``k = (k_1, ..., k_d)``, stride ``s`` and
zero padding ``p`` on every spatial side reads, at output location ``t``, the patch
``x[:, c, s t + o - p]`` for every channel ``c`` and kernel offset ``o``. :func:`unfold`
gathers every patch as one row of ``C * prod(k)`` entries, ordered channel first, then
kernel offsets in C order (the order of ``torch.nn.functional.unfold`` and of
``weight.reshape(out, -1)``), so the convolution is one matrix product per location
(Grosse and Martens 2016, section 2: the "expansion operator" ``[[A]]``).
"""

from __future__ import annotations

import itertools

import numpy as np

from rerinv.errors import InputError


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``(size + 2 padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def output_shape(
    spatial: tuple[int, ...], kernel: tuple[int, ...], stride: int, padding: int
) -> tuple[int, ...]:
    """Spatial output shape; refuses a kernel larger than the padded input."""
    out = tuple(output_size(n, k, stride, padding) for n, k in zip(spatial, kernel, strict=True))
    if any(o < 1 for o in out):
        raise InputError(
            f"kernel {kernel} does not fit the input {spatial} with padding {padding}: "
            "use a smaller kernel or more padding"
        )
    return out


def _windows(out: tuple[int, ...], kernel: tuple[int, ...], stride: int) -> list[tuple[slice, ...]]:
    """For every kernel offset (C order), the strided slice of the padded input it reads."""
    return [
        tuple(slice(o, o + stride * (n - 1) + 1, stride) for o, n in zip(offset, out, strict=True))
        for offset in itertools.product(*(range(k) for k in kernel))
    ]


def unfold(
    x: np.ndarray,
    kernel: tuple[int, ...],
    stride: int,
    padding: int,
    *,
    homogeneous: bool = False,
) -> np.ndarray:
    """Patches of ``x`` (B, C, *spatial) as (B, T, C * prod(kernel)), T = prod(output); with
    ``homogeneous`` a column of ones is appended (B, T, C * prod(kernel) + 1)."""
    batch, channels, *spatial = x.shape
    out = output_shape(tuple(spatial), kernel, stride, padding)
    windows = _windows(out, kernel, stride)
    width = channels * len(windows)
    pad = [(0, 0), (0, 0)] + [(padding, padding)] * len(kernel)
    xp = np.pad(x, pad) if padding else x
    cols = np.empty((batch, *out, width + int(homogeneous)))
    if homogeneous:
        cols[..., -1] = 1.0
    view = cols[..., :width].reshape(batch, *out, channels, len(windows))  # a view
    for k, w in enumerate(windows):
        view[..., k] = np.moveaxis(xp[(slice(None), slice(None), *w)], 1, -1)
    return cols.reshape(batch, int(np.prod(out)), cols.shape[-1])


def fold(
    cols: np.ndarray,
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: int,
    padding: int,
) -> np.ndarray:
    """The adjoint of :func:`unfold`: patch values (B, T, C * K) summed back into an array
    of ``shape`` (B, C, *spatial) (overlapping patches add)."""
    batch, channels, *spatial = shape
    out = output_shape(tuple(spatial), kernel, stride, padding)
    windows = _windows(out, kernel, stride)
    cols = cols.reshape(batch, *out, channels, len(windows))
    cols = np.moveaxis(cols, (-2, -1), (1, 2))  # (B, C, K, *out)
    xp = np.zeros((batch, channels, *(n + 2 * padding for n in spatial)))
    for k, w in enumerate(windows):
        xp[(slice(None), slice(None), *w)] += cols[:, :, k]
    if padding:
        xp = xp[(slice(None), slice(None), *(slice(padding, padding + n) for n in spatial))]
    return xp
