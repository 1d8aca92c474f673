"""The parameter card's JSON schema :data:`CARD_SCHEMA`, built from compact field leaves.

A leaf is ``(name, type, unit, meaning, limits)``; a type ending in ``?`` also allows null. The
unit goes into the annotation keyword ``unit`` and at the end of the ``description``. Also here:
:data:`SUMMARY_FIELDS` (card summary field -> the config field it repeats) and :func:`lookup`,
the one helper that follows a dotted path into a card.
"""

from __future__ import annotations

from typing import Any

CARD_FORMAT = "rerinv-parameter-card"
CARD_VERSION = 1
SETTLE_MODEL = "t = a * ln(1/eps) / (2*pi*gbw*lambda_min)"

_LIMITS = {
    "": {},
    ">0": {"exclusiveMinimum": 0},
    ">=0": {"minimum": 0},
    ">=1": {"minimum": 1},
    "0..1": {"minimum": 0, "maximum": 1},
}


def _leaf(kind: str, unit: str, text: str, limits: str = "", **extra) -> dict:
    base = kind.rstrip("?")
    schema: dict[str, Any] = {"type": [base, "null"] if kind.endswith("?") else base}
    if unit:
        schema["unit"] = unit
        text = f"{text} [{unit}]"
    return {**schema, "description": text, **_LIMITS[limits], **extra}


def _list(kind: str, unit: str, text: str, limits: str = "") -> dict:
    """An array of ``kind`` items (one per Monte Carlo trial or per size); limits apply to the
    items, the unit to each item."""
    item = {"type": kind, **_LIMITS[limits]}
    return {"type": "array", "unit": unit, "description": f"{text} [{unit}]", "items": item}


def _obj(text: str, leaves: list, *, null: bool = False, optional: tuple = ()) -> dict:
    props = {leaf[0]: leaf[1] if isinstance(leaf[1], dict) else _leaf(*leaf[1:]) for leaf in leaves}
    return {
        "type": ["object", "null"] if null else "object",
        "description": text,
        "required": [k for k in props if k not in optional],
        "properties": props,
        "additionalProperties": False,
    }


