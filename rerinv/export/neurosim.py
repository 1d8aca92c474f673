"""DNN_NeuroSim V1.4: edits of ``Param::Param()`` in ``Inference_pytorch/NeuroSIM/Param.cpp``
(names as in ``Param.cpp``) and the ``inference.py`` flags, as a comment.

``Param::Param()`` first sets the user options, then derives values from them (the wire lengths
from the cell type, the wire resistances from the technology node), and ``main.cpp`` later
overwrites ``numRowSubArray`` and ``numRowParallel`` from the command line. So the export has
two blocks: user options, pasted at the end of the user-defined block (before the comment
``Initialization of parameters NO need to modify``), so that every derived value follows them;
and the wire resistance per cell, pasted at the very end of ``Param::Param()``, after the
derivation it replaces. Rows per sub-array go through the ``--subArray`` and ``--parallelRead``
flags.

Levels (``Inference_pytorch/modules/quantization_cpu_np_infer.py`` of V1.4): an input is
quantised unsigned, ``round((2**wl_activate - 1) * x)`` for ``x`` in [0, 1], and applied bit by
bit; a weight in [-1, 1] becomes the cell level ``round((2**wl_weight - 1) / 2 * (w + 1))``,
whose offset a dummy column subtracts. rerinv's DAC is sign-magnitude, so
``--wl_activate = dac_bits - 1`` gives the same magnitudes, and the sign is declared
inexpressible, as is the card's differential weight pair.
"""

from __future__ import annotations

from pathlib import Path

from rerinv.export.common import CardMapping, magnitude_bits

SUFFIX = "cpp"
CHECKED_AGAINST = "DNN_NeuroSim V1.4 (neurosim/DNN_NeuroSim_V1.4 Param.cpp, main.cpp)"
LIMITATIONS = (
    "NeuroSim estimates an open-loop inference chip: the INV circuit, its op-amps and settling"
    " are not simulated",
    "the variation (--vari) is redrawn on every forward pass; no absolute programming error,"
    " no read noise, no stuck-at cells",
    "no ADC range in volts: NeuroSim's sense amplifiers set their own references",
    "inputs are unsigned, bit-serial over [0, 1] (wl_activate bits, 2**wl_activate levels):"
    " signed inputs cannot be expressed (run a vector's positive and negative parts as two"
    " passes and subtract)",
    "weights are mapped with an offset and a dummy column, 2**wl_weight levels over [-1, 1]"
    " (16 for 4-bit cells): the card's differential pair has 2 (2**cell_bits - 1) + 1 levels"
    " (31 for 4-bit cells), which NeuroSim cannot express",
)
#: The line of Param.cpp that ends the user-defined block (the first block goes before it).
USER_BLOCK_END = "/*** Initialization of parameters NO need to modify ***/"


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The C++ lines (and the flags as a comment) at ``path``."""
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    cell_bits, n = m.use("device.cell_bits"), m.use("array.max_size")
    adc_bits = m.use("converters.adc_bits")
    dac_bits = m.use(
        "converters.dac_bits",
        "--wl_activate = dac_bits - 1: NeuroSim's inputs are unsigned (2**wl_activate levels over"
        " [0, 1]), the card's DAC is sign-magnitude (2**(dac_bits-1) - 1 steps each side of"
        " zero): the magnitudes match, the sign has no equivalent",
    )
    m.approximate["device.cell_bits"] = (
        f"--wl_weight = --cellBit = cell_bits: NeuroSim maps a weight with an offset and a dummy"
        f" column, {2**cell_bits} levels over [-1, 1]; the card's differential pair has"
        f" {2 * (2**cell_bits - 1) + 1}"
    )
    r_wire = m.use("array.r_wire_ohm")
    # fmt: off
    user = [
        ("memcelltype", "2", "RRAM (the wire lengths below the block follow it)"),
        ("accesstype", "1", "1T1R (CMOS access)"),
        ("cellBit", repr(cell_bits), "bits per cell"),
        ("resistanceOn", repr(1.0 / g_max), "1 / g_max (ohm)"),
        ("resistanceOff", repr(1.0 / g_min), "1 / g_min (ohm)"),
        ("maxConductance", "(double) 1/resistanceOn", "set from resistanceOn above it: again"),
        ("minConductance", "(double) 1/resistanceOff", "set from resistanceOff above it: again"),
        ("resistanceAccess", "resistanceOn*IR_DROP_TOLERANCE", "as in Param.cpp"),
        ("levelOutput", repr(2**adc_bits), f"2**{adc_bits}: {adc_bits}-bit ADC"),
        ("dumcolshared", "levelOutput", "set from levelOutput above it: again"),
        ("numColSubArray", repr(n), "crossbar columns (rows: --subArray)"),
    ]
    # fmt: on
    settle = m.peek("timing.vmm_settle_s")
    if settle is not None:
        m.use("timing.vmm_settle_s", "NeuroSim readPulseWidth set to the VMM settling time")
        user.append(("readPulseWidth", repr(settle), "s, VMM settling time"))
    dac_range = m.use("converters.dac_range_v", "NeuroSim readVoltage set to the DAC full scale")
    user.append(("readVoltage", repr(dac_range), "V, DAC full scale"))
    derived = [
        ("wireResistanceRow", repr(r_wire), "ohm per cell segment, replaces the technode model"),
        ("wireResistanceCol", repr(r_wire), "ohm per cell segment, replaces the technode model"),
    ]
    vari = m.use(
        "device.programming_error_rel_frac",
        "NeuroSim --vari is proportional to the target conductance like the card's, but is"
        " redrawn on every forward pass",
    )
    # fmt: off
    flags = {
        "--inference": 1, "--subArray": n, "--parallelRead": n, "--ADCprecision": adc_bits,
        "--cellBit": cell_bits, "--wl_weight": cell_bits,
        "--wl_activate": magnitude_bits(dac_bits),
        "--onoffratio": g_max / g_min, "--vari": vari, "--t": 0, "--v": 0, "--detect": 0,
        "--target": 0,
    }
    # fmt: on
    lines = [f"// {line}" for line in m.header("neurosim", source, limitations=LIMITATIONS)]
    lines += [
        f"// {CHECKED_AGAINST}: two blocks for Param::Param() in Inference_pytorch/NeuroSIM/",
        "// Param.cpp. Do not paste them into main.cpp: Param() derives the wire lengths and",
        "// resistances from these options before main() runs.",
        "//",
        "// BLOCK 1: at the end of the user-defined block, just before the line",
        f"//   {USER_BLOCK_END}",
    ]
    lines += [f"{name} = {value};  // {why}" for name, value, why in user]
    lines += [
        "//",
        "// BLOCK 2: at the very end of Param::Param(), before its closing brace (after the",
        "// derived wire resistances it replaces).",
    ]
    lines += [f"{name} = {value};  // {why}" for name, value, why in derived]
    lines += [
        "//",
        "// inference.py flags (Inference_pytorch/inference.py; --subArray and --parallelRead",
        "// become numRowSubArray and numRowParallel in main.cpp):",
        "// python inference.py " + " ".join(f"{k} {v!r}" for k, v in flags.items()),
    ]
    return {path: "\n".join(lines) + "\n"}
