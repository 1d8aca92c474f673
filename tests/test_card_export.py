import argparse
import configparser
import json
import math
import re
import subprocess
import sys
import types
from enum import Enum
from pathlib import Path

import pytest

from rerinv.card import (
    CARD_SCHEMA,
    card_schema_markdown,
    example_card,
    load_card,
    new_card,
    validate_card,
)
from rerinv.cli import main
from rerinv.cli.studies import add_export_command
from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.export import TARGETS, card_fields, export_card
from rerinv.provenance import software_versions

DOC = Path(__file__).resolve().parents[1] / "docs" / "parameter-card.md"
G_MIN, G_MAX, R_WIRE = 0.5e-6, 35e-6, 1.73


def calibrated_card(*overrides: str) -> dict:
    """A valid card with non-trivial device errors, wires and stuck cells."""
    config = Config().with_overrides(
        [
            "device.sigma_rel=0.01",
            "device.read_noise=0.002",
            "device.p_stuck_low=0.001",
            f"array.r_wire={R_WIRE}",
            *overrides,
        ]
    )
    example = example_card()
    return new_card(
        config,
        timing=example["timing"],
        accuracy=example["accuracy"],
        energy=example["energy"],
        created="2025-06-01T12:00:00Z",
    )


# -- schema and validation -----------------------------------------------------------------
def test_example_card_validates_and_survives_json():
    card = example_card()
    validate_card(card)
    validate_card(json.loads(json.dumps(card)))
    assert card["example"] is True and card["format"] == "rerinv-parameter-card"
    assert card["config"] == Config().to_dict()
    assert card["device"]["g_max_siemens"] == Config().device.g_max


def test_new_cards_carry_the_provenance_software_versions():
    card = calibrated_card()
    assert card["software"] == software_versions(ngspice=False)
    assert card["software"]["ngspice"] == "not used"
    assert {"rerinv", "numpy", "scipy", "h5py", "hdf5", "python", "platform"} <= set(
        example_card()["software"]
    )


def _card_written_before_provenance() -> dict:
    """The example card as docs/parameter-card.md showed it before rerinv.provenance: four
    software versions (ngspice null), no config.simulation section, no config.opamp.power."""
    card = example_card()
    card["software"] = {"rerinv": "0.1.0", "ngspice": None, "numpy": "2.4.6", "python": "3.11.7"}
    del card["config"]["simulation"]
    del card["config"]["opamp"]["power"]
    return card


def test_a_card_written_before_still_validates_loads_and_exports(tmp_path):
    card = _card_written_before_provenance()
    validate_card(card)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(card, indent=2))
    assert load_card(path) == card
    for target in TARGETS:
        assert export_card(card, target, None, card_path=path).path.exists()
    card["software"]["pyspice"] = "1.5"  # further version strings are tolerated
    validate_card(card)
    del card["software"]["rerinv"]
    with pytest.raises(InputError, match=r"\$\.software\.rerinv: required field missing"):
        validate_card(card)


def test_nulls_are_allowed_where_models_give_no_estimate():
    card = example_card()
    card["energy"].update(inv_op_j=None, vmm_op_j=None, opamp_power_w=None)
    card["timing"]["inv_settle_fit"] = None
    card["accuracy"]["inv_error_rel_fullscale"] = None
    validate_card(card)


def _delete(card, *keys):
    node = card
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]


def _set(card, value, *keys):
    node = card
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


