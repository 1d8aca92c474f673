"""What the chip is made of: converters scaled to their resolution, the area and peak power
of each component, the first-order chip of the same area, and the power budget.

Converters (sources in :mod:`rerinv.system.sources`): the ADC's rate, energy and area are
given at ``adc_ref_bits`` (ISAAC's 8-bit SAR ADC); a SAR ADC resolves one bit per cycle, so
at ``adc_bits`` it samples at ``rate x ref / bits``, and its energy and area grow by
``adc_energy_growth_per_bit`` and ``adc_area_growth_per_bit`` per extra bit. A DAC sample of
``b`` bits costs ``dac_growth_per_bit ** (b - 1)`` times a 1-bit one (energy and area).

Area of a tile: VMM crossbars (cells, their ADCs and one DAC per row), INV arrays (cells)
and INV blocks' periphery (``opamps_per_row`` op-amps, one DAC per row and the ADCs per
block), the eDRAM buffer and its bus, the tile's share of a router and the vector unit; the
chip adds the off-chip interface. Peak power is every component busy at once; the model's
average power is energy / time per step (:func:`throttle` applies the budget).

Everything broadcasts: any architecture value may be a numpy array.
"""

from __future__ import annotations

import numpy as np

from rerinv.system.arch import Architecture

UM2 = 1e-6  # mm^2 per um^2


def adc(arch: Architecture) -> dict:
    """``energy_j``, ``rate_hz`` and ``area_mm2`` of one ADC at ``adc_bits``."""
    c = arch.section("converters")
    extra = np.asarray(c.adc_bits, dtype=float) - c.adc_ref_bits
    with np.errstate(over="ignore"):  # absurd resolutions give inf, not a warning
        return _adc(c, extra)


def _adc(c, extra) -> dict:
    return {
        "energy_j": c.adc_energy_j * c.adc_energy_growth_per_bit**extra,
        "rate_hz": c.adc_rate_hz * c.adc_ref_bits / np.asarray(c.adc_bits, dtype=float),
        "area_mm2": c.adc_area_um2 * UM2 * c.adc_area_growth_per_bit**extra,
    }


def dac_factor(arch: Architecture, bits) -> np.ndarray:
    """Energy (and area) of a ``bits``-bit DAC sample relative to a 1-bit one."""
    with np.errstate(over="ignore"):
        return arch["converters.dac_growth_per_bit"] ** (np.asarray(bits, dtype=float) - 1.0)


def conversion_time(arch: Architecture):
    """Time one crossbar's ADCs take to convert all its columns (s)."""
    per_adc = np.ceil(arch["crossbar.size"] / arch["converters.adcs_per_crossbar"])
    return per_adc / adc(arch)["rate_hz"]


def _parts(arch: Architecture, inv_power_w=None) -> dict:
    """Area (mm^2) and peak power (W) of one VMM crossbar, one INV array, one INV block's
    periphery and the rest of a tile."""
    s, c, v = arch["crossbar.size"], arch.section("crossbar"), arch.section("converters")
    inv, b, n = arch.section("inv"), arch.section("buffer"), arch.section("noc")
    a = adc(arch)
    cells = np.asarray(s, dtype=float) ** 2
    adc_power = a["energy_j"] * a["rate_hz"]
    vmm_dac, inv_dac = dac_factor(arch, v.vmm_dac_bits), dac_factor(arch, v.inv_dac_bits)
    if inv_power_w is None:
        inv_power_w = inv.opamps_per_row * s * inv.opamp_power_w + inv.crossbar_power_w
    return {
        "vmm_crossbar": {
            "area": cells * c.cell_area_um2 * UM2 + v.adcs_per_crossbar * a["area_mm2"]
            + s * v.dac_area_um2 * UM2 * vmm_dac,
            "power": cells * c.cell_read_energy_j / c.read_cycle_s
            + v.adcs_per_crossbar * (adc_power + a["rate_hz"] * arch["digital.shift_add_energy_j"])
            + s * v.vmm_dac_energy_j * vmm_dac / c.read_cycle_s,
        },
        "inv_array": {"area": cells * c.cell_area_um2 * UM2, "power": 0.0},
        "inv_periphery": {
            "area": s * inv.opamps_per_row * inv.opamp_area_um2 * UM2
            + s * v.dac_area_um2 * UM2 * inv_dac + v.adcs_per_crossbar * a["area_mm2"],
            "power": inv_power_w + v.adcs_per_crossbar * adc_power,
        },
        "buffer": {
            "area": b.bytes_per_tile / 1024 * b.edram_area_mm2_per_kib + b.bus_area_mm2,
            "power": b.bits_per_s_per_tile * b.energy_per_bit_j,
        },
        "router": {
            "area": n.router_area_mm2 / n.tiles_per_router,
            # a concentrated mesh (ISAAC): a port per tile and as many to the mesh, so at
            # full activity each tile accounts for two ports' traffic
            "power": 2.0 * n.bits_per_s_per_tile * n.energy_per_bit_j,
        },
        "digital": {
            "area": arch["digital.area_mm2_per_tile"],
            "power": arch["digital.ops_per_s_per_tile"] * arch["digital.energy_per_op_j"],
        },
    }  # fmt: skip