# fmt: off
# The keys of rerinv.provenance.software_versions(); cards written before it carry only the
# four required ones (ngspice null when unused), and further version strings are accepted.
_SOFTWARE = [
    ("rerinv", "string", "", "rerinv version"),
    ("ngspice", "string?", "", "ngspice version (\"not used\", or null in older cards)"),
    ("numpy", "string", "", "numpy version"),
    ("scipy", "string", "", "scipy version"),
    ("h5py", "string", "", "h5py version"),
    ("hdf5", "string", "", "HDF5 library version"),
    ("python", "string", "", "Python version"),
    ("platform", "string", "", "operating system and machine, platform.platform()"),
]
_SOFTWARE_OPTIONAL = ("scipy", "h5py", "hdf5", "platform")
_DEVICE = [
    ("g_min_siemens", "number", "S", "lowest programmable conductance", ">0"),
    ("g_max_siemens", "number", "S", "highest programmable conductance", ">0"),
    ("cell_bits", "integer", "bits", "bits per cell: 2**bits levels", ">=1"),
    ("programming_error_abs_frac", "number", "1", "absolute programming error std, fraction of"
     " g_max", ">=0"),
    ("programming_error_rel_frac", "number", "1", "proportional programming error std, fraction"
     " of the target", ">=0"),
    ("read_noise_frac", "number", "1", "read noise std per read, fraction of the conductance",
     ">=0"),
    ("p_stuck_low", "number", "1", "probability of a cell stuck at g_min", "0..1"),
    ("p_stuck_high", "number", "1", "probability of a cell stuck at g_max", "0..1"),
]
_ARRAY = [
    ("max_size", "integer", "count", "largest N one crossbar holds", ">=1"),
    ("r_wire_ohm", "number", "ohm", "wire resistance per cell segment, 0 = off", ">=0"),
    ("r_in_ohm", "number", "ohm", "INV input resistor, DAC to row", ">0"),
    ("r_f_ohm", "number", "ohm", "VMM transimpedance feedback resistor", ">0"),
]
_CONVERTERS = [
    ("dac_bits", "integer", "bits", "DAC resolution", ">=1"),
    ("adc_bits", "integer", "bits", "ADC resolution", ">=1"),
    ("dac_range_v", "number", "V", "DAC full scale: outputs in +-range", ">0"),
    ("adc_range_v", "number", "V", "ADC full scale: saturates beyond +-range", ">0"),
]
_SETTLE_FIT = [
    ("model", _leaf("string", "", "fitted model", enum=[SETTLE_MODEL])),
    ("a", "number", "1", "fitted prefactor", ">0"),
    ("a_std", "number", "1", "standard error of a", ">=0"),
    ("gbw_hz", "number", "Hz", "op-amp gain-bandwidth of the fitted runs", ">0"),
    ("n_points", "integer", "count", "settling simulations fitted", ">=1"),
    ("max_rel_error", "number", "1", "largest relative residual of the fit", ">=0"),
]
_SETTLE_VS_N = [
    ("n", _list("integer", "count", "sizes N of the simulated INV crossbars", ">=1")),
    ("settle_s", _list("number", "s", "settling time at each N, same order", ">0")),
    ("r_in_ohm", "number", "ohm", "INV input resistor of these runs", ">0"),
]
_TIMING = [
    ("inv_settle_fit", _obj("fit of INV settling times to the single-pole model", _SETTLE_FIT,
                            null=True)),
    ("inv_settle_typical_s", "number?", "s", "typical INV settling time", ">0"),
    ("vmm_settle_s", "number?", "s", "VMM settling time", ">0"),
    ("inv_settle_vs_n", _obj("INV settling time versus N at config.array.r_in, the sizes whose"
                             " transient settled (read by the system timing model,"
                             " rerinv.system)", _SETTLE_VS_N, null=True)),
]
_TIMING += [
    ("source", "string", "", "where the times come from when not the op-amp macro-model (e.g."
                             " transistor-level, SKY130 tt)"),
]
# Added after card format 1 was first written: optional, so older cards still validate.
_TIMING_OPTIONAL = ("inv_settle_vs_n", "source")
_ERROR_STATS = [
    ("mean", "number", "1", "mean relative full-scale error", ">=0"),
    ("std", "number", "1", "standard deviation of the relative full-scale error", ">=0"),
    ("n", "integer", "count", "number of trials", ">=1"),
]
_ERROR_TEXT = "{}: max_i abs(x_i - x*_i) / max_i abs(x*_i) over Monte Carlo trials"
_SCHEME = [
    ("bits_per_pass", "number?", "bits", "median effective bits gained per pass"),
    ("passes_to_16_median", "number?", "count", "median passes to 16 bits (null: never)", ">=0"),
    ("passes_to_16_p90", "number?", "count", "90th percentile of passes to 16 bits", ">=0"),
    ("success_rate", "number", "1", "fraction of trials that reached 16 bits", "0..1"),
    ("n_trials", "integer", "count", "number of Monte Carlo trials", ">=1"),
]
# What each solve that reached 16 bits cost until the scheme stopped (its residual test at
# simulation.target_bits + scheme.margin_bits, or the pass budget): one entry per such trial,
# the same order in every list, so a reader can take any percentile. Optional: cards written
# before these lists still validate.
_SCHEME_COSTS = [
    ("n", "integer", "count", "size N of the matrices the trials solved", ">=1"),
    ("passes_per_solve", _list("number", "count", "passes until the scheme stopped, per trial"
                               " that reached 16 bits", ">=0")),
    ("inv_solves_per_solve", _list("integer", "count", "analog INV solves (DAC slices and range"
                                   " retries included), per trial that reached 16 bits", ">=0")),
    ("vmm_ops_per_solve", _list("integer", "count", "VMM crossbar operations (one input"
                                " bit-plane on one weight slice), per trial that reached 16 bits",
                                ">=0")),
    ("conversions_per_solve", _list("integer", "count", "single DAC and ADC samples, per trial"
                                    " that reached 16 bits", ">=0")),
]
_ACCURACY = [
    ("inv_error_rel_fullscale", _obj(_ERROR_TEXT.format("one INV solve"), _ERROR_STATS,
                                     null=True)),
    ("vmm_error_rel_fullscale", _obj(_ERROR_TEXT.format("one VMM"), _ERROR_STATS, null=True)),
    ("schemes", {"type": "object", "description": "per precision scheme, keyed by its name",
                 "additionalProperties": _obj("statistics of one precision scheme",
                                              _SCHEME + _SCHEME_COSTS,
                                              optional=tuple(c[0] for c in _SCHEME_COSTS))}),
]
_ENERGY = [
    ("inv_op_j", "number?", "J", "energy of one INV solve", ">=0"),
    ("vmm_op_j", "number?", "J", "energy of one VMM", ">=0"),
    ("opamp_power_w", "number?", "W", "static power of one op-amp", ">=0"),
    ("assumptions", "string", "", "how the energies were estimated"),
    ("source", "string", "", "where the energies come from when simulated at transistor level"
                             " (e.g. transistor-level, SKY130 tt, supply currents simulated)"),
]
_ENERGY_OPTIONAL = ("source",)
_SECTION = {"type": "object", "description": "see rerinv/config.py"}
_CONFIG = {
    **_obj("the full configuration tree, Config.to_dict(); must load as a Config",
           [(k, _SECTION) for k in ("device", "opamp", "converters", "array")]),
    "additionalProperties": _SECTION,
}
_SOFTWARE_OBJ = {
    **_obj("versions of the software that produced the card (rerinv.provenance"
           ".software_versions()); further version strings are accepted", _SOFTWARE,
           optional=_SOFTWARE_OPTIONAL),
    "additionalProperties": {"type": ["string", "null"], "description": "another version"},
}
_CARD = [
    ("format", _leaf("string", "", "file format tag", enum=[CARD_FORMAT])),
    ("version", _leaf("integer", "", "card format version", enum=[CARD_VERSION])),
    ("example", "boolean", "", "true: placeholder numbers, not a calibration"),
    ("created", _leaf("string", "", "creation time, ISO 8601 with zone", format="date-time")),
    ("software", _SOFTWARE_OBJ),
    ("config", _CONFIG),
    ("device", _obj("ReRAM cell summary (repeats config.device)", _DEVICE)),
    ("array", _obj("crossbar summary (repeats config.array)", _ARRAY)),
    ("converters", _obj("DAC and ADC summary (repeats config.converters)", _CONVERTERS)),
    ("timing", _obj("settling times from transient simulations", _TIMING,
                    optional=_TIMING_OPTIONAL)),
    ("accuracy", _obj("Monte Carlo accuracy", _ACCURACY)),
    ("energy", _obj("energy estimates (null where the models give none)", _ENERGY,
                    optional=_ENERGY_OPTIONAL)),
    ("amplifier", {"type": "object",
                   "description": "transistor-level amplifier characterisation by ngspice"
                                  " (rerinv amplifier; its source says which process and"
                                  " corner); only in cards of opamp.model = sky130",
                   "additionalProperties": {"type": ["number", "integer", "string", "null"],
                                            "description": "one characterised quantity (SI)"}}),
]
# fmt: on

