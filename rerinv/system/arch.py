"""The accelerator (and GPU baseline) description: a validated TOML file, with named presets.

An architecture file has the sections and keys of :data:`ARCH_FIELDS`; every key has a unit
(in its name suffix and in the table) and a check. A file need only give the values it
changes from the preset it names with ``base = "repast"`` (default: no base, every key
required). The shipped presets (``rerinv/system/presets/*.toml``) state the source of every
value in a comment beside it.

Values are plain numbers so a sweep can replace one by a numpy array
(:meth:`Architecture.with_values`) and the model broadcasts over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import tomllib

from rerinv.config import SCHEMES
from rerinv.errors import ConfigError, not_a_regular_file
from rerinv.system.sources import RANGES, SOURCES

__all__ = ["ARCH_FIELDS", "RANGES", "SOURCES", "Architecture", "arch_names", "load_arch"]

# fmt: off
#: section -> [(key, kind, check, unit, meaning)]; kind "int" | "float" | "bool" | "a|b|c"
#: (one of the words); check ">0" | ">=0" | "0..100" | "".
ARCH_FIELDS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "chip": [
        ("tiles", "int", ">0", "count", "tiles on the accelerator"),
        ("vmm_crossbars_per_tile", "int", ">0", "count", "VMM crossbars per tile"),
        ("inv_crossbars_per_tile", "int", ">0", "count", "INV crossbars per tile (each holds one"
         " array of an INV block; a block needs crossbar.inv_arrays of them)"),
        ("static_power_w", "float", ">=0", "W", "power drawn regardless of activity"),
        ("area_budget_mm2", "float", ">0", "mm^2", "chip area the comparison allows (the"
         " first-order chip gets the same area)"),
        ("power_budget_w", "float", ">0", "W", "average power the chip may draw; above it the"
         " step is throttled to budget"),
        ("first_order_chip", "iso_area|same_crossbars", "", "", "the first-order baseline:"
         " iso_area, the INV blocks' area given to VMM crossbars; same_crossbars, this chip"
         " running SGD with its INV blocks idle"),
    ],
    "crossbar": [
        ("size", "int", ">0", "count", "rows = columns of one crossbar"),
        ("vmm_cell_bits", "int", ">0", "bits", "bits per cell of VMM crossbars"),
        ("inv_cell_bits", "int", ">0", "bits", "bits per cell of INV crossbars"),
        ("vmm_arrays_per_weight", "int", ">0", "count", "arrays per signed weight slice"
         " (1: offset encoding, 2: differential pair)"),
        ("inv_arrays", "int", ">0", "count", "arrays per INV block (2: A+ and A-)"),
        ("read_cycle_s", "float", ">0", "s", "one VMM crossbar read (one input bit-plane)"),
        ("cell_read_energy_j", "float", ">=0", "J", "energy of one cell in one read cycle"),
        ("cell_area_um2", "float", ">0", "um^2", "area of one cell"),
    ],
    "precision": [
        ("weight_bits", "int", ">0", "bits", "fixed-point weights in VMM crossbars"),
        ("activation_bits", "int", ">0", "bits", "activations, errors and vectors"),
        ("residual_weight_bits", "int", ">0", "bits", "K-FAC factor copy in the residual VMM"),
        ("master_weight_bits", "int", ">0", "bits", "off-chip master copy of the weights"),
    ],
    "converters": [
        ("vmm_dac_bits", "int", ">0", "bits", "VMM input DAC (inputs applied bit-serially)"),
        ("inv_dac_bits", "int", ">0", "bits", "INV input DAC"),
        ("adc_bits", "int", ">0", "bits", "ADC resolution (sets conversion time, energy and"
         " area from the reference ADC, and the ideal scheme's bits per pass)"),
        ("adc_ref_bits", "int", ">0", "bits", "resolution of the ADC whose rate, energy and area"
         " are given"),
        ("adcs_per_crossbar", "int", ">0", "count", "ADCs shared by the columns of a crossbar"),
        ("adc_rate_hz", "float", ">0", "Hz", "samples per second of one ADC at adc_ref_bits (a"
         " SAR ADC resolves one bit per cycle: rate x adc_ref_bits / adc_bits)"),
        ("adc_energy_j", "float", ">=0", "J", "one conversion at adc_ref_bits"),
        ("adc_area_um2", "float", ">0", "um^2", "one ADC at adc_ref_bits"),
        ("adc_energy_growth_per_bit", "float", ">0", "1", "ADC energy factor per extra bit"),
        ("adc_area_growth_per_bit", "float", ">0", "1", "ADC area factor per extra bit"),
        ("vmm_dac_energy_j", "float", ">=0", "J", "one 1-bit VMM DAC (row driver) sample"),
        ("inv_dac_energy_j", "float", ">=0", "J", "one 1-bit INV DAC sample"),
        ("dac_area_um2", "float", ">0", "um^2", "one 1-bit DAC"),
        ("dac_growth_per_bit", "float", ">0", "1", "DAC energy and area factor per extra bit"),
    ],
    "inv": [
        ("source", "arch|card", "", "", "INV settling time and energy: this section or the card"),
        ("settle_s", "float", ">0", "s", "INV solve (settling) time, source = arch"),
        ("opamp_power_w", "float", ">=0", "W", "one op-amp while solving, source = arch"),
        ("opamps_per_row", "int", ">0", "count", "op-amps per INV row (row amplifier + inverter)"),
        ("crossbar_power_w", "float", ">=0", "W", "array dissipation while solving, source ="
         " arch"),
        ("opamp_area_um2", "float", ">0", "um^2", "one op-amp of an INV block"),
    ],
    "solve": [
        ("source", "ideal|card", "", "", "costs of one 16-bit solve: the ideal values below or"
         " the card's Monte Carlo distribution"),
        ("scheme", "|".join(SCHEMES), "", "", "precision scheme"),
        ("percentile", "float", "0..100", "%", "percentile of the card's per-solve costs"),
        ("passes", "float", ">0", "count", "ideal: passes per 16-bit solve"),
        ("inv_solves", "float", ">=0", "count", "ideal: INV crossbar solves per 16-bit solve"),
        ("vmm_ops", "float", ">=0", "count", "ideal: VMM crossbar ops (bit-plane x slice) per"
         " 16-bit solve of one crossbar-sized system"),
        ("conversions_per_row", "float", ">=0", "count", "ideal: DAC + ADC samples per 16-bit"
         " solve, per matrix row"),
        ("target_bits", "float", ">0", "bits", "ideal: bits a solve must reach; the ideal counts"
         " scale with ceil(target / min(adc_bits, inv_cell_bits)) / passes"),
        ("decomposition", "blockamc|block_diagonal", "", "", "matrices larger than a crossbar:"
         " BlockAMC 2x2 recursion (exact K-FAC) or block-diagonal approximation"),
        ("blockamc_vmm_planes", "int", ">0", "count", "input bit-planes of the low-precision"
         " VMMs inside a BlockAMC solve"),
    ],
    "digital": [
        ("ops_per_s_per_tile", "float", ">0", "1/s", "vector-unit operations per second, per"
         " tile"),
        ("energy_per_op_j", "float", ">=0", "J", "one vector-unit operation (16-bit FMA)"),
        ("shift_add_energy_j", "float", ">=0", "J", "one shift-and-add of an ADC output"),
        ("area_mm2_per_tile", "float", ">=0", "mm^2", "the vector unit of a tile"),
    ],
    "buffer": [
        ("bytes_per_tile", "float", ">0", "B", "on-chip buffer per tile (activations kept for"
         " the backward pass stay on chip while they fit)"),
        ("bits_per_s_per_tile", "float", ">0", "bit/s", "buffer bandwidth per tile"),
        ("energy_per_bit_j", "float", ">=0", "J", "buffer access energy per bit"),
        ("edram_area_mm2_per_kib", "float", ">=0", "mm^2", "buffer area per KiB"),
        ("bus_area_mm2", "float", ">=0", "mm^2", "buffer-to-crossbar bus per tile"),
    ],
    "offchip": [
        ("bits_per_s", "float", ">0", "bit/s", "off-chip memory bandwidth"),
        ("energy_per_bit_j", "float", ">=0", "J", "off-chip memory energy per bit"),
        ("interface_area_mm2", "float", ">=0", "mm^2", "off-chip interface (per chip)"),
        ("interface_power_w", "float", ">=0", "W", "off-chip interface power while active"),
    ],
    "noc": [
        ("bits_per_s_per_tile", "float", ">0", "bit/s", "on-chip network bandwidth of a tile:"
         " its router port (a concentrated mesh gives each tile a port)"),
        ("tiles_per_router", "int", ">0", "count", "tiles sharing one router (its area)"),
        ("energy_per_bit_j", "float", ">=0", "J", "on-chip network energy per bit"),
        ("router_area_mm2", "float", ">=0", "mm^2", "one router"),
    ],
    "write": [
        ("row_s", "float", ">0", "s", "one program pulse on one crossbar row (all columns)"),
        ("energy_per_cell_j", "float", ">=0", "J", "one program pulse on one cell"),
        ("verify_pulses", "float", ">0", "count", "program-and-verify pulses per write"),
        ("endurance_cycles", "float", ">0", "count", "writes a cell survives"),
    ],
    "model": [
        ("overlap", "phase|none|full", "", "", "phase: within a phase the slowest resource"
         " decides, phases in sequence; none: everything adds (upper bound); full: the busiest"
         " resource decides (lower bound)"),
    ],
    "gpu": [
        ("peak_flops", "float", ">0", "FLOP/s", "FP32 peak"),
        ("bytes_per_s", "float", ">0", "B/s", "memory bandwidth"),
        ("power_w", "float", ">0", "W", "board power while training"),
        ("gemm_efficiency", "float", ">0", "1", "fraction of peak reached by GEMM-like kernels"),
        ("winograd_reduction", "float", ">0", "1", "fewer multiplications of a 3x3"
         " convolution run as Winograd transforms (1: direct / implicit GEMM)"),
        ("inverse_efficiency", "float", ">0", "1", "fraction of peak reached by Cholesky"
         " inversion"),
        ("memory_efficiency", "float", ">0", "1", "fraction of bandwidth reached"),
        ("kernel_launch_s", "float", ">=0", "s", "fixed cost per kernel"),
        ("bytes_per_value", "int", ">0", "B", "bytes per stored value (FP32: 4)"),
        ("die_area_mm2", "float", ">0", "mm^2", "GPU die area (reported beside the chip's)"),
    ],
}
# fmt: on


def _check(section: str, key: str, kind: str, limit: str, value: Any, where: str) -> Any:
    name = f"{section}.{key}"
    if "|" in kind:
        if value not in kind.split("|"):
            raise ConfigError(f"{where}: {name} must be one of {kind.split('|')}, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.ndarray)):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{where}: {name} must be finite, got {value!r}")
    if kind == "int" and not np.all(array == np.round(array)):
        raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
    bad = {">0": array <= 0, ">=0": array < 0, "0..100": (array < 0) | (array > 100)}.get(limit)
    if bad is not None and np.any(bad):
        text = {">0": "> 0", ">=0": ">= 0", "0..100": "in [0, 100]"}[limit]
        raise ConfigError(f"{where}: {name} must be {text}, got {value!r}")
    return value


@dataclass(frozen=True)
class Architecture:
    """A complete, validated architecture: ``arch["crossbar.size"]`` or
    ``arch.section("crossbar").size``; ``name`` says where it came from."""

    name: str
    values: MappingProxyType = field(repr=False)
    _sections: dict = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, dotted: str) -> Any:
        return self.values[dotted]

    def section(self, name: str):
        """The keys of one section as attributes (a read-only namespace; built once)."""
        if name not in self._sections:
            prefix = f"{name}."
            self._sections[name] = _Namespace(
                {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}
            )
        return self._sections[name]

    def with_values(self, changes: dict[str, Any], *, where: str = "--set") -> Architecture:
        """A checked copy with ``{"section.key": value}`` changed (values may be arrays)."""
        values = dict(self.values)
        for dotted, value in changes.items():
            section, key = _split(dotted, where)
            values[dotted] = _check(section, key, *_spec(section, key, where), value, where)
        return Architecture(self.name, MappingProxyType(values))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` (JSON-able when no value is an array)."""
        out: dict[str, dict[str, Any]] = {}
        for dotted, value in self.values.items():
            section, key = dotted.split(".")
            out.setdefault(section, {})[key] = value
        return out


