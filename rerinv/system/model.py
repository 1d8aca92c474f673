"""Time and energy of one training step on the ReRAM accelerator: K-FAC with analog INV
solves, or first-order SGD on the same crossbars (the PipeLayer-like baseline).

The model counts operations per layer and per phase, then charges them to resources:

- VMM: bit-serial reads, ``ceil(activation_bits / vmm_dac_bits)`` read cycles per input vector on
  every tile (``ceil(rows/S) x ceil(cols/S) x weight slices x arrays per weight``) of the matrix;
  every tile converts its used columns with its ADCs each cycle (ISAAC's scheme);
- INV: one settling time per block solve; a 16-bit solve of a factor costs the
  :class:`~rerinv.system.calibration.SolveCost` of one block times the block operations of the
  decomposition (:mod:`rerinv.system.blocks`);
- conversions: the time by which converting a crossbar's columns outlasts its read or settling
  (``ceil(S / adcs_per_crossbar) / adc_rate``), and the energy of every DAC and ADC sample;
- writes: program-and-verify pulses, one crossbar row at a time;
- buffers: on-chip buffer, on-chip network and off-chip memory traffic (each input value is
  read from the buffer once per pass, convolution windows being reused in the tile's input
  registers as in ISAAC; the activations kept for the backward pass go off chip and back);
- digital: vector-unit operations and shift-and-adds.

Resources are pooled: work in crossbar-seconds is divided by the crossbars of its kind, which
assumes the work can be spread (weights replicated into every VMM crossbar not holding a
factor; each replica is rewritten at every weight update and those writes are charged).
How resources overlap is ``model.overlap``: ``phase`` (default: within a phase the slowest
resource decides, like a roofline; phases run in sequence), ``none`` (everything adds, an upper
bound) or ``full`` (the busiest resource decides, a lower bound). ``time_by_category_s``
attributes each phase's time to the resource that limits it (so it sums to the step time);
``busy_by_category_s`` is each resource's own busy time. Matrices that do not fit the
crossbars are rewritten once per step (optimistic: once, however often they are used).
Everything broadcasts: any architecture value
or solve cost may be a numpy array of shape ``(points, 1)`` against the layer axis.

K-FAC on the accelerator (per layer, ``Q = batch x positions`` vectors):

- forward ``y = W a`` and backward ``W^T g`` on the weight crossbars;
- weight gradient: the activations ``a`` (``Q x n_A``) are written into crossbars and the
  errors applied as inputs (PipeLayer's scheme); the factor statistics ``A = a^T a`` reuse those
  crossbars, ``G = g^T g`` writes the errors as well (every ``t_cov`` steps);
- factor refresh (every ``t_inv`` steps): equilibrate and program ``A_H`` into INV crossbars and
  the full-precision copy (and ``A_L`` for RePAST) into VMM crossbars; BlockAMC's Schur
  complements are formed with low-precision block solves;
- preconditioning ``G^-1 grad A^-1``: ``n_G`` 16-bit solves with ``A`` and ``n_A`` with ``G``;
- update: the new weights are programmed into their crossbars.
"""

from __future__ import annotations

import numpy as np

from rerinv.system.arch import Architecture
from rerinv.system.blocks import block_counts
from rerinv.system.calibration import InvTiming, SolveCost
from rerinv.system.workloads import Workload

CATEGORIES = ("inv", "vmm", "conversions", "writes", "buffers", "digital")
KFAC_PHASES = ("forward", "backward", "gradient", "statistics", "refresh", "precondition",
               "update", "rewrites")  # fmt: skip
SGD_PHASES = ("forward", "backward", "gradient", "update", "rewrites")
_COUNTS = ("vmm_cycles", "inv_ops", "adc", "dac_vmm", "dac_inv", "cell_reads", "rows_vmm",
           "rows_inv", "cells", "buffer_bits", "offchip_bits", "noc_bits", "digital_ops",
           "shift_adds")  # fmt: skip


class _Ops(dict):
    """Operation counts by name (missing ones are zero); ``+`` adds, ``*`` scales."""

    def __missing__(self, key):
        return 0.0

    def __add__(self, other):
        return _Ops({k: self[k] + other[k] for k in set(self) | set(other)})

    def __mul__(self, factor):
        return _Ops({k: v * factor for k, v in self.items()})