@pytest.mark.parametrize(
    ("breaking", "message"),
    [
        (lambda c: _delete(c, "timing", "vmm_settle_s"), r"\$\.timing\.vmm_settle_s: required"),
        (lambda c: _delete(c, "energy"), r"\$\.energy: required"),
        (
            lambda c: _set(c, -1e-9, "timing", "inv_settle_typical_s"),
            r"\$\.timing\.inv_settle_typical_s: must be > 0, got -1e-09",
        ),
        (lambda c: _set(c, 0.0, "timing", "vmm_settle_s"), r"\$\.timing\.vmm_settle_s: must be >"),
        (lambda c: _set(c, "card", "format"), r"\$\.format: must be one of"),
        (lambda c: _set(c, 2, "version"), r"\$\.version: must be one of \[1\]"),
        (
            lambda c: _set(c, "tau", "timing", "inv_settle_fit", "model"),
            r"\$\.timing\.inv_settle_fit\.model: must be one of",
        ),
        (lambda c: _set(c, 8.5, "device", "cell_bits"), r"\$\.device\.cell_bits: expected integer"),
        (lambda c: _set(c, True, "device", "p_stuck_low"), r"\$\.device\.p_stuck_low: expected"),
        (
            lambda c: _set(c, math.nan, "energy", "inv_op_j"),
            r"\$\.energy\.inv_op_j: must be finite",
        ),
        (lambda c: _set(c, 1, "device", "colour"), r"\$\.device\.colour: unknown field"),
        (
            lambda c: _set(c, 1.5, "accuracy", "schemes", "refine", "success_rate"),
            r"\$\.accuracy\.schemes\.refine\.success_rate: must be <= 1",
        ),
        (lambda c: _set(c, "2025-01-01T00:00:00", "created"), r"\$\.created: must be an ISO"),
        (lambda c: _set(c, None, "software", "numpy"), r"\$\.software\.numpy: expected string"),
        (
            lambda c: _set(c, 40e-6, "device", "g_max_siemens"),
            r"\$\.device\.g_max_siemens: 4e-05 differs from \$\.config\.device\.g_max",
        ),
        (lambda c: _set(c, 0, "config", "device", "bits"), r"\$\.config: .*device\.bits"),
        (lambda c: _delete(c, "config", "opamp"), r"\$\.config\.opamp: required"),
    ],
)
def test_broken_cards_name_the_path(breaking, message):
    card = example_card()
    breaking(card)
    with pytest.raises(InputError, match=message):
        validate_card(card)


def test_not_a_dict_is_rejected():
    with pytest.raises(InputError, match=r"at \$: expected object"):
        validate_card([])


def _leaves(schema, path=""):
    for key, sub in schema.get("properties", {}).items():
        yield from _leaves(sub, f"{path}.{key}" if path else key)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in extra:
        yield from _leaves(extra, f"{path}.<name>")
    if "properties" not in schema:
        yield path, schema


def _as_list(kind):
    return [kind] if isinstance(kind, str) else kind


def test_every_numeric_field_states_its_unit():
    suffix = {"S": "_siemens", "ohm": "_ohm", "V": "_v", "s": "_s", "Hz": "_hz", "J": "_j"}
    suffix["W"] = "_w"
    numeric = [
        (path, schema)
        for path, schema in _leaves(CARD_SCHEMA)
        if {"number", "integer"} & set(_as_list(schema["type"]))
    ]
    assert len(numeric) > 30
    for path, schema in numeric:
        if path == "version":
            continue
        assert schema["description"].endswith(f"[{schema['unit']}]"), path
        if schema["unit"] in suffix:
            assert path.endswith(suffix[schema["unit"]]), path


def test_docs_are_up_to_date():
    assert card_schema_markdown() in DOC.read_text(), (
        "docs/parameter-card.md is stale: run "
        "python -c 'from rerinv.card import update_card_docs; update_card_docs()'"
    )
    for paragraph in ("**CrossSim**", "**aihwkit**", "**NeuroSim**", "**MNSIM**"):
        assert paragraph in DOC.read_text()


# -- exports -------------------------------------------------------------------------------
def _assert_unexpressed_recorded(result, card, *texts):
    """The unexpressed list is a non-empty part of the card's fields, recorded in the files."""
    fields = card_fields(card)
    assert result.unexpressed and set(result.unexpressed) <= set(fields)
    assert "config.opamp.gbw" in result.unexpressed and "energy.inv_op_j" in result.unexpressed
    for name in result.unexpressed:
        assert any(name in text for text in texts), name