class _Namespace:
    def __init__(self, values: dict):
        self.__dict__.update(values)


def _spec(section: str, key: str, where: str) -> tuple[str, str]:
    if section not in ARCH_FIELDS:
        raise ConfigError(f"{where}: unknown section [{section}]; known: {sorted(ARCH_FIELDS)}")
    for name, kind, limit, _, _ in ARCH_FIELDS[section]:
        if name == key:
            return kind, limit
    known = [f[0] for f in ARCH_FIELDS[section]]
    raise ConfigError(f"{where}: unknown key {section}.{key}; known keys of [{section}]: {known}")


def _split(dotted: str, where: str) -> tuple[str, str]:
    section, dot, key = dotted.partition(".")
    if not dot:
        raise ConfigError(f"{where}: expected section.key, got {dotted!r}")
    return section, key


def arch_from_dict(data: dict, *, name: str, base: Architecture | None = None) -> Architecture:
    """Check ``{section: {key: value}}`` (keys missing here keep ``base``'s values)."""
    values = dict(base.values) if base is not None else {}
    for section, table in data.items():
        if section == "base":
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: [{section}] must be a table of key = value")
        for key, value in table.items():
            kind, limit = _spec(section, key, name)
            values[f"{section}.{key}"] = _check(section, key, kind, limit, value, name)
    missing = [
        f"{s}.{k}"
        for s, fields in ARCH_FIELDS.items()
        for k, *_ in fields
        if f"{s}.{k}" not in values
    ]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(
            f"{name}: missing {missing[0]}{more}; give it, or start from a preset with "
            'base = "repast"'
        )
    return Architecture(name, MappingProxyType(values))


