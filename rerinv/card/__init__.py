"""The calibrated parameter card: its JSON schema, validation, an example and its docs.

A parameter card is the JSON file ``rerinv calibrate`` writes and ``rerinv export`` reads. The
schema dict :data:`CARD_SCHEMA` (JSON-Schema draft 2020-12 style) is the single source of truth:
:func:`validate_card` checks a card against it with a small validator for the keywords used here
(``type``, ``enum``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``format: date-time``), and
:func:`card_schema_markdown` renders it as the table in ``docs/parameter-card.md``.

Every numeric field states its unit twice: in the name suffix (``_s``, ``_j``, ``_w``, ``_hz``,
``_v``, ``_ohm``, ``_siemens``, ``_bits``, ``_frac``) and in the schema, as the annotation
keyword ``unit`` and at the end of the ``description``. Measured values may be ``null`` where
the models do not allow an estimate.
"""

from __future__ import annotations

import json
import math
import platform
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from rerinv.config import Config
from rerinv.errors import ConfigError, InputError

CARD_FORMAT = "rerinv-parameter-card"
CARD_VERSION = 1
SETTLE_MODEL = "t = a * ln(1/eps) / (2*pi*gbw*lambda_min)"


# -- schema --------------------------------------------------------------------------------
# A leaf is (name, type, unit, meaning, limits); a type ending in "?" also allows null.
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
_SOFTWARE = [
    ("rerinv", "string", "", "rerinv version"),
    ("ngspice", "string?", "", "ngspice version (null: not used)"),
    ("numpy", "string", "", "numpy version"),
    ("python", "string", "", "Python version"),
]
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
_TIMING = [
    ("inv_settle_fit", _obj("fit of INV settling times to the single-pole model", _SETTLE_FIT,
                            null=True)),
    ("inv_settle_typical_s", "number?", "s", "typical INV settling time", ">0"),
    ("vmm_settle_s", "number?", "s", "VMM settling time", ">0"),
]
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
_ACCURACY = [
    ("inv_error_rel_fullscale", _obj(_ERROR_TEXT.format("one INV solve"), _ERROR_STATS,
                                     null=True)),
    ("vmm_error_rel_fullscale", _obj(_ERROR_TEXT.format("one VMM"), _ERROR_STATS, null=True)),
    ("schemes", {"type": "object", "description": "per precision scheme, keyed by its name",
                 "additionalProperties": _obj("statistics of one precision scheme", _SCHEME)}),
]
_ENERGY = [
    ("inv_op_j", "number?", "J", "energy of one INV solve", ">=0"),
    ("vmm_op_j", "number?", "J", "energy of one VMM", ">=0"),
    ("opamp_power_w", "number?", "W", "static power of one op-amp", ">=0"),
    ("assumptions", "string", "", "how the energies were estimated"),
]
_SECTION = {"type": "object", "description": "see rerinv/config.py"}
_CONFIG = {
    **_obj("the full configuration tree, Config.to_dict(); must load as a Config",
           [(k, _SECTION) for k in ("device", "opamp", "converters", "array")]),
    "additionalProperties": _SECTION,
}
_CARD = [
    ("format", _leaf("string", "", "file format tag", enum=[CARD_FORMAT])),
    ("version", _leaf("integer", "", "card format version", enum=[CARD_VERSION])),
    ("example", "boolean", "", "true: placeholder numbers, not a calibration"),
    ("created", _leaf("string", "", "creation time, ISO 8601 with zone", format="date-time")),
    ("software", _obj("versions of the software that produced the card", _SOFTWARE)),
    ("config", _CONFIG),
    ("device", _obj("ReRAM cell summary (repeats config.device)", _DEVICE)),
    ("array", _obj("crossbar summary (repeats config.array)", _ARRAY)),
    ("converters", _obj("DAC and ADC summary (repeats config.converters)", _CONVERTERS)),
    ("timing", _obj("settling times from transient simulations", _TIMING)),
    ("accuracy", _obj("Monte Carlo accuracy", _ACCURACY)),
    ("energy", _obj("energy estimates (null where the models give none)", _ENERGY)),
]
# fmt: on

