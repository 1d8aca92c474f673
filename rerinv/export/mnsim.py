"""MNSIM-2.0: an overlay of ``SimConfig.ini`` sections and keys.

Keys and converter tables checked against MNSIM-2.0 (``SimConfig.ini``,
``MNSIM/Hardware_Model/{DAC,ADC}.py``). Only the built-in converters every MNSIM-2.0 version
has are chosen (ADC choices 1, 2, 4; DAC choices 1 to 6); any other precision is a user-defined
converter (``*_Choice = -1``) with its area, power and sample rate written out, because MNSIM
divides by the sample rate and would otherwise read 0.

Levels (``MNSIM/Interface/interface.py``, ``MNSIM/Interface/quantize.py``): the DAC precision
is the input bits applied per cycle, and the sign of each input is applied separately (a
magnitude of ``2**DAC_Precision - 1`` at most, times the sign), so rerinv's sign-magnitude DAC
of ``dac_bits`` (``2**(dac_bits-1) - 1`` steps each side of zero) is ``DAC_Precision =
dac_bits - 1``. With ``Xbar_Polarity = 2`` a weight is a positive and a negative crossbar of
``Device_Level = 2**cell_bits`` levels each, as the card's differential pair.
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path

from rerinv.export.common import CardMapping, magnitude_bits

SUFFIX = "ini"
CHECKED_AGAINST = "MNSIM-2.0 (thu-nics/MNSIM-2.0 SimConfig.ini with Subarray_Size)"
#: MNSIM-2.0 built-in converters: precision -> (choice, area um^2, power W, GSamples/s).
_ADC = {10: (1, 1600.0, 6.92e-3, 1.5), 8: (2, 1200.0, 2e-3, 1.0), 6: (4, 580.0, 1.26e-3, 1.0)}
_DAC = {
    1: (1, 0.166, 0.0039e-3, 1.0),
    2: (2, 0.332, 0.0078e-3, 1.0),
    3: (3, 0.664, 0.0156e-3, 1.0),
    4: (4, 1.328, 0.0312e-3, 1.0),
    6: (5, 5.312, 0.1248e-3, 1.0),
    8: (6, 21.248, 0.4992e-3, 1.0),
}
_MAX_CELL_BITS = 10  # beyond 1024 resistance levels the ini line is impractical
LIMITATIONS = (
    "MNSIM estimates an open-loop crossbar accelerator: the INV circuit, its op-amps and"
    " settling are not simulated",
    "converters of a precision MNSIM has no built-in model for are user defined, with area and"
    " power scaled from the nearest built-in one (x2 per bit): replace them with the real part's",
    "one read voltage level (Read_Voltage = 0, dac_range_v), no ADC range in volts",
    "no absolute programming error, no read noise",
)


def _converter(m: CardMapping, kind: str, bits: int, table: dict) -> dict[str, str]:
    """``{KIND}_Choice``, ``_Precision`` and, for a user-defined converter, ``_Area``,
    ``_Power`` and ``_Sample_Rate`` (scaled from the nearest built-in precision)."""
    if bits in table:
        choice = table[bits][0]
        return {f"{kind}_Choice": str(choice), f"{kind}_Precision": str(bits),
                f"{kind}_Area": "0", f"{kind}_Power": "0", f"{kind}_Sample_Rate": "0"}  # fmt: skip
    nearest = min(table, key=lambda b: (abs(b - bits), -b))
    _, area, power, rate = table[nearest]
    scale = 2.0 ** (bits - nearest)
    name = "converters.adc_bits" if kind == "ADC" else "converters.dac_bits"
    m.approximate[name] = (
        f"MNSIM has no built-in {bits}-bit {kind}: user defined ({kind}_Choice = -1), area and "
        f"power scaled x{scale:g} from its {nearest}-bit one, its sample rate {rate:g} GS/s"
        + (
            " (DAC_Precision = dac_bits - 1: MNSIM applies the sign separately)"
            if kind == "DAC"
            else ""
        )
    )
    return {f"{kind}_Choice": "-1", f"{kind}_Precision": str(bits),
            f"{kind}_Area": repr(area * scale), f"{kind}_Power": repr(power * scale),
            f"{kind}_Sample_Rate": repr(rate)}  # fmt: skip


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The ini overlay (with a comment header) at ``path``."""
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    bits = m.peek("device.cell_bits")
    if bits <= _MAX_CELL_BITS:
        m.use("device.cell_bits")
        levels = [g_min + k * (g_max - g_min) / (2**bits - 1) for k in range(2**bits)]
    else:
        levels = [g_min, g_max]
    resistances = ",".join(f"{1.0 / g:.9g}" for g in levels)  # from HRS to LRS
    n = m.use("array.max_size")
    dac_bits, adc_bits = m.use("converters.dac_bits"), m.use("converters.adc_bits")
    dac_range = m.use(
        "converters.dac_range_v",
        "MNSIM Read_Voltage = 0,dac_range_v: two read levels, the top one at the DAC full scale",
    )
    stuck_low, stuck_high = m.use("device.p_stuck_low"), m.use("device.p_stuck_high")
    variation = m.use(
        "device.programming_error_rel_frac",
        "MNSIM Device_Variation is dR/R in percent, equal to dG/G to first order",
    )
    device = {
        "Device_Level": str(len(levels)),
        "Device_Resistance": resistances,
        "Device_Variation": repr(100 * variation),
        "Device_SAF": f"{100 * stuck_low!r},{100 * stuck_high!r}",  # % at HRS, % at LRS
        "Read_Level": "2",
        "Read_Voltage": f"0,{dac_range!r}",
    }
    settle = m.peek("timing.vmm_settle_s")
    if settle is not None:
        m.use("timing.vmm_settle_s", "MNSIM Read_Latency (ns) set to the VMM settling time")
        device["Read_Latency"] = repr(settle * 1e9)
    crossbar = {
        "Xbar_Size": f"{n},{n}",
        "Subarray_Size": str(n),  # MNSIM asserts it divides the crossbar rows
        "Wire_Resistance": repr(m.use("array.r_wire_ohm")),
    }
    # MNSIM applies each input's sign separately: the DAC holds the magnitude bits only
    interface = {
        **_converter(m, "DAC", magnitude_bits(dac_bits), _DAC),
        **_converter(m, "ADC", adc_bits, _ADC),
    }
    element = {"Xbar_Polarity": "2", "Sub_Position": "0"}  # pos/neg crossbars, analog subtraction
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep MNSIM's capitalised key names
    parser.read_dict(
        {
            "Device level": device,
            "Crossbar level": crossbar,
            "Interface level": interface,
            "Process element level": element,
        }
    )
    body = io.StringIO()
    parser.write(body)
    lines = [f"# {line}" for line in m.header("mnsim", source, limitations=LIMITATIONS)]
    lines += [
        f"# {CHECKED_AGAINST} overlay: copy these keys into MNSIM's SimConfig.ini; every key",
        "# not listed keeps MNSIM's value.",
    ]
    return {path: "\n".join(lines) + "\n\n" + body.getvalue()}