def arch_names() -> tuple[str, ...]:
    """Names of the shipped architecture presets."""
    folder = files(__package__).joinpath("presets")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def preset_path(name: str):
    """The shipped file ``presets/<name>`` (a Traversable; read it with ``read_text``)."""
    return files(__package__).joinpath("presets").joinpath(name)


def load_arch(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Architecture:
    """A preset by name (``repast``, ``calibrated``) or a TOML file, then ``overrides``.

    Raises
    ------
    rerinv.errors.ConfigError
        Unknown preset, unreadable file, unknown key or bad value (the message names it).
    """
    text, name = _read(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from exc
    base = data.get("base")
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{name}: base must be a preset name, got {base!r}")
    if base == str(name_or_path):
        raise ConfigError(f"{name}: base names the file itself")
    arch = arch_from_dict(data, name=name, base=load_arch(base) if base else None)
    arch = Architecture(str(name_or_path), arch.values)
    return arch.with_values(overrides) if overrides else arch


def _read(name_or_path: str | Path) -> tuple[str, str]:
    if str(name_or_path) in arch_names():
        return preset_path(f"{name_or_path}.toml").read_text(), f"preset {name_or_path}"
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        raise ConfigError(
            f"unknown architecture {str(name_or_path)!r}: give a preset "
            f"({', '.join(arch_names())}) or a .toml file"
        )
    if reason := not_a_regular_file(path):
        raise ConfigError(reason)
    try:
        return path.read_text(), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read architecture file {path}: {exc}") from exc


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``["crossbar.size=128", "solve.scheme=refine"]`` -> a dict of typed values."""
    out: dict[str, Any] = {}
    for text in assignments:
        dotted, sep, raw = text.partition("=")
        dotted, raw = dotted.strip(), raw.strip()
        if not sep:
            raise ConfigError(f"--set {text!r}: expected section.key=value")
        section, key = _split(dotted, f"--set {text}")
        kind, _ = _spec(section, key, f"--set {text}")
        out[dotted] = _parse(kind, raw, dotted)
    return out


def _parse(kind: str, raw: str, dotted: str) -> Any:
    if "|" in kind:
        return raw.strip("'\"")
    if kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise ConfigError(f"--set {dotted}: expected true or false, got {raw!r}")
        return raw.lower() == "true"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"--set {dotted}: expected a number, got {raw!r}") from None
    if kind == "int" and math.isfinite(value) and value == round(value):
        return int(value)
    return value
