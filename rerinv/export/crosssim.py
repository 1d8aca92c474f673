"""CrossSim 3.0: a ``CrossSimParameters.from_json`` tree, and the unexpressed fields in a
``.notes.json`` beside it (``from_json`` rejects unknown keys)."""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.export.common import CardMapping

SUFFIX = "json"


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


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The CrossSim JSON at ``path`` and its notes at ``path.with_suffix(".notes.json")``."""
    r_min = 1.0 / m.use("device.g_max_siemens")
    r_max = 1.0 / m.use("device.g_min_siemens")
    r_wire = m.use("array.r_wire_ohm")
    read_noise = m.use("device.read_noise_frac")
    n = m.use("array.max_size")
    adc = {"bits": m.use("converters.adc_bits")}
    dac = {"bits": m.use("converters.dac_bits")}
    tree = {
        "core": {"rows_max": n, "cols_max": n},
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
            # CrossSim 3.0 normalises Rp_row / Rp_col to Rmin (3.1 takes ohms: see the notes).
            "array": {
                "parasitics": {
                    "enable": r_wire > 0,
                    "Rp_row": r_wire / r_min,
                    "Rp_col": r_wire / r_min,
                }
            },
            "adc": {"mvm": adc, "vmm": dict(adc)},
            "dac": {"mvm": dac, "vmm": dict(dac)},
        },
    }
    notes = {
        "generated_by": m.header("crosssim", source, width=None),
        "target": "CrossSim 3.0: CrossSimParameters.from_json(<this json>)",
        "Rp_convention": "Rp_row and Rp_col are normalised to Rmin (CrossSim 3.0); CrossSim 3.1"
        f" takes ohms: set both to {r_wire!r} there",
        "r_wire_ohm": r_wire,
        "unexpressed": m.unexpressed(),
        "approximate": m.approximate,
    }
    notes_path = path.with_suffix(".notes.json")
    return {path: json.dumps(tree, indent=2) + "\n", notes_path: json.dumps(notes, indent=2) + "\n"}
