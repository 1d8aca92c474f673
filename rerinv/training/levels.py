"""Hardware levels of the training study: named changes of the analog backends' hardware
(programming error, read noise, wires, mismatch, offsets, or a shipped preset), applied to the
configuration of each analog setting by the driver. ``float64`` and the ``quantised`` stand-in
cannot model noise, so the levels apply to the analog backends only. See
``docs/training.md``.
"""

from __future__ import annotations

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.presets import preset_text

#: Hardware noise levels: name -> (description, {section: {key: value}}) applied on top of the
#: grid's configuration for the analog backends. ``ideal`` is the built-in default preset
#: (whose non-ideal values are all zero: no programming error, read noise, wire resistance,
#: offset or mismatch; only the op-amps' finite gain 1e5 and 100 MHz bandwidth). The two
#: others are costed choices: read noise and wire resistance are each ~20x the nodal
#: engine's time of an ideal inverse and ~200x together, so each level carries one of them.
NOISE_LEVELS: dict[str, tuple[str, dict[str, dict[str, float]]]] = {
    "ideal": ("default preset: no programming error, read noise, wires or offsets", {}),
    "moderate": (
        "1 % programming error (sigma_rel), 0.5 % read noise per read",
        {"device": {"sigma_rel": 0.01, "read_noise": 0.005}},
    ),
    "harsh": (
        "5 % programming error, 1.73 ohm wire segments, 1 % inverter-resistor mismatch, "
        "1 mV op-amp offset",
        {
            "device": {"sigma_rel": 0.05},
            "array": {"r_wire": 1.73, "inverter_mismatch": 0.01},
            "opamp": {"offset": 1e-3},
        },
    ),
    "sky130": (
        "the sky130 preset: transistor-level SKY130 op-amps (two-stage Miller OTA, gain 9900, "
        "51 MHz, +-0.65 V swing; the nodal engine uses the linear model extracted from the "
        "transistors), +-0.2 V converter ranges, one INV slice, no gain compensation",
        {},
    ),
}


#: Levels that are a shipped preset applied on top (its op-amps, converters and scheme).
PRESET_LEVELS = {"sky130": "sky130"}


#: The non-ideal values a level sets; a grid run with any of them non-zero in its own hardware
#: (``--set``, ``--config``) states them beside each level's description.
NOISE_FIELDS = (
    ("device", "sigma_rel"),
    ("device", "sigma_abs"),
    ("device", "read_noise"),
    ("array", "r_wire"),
    ("array", "inverter_mismatch"),
    ("opamp", "offset"),
)


def describe_level(config: Config, level: str) -> str:
    """What ``level`` is on the grid's hardware ``config``: its description, plus the grid's
    own non-ideal values where the level leaves them as they are (so ``ideal`` run with
    ``--set device.sigma_rel=0.01`` never reads as "no programming error")."""
    text, changes = NOISE_LEVELS[level]
    kept = [
        f"{section}.{key} = {getattr(getattr(config, section), key):g}"
        for section, key in NOISE_FIELDS
        if getattr(getattr(config, section), key) and key not in changes.get(section, {})
    ]
    return text + (f"; the grid's hardware adds {', '.join(kept)}" if kept else "")


def noise_config(config: Config, level: str) -> Config:
    """``config`` with the noise level ``level`` (``""``: unchanged) applied."""
    if level not in ("", *NOISE_LEVELS):
        raise InputError(f"unknown noise level {level!r}; choose from {', '.join(NOISE_LEVELS)}")
    if level in PRESET_LEVELS:
        name = PRESET_LEVELS[level]
        return Config.from_toml(preset_text(name), source=f"preset {name}", base=config)
    for section, values in NOISE_LEVELS.get(level, ("", {}))[1].items():
        config = config.with_values(section, **values)
    return config


def setting_config(config: Config, setting) -> Config:
    """The hardware of one setting (a :class:`rerinv.training.spec.Setting`): its noise
    level, and for ``single`` with cell bits ``k`` k-bit cells and a k-bit ADC (the DAC stays
    as configured)."""
    config = noise_config(config, setting.noise)
    if setting.backend == "single" and setting.bits is not None:
        config = config.with_values("device", bits=int(setting.bits))
        config = config.with_values("converters", adc_bits=int(setting.bits))
    return config