#: The parameter card's JSON schema (single source of truth for validation and docs).
CARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rerinv calibrated parameter card",
    **_obj(
        "calibrated parameters of one ReRAM INV/VMM configuration",
        _CARD,
        optional=("example", "amplifier"),
    ),
}

#: Keys of one ``accuracy.schemes.<name>`` entry, in schema order.
SCHEME_FIELDS: tuple[str, ...] = tuple(leaf[0] for leaf in _SCHEME)

#: Card summary fields and the config field each must equal.
SUMMARY_FIELDS = {
    "device.g_min_siemens": "device.g_min",
    "device.g_max_siemens": "device.g_max",
    "device.cell_bits": "device.bits",
    "device.programming_error_abs_frac": "device.sigma_abs",
    "device.programming_error_rel_frac": "device.sigma_rel",
    "device.read_noise_frac": "device.read_noise",
    "device.p_stuck_low": "device.p_stuck_low",
    "device.p_stuck_high": "device.p_stuck_high",
    "array.max_size": "array.max_size",
    "array.r_wire_ohm": "array.r_wire",
    "array.r_in_ohm": "array.r_in",
    "array.r_f_ohm": "array.r_f",
    "converters.dac_bits": "converters.dac_bits",
    "converters.adc_bits": "converters.adc_bits",
    "converters.dac_range_v": "converters.dac_range",
    "converters.adc_range_v": "converters.adc_range",
}


def lookup(tree: dict, dotted: str) -> Any:
    """The value at a dotted path (``"timing.vmm_settle_s"``) of a card or config tree.

    Raises ``KeyError`` (or ``TypeError`` below a leaf) when the path is not there.
    """
    node: Any = tree
    for key in dotted.split("."):
        node = node[key]
    return node