def chip_budget(arch: Architecture, inv_power_w=None) -> dict:
    """Area and peak power of the K-FAC chip and of the first-order chip of the same area.

    Parameters
    ----------
    inv_power_w : array_like, optional
        Power of one INV block while solving (W); default from ``[inv]`` (the card's
        energy / settling time when the INV costs come from a card).

    Returns
    -------
    dict
        ``area_mm2`` and ``peak_power_w`` of the chip with their ``*_by_part`` breakdowns
        (``vmm``, ``inv``, ``buffer``, ``router``, ``digital``, ``offchip``), the budgets,
        ``over_area_budget``, ``first_order_vmm_crossbars`` (VMM crossbars of a chip of the
        same tiles where each INV array and block periphery is replaced by as many VMM
        crossbars as fit its area; with ``chip.first_order_chip = "same_crossbars"`` this
        chip's own) and ``gpu_die_area_mm2``.
    """
    p = _parts(arch, inv_power_w)
    chip = arch.section("chip")
    tiles = chip.tiles
    blocks = chip.inv_crossbars_per_tile / arch["crossbar.inv_arrays"]
    inv_area = chip.inv_crossbars_per_tile * p["inv_array"]["area"] + blocks * p[
        "inv_periphery"]["area"]  # fmt: skip
    area = {
        "vmm": tiles * chip.vmm_crossbars_per_tile * p["vmm_crossbar"]["area"],
        "inv": tiles * inv_area,
        "buffer": tiles * p["buffer"]["area"],
        "router": tiles * p["router"]["area"],
        "digital": tiles * p["digital"]["area"],
        "offchip": arch["offchip.interface_area_mm2"],
    }
    power = {
        "vmm": tiles * chip.vmm_crossbars_per_tile * p["vmm_crossbar"]["power"],
        "inv": tiles * blocks * p["inv_periphery"]["power"],
        "buffer": tiles * p["buffer"]["power"],
        "router": tiles * p["router"]["power"],
        "digital": tiles * p["digital"]["power"],
        "offchip": arch["offchip.interface_power_w"]
        + arch["offchip.bits_per_s"] * arch["offchip.energy_per_bit_j"],
    }
    extra = np.floor(inv_area / p["vmm_crossbar"]["area"] + 1e-9)
    if arch["chip.first_order_chip"] == "same_crossbars":  # the INV blocks idle instead
        extra = 0.0 * extra
    total_area = sum(area.values())
    return {
        "area_mm2": total_area,
        "area_by_part_mm2": area,
        "peak_power_w": sum(power.values()) + chip.static_power_w,
        "peak_power_by_part_w": power,
        "area_budget_mm2": chip.area_budget_mm2,
        "power_budget_w": chip.power_budget_w,
        "over_area_budget": total_area > chip.area_budget_mm2 * (1 + 1e-9),
        "first_order_vmm_crossbars": tiles * (chip.vmm_crossbars_per_tile + extra),
        "tile_area_mm2": (total_area - area["offchip"]) / tiles,
        "gpu_die_area_mm2": arch["gpu.die_area_mm2"],
    }


def tiles_for_area(arch: Architecture, area_mm2) -> np.ndarray:
    """The most tiles of ``arch``'s composition whose chip fits ``area_mm2``."""
    one = chip_budget(arch.with_values({"chip.tiles": 1}, where="tiles_for_area"))
    tile = one["tile_area_mm2"]
    return np.floor((np.asarray(area_mm2) - arch["offchip.interface_area_mm2"]) / tile + 1e-9)


def throttle(time_s, energy_j, budget_w) -> tuple:
    """A step that would average more than ``budget_w`` is stretched to average it.

    Returns
    -------
    (time_s, factor)
        The throttled step time and the stretch factor (1 when within budget).
    """
    floor = np.asarray(energy_j) / budget_w
    throttled = np.maximum(time_s, floor)
    return throttled, throttled / np.where(np.asarray(time_s) > 0, time_s, 1.0)
