"""DNN_NeuroSim V1.4: ``param->name = value;`` lines for ``main.cpp`` (names as in
``Param.cpp``) and the ``inference.py`` flags, as a comment."""

from __future__ import annotations

from pathlib import Path

from rerinv.export.common import CardMapping

SUFFIX = "cpp"


def render(m: CardMapping, path: Path, source: str) -> dict[Path, str]:
    """The C++ lines (and the flags as a comment) at ``path``."""
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    cell_bits, n = m.use("device.cell_bits"), m.use("array.max_size")
    adc_bits, dac_bits = m.use("converters.adc_bits"), m.use("converters.dac_bits")
    r_wire = m.use("array.r_wire_ohm")
    # fmt: off
    params = [
        ("memcelltype", "2", "RRAM"),
        ("accesstype", "1", "1T1R (CMOS access)"),
        ("cellBit", repr(cell_bits), "bits per cell"),
        ("resistanceOn", repr(1.0 / g_max), "1 / g_max (ohm)"),
        ("resistanceOff", repr(1.0 / g_min), "1 / g_min (ohm)"),
        ("maxConductance", repr(g_max), "derived in Param::Param(): set again"),
        ("minConductance", repr(g_min), "derived in Param::Param(): set again"),
        ("resistanceAccess", "param->resistanceOn * IR_DROP_TOLERANCE", "as in Param.cpp"),
        ("levelOutput", repr(2**adc_bits), f"2**{adc_bits}: {adc_bits}-bit ADC"),
        ("numRowSubArray", repr(n), "crossbar rows"),
        ("numColSubArray", repr(n), "crossbar columns"),
        ("wireResistanceRow", repr(r_wire), "ohm per cell segment (overrides the technode)"),
        ("wireResistanceCol", repr(r_wire), "ohm per cell segment (overrides the technode)"),
    ]
    # fmt: on
    settle = m.peek("timing.vmm_settle_s")
    if settle is not None:
        m.use("timing.vmm_settle_s", "NeuroSim readPulseWidth set to the VMM settling time")
        params.append(("readPulseWidth", repr(settle), "s, VMM settling time"))
    dac_range = m.use("converters.dac_range_v", "NeuroSim readVoltage set to the DAC full scale")
    params.append(("readVoltage", repr(dac_range), "V, DAC full scale"))
    vari = m.use(
        "device.programming_error_rel_frac",
        "NeuroSim --vari is proportional to the target conductance like the card's, but is"
        " redrawn on every forward pass",
    )
    # fmt: off
    flags = {
        "--inference": 1, "--subArray": n, "--parallelRead": n, "--ADCprecision": adc_bits,
        "--cellBit": cell_bits, "--wl_weight": cell_bits, "--wl_activate": dac_bits,
        "--onoffratio": g_max / g_min, "--vari": vari, "--t": 0, "--v": 0, "--detect": 0,
        "--target": 0,
    }
    # fmt: on
    lines = [f"// {line}" for line in m.header("neurosim", source)]
    lines += [
        "// DNN_NeuroSim V1.4: paste the lines below into Inference_pytorch/NeuroSIM/main.cpp,",
        "// right after `param->numRowParallel = atoi(argv[5]);` (or drop `param->` and put them",
        "// at the end of Param::Param() in Param.cpp).",
    ]
    lines += [f"param->{name} = {value};  // {why}" for name, value, why in params]
    lines += [
        "//",
        "// inference.py flags (Inference_pytorch/inference.py):",
        "// python inference.py " + " ".join(f"{k} {v!r}" for k, v in flags.items()),
    ]
    return {path: "\n".join(lines) + "\n"}