class _Machine:
    """The architecture's numbers the counting needs (arrays allowed)."""

    def __init__(self, arch: Architecture, solve: SolveCost):
        c, p, v = arch.section("crossbar"), arch.section("precision"), arch.section("converters")
        self.size = np.asarray(c.size, dtype=float)
        self.av, self.ai = c.vmm_arrays_per_weight, c.inv_arrays
        self.planes = np.ceil(p.activation_bits / v.vmm_dac_bits)
        self.w_slices = np.ceil(p.weight_bits / c.vmm_cell_bits)
        self.a_slices = np.ceil(p.activation_bits / c.vmm_cell_bits)
        self.r_slices = np.ceil(p.residual_weight_bits / c.vmm_cell_bits)
        self.low_slices = 1.0 if solve.scheme == "repast" else 0.0  # A_L for the Neumann series
        self.bits, self.master_bits = p.activation_bits, p.master_weight_bits
        self.inner_planes = arch["solve.blockamc_vmm_planes"]
        self.decomposition = arch["solve.decomposition"]

    def tiles(self, r, c, slices):
        return np.ceil(r / self.size) * np.ceil(c / self.size) * slices * self.av

    def vmm(self, r, c, vectors, slices) -> _Ops:
        """``vectors`` bit-serial VMMs with an ``r x c`` matrix in ``slices`` weight slices."""
        reps = vectors * self.planes * slices * self.av
        return _Ops(
            vmm_cycles=reps * np.ceil(r / self.size) * np.ceil(c / self.size),
            adc=reps * np.ceil(r / self.size) * c,
            dac_vmm=reps * r * np.ceil(c / self.size),
            cell_reads=reps * r * c,
            shift_adds=reps * np.ceil(r / self.size) * c,
        )

    def write(self, r, c, slices) -> _Ops:
        """Program an ``r x c`` matrix into VMM crossbars, ``slices`` weight slices."""
        return _Ops(
            rows_vmm=r * np.ceil(c / self.size) * slices * self.av, cells=r * c * slices * self.av
        )

    def tile_ops(self, tile_ops, planes=1.0) -> _Ops:
        """``tile_ops`` whole-crossbar VMM operations of ``planes`` bit-planes each."""
        cycles = tile_ops * planes
        s = self.size
        return _Ops(
            vmm_cycles=cycles, adc=cycles * s, dac_vmm=cycles * s, cell_reads=cycles * s * s,
            shift_adds=cycles * s,
        )  # fmt: skip

    def inv(self, ops) -> _Ops:
        """``ops`` INV block solves: DAC in and ADC out on every row."""
        return _Ops(inv_ops=ops, adc=ops * self.size, dac_inv=ops * self.size)


def _layer_ops(m: _Machine, w: Workload, cost: SolveCost | None) -> dict[str, _Ops]:
    """Operation counts per phase, per layer (arrays over layers), averaged per step."""
    lay, tr = w.layers, w.training
    n_a, n_g = lay.n_a.astype(float), lay.n_g.astype(float)
    q = tr.batch * lay.positions.astype(float)
    stash = q * lay.fan_in * m.bits  # activations kept for the backward pass (bits)
    ops = {
        "forward": m.vmm(n_a, n_g, q, m.w_slices)
        + _Ops(buffer_bits=q * (lay.fan_in + n_g) * m.bits, noc_bits=q * n_g * m.bits,
               offchip_bits=stash, digital_ops=q * n_g),
        "backward": m.vmm(n_g, n_a, q, m.w_slices)
        + _Ops(buffer_bits=q * (n_g + lay.fan_in) * m.bits, noc_bits=q * lay.fan_in * m.bits,
               offchip_bits=stash, digital_ops=q * lay.fan_in),
        "gradient": m.write(q, n_a, m.a_slices) + m.vmm(q, n_a, n_g, m.a_slices)
        + _Ops(buffer_bits=(q * n_g + n_a * n_g) * m.bits),
        "update": m.write(n_a, n_g, m.w_slices)
        + _Ops(digital_ops=3 * n_a * n_g, offchip_bits=4 * n_a * n_g * m.master_bits,
               buffer_bits=n_a * n_g * m.bits),
    }  # fmt: skip
    if cost is None:
        return ops
    stats = (
        m.vmm(q, n_a, n_a, m.a_slices)
        + m.write(q, n_g, m.a_slices)
        + m.vmm(q, n_g, n_g, m.a_slices)
        + _Ops(digital_ops=2 * (n_a**2 + n_g**2), offchip_bits=2 * (n_a**2 + n_g**2) * m.bits)
    )
    ops["statistics"] = stats * (1.0 / tr.t_cov)
    refresh, precondition = _Ops(), _Ops(buffer_bits=2 * n_a * n_g * m.bits)
    for n, rhs in ((n_a, n_g), (n_g, n_a)):
        b = block_counts(n, m.size, m.decomposition)
        held = b["residual_tiles"] * (m.r_slices + m.low_slices) * m.av + b["extra_tiles"] * m.av
        refresh = (
            refresh
            + _Ops(rows_inv=b["inv_held"] * m.size * m.ai, cells=b["inv_held"] * m.size**2 * m.ai)
            + _Ops(rows_vmm=held * m.size, cells=held * m.size**2)
            + m.inv(b["form_inv_blocks"])
            + m.tile_ops(b["form_vmm_tiles"], m.inner_planes)
            + _Ops(digital_ops=4 * n * n, offchip_bits=n * n * m.bits)
        )
        solves = rhs * cost.inv_solves * b["inv_blocks"]
        residual_conv = np.maximum(cost.conversions_per_row - 2 * cost.inv_solves, 0.0)
        residual_conv = rhs * residual_conv * m.size * b["residual_tiles"] / 2
        precondition = (
            precondition
            + m.inv(solves)
            + m.tile_ops(rhs * cost.vmm_ops * b["residual_tiles"])
            + _Ops(adc=residual_conv - rhs * cost.vmm_ops * b["residual_tiles"] * m.size)
            + _Ops(dac_vmm=residual_conv - rhs * cost.vmm_ops * b["residual_tiles"] * m.size)
            + m.tile_ops(rhs * cost.inv_solves * b["vmm_tiles"], m.inner_planes)
            + _Ops(digital_ops=rhs * n * (3 * cost.passes + 2),
                   buffer_bits=rhs * n * m.bits * (2 + 2 * cost.passes),
                   noc_bits=rhs * n * m.bits * 2 * cost.passes)
        )  # fmt: skip
    ops["refresh"] = refresh * (1.0 / tr.t_inv)
    ops["precondition"] = precondition
    return ops


