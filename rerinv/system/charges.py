"""Charging operation counts to the chip's resources, and scheduling phases into a step.

:func:`charge_time` turns a phase's operation counts into each resource's busy time,
:func:`charge_energy` into energy per category; :func:`schedule` combines the phases under
``model.overlap``. The forward, backward and weight-gradient phases form PipeLayer's
training pipeline (Song et al., HPCA 2017): layers are pipeline stages and a batch of ``B``
inputs takes ``B + 2L`` stage times for ``L`` layers (forward and backward stages, one
input entering per stage time), so those three phases overlap and take the busiest
resource's time stretched by ``(B + 2L) / B``.
"""

from __future__ import annotations

import numpy as np

from rerinv.system.arch import Architecture
from rerinv.system.components import adc, conversion_time, dac_factor

CATEGORIES = ("inv", "vmm", "conversions", "writes", "buffers", "digital")
#: the phases PipeLayer's pipeline overlaps
PIPELINED = ("forward", "backward", "gradient")


def schedule(times: dict, busy: dict, overlap: str, fill=1.0) -> tuple[dict, dict]:
    """Phase times and the step time attributed to categories (summing to the step time).

    ``none``: nothing overlaps, every category's busy time counts; ``phase``: within a phase
    the resources overlap and the slowest one decides (it gets the phase's time), phases run
    one after another, except that the pipelined phases (:data:`PIPELINED`) overlap and take
    ``fill`` times their busiest resource; ``full``: everything overlaps, the busiest
    resource decides.
    """
    if overlap == "none":
        return {p: sum(t.values()) for p, t in times.items()}, busy
    if overlap == "full":
        stack = np.stack(np.broadcast_arrays(*(busy[c] for c in CATEGORIES)))
        step, first = stack.max(axis=0), stack.argmax(axis=0)
        cats = {c: np.where(first == i, step, 0.0) for i, c in enumerate(CATEGORIES)}
        share = sum(sum(t.values()) for t in times.values())
        share = np.where(share > 0, step / np.where(share > 0, share, 1.0), 0.0)
        return {p: sum(t.values()) * share for p, t in times.items()}, cats
    phase_t, cats = {}, {c: 0.0 for c in CATEGORIES}
    piped = [p for p in PIPELINED if p in times]
    if piped:  # one pipelined group: summed busy times overlap, stretched by the fill
        group = {c: sum(times[p][c] for p in piped) * fill for c in CATEGORIES}
        stack = np.stack(np.broadcast_arrays(*(group[c] for c in CATEGORIES)))
        span, first = stack.max(axis=0), stack.argmax(axis=0)
        own = {p: np.stack(np.broadcast_arrays(*(times[p][c] for c in CATEGORIES))).max(axis=0)
               for p in piped}  # fmt: skip
        share = sum(own.values())
        for p in piped:  # the group's time, split in proportion to each phase's own time
            phase_t[p] = span * np.where(share > 0, own[p] / np.where(share > 0, share, 1), 0)
        for i, c in enumerate(CATEGORIES):
            cats[c] = cats[c] + np.where(first == i, span, 0.0)
    for p, t in times.items():
        if p in piped:
            continue
        stack = np.stack(np.broadcast_arrays(*(t[c] for c in CATEGORIES)))
        phase_t[p], first = stack.max(axis=0), stack.argmax(axis=0)
        for i, c in enumerate(CATEGORIES):
            cats[c] = cats[c] + np.where(first == i, phase_t[p], 0.0)
    return phase_t, cats


def charge_time(arch: Architecture, o, pool, n_inv, settle) -> dict:
    """Busy time of each resource for the operation counts ``o`` (s)."""
    c, w = arch.section("crossbar"), arch.section("write")
    chip, d = arch.section("chip"), arch.section("digital")
    convert = conversion_time(arch)  # one crossbar's columns, at adc_bits
    blocks = n_inv / c.inv_arrays
    return {
        "inv": o["inv_ops"] * settle / blocks,
        "vmm": o["vmm_cycles"] * c.read_cycle_s / pool,
        "conversions": o["vmm_cycles"] * np.maximum(convert - c.read_cycle_s, 0.0) / pool
        + o["inv_ops"] * np.maximum(convert - settle, 0.0) / blocks,
        "writes": (o["rows_vmm"] / pool + o["rows_inv"] / n_inv) * w.row_s * w.verify_pulses,
        "buffers": o["buffer_bits"] / (chip.tiles * arch["buffer.bits_per_s_per_tile"])
        + o["noc_bits"] / (chip.tiles * arch["noc.bits_per_s_per_tile"])
        + o["offchip_bits"] / arch["offchip.bits_per_s"],
        "digital": o["digital_ops"] / (chip.tiles * d.ops_per_s_per_tile),
    }


def charge_energy(arch: Architecture, o, inv_energy) -> dict:
    """Energy of each category for the operation counts ``o`` (J)."""
    v, w, d = arch.section("converters"), arch.section("write"), arch.section("digital")
    e_cell = arch["crossbar.cell_read_energy_j"]
    return {
        "inv": o["inv_ops"] * inv_energy,
        "vmm": o["cell_reads"] * e_cell,
        "conversions": o["adc"] * adc(arch)["energy_j"]
        + o["dac_vmm"] * v.vmm_dac_energy_j * dac_factor(arch, v.vmm_dac_bits)
        + o["dac_inv"] * v.inv_dac_energy_j * dac_factor(arch, v.inv_dac_bits),
        "writes": o["cells"] * w.verify_pulses * (w.energy_per_cell_j + e_cell),
        "buffers": o["buffer_bits"] * arch["buffer.energy_per_bit_j"]
        + o["noc_bits"] * arch["noc.energy_per_bit_j"]
        + o["offchip_bits"] * arch["offchip.energy_per_bit_j"],
        "digital": o["digital_ops"] * d.energy_per_op_j + o["shift_adds"] * d.shift_add_energy_j,
    }
