"""Levels per input and per weight in the NeuroSim and MNSIM exports, and the units of the
aihwkit export, stated from each tool's source (neither tool runs here).

Sources read (public repositories, the commits checked):

- DNN_NeuroSim V1.4 (neurosim/DNN_NeuroSim_V1.4 at ac828e6),
  ``Inference_pytorch/modules/quantization_cpu_np_infer.py``: line 99
  ``inputQ = torch.round((2**bitActivation - 1)/1 * (input-0) + 0)`` (inputs unsigned over
  [0, 1]) and line 101 ``for z in range(bitActivation)`` (applied bit by bit), with
  ``bitActivation = wl_input = --wl_activate``; line 77 ``X_decimal = torch.round((2**bitWeight
  - 1)/2 * (weight+1) + 0)`` (a weight in [-1, 1] onto 2**wl_weight cell levels) and line 65
  ``dummyP = (cellRange-1)*(upper+lower)/2`` (the dummy column that subtracts the offset).
- MNSIM-2.0 (thu-nics/MNSIM-2.0 at ca39ccb): ``MNSIM/Interface/interface.py`` line 45 reads
  ``DAC_Precision``, lines 71 and 74 make it ``hardware_config['input_bit']``, line 40
  ``weight_bit = floor(log2(Device_Level))`` and line 36 ``Xbar_Polarity``;
  ``MNSIM/Interface/quantize.py`` lines 367-376 split each input into cycles of ``input_bit``
  bits of its magnitude (``(activation_in_bit - 1)`` bits: the sign is not among them) and
  multiply every cycle by ``sign_activation_in`` (line 369); lines 303 and 321 store a weight's
  magnitude on a positive and a negative crossbar when ``Xbar_Polarity = 2``.
- aihwkit 1.1.0 (IBM/aihwkit): ``src/aihwkit/simulator/parameters/mapping.py``,
  ``weight_scaling_omega: float = 0.0`` ("By default, no remapping is performed. If values >
  0.0 are supplied the abs-max of the weight is scaled to that value").
"""

from __future__ import annotations

import configparser
import json
import re

import numpy as np
import pytest

from rerinv.card import example_card, new_card
from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.export import export_card
from rerinv.hw.converters import Converter


def _card(*overrides: str) -> dict:
    example = example_card()
    return new_card(Config().with_overrides(list(overrides)), timing=example["timing"],
                    accuracy=example["accuracy"], energy=example["energy"],
                    created="2025-06-01T12:00:00Z")  # fmt: skip


def _rerinv_magnitudes(dac_bits: int) -> np.ndarray:
    """The magnitudes rerinv's DAC can produce, as fractions of its full scale."""
    dac = Converter(dac_bits, 1.0)
    return np.arange(dac.max_code + 1) * dac.lsb


def _neurosim_flags(tmp_path, card) -> dict[str, str]:
    result = export_card(card, "neurosim", tmp_path / "Param.cpp", force=True)
    (command,) = [
        line for line in result.path.read_text().splitlines() if "python inference.py" in line
    ]
    return dict(re.findall(r"(--\w+) (\S+)", command))


def _mnsim_ini(tmp_path, card) -> configparser.ConfigParser:
    result = export_card(card, "mnsim", tmp_path / "SimConfig.ini", force=True)
    ini = configparser.ConfigParser()
    ini.optionxform = str
    ini.read(result.path)
    return ini


@pytest.mark.parametrize("dac_bits", [2, 3, 6, 8, 12])
def test_neurosim_inputs_have_rerinvs_magnitudes(tmp_path, dac_bits):
    """NeuroSim's input grid is ``round((2**w - 1) x) / (2**w - 1)`` for ``x`` in [0, 1]
    (``w = --wl_activate``): ``2**w`` unsigned levels. rerinv's DAC has ``2**(dac_bits-1) - 1``
    steps each side of zero, so its magnitudes are that grid exactly when
    ``w = dac_bits - 1``; with ``w = dac_bits`` NeuroSim would have twice as many."""
    flags = _neurosim_flags(tmp_path, _card(f"converters.dac_bits={dac_bits}"))
    w = int(flags["--wl_activate"])
    assert w == dac_bits - 1
    neurosim = np.arange(2**w) / (2**w - 1)
    assert np.allclose(neurosim, _rerinv_magnitudes(dac_bits), rtol=0, atol=1e-15)


def test_neurosim_declares_signed_inputs_and_the_weight_pair(tmp_path):
    """A weight in [-1, 1] becomes one of ``2**wl_weight`` cell levels with an offset that a
    dummy column subtracts: 16 levels for 4-bit cells, where the card's differential pair holds
    ``2 (2**cell_bits - 1) + 1`` = 31 (one cell of the pair at g_min, the other at any level).
    Neither that nor the sign of an input can be said in NeuroSim's terms: declared."""
    card = _card("device.bits=4")
    result = export_card(card, "neurosim", tmp_path / "Param.cpp", force=True)
    flags = _neurosim_flags(tmp_path, card)
    neurosim_levels = 2 ** int(flags["--wl_weight"])
    card_levels = 2 * (2 ** card["device"]["cell_bits"] - 1) + 1
    assert (neurosim_levels, card_levels) == (16, 31)
    written = " ".join(result.path.read_text().replace("//", " ").split())  # unwrapped
    for limitation in result.limitations:
        assert limitation in written
    assert "signed inputs cannot be expressed" in " ".join(result.limitations)
    assert "dummy column" in " ".join(result.limitations)
    assert "31" in result.approximate["device.cell_bits"]
    assert "dac_bits - 1" in result.approximate["converters.dac_bits"]