def test_crosssim_export(tmp_path):
    card = calibrated_card()
    result = export_card(card, "crosssim", tmp_path / "p.crosssim.json")
    tree = json.loads(result.path.read_text())
    device = tree["xbar"]["device"]
    assert device["Rmin"] == pytest.approx(1 / G_MAX) and device["Rmax"] == pytest.approx(1 / G_MIN)
    assert device["cell_bits"] == 8
    assert device["programming_error"] == {
        "enable": True,
        "model": "NormalProportionalDevice",
        "magnitude": 0.01,
    }
    assert device["read_noise"]["model"] == "NormalProportionalDevice"
    assert device["read_noise"]["magnitude"] == 0.002
    parasitics = tree["xbar"]["array"]["parasitics"]
    assert parasitics["enable"] is True
    assert parasitics["Rp_row"] == R_WIRE  # ohms (CrossSim 3.1+), not normalised to Rmin
    assert parasitics["Rp_col"] == parasitics["Rp_row"]
    adc, dac = tree["xbar"]["adc"], tree["xbar"]["dac"]
    assert adc["mvm"] == adc["vmm"] and dac["mvm"] == dac["vmm"]
    # sign-magnitude, mid-tread, as rerinv.hw.converters (Quantizer* signed are mid-rise)
    assert adc["mvm"]["model"] == "SignMagnitudeADC" and adc["mvm"]["bits"] == 8
    assert adc["mvm"]["adc_range_option"] == "CALIBRATED"
    full_scale = 1.0 / (1e4 * G_MAX * 1.0)  # adc_range / (r_f g_max dac_range)
    assert adc["mvm"]["calibrated_range"] == pytest.approx([-full_scale, full_scale])
    assert dac["mvm"] == {"model": "SignMagnitudeDAC", "bits": 6, "signed": True}
    assert device["clip_conductance"] is True  # as program_conductances clips
    # the parasitic solver may leave 1 % of an ADC step over a column of 256 cells
    assert tree["simulation"]["Verr_th_mvm"] == pytest.approx(0.01 * full_scale / 127 / 256)
    assert tree["core"]["rows_max"] == tree["core"]["cols_max"] == 256
    assert tree["core"]["mapping"]["inputs"]["mvm"] == {"min": -1.0, "max": 1.0, "clipping": True}
    assert "converters.adc_range_v" in result.approximate and result.limitations
    (notes_path,) = result.companions
    notes = json.loads(notes_path.read_text())
    assert notes["unexpressed"] == result.unexpressed and notes["r_wire_ohm"] == R_WIRE
    assert (
        "device.p_stuck_low" in result.unexpressed and "timing.vmm_settle_s" in result.unexpressed
    )
    assert "device.cell_bits" not in result.unexpressed
    _assert_unexpressed_recorded(result, card, notes_path.read_text())


def test_crosssim_takes_one_programming_error_model(tmp_path):
    card = calibrated_card("device.sigma_abs=0.001")
    result = export_card(card, "crosssim", tmp_path / "p.json")
    error = json.loads(result.path.read_text())["xbar"]["device"]["programming_error"]
    assert error["model"] == "NormalProportionalDevice"
    assert "device.programming_error_abs_frac" in result.unexpressed
    ideal = export_card(example_card(), "crosssim", tmp_path / "ideal.json")
    device = json.loads(ideal.path.read_text())["xbar"]["device"]
    assert (
        device["programming_error"]["enable"] is False and device["read_noise"]["enable"] is False
    )
    assert "device.programming_error_abs_frac" not in ideal.unexpressed