def _resident(m: _Machine, w: Workload, kfac: bool) -> tuple:
    """Crossbars the weights and factors occupy: (VMM crossbars, INV crossbars)."""
    lay = w.layers
    n_a, n_g, count = lay.n_a.astype(float), lay.n_g.astype(float), lay.count
    vmm = _total(m.tiles(n_a, n_g, m.w_slices), count)
    inv = 0.0
    if kfac:
        for n in (n_a, n_g):
            b = block_counts(n, m.size, m.decomposition)
            held = b["residual_tiles"] * (m.r_slices + m.low_slices) * m.av
            vmm = vmm + _total(held + b["extra_tiles"] * m.av, count)
            inv = inv + _total(b["inv_held"] * m.ai, count)
    return vmm, inv


def reram_step(
    arch: Architecture,
    workload: Workload,
    cost: SolveCost | None,
    inv_timing: InvTiming | None,
) -> dict:
    """Time and energy of one training step on the accelerator.

    Parameters
    ----------
    arch : Architecture
    workload : Workload
    cost : SolveCost or None
        Cost of one 16-bit solve; None: first-order SGD on every crossbar (INV ones too).
    inv_timing : InvTiming or None
        INV settling and energy (ignored for SGD).

    Returns
    -------
    dict
        ``time_s`` and ``energy_j`` per step; ``time_by_category_s`` (the limiting
        resource of each phase), ``busy_by_category_s``, ``energy_by_category_j``
        (:data:`CATEGORIES`), ``time_by_phase_s``,
        ``energy_by_phase_j``; ``capacity`` (crossbars needed and available) and
        ``writes_per_cell_per_step`` (count).
    """
    kfac = cost is not None
    m = _Machine(arch, cost if kfac else SolveCost(1, 0, 0, 0, "sgd", "first order"))
    chip, wr = arch.section("chip"), arch.section("write")
    n_vmm = chip.tiles * chip.vmm_crossbars_per_tile
    n_inv = chip.tiles * chip.inv_crossbars_per_tile
    pool = n_vmm if kfac else n_vmm + n_inv  # SGD reads the INV crossbars as VMM arrays too
    per_layer = _layer_ops(m, workload, cost)
    count = workload.layers.count
    phases = {name: _Ops({k: _total(v, count) for k, v in ops.items()})
              for name, ops in per_layer.items()}  # fmt: skip
    need_vmm, need_inv = _resident(m, workload, kfac)
    over_vmm = np.maximum(need_vmm - pool, 0.0)
    over_inv = np.maximum(need_inv - n_inv, 0.0) if kfac else 0.0
    replicas = np.maximum(pool - need_vmm, 0.0)  # free crossbars hold weight replicas
    s = m.size
    phases["rewrites"] = _Ops(
        rows_vmm=(over_vmm + replicas) * s, rows_inv=over_inv * s,
        cells=(over_vmm + replicas + over_inv) * s * s,
    )  # fmt: skip
    settle = inv_timing.settle(s) if kfac else 1.0
    inv_energy = inv_timing.energy(s) if kfac else 0.0
    times = {p: _charge_time(arch, o, pool, n_inv, settle) for p, o in phases.items()}
    energies = {p: _charge_energy(arch, o, inv_energy) for p, o in phases.items()}
    busy = {c: sum(times[p][c] for p in phases) for c in CATEGORIES}
    by_cat_e = {c: sum(energies[p][c] for p in phases) for c in CATEGORIES}
    phase_t, by_cat_t = _schedule(times, busy, arch["model.overlap"])
    total_t = sum(phase_t.values())
    static = chip.static_power_w * total_t
    activation_writes = phases["gradient"]["cells"] + phases.get("statistics", _Ops())["cells"]
    per_cell = np.maximum(1.0, activation_writes / (pool * s * s)) * wr.verify_pulses
    result = {
        "time_s": total_t,
        "energy_j": sum(by_cat_e.values()) + static,
        "time_by_category_s": by_cat_t,
        "busy_by_category_s": busy,
        "energy_by_category_j": {**by_cat_e, "digital": by_cat_e["digital"] + static},
        "time_by_phase_s": phase_t,
        "energy_by_phase_j": {p: sum(e.values()) for p, e in energies.items()},
        "capacity": {
            "vmm_crossbars_needed": need_vmm,
            "vmm_crossbars": pool,
            "inv_crossbars_needed": need_inv,
            "inv_crossbars": n_inv if kfac else 0,
        },
        "writes_per_cell_per_step": per_cell,
    }
    return squeeze(result)


