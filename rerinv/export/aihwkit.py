"""aihwkit: a Python snippet building ``rpu_config = InferenceRPUConfig()``, plus a JSON of the
same keyword arguments beside it.

Names checked against the aihwkit 1.1.0 source (``aihwkit.simulator.configs`` re-exports
``InferenceRPUConfig`` and the ``WeightNoiseType``, ``NoiseManagementType`` and
``BoundManagementType`` enums; ``IOParameters`` has ``inp_bound``, ``out_bound``, ``inp_res``,
``out_res``, ``noise_management``, ``bound_management``). The card's converters have fixed
ranges, so noise management (rescaling each input vector by its maximum) and bound management
(re-running a saturated MVM with smaller inputs) are switched off, and ``out_bound`` is the
card's ADC range in aihwkit's units (one weight of 1 at full-scale input gives 1).

Units: aihwkit 1.1.0's ``InferenceRPUConfig`` leaves ``mapping.weight_scaling_omega`` at 0.0,
no scaling, so ``out_bound``, ``w_noise`` and the IR drop would act on the raw weights: a matrix
whose largest entry is 0.1 would see an output bound ten times too wide. The export sets
``weight_scaling_omega = 1`` (one factor for the whole matrix, ``weight_scaling_columnwise``
off): the largest ``|w|`` is mapped to 1, i.e. to ``g_max - g_min``, as rerinv maps a matrix,
and the factor is applied back digitally.
"""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.errors import InputError
from rerinv.export.common import CardMapping

SUFFIX = "py"
#: Versions the snippet's names were checked against; the snippet warns on another aihwkit.
CHECKED_AGAINST = {
    "aihwkit": "1.1.0",
    "torch": "not run here (the snippet imports torch only to report its version)",
}
#: What this export cannot say in aihwkit's terms, whatever the card holds.
LIMITATIONS = (
    "aihwkit computes an open-loop MVM: the INV circuit, its op-amps and settling are not"
    " simulated",
    "InferenceRPUConfig does not quantise conductances to cell_bits levels",
    "read noise is additive (state independent) in aihwkit, proportional in the card",
    "fixed ADC range (out_bound) and no noise or bound management: rerinv instead plans each"
    " VMM's input gain so that its outputs fill the ADC range",
    "no stuck-at cells",
    "IR drop along the summation lines only (1-D, first input farthest from the output):"
    " rerinv's row and column wires give a larger drop (about 4x for an 8 x 8 product, as"
    " measured in issue 24), and"
    " rerinv's row 0 sits nearest the TIA, so give aihwkit the rows in reverse order",
)
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
    one_dimensional = (
        "aihwkit's IR drop (ir_drop_g_ratio = 1 / (r_wire g_max)) is a 1-D model along the"
        " summation lines; rerinv solves row and column wires, a larger drop (about 4x, issue 24)"
    )
    r_wire = m.use("array.r_wire_ohm", one_dimensional if m.peek("array.r_wire_ohm") > 0 else None)
    out_bound = m.peek("converters.adc_range_v") / (
        m.peek("array.r_f_ohm") * (g_max - g_min) * m.peek("converters.dac_range_v")
    )
    why = (
        f"out_bound = adc_range_v / (r_f_ohm (g_max - g_min) dac_range_v) = {out_bound:.6g}, "
        "fixed; rerinv scales each VMM's inputs to fill the ADC range"
    )
    for name in ("converters.adc_range_v", "array.r_f_ohm"):
        m.use(name, why)
    m.use("converters.dac_range_v", "inp_bound = 1 is the DAC full scale (dac_range_v)")
    forward = {
        "inp_bound": 1.0,
        "out_bound": out_bound,
        "noise_management": "None",
        "bound_management": "None",
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
    # the largest |w| onto 1 = g_max - g_min, as rerinv maps a matrix (aihwkit's default 0.0
    # leaves raw weights, and out_bound, w_noise and the IR drop in their units)
    mapping = {
        "weight_scaling_omega": 1.0,
        "weight_scaling_columnwise": False,
        "max_input_size": n,
        "max_output_size": n,
    }
    unexpressed = m.unexpressed()
    lines = [f"# {line}" for line in m.header("aihwkit", source, limitations=LIMITATIONS)]
    lines += [
        "# Builds `rpu_config` for aihwkit analog layers, e.g. AnalogLinear(..., rpu_config=...).",
        f"# Names checked against aihwkit {CHECKED_AGAINST['aihwkit']}; "
        f"torch: {CHECKED_AGAINST['torch']}.",
        "import warnings",
        "",
        "import aihwkit",
        "import torch",
        "from aihwkit.inference.converter.conductance import SinglePairConductanceConverter",
        "from aihwkit.inference.noise.custom import StateIndependentNoiseModel",
        "from aihwkit.simulator.configs import (",
        "    BoundManagementType,",
        "    InferenceRPUConfig,",
        "    NoiseManagementType,",
        "    WeightNoiseType,",
        ")",
        "",
        f"CHECKED_AGAINST = {CHECKED_AGAINST['aihwkit']!r}",
        "if not str(getattr(aihwkit, '__version__', '')).startswith(CHECKED_AGAINST):",
        "    warnings.warn(f'rpu_config was written for aihwkit {CHECKED_AGAINST}, running "
        'aihwkit {getattr(aihwkit, "__version__", "?")} with torch '
        '{getattr(torch, "__version__", "?")}\', stacklevel=1)',
        "",
        "rpu_config = InferenceRPUConfig()",
    ]
    enums = {"w_noise_type": "WeightNoiseType", "noise_management": "NoiseManagementType",
             "bound_management": "BoundManagementType"}  # fmt: skip
    for key, value in forward.items():
        if key in enums:
            member = _WEIGHT_NOISE[value] if key == "w_noise_type" else "NONE"
            text = f"{enums[key]}.{member}"
        else:
            text = repr(value)
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
        "checked_against": CHECKED_AGAINST,
        "limitations": list(LIMITATIONS),
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
