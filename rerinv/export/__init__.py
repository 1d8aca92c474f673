"""Export a parameter card to other crossbar simulators: CrossSim, aihwkit, NeuroSim, MNSIM.

None of these tools simulates the closed-loop INV circuit, so every export carries the device,
array and converter parameters it can express and lists the card fields it cannot (timing,
accuracy, energy, op-amp, ...). Each exporter records that list inside what it writes (a comment,
or a key of a file the tool does not read) and :func:`export_card` returns it.

Targets and the versions whose field names were checked (see docs/parameter-card.md):

- ``crosssim``: CrossSim 3.0 ``CrossSimParameters.from_json`` tree; unexpressed fields go to a
  ``.notes.json`` file beside it, because ``from_json`` rejects unknown keys.
- ``aihwkit``: a Python snippet building ``InferenceRPUConfig()`` plus a JSON of the same
  keyword arguments beside it.
- ``neurosim``: ``param->name = value;`` lines for DNN_NeuroSim V1.4 ``main.cpp`` (names as in
  ``Param.cpp``) and the ``inference.py`` flags, as a comment.
- ``mnsim``: an overlay of MNSIM-2.0 ``SimConfig.ini`` sections and keys.
"""

from __future__ import annotations

import configparser
import io
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerinv.card import validate_card
from rerinv.errors import InputError

