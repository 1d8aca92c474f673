"""CrossSim 3.1+ (checked with 3.2.0): a ``CrossSimParameters.from_json`` tree, and the
unexpressed fields in a ``.notes.json`` beside it (``from_json`` rejects unknown keys).

Conventions of CrossSim 3.1 and later (``simulator/parameters``): ``Rmin``, ``Rmax``,
``Rp_row`` and ``Rp_col`` are in ohms (``ParasiticParameters.Rp_row_norm`` divides by
``Rmin`` itself); inputs are mapped from ``core.mapping.inputs`` (here volts, the DAC full
scale) onto the DAC; ADC ranges are in CrossSim's normalised output units, where one cell at
the largest conductance driven at full-scale input gives 1.

What makes CrossSim compute rerinv's numbers (``tests/test_crosssim_conformance.py`` runs both):

- converters: rerinv's are sign-magnitude and mid-tread (:mod:`rerinv.hw.converters`:
  ``2**(bits-1) - 1`` steps each side of zero, zero is a code). CrossSim's ``SignMagnitudeDAC``
  and ``SignMagnitudeADC`` are that converter; its ``QuantizerDAC``/``QuantizerADC`` with
  ``signed`` are mid-rise (``2**bits`` levels, no zero code) and are not used;
- matrix: a balanced one-sided core (one cell of each pair at ``g_min``) with the largest
  entry at ``g_max`` (``core.mapping.weights.percentile = 1``), levels quantised to
  ``cell_bits`` and programmed conductances clipped to ``[g_min, g_max]``
  (``clip_conductance``), as :func:`rerinv.hw.mapping.map_matrix` and
  :func:`~rerinv.hw.mapping.program_conductances` do;
- wires: CrossSim's parasitic solver iterates until every cell's voltage is consistent to
  ``simulation.Verr_th_mvm`` (:func:`parasitic_tolerance`); its default, 1e-3 of the DAC full
  scale, is larger than the whole IR drop of a realistic ``r_wire`` and stops it before the
  first correction.
"""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.export.common import CardMapping

