"""``rerinv amplifier``: the SKY130 amplifier characterised by ngspice at several corners.

Each row is :func:`rerinv.engines.amplifier.characterise` at one corner (DC gain, GBW and phase
margin with a 1 pF load, output resistance, nominal offset, offset sigma over a seeded
mismatch Monte Carlo, output swing, slew rate, quiescent current and power); the JSON form
carries the provenance and is what ``docs/circuits.md`` quotes.
"""

from __future__ import annotations

import math

import numpy as np

from rerinv.config import SKY130_CORNERS, Config
from rerinv.engines.amplifier import AmplifierCharacterisation, characterise
from rerinv.errors import InputError
from rerinv.provenance import provenance

#: Mismatch trials per corner by default (offset sigma to about 5 %).
DEFAULT_MISMATCH_TRIALS = 200


def characterise_corners(
    config: Config,
    corners: tuple[str, ...] = ("tt", "ss", "ff"),
    *,
    mismatch_trials: int = DEFAULT_MISMATCH_TRIALS,
    seed: int = 0,
) -> list[AmplifierCharacterisation]:
    """One characterisation per corner at ``config.opamp``'s temperature and supply."""
    unknown = [c for c in corners if c not in SKY130_CORNERS]
    if unknown or not corners:
        raise InputError(
            f"corners must be among {', '.join(SKY130_CORNERS)}, got {', '.join(corners) or 'none'}"
        )
    oa = config.opamp
    return [
        characterise(corner, oa.temperature, oa.supply, mismatch_trials=mismatch_trials, seed=seed)
        for corner in corners
    ]


COLUMNS = (
    ("corner", "{}", lambda c: c.corner),
    ("DC gain dB", "{:.1f}", lambda c: 20 * math.log10(c.dc_gain)),
    ("GBW MHz", "{:.1f}", lambda c: c.gbw / 1e6),
    ("PM deg", "{:.1f}", lambda c: c.phase_margin),
    ("r_out kohm", "{:.1f}", lambda c: c.r_out / 1e3),
    ("offset uV", "{:.0f}", lambda c: c.offset * 1e6),
    ("sigma(offset) mV", "{:.2f}", lambda c: c.offset_sigma * 1e3),
    ("swing V", "{:+.2f}/{:+.2f}", lambda c: (c.swing_low, c.swing_high)),
    ("slew V/us", "{:.0f}/{:.0f}", lambda c: (c.slew_rise / 1e6, c.slew_fall / 1e6)),
    ("I_q uA", "{:.0f}", lambda c: c.supply_current * 1e6),
    ("power mW", "{:.3f}", lambda c: c.power * 1e3),
)


def table(rows: list[AmplifierCharacterisation], markdown: bool = False) -> str:
    """The characterisation as a text (or Markdown) table."""
    cells = [[name for name, _, _ in COLUMNS]]
    for row in rows:
        line = []
        for _, fmt, get in COLUMNS:
            value = get(row)
            line.append(fmt.format(*value) if isinstance(value, tuple) else fmt.format(value))
        cells.append(line)
    if markdown:
        out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
        out += ["| " + " | ".join(line) + " |" for line in cells[1:]]
        return "\n".join(out)
    widths = [max(len(line[k]) for line in cells) for k in range(len(cells[0]))]
    return "\n".join(
        "  ".join(text.rjust(width) for text, width in zip(line, widths, strict=True))
        for line in cells
    )


def report(rows: list[AmplifierCharacterisation], config: Config, command_line: str | None) -> dict:
    """JSON-able record of a characterisation run."""
    first = rows[0]
    return {
        "amplifier": "ota_sky130 (pyspice_models/sky130_amplifiers.lib)",
        "temperature_c": first.temperature,
        "supply_v": first.supply,
        "load_capacitance_f": 1e-12,
        "corners": [row.to_dict() for row in rows],
        "config": config.to_toml(),
        "provenance": provenance(command_line),
    }


def macro_model_gap(a, b, config: Config, *, seed: int = 0) -> dict:
    """How far the amplifier models are from the transistor-level answer on one INV solve.

    The INV crossbar of ``a`` (programmed as the schemes program it, ``seed``) solves ``b``
    at the planned input scale three times: on ngspice with the transistor-level amplifiers,
    on the nodal engine with the linear model extracted from them, and on the nodal engine
    with the single-pole macro-model of ``config.opamp``'s gain, GBW, offset and output
    resistance. Returns the largest output difference of each model from the transistors,
    in volts and as bits of the transistor-level full scale (``-log2(gap / max|x|)``)."""
    import dataclasses

    from rerinv.analog import inv as inv_mod
    from rerinv.engines import get_engine

    if config.opamp.model != "sky130":
        raise InputError("the macro-model gap compares against opamp.model = sky130")
    inv = inv_mod.build_inv(a, config, seed=seed)
    k = inv_mod.input_gain(inv, b)
    circuit = dataclasses.replace(inv.circuit, input_values=k * b)
    session = get_engine("spice").load(circuit)
    try:
        transistors = session.solve()
    finally:
        session.close()
    macro = dataclasses.replace(
        circuit, opamp=dataclasses.replace(circuit.opamp, model="single_pole", mismatch=False)
    )
    scale = float(np.abs(transistors).max())
    out = {"full_scale_v": scale}
    models = {"extracted": circuit, "macro": macro}
    if config.opamp.mismatch:  # nodal holds one model for all amplifiers: nominal devices
        models["extracted"] = dataclasses.replace(
            circuit, opamp=dataclasses.replace(circuit.opamp, mismatch=False)
        )
    for name, variant in models.items():
        gap = float(np.abs(get_engine("nodal").load(variant).solve() - transistors).max())
        out[f"{name}_gap_v"] = gap
        out[f"{name}_gap_bits"] = -math.log2(gap / scale) if gap > 0 else math.inf
    return out