def _schedule(times: dict, busy: dict, overlap: str) -> tuple[dict, dict]:
    """Phase times and the step time attributed to categories (summing to the step time).

    ``none``: nothing overlaps, every category's busy time counts; ``phase``: within a phase
    the resources overlap and the slowest one decides (it gets the phase's time), phases run
    one after another; ``full``: everything overlaps, the busiest resource decides.
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
    for p, t in times.items():
        stack = np.stack(np.broadcast_arrays(*(t[c] for c in CATEGORIES)))
        phase_t[p], first = stack.max(axis=0), stack.argmax(axis=0)
        for i, c in enumerate(CATEGORIES):
            cats[c] = cats[c] + np.where(first == i, phase_t[p], 0.0)
    return phase_t, cats


def _total(per_layer, count):
    """Sum over the layer axis, keeping it (length 1) so sweep axes ``(points, 1)`` align."""
    return np.sum(per_layer * count, axis=-1, keepdims=True)


def squeeze(tree):
    """Drop the kept layer axis from every array of a result tree."""
    if isinstance(tree, dict):
        return {k: squeeze(v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray) and tree.ndim:
        return np.squeeze(tree, axis=-1)
    return tree


def _charge_time(arch: Architecture, o: _Ops, pool, n_inv, settle) -> dict:
    c, v, w = arch.section("crossbar"), arch.section("converters"), arch.section("write")
    chip, d = arch.section("chip"), arch.section("digital")
    convert = np.ceil(c.size / v.adcs_per_crossbar) / v.adc_rate_hz  # one crossbar's columns
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


def _charge_energy(arch: Architecture, o: _Ops, inv_energy) -> dict:
    v, w, d = arch.section("converters"), arch.section("write"), arch.section("digital")
    e_cell = arch["crossbar.cell_read_energy_j"]
    return {
        "inv": o["inv_ops"] * inv_energy,
        "vmm": o["cell_reads"] * e_cell,
        "conversions": o["adc"] * v.adc_energy_j
        + o["dac_vmm"] * v.vmm_dac_energy_j
        + o["dac_inv"] * v.inv_dac_energy_j,
        "writes": o["cells"] * w.verify_pulses * (w.energy_per_cell_j + e_cell),
        "buffers": o["buffer_bits"] * arch["buffer.energy_per_bit_j"]
        + o["noc_bits"] * arch["noc.energy_per_bit_j"]
        + o["offchip_bits"] * arch["offchip.energy_per_bit_j"],
        "digital": o["digital_ops"] * d.energy_per_op_j + o["shift_adds"] * d.shift_add_energy_j,
    }