#: The parameter card's JSON schema (single source of truth for validation and docs).
CARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rerinv calibrated parameter card",
    **_obj(
        "calibrated parameters of one ReRAM INV/VMM configuration", _CARD, optional=("example",)
    ),
}

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


# -- validation ----------------------------------------------------------------------------
def validate_card(card: dict) -> None:
    """Check a parameter card against :data:`CARD_SCHEMA` and against its own config.

    Parameters
    ----------
    card : dict
        The parsed JSON card.

    Raises
    ------
    rerinv.errors.InputError
        On the first problem, naming its JSON path (e.g. ``$.timing.vmm_settle_s``).
    """
    _check(CARD_SCHEMA, card, "$")
    try:
        Config.from_dict(card["config"], source="$.config")
    except ConfigError as exc:
        raise InputError(f"invalid parameter card at $.config: {exc}") from exc
    for summary, source in SUMMARY_FIELDS.items():
        value, expected = _get(card, summary), _get(card["config"], source)
        if not math.isclose(value, expected, rel_tol=1e-12, abs_tol=0.0):
            raise InputError(
                f"invalid parameter card at $.{summary}: {value!r} differs from "
                f"$.config.{source} = {expected!r}; the summary must repeat the config"
            )


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _check(schema: dict, value: Any, path: str) -> None:
    def fail(problem: str) -> None:
        raise InputError(f"invalid parameter card at {path}: {problem}")

    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[k](value) for k in kinds):
            fail(f"expected {' or '.join(kinds)}, got {type(value).__name__} {value!r}")
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        fail(f"must be one of {schema['enum']}, got {value!r}")
    if _TYPES["number"](value):
        if not math.isfinite(value):
            fail(f"must be finite, got {value!r}")
        if "minimum" in schema and value < schema["minimum"]:
            fail(f"must be >= {schema['minimum']}, got {value!r}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            fail(f"must be > {schema['exclusiveMinimum']}, got {value!r}")
        if "maximum" in schema and value > schema["maximum"]:
            fail(f"must be <= {schema['maximum']}, got {value!r}")
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            fail(f"must be an ISO 8601 time with time zone, got {value!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                raise InputError(f"invalid parameter card at {path}.{key}: required field missing")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(props[key], item, f"{path}.{key}")
            elif extra is False:
                raise InputError(
                    f"invalid parameter card at {path}.{key}: unknown field; known: {sorted(props)}"
                )
            elif isinstance(extra, dict):
                _check(extra, item, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]")


def _get(tree: dict, dotted: str) -> Any:
    for key in dotted.split("."):
        tree = tree[key]
    return tree


# -- building cards ------------------------------------------------------------------------
def software_versions(ngspice: str | None = None) -> dict[str, str | None]:
    """Versions of rerinv, numpy and Python, plus ``ngspice`` as given by the caller."""
    import numpy

    from rerinv import __version__

    return {
        "rerinv": __version__,
        "ngspice": ngspice,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def new_card(
    config: Config,
    *,
    timing: dict,
    accuracy: dict,
    energy: dict,
    software: dict | None = None,
    created: str | None = None,
    example: bool = False,
) -> dict:
    """Assemble and validate a card: summaries are taken from ``config``.

    Parameters
    ----------
    config : Config
        The configuration the measurements were made with.
    timing, accuracy, energy : dict
        The measured sections, shaped as in :data:`CARD_SCHEMA`.
    software : dict, optional
        Versions; default :func:`software_versions` without ngspice.
    created : str, optional
        ISO 8601 time; default now (UTC).
    example : bool
        Mark the card as holding placeholder numbers.

    Returns
    -------
    dict
        A valid card.
    """
    tree = config.to_dict()
    card: dict[str, Any] = {"format": CARD_FORMAT, "version": CARD_VERSION}
    if example:
        card["example"] = True
    card["created"] = created or datetime.now().astimezone().isoformat(timespec="seconds")
    card["software"] = software or software_versions()
    card["config"] = tree
    for summary, source in SUMMARY_FIELDS.items():
        section, key = summary.split(".")
        card.setdefault(section, {})[key] = _get(tree, source)
    card.update(timing=timing, accuracy=accuracy, energy=energy)
    validate_card(card)
    return card


def example_card() -> dict:
    """A complete, valid card for ``Config()`` with placeholder numbers (``example: true``)."""
    config = Config()
    scheme_keys = [leaf[0] for leaf in _SCHEME]  # bits/pass, median, p90, success, trials
    # fmt: off
    schemes = {
        "single": (7.9, None, None, 0.0, 100), "repast": (2.1, 8, 10, 0.91, 100),
        "refine": (2.8, 6, 7, 0.97, 100), "krylov": (3.4, 5, 6, 1.0, 100),
    }
    timing = {
        "inv_settle_fit": {"model": SETTLE_MODEL, "a": 1.02, "a_std": 0.03,
                           "gbw_hz": config.opamp.gbw, "n_points": 24, "max_rel_error": 0.08},
        "inv_settle_typical_s": 8.8e-7, "vmm_settle_s": 2.0e-8,
    }
    accuracy = {
        "inv_error_rel_fullscale": {"mean": 0.0041, "std": 0.0015, "n": 200},
        "vmm_error_rel_fullscale": {"mean": 0.0019, "std": 0.0007, "n": 200},
        "schemes": {name: dict(zip(scheme_keys, v, strict=True)) for name, v in schemes.items()},
    }
    energy = {
        "inv_op_j": 5.1e-10, "vmm_op_j": 2.6e-11, "opamp_power_w": 1.0e-3,
        "assumptions": "EXAMPLE placeholder numbers, not a calibration: op-amp static power"
                       " times settling time, times the number of op-amps; converters excluded",
    }
    # fmt: on
    return new_card(
        config,
        timing=timing,
        accuracy=accuracy,
        energy=energy,
        software=software_versions(ngspice=None),
        created="2025-01-01T00:00:00+00:00",
        example=True,
    )


def load_card(path: str | Path) -> dict:
    """Read and validate a card file; :class:`InputError` says what is wrong."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read parameter card {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"parameter card {path} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise InputError(f"parameter card {path}: expected a JSON object at $")
    try:
        validate_card(card)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return card


# -- documentation -------------------------------------------------------------------------
def card_schema_markdown() -> str:
    """The card schema as a Markdown table (field, type, unit, meaning)."""
    rows = ["| field | type | unit | meaning |", "|---|---|---|---|"]

    def walk(schema: dict, path: str, required: bool) -> None:
        kinds = schema.get("type", "object")
        kinds = " \\| ".join([kinds] if isinstance(kinds, str) else kinds)
        meaning = schema.get("description", "").removesuffix(f" [{schema.get('unit')}]")
        limits = [
            f"{op} {schema[key]}"
            for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="))
            if key in schema
        ]
        if "enum" in schema:
            limits.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]))
        if limits:
            meaning += " (" + "; ".join(limits) + ")"
        if not required:
            meaning += " — optional"
        if path:
            meaning = meaning.replace("|", "\\|").replace("*", "\\*")
            rows.append(f"| `{path}` | {kinds} | {schema.get('unit', '—')} | {meaning} |")
        props = schema.get("properties", {})
        for key, sub in props.items():
            walk(sub, f"{path}.{key}" if path else key, key in schema.get("required", []))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties"):
            walk(extra, f"{path}.<name>", True)

    walk(CARD_SCHEMA, "", True)
    return "\n".join(rows) + "\n"


_BLOCKS = {
    "card-schema": lambda: card_schema_markdown(),
    "card-example": lambda: "```json\n" + json.dumps(example_card(), indent=2) + "\n```\n",
}


def update_card_docs(path: str | Path = "docs/parameter-card.md") -> None:
    """Regenerate the generated blocks of ``docs/parameter-card.md`` in place."""
    path = Path(path)
    text = path.read_text()
    for name, render in _BLOCKS.items():
        pattern = re.compile(f"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise InputError(f"{path}: marker <!-- BEGIN {name} --> not found")
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + m.group(2), text)
    path.write_text(text)
