"""Where the activations kept for the backward pass live, on both ReRAM machines.

In PipeLayer's pipeline (Song et al., HPCA 2017) one sample enters per stage time, and the
input of layer ``l`` of ``L`` waits for its error ``2 (L - l) + 1`` stage times later, so a
layer keeps the inputs of that many samples at once (:func:`in_flight`), not of the whole
batch. Those live activations go, in order, to the tiles' eDRAM buffers, then to PipeLayer's
memory subarrays (VMM crossbars that hold no weight, ``vmm_cell_bits`` per cell; written in
the forward pass and read back, row by row through the crossbars' ADCs, in the backward
pass; :mod:`rerinv.system.model` charges both), and only what neither holds goes off chip and
back.
"""

from __future__ import annotations

import numpy as np


def in_flight(lay, batch) -> np.ndarray:
    """Samples whose input activations each layer row keeps at once: ``2 (L - l) + 1`` for the
    ``l``-th of ``L`` layers; a row of ``count > 1`` identical layers is taken as spread
    through the network (BERT's encoder layers), ``L`` on average; never more than the batch."""
    count = lay.count.astype(float)
    depth = np.cumsum(count)  # 1-based position of a single layer
    total = count.sum()
    life = np.where(count > 1, total, 2.0 * (total - depth) + 1.0)
    return np.minimum(life, batch)


def placement(m, w, room) -> dict:
    """Shares of the stash (activations kept for the backward pass) held in the buffers, in
    memory-subarray crossbars and off chip.

    Parameters
    ----------
    m : rerinv.system.model._Machine
    w : Workload
    room : float or numpy.ndarray
        VMM crossbars that hold no weight (count).

    Returns
    -------
    dict
        ``buffer``, ``memory`` and ``offchip`` (shares of the stash, 1), ``crossbars``
        (memory subarrays used, count), ``live_bits`` (bits alive at once).
    """
    lay, batch = w.layers, w.training.batch
    live = lay.positions.astype(float) * in_flight(lay, batch) * lay.fan_in * m.bits
    live_bits = np.sum(live * lay.count, axis=-1, keepdims=True)
    over = np.clip(1.0 - m.buffer_bits / live_bits, 0.0, 1.0)  # not held by the buffers
    need = live_bits * over / (m.cell_bits * m.size**2)  # crossbars, cell_bits per cell
    used = np.minimum(need, np.maximum(room, 0.0))
    held = np.where(need > 0, used / np.where(need > 0, need, 1.0), 1.0)
    return {"buffer": 1.0 - over, "memory": over * held, "offchip": over * (1.0 - held),
            "crossbars": used, "live_bits": live_bits}  # fmt: skip
