"""Block operations of a matrix larger than one crossbar: an ``n x n`` factor cut into
``k = ceil(n / S)`` block rows of a crossbar of size ``S``.

``block_diagonal``: the factor is approximated by its ``k`` diagonal blocks (the common K-FAC
approximation): a solve is ``k`` independent block solves.

``blockamc`` (BlockAMC, Pan et al., arXiv 2401.10042): ``[[A11, A12], [A21, A22]]`` with
``k1 = ceil(k/2)`` and ``k2 = k - k1`` block rows, solved by the Schur complement
``Sc = A22 - A21 A11^-1 A12``: ``y = A11^-1 b1``, ``x2 = Sc^-1 (b2 - A21 y)``,
``x1 = A11^-1 (b1 - A12 x2)``, recursively. Per low-precision solve of ``k`` blocks:

- INV block solves ``I(k) = 2 I(k1) + I(k2)``, ``I(1) = 1`` (``~k^1.58``);
- off-diagonal block VMMs ``V(k) = 2 V(k1) + V(k2) + 2 k1 k2`` (tile operations);
- INV blocks held ``k`` (the ``A11`` and Schur-complement diagonal blocks), off-diagonal VMM
  tiles of the Schur complements ``O(k) = O(k1) + O(k2) + k2 (k2 - 1)``.

Forming the Schur complements when the factor changes costs ``k2 S`` low-precision solves with
``A11`` (one per column of ``A12``) and as many VMMs with ``A21``, at every level:
``F_inv(k) = F_inv(k1) + F_inv(k2) + k2 S I(k1)`` block solves and
``F_vmm(k) = F_vmm(k1) + F_vmm(k2) + k2 S (V(k1) + k1 k2)`` tile operations.

Everything is tabulated once up to the largest ``k`` and indexed with numpy arrays.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DECOMPOSITIONS = ("blockamc", "block_diagonal")


@lru_cache(maxsize=8)
def _blockamc_table(k_max: int) -> dict[str, np.ndarray]:
    """I, V, O and the per-column Schur-forming counts (F_inv, F_vmm divided by S) for
    k = 0..k_max (index k)."""
    size = k_max + 1
    inv, vmm, off = np.zeros(size), np.zeros(size), np.zeros(size)
    f_inv, f_vmm = np.zeros(size), np.zeros(size)
    if size > 1:
        inv[1] = 1.0
    for k in range(2, size):
        k1 = (k + 1) // 2
        k2 = k - k1
        inv[k] = 2 * inv[k1] + inv[k2]
        vmm[k] = 2 * vmm[k1] + vmm[k2] + 2 * k1 * k2
        off[k] = off[k1] + off[k2] + k2 * (k2 - 1)
        f_inv[k] = f_inv[k1] + f_inv[k2] + k2 * inv[k1]
        f_vmm[k] = f_vmm[k1] + f_vmm[k2] + k2 * (vmm[k1] + k1 * k2)
    return {"inv": inv, "vmm": vmm, "off": off, "f_inv": f_inv, "f_vmm": f_vmm}


def block_counts(n, size, decomposition: str) -> dict[str, np.ndarray]:
    """Block operations for ``n x n`` factors on ``size x size`` crossbars (broadcasting).

    Parameters
    ----------
    n : array_like
        Factor sizes (count).
    size : array_like
        Crossbar size S (count).
    decomposition : {"blockamc", "block_diagonal"}

    Returns
    -------
    dict of numpy.ndarray
        ``k`` block rows; per low-precision solve ``inv_blocks`` (INV block solves) and
        ``vmm_tiles`` (off-diagonal tile operations inside the solve); held ``inv_held`` INV
        blocks, ``residual_tiles`` tiles of the full-precision copy and ``extra_tiles``
        low-precision tiles (Schur complements); per factor refresh ``form_inv_blocks`` and
        ``form_vmm_tiles`` (Schur complements; zero for block-diagonal).
    """
    k = np.ceil(np.asarray(n, dtype=float) / np.asarray(size, dtype=float)).astype(np.int64)
    k = np.maximum(k, 1)
    kf = k.astype(float)
    zero = np.zeros_like(kf)
    if decomposition == "block_diagonal":
        return {
            "k": kf,
            "inv_blocks": kf,
            "vmm_tiles": zero,
            "inv_held": kf,
            "residual_tiles": kf,
            "extra_tiles": zero,
            "form_inv_blocks": zero,
            "form_vmm_tiles": zero,
        }
    if decomposition != "blockamc":
        raise ValueError(f"unknown decomposition {decomposition!r}; choose {DECOMPOSITIONS}")
    table = _blockamc_table(int(k.max()))
    size = np.asarray(size, dtype=float)
    return {
        "k": kf,
        "inv_blocks": table["inv"][k],
        "vmm_tiles": table["vmm"][k],
        "inv_held": kf,
        "residual_tiles": kf * kf,
        "extra_tiles": table["off"][k],
        "form_inv_blocks": table["f_inv"][k] * size,
        "form_vmm_tiles": table["f_vmm"][k] * size,
    }