def _fake_aihwkit(monkeypatch):
    """Stand-ins for the aihwkit names the snippet imports, recording what it sets."""

    class WeightNoiseType(Enum):
        NONE = "None"
        ADDITIVE_CONSTANT = "AdditiveConstant"

    class NoiseManagementType(Enum):
        NONE = "None"
        ABS_MAX = "AbsMax"

    class BoundManagementType(Enum):
        NONE = "None"
        ITERATIVE = "Iterative"

    class InferenceRPUConfig:
        def __init__(self):
            self.forward = types.SimpleNamespace()
            self.mapping = types.SimpleNamespace()

    class Recorder:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    modules = {
        "aihwkit": types.SimpleNamespace(__version__="1.1.0"),
        "torch": types.SimpleNamespace(__version__="2.5.1"),
        "aihwkit.simulator": types.ModuleType("aihwkit.simulator"),
        "aihwkit.simulator.configs": types.SimpleNamespace(
            InferenceRPUConfig=InferenceRPUConfig,
            WeightNoiseType=WeightNoiseType,
            NoiseManagementType=NoiseManagementType,
            BoundManagementType=BoundManagementType,
        ),
        "aihwkit.inference": types.ModuleType("aihwkit.inference"),
        "aihwkit.inference.converter": types.ModuleType("aihwkit.inference.converter"),
        "aihwkit.inference.converter.conductance": types.SimpleNamespace(
            SinglePairConductanceConverter=type("SinglePair", (Recorder,), {})
        ),
        "aihwkit.inference.noise": types.ModuleType("aihwkit.inference.noise"),
        "aihwkit.inference.noise.custom": types.SimpleNamespace(
            StateIndependentNoiseModel=type("StateIndependent", (Recorder,), {})
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return WeightNoiseType, NoiseManagementType, BoundManagementType


def test_aihwkit_export(tmp_path, monkeypatch):
    card = calibrated_card()
    result = export_card(card, "aihwkit", tmp_path / "cfg.py")
    source = result.path.read_text()
    code = compile(source, str(result.path), "exec")
    weight_noise_type, noise_management, bound_management = _fake_aihwkit(monkeypatch)
    namespace = {}
    exec(code, namespace)
    rpu = namespace["rpu_config"]
    assert rpu.forward.noise_management is noise_management.NONE
    assert rpu.forward.bound_management is bound_management.NONE
    out_bound = 1.0 / (1e4 * (G_MAX - G_MIN) * 1.0)  # adc_range / (r_f (g_max - g_min) dac)
    assert rpu.forward.out_bound == pytest.approx(out_bound) and rpu.forward.inp_bound == 1.0
    assert rpu.forward.inp_res == pytest.approx(1 / (2**6 - 2))
    assert rpu.forward.out_res == pytest.approx(1 / (2**8 - 2))
    assert rpu.forward.w_noise_type is weight_noise_type.ADDITIVE_CONSTANT
    assert rpu.forward.w_noise == 0.002 and rpu.forward.out_noise == 0.0
    assert rpu.forward.ir_drop == 1.0
    assert rpu.forward.ir_drop_g_ratio == pytest.approx(1 / (R_WIRE * G_MAX))
    assert rpu.mapping.max_input_size == rpu.mapping.max_output_size == 256
    assert rpu.mapping.weight_scaling_omega == 1.0  # aihwkit 1.1.0 inference default: 0.0
    assert rpu.mapping.weight_scaling_columnwise is False
    assert "array.r_wire_ohm" in result.approximate  # aihwkit's IR drop is 1-D
    noise = rpu.noise_model.kwargs
    assert noise["g_converter"].kwargs == {
        "g_max": pytest.approx(35.0),
        "g_min": pytest.approx(0.5),
    }
    assert noise["prog_coeff"] == pytest.approx([0.0, 0.01 * 35.0, 0.0])
    assert noise["drift_nu_mean"] == noise["read_noise_scale"] == 0.0
    (json_path,) = result.companions
    assert json_path == tmp_path / "cfg.json"
    kwargs = json.loads(json_path.read_text())
    assert kwargs["forward"]["inp_res"] == rpu.forward.inp_res
    assert kwargs["forward"]["w_noise_type"] == "AdditiveConstant"
    assert kwargs["unexpressed"] == result.unexpressed
    assert kwargs["checked_against"]["aihwkit"] == "1.1.0" and "torch" in kwargs["checked_against"]
    assert "converters.adc_range_v" in result.approximate
    assert "device.cell_bits" in result.unexpressed
    assert "device.read_noise_frac" in result.approximate
    _assert_unexpressed_recorded(result, card, source, json_path.read_text())


def test_aihwkit_out_must_name_the_snippet(tmp_path):
    with pytest.raises(InputError, match="names the .py snippet"):
        export_card(example_card(), "aihwkit", tmp_path / "cfg.json")


def test_neurosim_export(tmp_path):
    card = calibrated_card()
    result = export_card(card, "neurosim", tmp_path / "Param.cpp")
    text = result.path.read_text()
    assignment = re.compile(r"^(\w+) = ([^;]+);(  // .*)?$")
    blocks: list[dict] = []
    for line in text.splitlines():
        if line.startswith("// BLOCK"):
            blocks.append({})
        elif not line.startswith("//"):
            match = assignment.match(line)
            assert match and blocks, line
            blocks[-1][match.group(1)] = match.group(2)
    user, derived = blocks  # user options before Param()'s derived section, wires after it
    assert user["cellBit"] == "8" and user["memcelltype"] == "2" and user["accesstype"] == "1"
    assert float(user["resistanceOn"]) == pytest.approx(1 / G_MAX)
    assert float(user["resistanceOff"]) == pytest.approx(1 / G_MIN)
    assert user["levelOutput"] == "256" and user["dumcolshared"] == "levelOutput"
    assert user["numColSubArray"] == "256" and "numRowSubArray" not in user  # --subArray
    assert set(derived) == {"wireResistanceRow", "wireResistanceCol"}
    assert float(derived["wireResistanceRow"]) == float(derived["wireResistanceCol"]) == R_WIRE
    assert "Initialization of parameters NO need to modify" in text
    (command,) = [line for line in text.splitlines() if "python inference.py" in line]
    flags = dict(re.findall(r"(--\w+) (\S+)", command))
    assert flags["--ADCprecision"] == "8" and flags["--cellBit"] == "8"
    # unsigned inputs: the 5 magnitude bits of the 6-bit sign-magnitude DAC
    assert flags["--wl_activate"] == "5" and float(flags["--vari"]) == 0.01
    assert "converters.dac_bits" in result.approximate
    assert any("unsigned" in text for text in result.limitations)
    assert float(flags["--onoffratio"]) == pytest.approx(G_MAX / G_MIN)
    assert "device.read_noise_frac" in result.unexpressed
    _assert_unexpressed_recorded(result, card, text)


def test_mnsim_export(tmp_path):
    card = calibrated_card()
    result = export_card(card, "mnsim", tmp_path / "SimConfig.ini")
    assert configparser.ConfigParser().read(result.path) == [str(result.path)]
    ini = configparser.ConfigParser()
    ini.optionxform = str
    ini.read(result.path)
    device = ini["Device level"]
    resistances = [float(r) for r in device["Device_Resistance"].split(",")]
    assert int(device["Device_Level"]) == len(resistances) == 256
    assert resistances[0] == pytest.approx(1 / G_MIN) and resistances[-1] == pytest.approx(
        1 / G_MAX
    )
    assert resistances == sorted(resistances, reverse=True)  # from HRS to LRS
    assert device["Device_SAF"] == "0.1,0.0" and float(device["Device_Variation"]) == 1.0
    assert len(device["Read_Voltage"].split(",")) == int(device["Read_Level"])
    assert ini["Crossbar level"]["Xbar_Size"] == "256,256"
    assert ini["Crossbar level"]["Subarray_Size"] == "256"
    assert float(ini["Crossbar level"]["Wire_Resistance"]) == R_WIRE
    interface = ini["Interface level"]
    # DAC: the 5 magnitude bits of the 6-bit DAC (MNSIM applies the sign separately), which
    # no built-in MNSIM DAC has: user defined
    assert interface["DAC_Choice"] == "-1" and interface["ADC_Choice"] == "2"
    assert interface["DAC_Precision"] == "5" and interface["ADC_Precision"] == "8"
    assert ini["Process element level"]["Xbar_Polarity"] == "2"
    _assert_unexpressed_recorded(result, card, result.path.read_text())


def test_mnsim_sizes_and_user_defined_converters(tmp_path):
    """Subarray_Size follows the array (MNSIM asserts it divides the rows); a precision MNSIM
    has no built-in converter for gets a complete user-defined one (no zero sample rate)."""
    card = calibrated_card("array.max_size=96", "converters.adc_bits=12", "converters.dac_bits=8")
    result = export_card(card, "mnsim", tmp_path / "s.ini")
    ini = configparser.ConfigParser()
    ini.optionxform = str
    ini.read(result.path)
    crossbar, interface = ini["Crossbar level"], ini["Interface level"]
    assert crossbar["Xbar_Size"] == "96,96" and crossbar["Subarray_Size"] == "96"
    for kind, bits in (("ADC", "12"), ("DAC", "7")):  # DAC: dac_bits - 1
        assert interface[f"{kind}_Choice"] == "-1" and interface[f"{kind}_Precision"] == bits
        assert float(interface[f"{kind}_Sample_Rate"]) > 0
        assert float(interface[f"{kind}_Area"]) > 0 and float(interface[f"{kind}_Power"]) > 0
    assert {"converters.adc_bits", "converters.dac_bits"} <= set(result.approximate)


def test_mnsim_falls_back_to_two_levels_for_many_bits(tmp_path):
    result = export_card(calibrated_card("device.bits=12"), "mnsim", tmp_path / "s.ini")
    ini = configparser.ConfigParser()
    ini.read(result.path)
    assert ini["Device level"]["device_level"] == "2"
    assert "device.cell_bits" in result.unexpressed


@pytest.mark.parametrize("target", TARGETS)
def test_default_output_sits_next_to_the_card(tmp_path, target):
    result = export_card(example_card(), target, None, card_path=tmp_path / "params.json")
    suffix = {"crosssim": "json", "aihwkit": "py", "neurosim": "cpp", "mnsim": "ini"}[target]
    assert result.path == tmp_path / f"params.{target}.{suffix}" and result.path.exists()
    written = [result.path, *result.companions]
    assert any("EXAMPLE" in path.read_text() for path in written)
    assert "accuracy.schemes.krylov" in result.unexpressed


def test_export_rejects_invalid_cards_and_unknown_targets(tmp_path):
    card = example_card()
    card["timing"]["vmm_settle_s"] = -1.0
    with pytest.raises(InputError, match=r"\$\.timing\.vmm_settle_s"):
        export_card(card, "crosssim", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(InputError, match="unknown export target 'spice'"):
        export_card(example_card(), "spice", tmp_path / "x.json")


# -- command line --------------------------------------------------------------------------
def _run(*argv: str) -> int:
    return main(list(argv))


def _fails(capsys, pattern: str, *argv: str) -> None:
    """``rerinv`` exits with status 2 and names the problem on stderr."""
    assert _run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rerinv: error: ") and re.search(pattern, err), err


def test_export_command(tmp_path, capsys):
    card_path = tmp_path / "params.json"
    card_path.write_text(json.dumps(calibrated_card()))
    assert load_card(card_path)["array"]["r_wire_ohm"] == R_WIRE
    assert _run("export", str(card_path), "--to", "crosssim") == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'params.crosssim.json'}" in out
    assert "not expressible" in out and "config.opamp.gbw = 100000000.0" in out
    assert _run("export", str(card_path), "--to", "mnsim", "--out", str(tmp_path / "o/s.ini")) == 0
    assert (tmp_path / "o" / "s.ini").exists()


def test_export_command_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    card = example_card()
    card["converters"]["adc_bits"] = "eight"
    bad.write_text(json.dumps(card))
    _fails(
        capsys,
        r"bad\.json: .*\$\.converters\.adc_bits: expected integer",
        "export",
        str(bad),
        "--to",
        "neurosim",
    )
    bad.write_text("{not json")
    _fails(capsys, "not valid JSON", "export", str(bad), "--to", "neurosim")
    missing = tmp_path / "missing.json"
    _fails(capsys, "cannot read parameter card", "export", str(missing), "--to", "neurosim")
    with pytest.raises(SystemExit) as exit_info:
        _run("export", str(bad), "--to", "spice")
    assert exit_info.value.code == 2 and "invalid choice: 'spice'" in capsys.readouterr().err


def test_cli_export_choices_are_the_export_targets():
    parser = argparse.ArgumentParser(prog="rerinv")
    export = add_export_command(parser.add_subparsers(dest="command", required=True))
    (to,) = [action for action in export._actions if action.dest == "to"]
    assert tuple(to.choices) == TARGETS == ("crosssim", "aihwkit", "neurosim", "mnsim")


def test_card_and_export_import_neither_cli_nor_studies():
    code = (
        "import sys, rerinv.card, rerinv.export; "
        "print(' '.join(m for m in sys.modules if m.startswith(('rerinv.cli', 'rerinv.studies'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
