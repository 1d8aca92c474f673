"""MNSIM-2.0: an overlay of ``SimConfig.ini`` sections and keys."""

from __future__ import annotations

import configparser
import io
from pathlib import Path

from rerinv.export.common import CardMapping

SUFFIX = "ini"
#: MNSIM-2.0 built-in converter choices by precision (DAC.py / ADC.py dictionaries).
_DAC_CHOICE = {1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 8: 6}
_ADC_CHOICE = {10: 1, 8: 2, 6: 4, 4: 7}
_MAX_CELL_BITS = 10  # beyond 1024 resistance levels the ini line is impractical


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
    crossbar = {"Xbar_Size": f"{n},{n}", "Wire_Resistance": repr(m.use("array.r_wire_ohm"))}
    interface = {
        "DAC_Choice": str(_DAC_CHOICE.get(dac_bits, -1)),
        "DAC_Precision": str(dac_bits),
        "ADC_Choice": str(_ADC_CHOICE.get(adc_bits, -1)),
        "ADC_Precision": str(adc_bits),
    }
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep MNSIM's capitalised key names
    parser.read_dict(
        {"Device level": device, "Crossbar level": crossbar, "Interface level": interface}
    )
    body = io.StringIO()
    parser.write(body)
    lines = [f"# {line}" for line in m.header("mnsim", source)]
    lines += [
        "# MNSIM-2.0 SimConfig.ini overlay: copy these keys into MNSIM's SimConfig.ini; every",
        "# key not listed keeps MNSIM's value. *_Choice = -1 (user defined) also needs the",
        "# matching *_Area, *_Power and *_Sample_Rate keys set by hand.",
    ]
    return {path: "\n".join(lines) + "\n\n" + body.getvalue()}
