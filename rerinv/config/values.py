"""Text and TOML values of configuration keys: parsing ``--set`` text, type coercion, output."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from rerinv.errors import ConfigError


def split_assignment(assignment: str) -> tuple[str, str, str]:
    name, sep, raw = assignment.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(
            f"--set {assignment!r}: expected section.key=value, e.g. device.sigma_rel=0.01"
        )
    return section, key.strip(), raw.strip()


def coerce(section_obj: Any, section: str, key: str, value: Any, parse_text: bool = False):
    types = {f.name: f.type for f in fields(section_obj)}
    if key not in types:
        raise ConfigError(
            f"unknown key {section}.{key}; known keys of [{section}]: {sorted(types)}"
        )
    kind = types[key]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if parse_text and value.lower() in (
                "true",
                "false",
                "1",
                "0",
                "yes",
                "no",
                "on",
                "off",
            ):
                return value.lower() in ("true", "1", "yes", "on")
            raise TypeError
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value.strip().strip("'\"") if parse_text else value
        if kind == "int":
            if isinstance(value, bool):
                raise TypeError
            number = float(value) if parse_text else value
            if isinstance(number, float):
                if not number.is_integer():
                    raise TypeError
                number = int(number)
            if not isinstance(number, int):
                raise TypeError
            return number
        if kind == "float":
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if not math.isfinite(number):
                raise TypeError
            return number
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unhandled field type {kind}")  # pragma: no cover
    raise ConfigError(
        f"{section}.{key} must be a {'finite ' if kind != 'bool' else ''}{kind}, got {value!r}"
    )


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
