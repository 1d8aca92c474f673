"""The CrossSim export read by the real CrossSim (3.2.0, BSD-3, not on PyPI).

CrossSim is installed into the running environment from the shared vendor folder
(``../shared/vendor/crosssim-3.2.0`` beside the checkout, or ``$RERINV_CROSSSIM_SRC``) with
``pip install --no-deps``; without the folder the tests are skipped, saying so.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rerinv.card import example_card, new_card
from rerinv.config import Config
from rerinv.export import export_card

ROOT = Path(__file__).resolve().parents[1]
VENDOR = Path(
    os.environ.get("RERINV_CROSSSIM_SRC", ROOT.parent / "shared" / "vendor" / "crosssim-3.2.0")
)
VERSION = "3.2.0"
R_WIRE = 0.5  # ohm per cell segment: 0.5 ohm arrived as 1.75e-5 ohm with the 3.0 convention


def _installed_version() -> str | None:
    try:
        return importlib.metadata.version("CrossSim")
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.fixture(scope="session")
def crosssim():
    """The ``simulator`` package of CrossSim 3.2.0, installed from the vendor folder if needed."""
    if _installed_version() != VERSION:
        if not (VENDOR / "pyproject.toml").is_file():
            pytest.skip(
                f"CrossSim {VERSION} is not installed and its source folder {VENDOR} is absent "
                "(it is not on PyPI; set RERINV_CROSSSIM_SRC to a CrossSim 3.2.0 checkout)"
            )
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", str(VENDOR)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or _installed_version() != VERSION:
            pytest.fail(f"pip install {VENDOR} failed:\n{done.stdout}\n{done.stderr}")
        importlib.invalidate_caches()
    return importlib.import_module("simulator")


def _card(*overrides: str) -> dict:
    config = Config().with_overrides([f"array.r_wire={R_WIRE}", *overrides])
    example = example_card()
    return new_card(config, timing=example["timing"], accuracy=example["accuracy"],
                    energy=example["energy"], created="2025-06-01T12:00:00Z")  # fmt: skip


def _export(tmp_path: Path, card: dict) -> Path:
    return export_card(card, "crosssim", tmp_path / "params.crosssim.json").path


def test_crosssim_reads_back_the_cards_values(crosssim, tmp_path):
    card = _card()
    params = crosssim.CrossSimParameters.from_json(str(_export(tmp_path, card)))
    device, array, conv = card["device"], card["array"], card["converters"]
    assert params.xbar.device.Rmin == pytest.approx(1 / device["g_max_siemens"], rel=1e-12)
    assert params.xbar.device.Rmax == pytest.approx(1 / device["g_min_siemens"], rel=1e-12)
    assert params.xbar.device.cell_bits == device["cell_bits"]
    parasitics = params.xbar.array.parasitics
    assert parasitics.enable and parasitics.Rp_row == parasitics.Rp_col == array["r_wire_ohm"]
    # CrossSim's own normalisation gets back to the card's ohms
    assert parasitics.Rp_row_norm * params.xbar.device.Rmin == pytest.approx(R_WIRE)
    for op in ("mvm", "vmm"):
        adc, dac = getattr(params.xbar.adc, op), getattr(params.xbar.dac, op)
        assert type(adc).__name__ == "ADCParameters" and adc.model == "QuantizerADC"
        assert adc.bits == conv["adc_bits"] and dac.model == "QuantizerDAC"
        assert dac.bits == conv["dac_bits"]
        full_scale = conv["adc_range_v"] / (
            array["r_f_ohm"] * device["g_max_siemens"] * conv["dac_range_v"]
        )
        assert adc.calibrated_range == pytest.approx([-full_scale, full_scale])
    params.validate()


def test_an_analog_core_built_from_the_export_uses_its_converters(crosssim, tmp_path):
    path = _export(tmp_path, _card())
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (8, 8))
    x = rng.uniform(-0.5, 0.5, 8)  # DAC volts (dac_range_v = 1 V)
    exact = a @ x

    def matvec(**changes) -> np.ndarray:
        params = crosssim.CrossSimParameters.from_json(str(path))
        for name, value in changes.items():
            params.update({name: value})
        return np.asarray(crosssim.AnalogCore(a, params) @ x)

    y = matvec()
    scale = np.max(np.abs(exact))
    assert np.max(np.abs(y - exact)) < 0.05 * scale  # 8-bit ADC, 6-bit DAC, 8-bit cells
    coarse = matvec(**{"xbar.adc.mvm.bits": 3})
    assert not np.allclose(coarse, y) and np.max(np.abs(coarse - exact)) > np.max(np.abs(y - exact))
    fine_dac = matvec(**{"xbar.dac.mvm.bits": 12})
    assert not np.allclose(fine_dac, y)


def test_the_notes_say_which_crosssim_and_what_it_cannot_do(tmp_path):
    path = _export(tmp_path, _card())
    notes = json.loads(path.with_suffix(".notes.json").read_text())
    assert notes["checked_against"] == f"CrossSim {VERSION}"
    assert notes["limitations"] and "ohms" in notes["Rp_convention"]
