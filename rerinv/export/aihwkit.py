"""aihwkit: a Python snippet building ``rpu_config = InferenceRPUConfig()``, plus a JSON of the
same keyword arguments beside it."""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.errors import InputError
from rerinv.export.common import CardMapping

SUFFIX = "py"
#: aihwkit WeightNoiseType values and member names.
_WEIGHT_NOISE = {"None": "NONE", "AdditiveConstant": "ADDITIVE_CONSTANT"}


def _resolution(bits: int) -> float:
    """aihwkit resolution convention: 1 / (2**bits - 2) steps, as its 7-bit default."""
    return 1.0 / max(2**bits - 2, 1)


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The snippet at ``path`` (a ``.py``) and its keyword arguments at ``.json`` beside it."""
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    read_noise = m.use(
        "device.read_noise_frac",
        "w_noise is additive and state-independent; the card's read noise is proportional"
        " to the conductance, so w_noise = read_noise_frac is its value at g_max",
    )
    r_wire = m.use("array.r_wire_ohm")
    forward = {
        "inp_res": _resolution(m.use("converters.dac_bits")),
        "out_res": _resolution(m.use("converters.adc_bits")),
        "w_noise_type": "AdditiveConstant" if read_noise > 0 else "None",
        "w_noise": read_noise,
        "out_noise": 0.0,  # rerinv models no separate output noise source
        "ir_drop": 1.0 if r_wire > 0 else 0.0,
    }
    if r_wire > 0:
        forward["ir_drop_g_ratio"] = 1.0 / (r_wire * g_max)
    sigma_abs = m.use("device.programming_error_abs_frac")
    sigma_rel = m.use("device.programming_error_rel_frac")
    if sigma_abs > 0 and sigma_rel > 0:
        m.approximate["device.programming_error_rel_frac"] = (
            "aihwkit adds the polynomial terms of the std (c0 + c1 g/g_max) instead of adding"
            " the two variances: the combined error is overestimated"
        )
    g_max_us, g_min_us = g_max * 1e6, g_min * 1e6
    noise_model = {
        "g_converter": {"g_max": g_max_us, "g_min": g_min_us},
        "prog_coeff": [sigma_abs * g_max_us, sigma_rel * g_max_us, 0.0],
        "drift_nu_mean": 0.0,
        "drift_nu_std": 0.0,
        "read_noise_scale": 0.0,
    }
    n = m.use("array.max_size")
    mapping = {"max_input_size": n, "max_output_size": n}
    unexpressed = m.unexpressed()
    lines = [f"# {line}" for line in m.header("aihwkit", source)]
    lines += [
        "# Builds `rpu_config` for aihwkit analog layers, e.g. AnalogLinear(..., rpu_config=...).",
        "from aihwkit.inference.converter.conductance import SinglePairConductanceConverter",
        "from aihwkit.inference.noise.custom import StateIndependentNoiseModel",
        "from aihwkit.simulator.configs import InferenceRPUConfig, WeightNoiseType",
        "",
        "rpu_config = InferenceRPUConfig()",
    ]
    for key, value in forward.items():
        text = f"WeightNoiseType.{_WEIGHT_NOISE[value]}" if key == "w_noise_type" else repr(value)
        lines.append(f"rpu_config.forward.{key} = {text}")
    lines += [f"rpu_config.mapping.{key} = {value!r}" for key, value in mapping.items()]
    lines += [
        "# Programming error (std in uS: c0 + c1 * g / g_max); no drift, no 1/f read noise.",
        "rpu_config.noise_model = StateIndependentNoiseModel(",
        f"    g_converter=SinglePairConductanceConverter(g_max={g_max_us!r}, g_min={g_min_us!r}),",
    ]
    lines += [f"    {k}={v!r}," for k, v in noise_model.items() if k != "g_converter"]
    lines.append(")")
    kwargs = {
        "generated_by": m.header("aihwkit", source, width=None),
        "forward": forward,
        "mapping": mapping,
        "noise_model": {"class": "StateIndependentNoiseModel", **noise_model},
        "unexpressed": unexpressed,
        "approximate": m.approximate,
    }
    json_path = path.with_suffix(".json")
    if json_path == path:
        raise InputError(f"--out {path}: for aihwkit --out names the .py snippet, not a .json")
    return {path: "\n".join(lines) + "\n", json_path: json.dumps(kwargs, indent=2) + "\n"}