@pytest.mark.parametrize("dac_bits", [2, 3, 5, 6, 9])
def test_mnsim_inputs_have_rerinvs_levels(tmp_path, dac_bits):
    """MNSIM applies an input's sign separately and its DAC the magnitude, ``2**p - 1`` at most
    (``p = DAC_Precision``): ``2 (2**p - 1) + 1`` signed levels. rerinv's DAC has
    ``2**dac_bits - 1`` (``2**(dac_bits-1) - 1`` steps each side of zero), so
    ``p = dac_bits - 1``; with ``p = dac_bits`` MNSIM would have 127 levels against 63 for
    6 bits."""
    interface = _mnsim_ini(tmp_path, _card(f"converters.dac_bits={dac_bits}"))["Interface level"]
    p = int(interface["DAC_Precision"])
    assert p == dac_bits - 1
    assert 2 * (2**p - 1) + 1 == 2**dac_bits - 1 == 2 * Converter(dac_bits, 1.0).max_code + 1
    mnsim = np.arange(2**p) / (2**p - 1)
    assert np.allclose(mnsim, _rerinv_magnitudes(dac_bits), rtol=0, atol=1e-15)
    # the choice names a converter of that precision (built-in 1, 2, 3, 4, 6, 8 bits)
    builtin = {1: "1", 2: "2", 3: "3", 4: "4", 6: "5", 8: "6"}
    assert interface["DAC_Choice"] == builtin.get(p, "-1")


def test_mnsim_weights_are_the_cards_differential_pair(tmp_path):
    """With ``Xbar_Polarity = 2`` MNSIM stores a weight's magnitude on a positive and a
    negative crossbar of ``Device_Level`` levels each: ``2 (Device_Level - 1) + 1`` signed
    levels, the card's ``2 (2**cell_bits - 1) + 1``."""
    card = _card("device.bits=4")
    ini = _mnsim_ini(tmp_path, card)
    levels = int(ini["Device level"]["Device_Level"])
    assert ini["Process element level"]["Xbar_Polarity"] == "2"
    assert 2 * (levels - 1) + 1 == 2 * (2 ** card["device"]["cell_bits"] - 1) + 1 == 31


@pytest.mark.parametrize("target", ["neurosim", "mnsim"])
def test_a_one_bit_dac_has_no_magnitude_to_export(tmp_path, target):
    """A 1-bit sign-magnitude DAC has no code but zero: refused, by the card's validation or
    by the exporter, never written as 0 bits (MNSIM's "default" precision)."""
    card = example_card()
    card["converters"]["dac_bits"] = card["config"]["converters"]["dac_bits"] = 1
    with pytest.raises(InputError, match="dac_bits"):
        export_card(card, target, tmp_path / "out", force=True)
    assert not (tmp_path / "out").exists()


def test_aihwkit_scales_the_largest_weight_to_one(tmp_path):
    """``out_bound`` is the card's ADC range in units where a weight of 1 at full-scale input
    gives 1 and a weight of 1 is ``g_max - g_min`` (rerinv's largest entry). With aihwkit's
    inference default ``weight_scaling_omega = 0`` the weights stay raw: for a matrix whose
    largest entry is 0.1 the bound, applied to raw ``W x``, would clip at 10x the output rerinv's
    ADC clips at. With ``omega = 1`` (one factor for the matrix, applied back digitally) the
    clip sits at ``out_bound * max|W|`` in the user's units, as rerinv's:
    ``adc_range / (r_f * scale * dac_range)`` with ``scale = (g_max - g_min) / max|A|``."""
    card = _card()
    result = export_card(card, "aihwkit", tmp_path / "cfg.py", force=True)
    kwargs = json.loads(result.companions[0].read_text())
    assert kwargs["mapping"]["weight_scaling_omega"] == 1.0
    assert kwargs["mapping"]["weight_scaling_columnwise"] is False
    config = Config()
    out_bound = kwargs["forward"]["out_bound"]
    peak = 0.1
    scale = (config.device.g_max - config.device.g_min) / peak
    rerinv_clip = config.converters.adc_range / (
        config.array.r_f * scale * config.converters.dac_range
    )
    omega = kwargs["mapping"]["weight_scaling_omega"]
    assert out_bound * peak / omega == pytest.approx(rerinv_clip, rel=1e-12)
    assert out_bound == pytest.approx(10 * rerinv_clip)  # what omega = 0 would clip at