SUFFIX = "json"
#: The CrossSim release whose parameter tree this export follows (tested when available:
#: ``tests/test_crosssim_conformance.py``).
CHECKED_AGAINST = "CrossSim 3.2.0"
#: What the parasitic solver may leave over, as a fraction of one ADC step (see
#: :func:`parasitic_tolerance`).
SOLVER_LSB_FRACTION = 0.01
#: Floor of ``Verr_th_mvm``: the solver's float64 sums along a line are not exact below it.
SOLVER_FLOOR = 1e-12
#: What this export cannot say in CrossSim's terms, whatever the card holds.
LIMITATIONS = (
    "CrossSim computes an open-loop MVM/VMM: the INV circuit, its op-amps and settling are not"
    " simulated; its column outputs are ideal virtual grounds, rerinv's TIAs have a finite gain"
    " (relative error about r_f * column conductance / gain)",
    "the ADC range is fixed (SignMagnitudeADC, CALIBRATED); rerinv plans each VMM's input gain"
    " k <= 1 so that its outputs fill the ADC range: to reproduce a read planned at k < 1,"
    " divide calibrated_range by k",
    "one programming-error model (proportional or independent), not both",
    "no stuck-at cells",
    "wire geometry: CrossSim's summation lines end at their last input, rerinv's TIAs sit beside"
    " row 0: give CrossSim the rows in reverse order to reproduce rerinv's IR drop cell for cell",
    "with parasitics on, CrossSim 3.2.0's one-vector VMM (x @ core) solves the circuit with the"
    " untransposed array (wrong for a square matrix, an error otherwise): compute A^T v as an"
    " MVM on a core holding A^T",
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


def adc_step(m: CardMapping) -> float:
    """One step of the card's ADC in CrossSim's normalised output units: the full scale over
    the ``2**(adc_bits - 1) - 1`` codes each side of zero (:class:`rerinv.hw.converters.Converter`,
    CrossSim's ``SignMagnitudeADC``)."""
    return adc_full_scale(m) / (2 ** (m.peek("converters.adc_bits") - 1) - 1)


def parasitic_tolerance(m: CardMapping) -> float:
    """``simulation.Verr_th_mvm``: how far from consistent CrossSim's parasitic solver may
    leave each cell's voltage, in units of the DAC full scale.

    A column of ``n = max_size`` cells, none above ``g_max`` (1 in CrossSim's units), then
    carries at most ``n * Verr_th_mvm`` of current error in the ADC's units; keeping that below
    :data:`SOLVER_LSB_FRACTION` of one ADC step gives
    ``Verr_th_mvm = SOLVER_LSB_FRACTION * adc_step / n`` (floored at :data:`SOLVER_FLOOR`).
    ``r_wire`` does not enter: whatever it is, the solver then resolves every part of the IR
    drop that moves an output by more than that fraction of a step (and an IR drop below it
    is invisible to the ADC anyway).
    """
    n = m.peek("array.max_size")
    return max(SOLVER_LSB_FRACTION * adc_step(m) / n, SOLVER_FLOOR)


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The CrossSim JSON at ``path`` and its notes at ``path.with_suffix(".notes.json")``."""
    g_max = m.use("device.g_max_siemens")
    r_min = 1.0 / g_max
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
        "model": "SignMagnitudeADC",
        "bits": m.use("converters.adc_bits"),
        "signed": True,
        "adc_range_option": "CALIBRATED",
        "calibrated_range": [-full_scale, full_scale],
    }
    dac = {"model": "SignMagnitudeDAC", "bits": m.use("converters.dac_bits"), "signed": True}
    inputs = {"min": -dac_range, "max": dac_range, "clipping": True}  # volts onto the DAC
    tolerance = parasitic_tolerance(m)
    tree = {
        "core": {
            "style": "BALANCED",
            "rows_max": n,
            "cols_max": n,
            # one cell of a pair at g_min, the other above it; subtracted at the column ends
            "balanced": {
                "style": "ONE_SIDED",
                "interleaved_posneg": False,
                "subtract_current_in_xbar": True,
            },
            "mapping": {
                # the largest |entry| at g_max, as rerinv maps a matrix
                "weights": {"clipping": True, "min": None, "max": None, "percentile": 1.0},
                "inputs": {"mvm": inputs, "vmm": dict(inputs)},
            },
        },
        "xbar": {
            "device": {
                "cell_bits": m.use("device.cell_bits"),
                "Rmin": r_min,
                "Rmax": r_max,
                "infinite_on_off_ratio": False,
                "clip_conductance": True,  # programmed conductances stay in [g_min, g_max]
                "programming_error": _error_model(_programming_error(m)),
                "read_noise": _error_model(
                    ("NormalProportionalDevice", read_noise) if read_noise > 0 else None
                ),
            },
            # CrossSim 3.1+: ohms per cell segment (3.0 took them normalised to Rmin)
            "array": {
                "parasitics": {
                    "enable": r_wire > 0,
                    "Rp_row": r_wire,
                    "Rp_col": r_wire,
                    "current_from_input": True,
                }
            },
            "adc": {"mvm": adc, "vmm": dict(adc)},
            "dac": {"mvm": dac, "vmm": dict(dac)},
        },
        "simulation": {"Verr_th_mvm": tolerance},
    }
    notes = {
        "generated_by": m.header("crosssim", source, width=None),
        "target": "CrossSimParameters.from_json(<this json>), CrossSim 3.1 or later",
        "checked_against": CHECKED_AGAINST,
        "Rp_convention": "Rp_row and Rp_col are in ohms (CrossSim 3.1+); CrossSim 3.0 read them"
        f" normalised to Rmin: there use {r_wire / r_min!r}",
        "inputs": f"inputs are DAC voltages in [-{dac_range!r}, {dac_range!r}] V",
        "converters": "SignMagnitudeDAC/ADC: 2**(bits-1)-1 steps each side of zero, zero a code,"
        " as rerinv's (QuantizerDAC/ADC with signed=True are mid-rise: no zero code)",
        "Verr_th_mvm": f"{tolerance!r} = {SOLVER_LSB_FRACTION} * ADC step / max_size (ADC step"
        f" {adc_step(m)!r} in normalised units): the parasitic solver leaves at most"
        f" {SOLVER_LSB_FRACTION} of an ADC step on any output; CrossSim's default 1e-3 stops"
        " before a realistic r_wire has any effect",
        "ir_drop_scale": f"{r_wire * g_max * n * (n + 1) / 2!r} = r_wire g_max n(n+1)/2: the"
        " relative drop at the far end of a line of n cells at g_max, full-scale input",
        "rerinv_vmm_as_crosssim": "rerinv's VMM y = A^T v is AnalogCore(A.T[:, ::-1], params)"
        " @ v[::-1] (rows reversed: CrossSim's summation lines end at their last input, rerinv's"
        " TIAs sit beside row 0), with v scaled to the DAC full scale",
        "r_wire_ohm": r_wire,
        "limitations": list(LIMITATIONS),
        "unexpressed": m.unexpressed(),
        "approximate": m.approximate,
    }
    notes_path = path.with_suffix(".notes.json")
    return {path: json.dumps(tree, indent=2) + "\n", notes_path: json.dumps(notes, indent=2) + "\n"}
