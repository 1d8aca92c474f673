"""CrossSim 3.1+ (checked with 3.2.0): a ``CrossSimParameters.from_json`` tree, and the
unexpressed fields in a ``.notes.json`` beside it (``from_json`` rejects unknown keys).

Conventions of CrossSim 3.1 and later (``simulator/parameters``): ``Rmin``, ``Rmax``,
``Rp_row`` and ``Rp_col`` are in ohms (``ParasiticParameters.Rp_row_norm`` divides by
``Rmin`` itself); inputs are mapped from ``core.mapping.inputs`` (here volts, the DAC full
scale) onto the DAC; ADC ranges are in CrossSim's normalised output units, where one cell at
the largest conductance driven at full-scale input gives 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.export.common import CardMapping

SUFFIX = "json"
#: The CrossSim release whose parameter tree this export follows (tested when available:
#: ``tests/test_crosssim_conformance.py``).
CHECKED_AGAINST = "CrossSim 3.2.0"
#: What this export cannot say in CrossSim's terms, whatever the card holds.
LIMITATIONS = (
    "CrossSim computes an open-loop MVM/VMM: the INV circuit, its op-amps and settling are not"
    " simulated",
    "the ADC range is fixed (QuantizerADC, CALIBRATED); rerinv plans each VMM's input gain so"
    " that its outputs fill the ADC range",
    "one programming-error model (proportional or independent), not both",
    "no stuck-at cells",
)


def _programming_error(m: CardMapping) -> tuple[str, float] | None:
    """One (CrossSim model, magnitude) for the programming error, or None when it is zero."""
    abs_name, rel_name = "device.programming_error_abs_frac", "device.programming_error_rel_frac"
    sigma_abs, sigma_rel = m.peek(abs_name), m.peek(rel_name)
    if sigma_abs == 0 or sigma_rel == 0:  # the zero one is expressed too
        m.use(abs_name)
        m.use(rel_name)
    if sigma_abs == 0 and sigma_rel == 0:
        return None
    if sigma_rel >= sigma_abs:  # both as a fraction of g_max at the top of the range
        return "NormalProportionalDevice", m.use(rel_name)
    return "NormalIndependentDevice", m.use(abs_name)


def _error_model(model_magnitude: tuple[str, float] | None) -> dict:
    if model_magnitude is None:
        return {"enable": False, "model": "IdealDevice", "magnitude": 0.0}
    return {"enable": True, "model": model_magnitude[0], "magnitude": model_magnitude[1]}


def adc_full_scale(m: CardMapping) -> float:
    """The card's ADC full scale in CrossSim's normalised output units: the TIA turns a column
    current ``I`` into ``r_f I`` volts, and CrossSim counts currents in units of
    ``g_max * dac_range``."""
    return m.peek("converters.adc_range_v") / (
        m.peek("array.r_f_ohm") * m.peek("device.g_max_siemens") * m.peek("converters.dac_range_v")
    )


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The CrossSim JSON at ``path`` and its notes at ``path.with_suffix(".notes.json")``."""
    r_min = 1.0 / m.use("device.g_max_siemens")
    r_max = 1.0 / m.use("device.g_min_siemens")
    r_wire = m.use("array.r_wire_ohm")
    read_noise = m.use("device.read_noise_frac")
    n = m.use("array.max_size")
    dac_range = m.use("converters.dac_range_v")
    full_scale = adc_full_scale(m)
    why = (
        f"CrossSim ADC range +-{full_scale:.6g} (normalised) = adc_range_v / (r_f_ohm g_max "
        "dac_range_v), fixed; rerinv scales each VMM's inputs to fill it"
    )
    m.use("converters.adc_range_v", why)
    m.use("array.r_f_ohm", why)
    adc = {
        "model": "QuantizerADC",
        "bits": m.use("converters.adc_bits"),
        "signed": True,
        "adc_range_option": "CALIBRATED",
        "calibrated_range": [-full_scale, full_scale],
    }
    dac = {"model": "QuantizerDAC", "bits": m.use("converters.dac_bits"), "signed": True}
    inputs = {"min": -dac_range, "max": dac_range, "clipping": True}  # volts onto the DAC
    tree = {
        "core": {
            "rows_max": n,
            "cols_max": n,
            "mapping": {"inputs": {"mvm": inputs, "vmm": dict(inputs)}},
        },
        "xbar": {
            "device": {
                "cell_bits": m.use("device.cell_bits"),
                "Rmin": r_min,
                "Rmax": r_max,
                "infinite_on_off_ratio": False,
                "programming_error": _error_model(_programming_error(m)),
                "read_noise": _error_model(
                    ("NormalProportionalDevice", read_noise) if read_noise > 0 else None
                ),
            },
            # CrossSim 3.1+: ohms per cell segment (3.0 took them normalised to Rmin)
            "array": {"parasitics": {"enable": r_wire > 0, "Rp_row": r_wire, "Rp_col": r_wire}},
            "adc": {"mvm": adc, "vmm": dict(adc)},
            "dac": {"mvm": dac, "vmm": dict(dac)},
        },
    }
    notes = {
        "generated_by": m.header("crosssim", source, width=None),
        "target": "CrossSimParameters.from_json(<this json>), CrossSim 3.1 or later",
        "checked_against": CHECKED_AGAINST,
        "Rp_convention": "Rp_row and Rp_col are in ohms (CrossSim 3.1+); CrossSim 3.0 read them"
        f" normalised to Rmin: there use {r_wire / r_min!r}",
        "inputs": f"inputs are DAC voltages in [-{dac_range!r}, {dac_range!r}] V",
        "r_wire_ohm": r_wire,
        "limitations": list(LIMITATIONS),
        "unexpressed": m.unexpressed(),
        "approximate": m.approximate,
    }
    notes_path = path.with_suffix(".notes.json")
    return {path: json.dumps(tree, indent=2) + "\n", notes_path: json.dumps(notes, indent=2) + "\n"}