TARGETS = ("crosssim", "aihwkit", "neurosim", "mnsim")
_SUFFIX = {"crosssim": "json", "aihwkit": "py", "neurosim": "cpp", "mnsim": "ini"}
#: Card fields an export may express, besides the device/array/converters summaries.
_MEASURED = ("timing", "accuracy", "energy")
_CONFIG_ONLY = ("config.array.r_inv", "config.array.inverter_mismatch")
#: aihwkit WeightNoiseType values and member names.
_WEIGHT_NOISE = {"None": "NONE", "AdditiveConstant": "ADDITIVE_CONSTANT"}
#: MNSIM-2.0 built-in converter choices by precision (DAC.py / ADC.py dictionaries).
_MNSIM_DAC_CHOICE = {1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 8: 6}
_MNSIM_ADC_CHOICE = {10: 1, 8: 2, 6: 4, 4: 7}
_MNSIM_MAX_CELL_BITS = 10  # beyond 1024 resistance levels the ini line is impractical


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_card` wrote.

    Attributes
    ----------
    path : Path
        The main file for the target tool.
    unexpressed : list of str
        Card fields (dotted paths, non-null values only) the target format cannot express.
    approximate : dict of str to str
        Card fields expressed only approximately, with the reason.
    companions : list of Path
        Other files written beside ``path`` (aihwkit JSON, CrossSim notes).
    values : dict of str to str
        ``" = value"`` of each scalar unexpressed field, shown by :meth:`summary`.
    """

    path: Path
    unexpressed: list[str]
    approximate: dict[str, str] = field(default_factory=dict)
    companions: list[Path] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """Human-readable report for the command line."""
        lines = [f"wrote {self.path}"] + [f"wrote {p}" for p in self.companions]
        lines.append(f"not expressible in this format ({len(self.unexpressed)} card fields):")
        lines += [f"  {name}{self.values.get(name, '')}" for name in self.unexpressed] or ["  -"]
        if self.approximate:
            lines.append("expressed approximately:")
            lines += [f"  {name}: {why}" for name, why in self.approximate.items()]
        return "\n".join(lines)


def card_fields(card: dict) -> list[str]:
    """Card fields an export is judged on: physical and measured values that are not null.

    Summaries are listed leaf by leaf, the op-amp and inverter from ``config``, measured
    sections by their entries (a settling fit, an error statistic or a scheme counts as one).
    ``config.scheme`` and ``config.workload`` describe the algorithm, not hardware: not listed.
    """
    names = [f"{s}.{k}" for s in ("device", "array", "converters") for k in card[s]]
    names += [f"config.opamp.{k}" for k in card["config"]["opamp"]]
    names += list(_CONFIG_ONLY)
    for section in _MEASURED:
        for key, value in card[section].items():
            if key == "schemes":
                names += [f"{section}.schemes.{name}" for name in value]
            elif key != "assumptions":
                names.append(f"{section}.{key}")
    return [name for name in names if _lookup(card, name) is not None]


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str))


def _lookup(card: dict, dotted: str) -> Any:
    node = card
    for key in dotted.split("."):
        node = node[key]
    return node


class _Mapping:
    """Reads card fields for one export and remembers which ones it expressed."""

    def __init__(self, card: dict):
        self.card = card
        self.expressed: set[str] = set()
        self.approximate: dict[str, str] = {}

    def use(self, name: str, approximate: str | None = None) -> Any:
        self.expressed.add(name)
        if approximate:
            self.approximate[name] = approximate
        return _lookup(self.card, name)

    def unexpressed(self) -> list[str]:
        return [name for name in card_fields(self.card) if name not in self.expressed]

    def header(self, target: str, source: str, width: int | None = 96) -> list[str]:
        lines = [f"Generated by `rerinv export --to {target}` from {source}."]
        if self.card.get("example"):
            lines.append("WARNING: the source card is an EXAMPLE with placeholder numbers.")
        lines.append("Card fields not expressible here: " + (", ".join(self.unexpressed()) or "-"))
        lines += [f"Approximate: {k}: {v}" for k, v in self.approximate.items()]
        if width is None:
            return lines
        return [
            part
            for line in lines
            for part in textwrap.wrap(line, width, break_on_hyphens=False, subsequent_indent="  ")
        ]


def _programming_error(m: _Mapping) -> tuple[str, float] | None:
    """One (CrossSim model, magnitude) for the programming error, or None when it is zero."""
    abs_name, rel_name = "device.programming_error_abs_frac", "device.programming_error_rel_frac"
    sigma_abs, sigma_rel = _lookup(m.card, abs_name), _lookup(m.card, rel_name)
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


# -- CrossSim ------------------------------------------------------------------------------
def _crosssim(m: _Mapping, path: Path, source: str) -> dict[Path, str]:
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


# -- aihwkit -------------------------------------------------------------------------------
def _aihwkit_res(bits: int) -> float:
    """aihwkit resolution convention: 1 / (2**bits - 2) steps, as its 7-bit default."""
    return 1.0 / max(2**bits - 2, 1)


def _aihwkit(m: _Mapping, path: Path, source: str) -> dict[Path, str]:
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    read_noise = m.use(
        "device.read_noise_frac",
        "w_noise is additive and state-independent; the card's read noise is proportional"
        " to the conductance, so w_noise = read_noise_frac is its value at g_max",
    )
    r_wire = m.use("array.r_wire_ohm")
    forward = {
        "inp_res": _aihwkit_res(m.use("converters.dac_bits")),
        "out_res": _aihwkit_res(m.use("converters.adc_bits")),
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


# -- NeuroSim ------------------------------------------------------------------------------
def _neurosim(m: _Mapping, path: Path, source: str) -> dict[Path, str]:
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
    settle = m.card["timing"]["vmm_settle_s"]
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


# -- MNSIM ---------------------------------------------------------------------------------
def _mnsim(m: _Mapping, path: Path, source: str) -> dict[Path, str]:
    g_max, g_min = m.use("device.g_max_siemens"), m.use("device.g_min_siemens")
    bits = m.card["device"]["cell_bits"]
    if bits <= _MNSIM_MAX_CELL_BITS:
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
    settle = m.card["timing"]["vmm_settle_s"]
    if settle is not None:
        m.use("timing.vmm_settle_s", "MNSIM Read_Latency (ns) set to the VMM settling time")
        device["Read_Latency"] = repr(settle * 1e9)
    crossbar = {"Xbar_Size": f"{n},{n}", "Wire_Resistance": repr(m.use("array.r_wire_ohm"))}
    interface = {
        "DAC_Choice": str(_MNSIM_DAC_CHOICE.get(dac_bits, -1)),
        "DAC_Precision": str(dac_bits),
        "ADC_Choice": str(_MNSIM_ADC_CHOICE.get(adc_bits, -1)),
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


_EXPORTERS = {"crosssim": _crosssim, "aihwkit": _aihwkit, "neurosim": _neurosim, "mnsim": _mnsim}


def export_card(
    card: dict, to: str, out: Path | None = None, *, card_path: Path | None = None
) -> ExportResult:
    """Validate ``card`` and write it in the format of another simulator.

    Parameters
    ----------
    card : dict
        A parameter card (see :mod:`rerinv.card`).
    to : {"crosssim", "aihwkit", "neurosim", "mnsim"}
        Target format.
    out : Path, optional
        Main output file. Default: next to ``card_path`` (or in the current directory),
        named ``<card stem>.<to>.<json|py|cpp|ini>``.
    card_path : Path, optional
        Where the card was read from; names the default output and the files' headers.

    Returns
    -------
    ExportResult
        The files written and the card fields the format could not express.

    Raises
    ------
    rerinv.errors.InputError
        Invalid card, unknown target or unwritable output.
    """
    if to not in _EXPORTERS:
        raise InputError(f"unknown export target {to!r}; choose one of {', '.join(TARGETS)}")
    validate_card(card)
    if out is None:
        base = card_path if card_path is not None else Path("params.json")
        out = base.with_name(f"{base.stem}.{to}.{_SUFFIX[to]}")
    out = Path(out)
    mapping = _Mapping(card)
    files = _EXPORTERS[to](mapping, out, card_path.name if card_path else "an in-memory card")
    for file_path, text in files.items():
        try:
            file_path.parent.mkdir(parents=True, exist_ok=True)
            file_path.write_text(text)
        except OSError as exc:
            raise InputError(f"cannot write {file_path}: {exc}") from exc
    return ExportResult(
        path=out,
        unexpressed=mapping.unexpressed(),
        approximate=dict(mapping.approximate),
        companions=[p for p in files if p != out],
        values={k: f" = {v!r}" for k in mapping.unexpressed() if _scalar(v := _lookup(card, k))},
    )
