"""One typed, frozen configuration tree: device, op-amp, converters, array.

Every part of rerinv reads a :class:`Config`. It loads from TOML, dumps back to TOML
(``Config.from_toml(c.to_toml()) == c``), takes ``section.key=value`` overrides, and is stored
verbatim next to every result.

Units are SI throughout: siemens, ohms, volts, hertz.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from rerinv.config.sections import (
    ENGINES,
    IDEAL_GAIN,
    OPAMP_MODELS,
    RESIDUAL_MODES,
    SCHEMES,
    SKY130_CORNERS,
    ArrayConfig,
    ConverterConfig,
    DeviceConfig,
    OpAmpConfig,
    SchemeConfig,
    SimulationConfig,
    WorkloadConfig,
)
from rerinv.config.values import coerce, split_assignment, toml_value
from rerinv.errors import ConfigError, not_a_regular_file
from rerinv.presets import preset_names, preset_text

__all__ = [
    "OPAMP_MODELS",
    "ENGINES",
    "SCHEMES",
    "SKY130_CORNERS",
    "IDEAL_GAIN",
    "RESIDUAL_MODES",
    "DeviceConfig",
    "OpAmpConfig",
    "ConverterConfig",
    "ArrayConfig",
    "SchemeConfig",
    "WorkloadConfig",
    "SimulationConfig",
    "Config",
    "load_config",
    "load_preset",
]


@dataclass(frozen=True)
class Config:
    """The whole configuration tree. Build with ``Config()`` for the built-in default."""

    device: DeviceConfig = field(default_factory=DeviceConfig)
    opamp: OpAmpConfig = field(default_factory=OpAmpConfig)
    converters: ConverterConfig = field(default_factory=ConverterConfig)
    array: ArrayConfig = field(default_factory=ArrayConfig)
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        for section in fields(self):
            getattr(self, section.name).validate()

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, source: str = "configuration", base: Config | None = None
    ) -> Config:
        """Build from ``{section: {key: value}}``; keys not given keep the value of ``base``
        (the built-in default when None)."""
        sections = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(sections)
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(sections)}"
            )
        built = {}
        for name, section_field in sections.items():
            values = data.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table of key = value")
            default = section_field.default_factory() if base is None else getattr(base, name)
            built[name] = replace(
                default, **{k: coerce(default, name, k, v) for k, v in values.items()}
            )
        return cls(**built)

    def to_toml(self) -> str:
        lines = ["# rerinv configuration (SI units: S, ohm, V, Hz)"]
        for name, values in self.to_dict().items():
            lines.append(f"\n[{name}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(
        cls, text: str, *, source: str = "configuration", base: Config | None = None
    ) -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=source, base=base)

    @classmethod
    def load(cls, path: str | Path, *, base: Config | None = None) -> Config:
        """Read a TOML file; keys it does not give keep the value of ``base``."""
        path = Path(path)
        if reason := not_a_regular_file(path):
            raise ConfigError(reason)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
        return cls.from_toml(text, source=str(path), base=base)

    # -- overrides -----------------------------------------------------------------------
    def with_values(self, section: str, **values: Any) -> Config:
        """A validated copy with ``values`` set in ``section``, e.g.
        ``config.with_values("simulation", scheme="krylov", engine="nodal")``."""
        data = self.to_dict()
        if section not in data:
            raise ConfigError(f"unknown section {section!r}; known: {sorted(data)}")
        default = getattr(self, section)
        for key, value in values.items():
            data[section][key] = coerce(default, section, key, value)
        return Config.from_dict(data, source=f"[{section}]")

    def with_overrides(self, assignments: list[str] | tuple[str, ...]) -> Config:
        """Apply ``section.key=value`` overrides, e.g. ``["device.sigma_rel=0.01"]``."""
        data = self.to_dict()
        for assignment in assignments:
            section, key, raw = split_assignment(assignment)
            if section not in data:
                raise ConfigError(
                    f"--set {assignment}: unknown section {section!r}; known: {sorted(data)}"
                )
            default = getattr(self, section)
            data[section][key] = coerce(default, section, key, raw, parse_text=True)
        return Config.from_dict(data, source="--set")


def load_preset(name: str) -> Config:
    """The shipped preset ``name`` (see :mod:`rerinv.presets`)."""
    text = preset_text(name)
    if text is None:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    return Config.from_toml(text, source=f"preset {name}")


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    preset: str | None = None,
) -> Config:
    """The built-in default, or the file at ``path``, with ``overrides`` applied.

    ``preset`` starts from a shipped preset instead of the built-in default; a file at
    ``path`` is then read on top of it (its values replace the preset's).
    """
    config = Config() if preset is None else load_preset(preset)
    if path is not None:
        config = Config.load(path, base=config)
    return config.with_overrides(overrides or [])
