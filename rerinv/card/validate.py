"""Check a card against :data:`~rerinv.card.schema.CARD_SCHEMA` and against its own config.

A small validator for the JSON-Schema keywords the card schema uses: ``type``, ``enum``,
``required``, ``properties``, ``additionalProperties``, ``items``, ``minimum``, ``maximum``,
``exclusiveMinimum`` and ``format: date-time``. Numbers must also be finite.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rerinv.card.schema import CARD_SCHEMA, SUMMARY_FIELDS, lookup
from rerinv.config import Config
from rerinv.errors import ConfigError, InputError


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
        value, expected = lookup(card, summary), lookup(card["config"], source)
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
        _check_number(schema, value, fail)
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            fail(f"must be an ISO 8601 time with time zone, got {value!r}")
    if isinstance(value, dict):
        _check_object(schema, value, path)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]")


def _check_number(schema: dict, value: float, fail) -> None:
    if not math.isfinite(value):
        fail(f"must be finite, got {value!r}")
    if "minimum" in schema and value < schema["minimum"]:
        fail(f"must be >= {schema['minimum']}, got {value!r}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        fail(f"must be > {schema['exclusiveMinimum']}, got {value!r}")
    if "maximum" in schema and value > schema["maximum"]:
        fail(f"must be <= {schema['maximum']}, got {value!r}")


def _check_object(schema: dict, value: dict, path: str) -> None:
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
