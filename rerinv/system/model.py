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
  registers as in ISAAC; the activations kept for the backward pass stay in the buffers, go to
  memory subarrays or off chip and back, :mod:`rerinv.system.activations`);
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

from rerinv.system.activations import placement
from rerinv.system.arch import Architecture
from rerinv.system.blocks import block_counts
from rerinv.system.calibration import InvTiming, SolveCost
from rerinv.system.charges import CATEGORIES as _CHARGED
from rerinv.system.charges import PIPELINED, charge_energy, charge_time, schedule
from rerinv.system.components import chip_budget, throttle
from rerinv.system.workloads import Workload

#: resources a step's time is charged to; "power" is the wait a throttled step adds
CATEGORIES = (*_CHARGED, "power")
KFAC_PHASES = ("forward", "backward", "gradient", "statistics", "refresh", "precondition",
               "update", "rewrites", "throttle")  # fmt: skip
SGD_PHASES = ("forward", "backward", "gradient", "update", "rewrites", "throttle")
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
        self.buffer_bits = arch["chip.tiles"] * arch["buffer.bytes_per_tile"] * 8.0
        self.cell_bits = c.vmm_cell_bits

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


def _layer_ops(m: _Machine, w: Workload, cost: SolveCost | None, where: dict) -> dict:
    """Operation counts per phase, per layer (arrays over layers), averaged per step;
    ``where``: the shares of the stash in the buffers and off chip (:mod:`activations`)."""
    lay, tr = w.layers, w.training
    n_a, n_g = lay.n_a.astype(float), lay.n_g.astype(float)
    q = tr.batch * lay.positions.astype(float)
    stash = q * lay.fan_in * m.bits  # activations kept for the backward pass (bits)
    kept, spill = stash * where["buffer"], where["offchip"]
    held = stash * where["memory"] / m.cell_bits  # cells of the memory subarrays
    stored = _Ops(rows_vmm=held / m.size, cells=held)  # written in the forward pass
    recalled = _Ops(vmm_cycles=held / m.size, adc=held, cell_reads=held)  # read back
    ops = {
        "forward": m.vmm(n_a, n_g, q, m.w_slices)
        + _Ops(buffer_bits=q * (lay.fan_in + n_g) * m.bits + kept, noc_bits=q * n_g * m.bits,
               offchip_bits=stash * spill, digital_ops=q * n_g) + stored,
        "backward": m.vmm(n_g, n_a, q, m.w_slices)
        + _Ops(buffer_bits=q * (n_g + lay.fan_in) * m.bits + kept,
               noc_bits=q * lay.fan_in * m.bits, offchip_bits=stash * spill,
               digital_ops=q * lay.fan_in) + recalled,
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

    The activations kept for the backward pass that the buffers cannot hold go to memory
    subarrays (crossbars that would otherwise hold replicas) or off chip, whichever makes
    the step faster (point by point, :mod:`rerinv.system.activations`).

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
    off, mem = (_step(arch, workload, cost, inv_timing, memory) for memory in (False, True))
    return _pick(np.asarray(mem["time_s"]) <= np.asarray(off["time_s"]), mem, off)


def _pick(first, a, b):
    """``a`` where ``first``, else ``b``, leaf by leaf of two result trees."""
    if isinstance(a, dict):
        return {k: _pick(first, a[k], b[k]) for k in a}
    picked = np.where(first, a, b)
    return picked.item() if picked.ndim == 0 else picked


def _step(arch, workload, cost, inv_timing, memory: bool) -> dict:
    """:func:`reram_step` with (``memory``) or without memory subarrays."""
    kfac = cost is not None
    m = _Machine(arch, cost if kfac else SolveCost(1, 0, 0, 0, "sgd", "first order"))
    chip, wr = arch.section("chip"), arch.section("write")
    s = m.size
    settle = inv_timing.settle(s) if kfac else 1.0
    inv_energy = inv_timing.energy(s) if kfac else 0.0
    budget = chip_budget(arch, inv_energy / settle if kfac else None)
    n_inv = chip.tiles * chip.inv_crossbars_per_tile
    # K-FAC: the chip's VMM crossbars; SGD: the first-order chip of the same area
    pool = chip.tiles * chip.vmm_crossbars_per_tile if kfac else budget["first_order_vmm_crossbars"]
    lay, count = workload.layers, workload.layers.count
    need_vmm, need_inv = _resident(m, workload, kfac)
    over_vmm = np.maximum(need_vmm - pool, 0.0)
    over_inv = np.maximum(need_inv - n_inv, 0.0) if kfac else 0.0
    tiles = m.tiles(lay.n_a.astype(float), lay.n_g.astype(float), m.w_slices)
    weights = _total(tiles, count)
    # the live activations first take crossbars holding no weight (memory subarrays)
    where = placement(m, workload, (pool - weights) if memory else 0.0)
    per_layer = _layer_ops(m, workload, cost, where)
    phases = {name: _Ops({k: _total(v, count) for k, v in ops.items()})
              for name, ops in per_layer.items()}  # fmt: skip
    # weight replicas (PipeLayer's parallelism granularity), never more copies of a layer
    # than it has input vectors per step, in any VMM crossbar not holding a weight: the
    # factor copies are read only by the refresh and precondition phases, after the
    # pipeline, so a copy a replica displaces is rewritten before them, once per step, as
    # those beyond capacity are; replicas are rewritten at every update
    vectors = workload.training.batch * lay.positions.astype(float)
    free = np.maximum(pool - need_vmm, 0.0)
    memory = where["crossbars"]
    most = np.minimum(np.maximum(pool - weights - memory, 0.0),
                      _total(tiles * (vectors - 1.0), count))  # fmt: skip
    used = _replication(arch, phases, np.minimum(pool, weights + most), pool, n_inv, settle)
    replicas = np.clip(used - weights, 0.0, most)
    displaced = np.maximum(replicas + memory - free, 0.0)
    phases["rewrites"] = _Ops(
        rows_vmm=(over_vmm + replicas + displaced) * s, rows_inv=over_inv * s,
        cells=(over_vmm + replicas + displaced + over_inv) * s * s,
    )  # fmt: skip
    times = {p: charge_time(arch, o, used if p in _REPLICATED else pool, n_inv, settle)
             for p, o in phases.items()}  # fmt: skip
    energies = {p: charge_energy(arch, o, inv_energy) for p, o in phases.items()}
    busy = {c: sum(times[p][c] for p in phases) for c in CATEGORIES[:-1]}
    by_cat_e = {c: sum(energies[p][c] for p in phases) for c in CATEGORIES[:-1]}
    fill = (workload.training.batch + 2.0 * _total(count, 1)) / workload.training.batch
    phase_t, by_cat_t = schedule(times, busy, arch["model.overlap"], fill)
    free_t = sum(phase_t.values())
    static = chip.static_power_w * free_t
    energy = sum(by_cat_e.values()) + static
    total_t, factor = throttle(free_t, energy, chip.power_budget_w)
    wait = total_t - free_t
    busy["power"], by_cat_t["power"], by_cat_e["power"] = wait, wait, 0.0
    phase_t["throttle"] = wait
    activation_writes = (
        phases["gradient"]["cells"]
        + phases.get("statistics", _Ops())["cells"]
        + phases["forward"]["cells"]
    )  # fmt: skip (memory subarrays)
    per_cell = np.maximum(1.0, activation_writes / (pool * s * s)) * wr.verify_pulses
    result = {
        "time_s": total_t,
        "energy_j": energy,
        "time_by_category_s": by_cat_t,
        "busy_by_category_s": busy,
        "energy_by_category_j": {**by_cat_e, "digital": by_cat_e["digital"] + static},
        "time_by_phase_s": phase_t,
        "energy_by_phase_j": {
            **{p: sum(e.values()) for p, e in energies.items()},
            "throttle": 0.0,
        },  # fmt: skip
        "capacity": {
            "vmm_crossbars_needed": need_vmm,
            "vmm_crossbars": pool,
            "inv_crossbars_needed": need_inv,
            "inv_crossbars": n_inv if kfac else 0,
            "weight_replicas": replicas,
            "displaced_factor_copies": displaced,
            "activation_crossbars": memory,
            "activations_off_chip": where["offchip"],
        },
        "power": {
            "average_w": energy / total_t,
            "unthrottled_average_w": energy / free_t,
            "peak_w": budget["peak_power_w"] if kfac else _first_order_peak(budget, arch),
            "budget_w": chip.power_budget_w,
            "throttle": factor,
            "unthrottled_time_s": free_t,
        },
        "area_mm2": budget["area_mm2"],
        "area_budget_mm2": chip.area_budget_mm2,
        "over_area_budget": budget["over_area_budget"],
        "pipeline_fill": fill,
        "writes_per_cell_per_step": per_cell,
    }
    return squeeze(result)


_REPLICATED = ("forward", "backward")


def _replication(arch, phases, most, pool, n_inv, settle):
    """Crossbars the forward and backward passes read: the weights and as many replicas as
    keep the crossbars from limiting the pipeline (PipeLayer's parallelism granularity,
    chosen), at most ``most``; replicas beyond that would only add rewrites."""
    t = {p: charge_time(arch, phases[p], most if p in _REPLICATED else pool, n_inv, settle)
         for p in PIPELINED}  # fmt: skip
    others = np.stack(
        np.broadcast_arrays(*(sum(t[p][c] for p in PIPELINED) for c in _CHARGED if c != "vmm"))
    ).max(axis=0)
    reads = sum(t[p]["vmm"] for p in _REPLICATED) * most  # crossbar-seconds
    room = np.maximum(others - t["gradient"]["vmm"], 1e-30)
    return np.minimum(most, reads / room * (1.0 + 1e-6))  # ties go to the other resource


def _first_order_peak(budget: dict, arch: Architecture):
    """Peak power of the first-order chip: the K-FAC chip's without INV blocks, with the VMM
    crossbars that replace them."""
    vmm = arch["chip.tiles"] * arch["chip.vmm_crossbars_per_tile"]
    per_vmm = budget["peak_power_by_part_w"]["vmm"] / vmm
    return (budget["peak_power_w"] - budget["peak_power_by_part_w"]["inv"]
            + (budget["first_order_vmm_crossbars"] - vmm) * per_vmm)  # fmt: skip


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
