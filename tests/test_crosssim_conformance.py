"""The CrossSim export read by the real CrossSim (3.2.0, BSD-3, not on PyPI), and the same
matrix-vector products computed by CrossSim with the exported configuration and by rerinv.

CrossSim is installed into the running environment from the shared vendor folder
(``../shared/vendor/crosssim-3.2.0`` beside the checkout, or ``$RERINV_CROSSSIM_SRC``) with
``pip install --no-deps``; without the folder the tests are skipped, saying so.

rerinv's side of each product is one VMM read, ``read_vmm(build_vmm(a, config, seed=0), v,
nodal engine)``: ``y = A^T v`` through the DAC, the crossbar (with its wires) and the ADC.
CrossSim's side is ``AnalogCore(A.T[:, ::-1], params) @ x[::-1]`` with ``x = v`` scaled to the
DAC full scale: an MVM on the transposed matrix (CrossSim 3.2.0's one-vector VMM ignores the
transposition in its parasitic solver) with the rows reversed (CrossSim's summation lines end
after their last input, rerinv's TIAs sit beside row 0), as the export's notes say. CrossSim
has no op-amps, so rerinv's amplifiers are ideal here except where a test says otherwise.
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

from rerinv.analog.vmm import OUTPUT_HEADROOM, VmmRead, build_vmm, read_vmm
from rerinv.card import example_card, new_card
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.export import export_card

ROOT = Path(__file__).resolve().parents[1]
VENDOR = Path(
    os.environ.get("RERINV_CROSSSIM_SRC", ROOT.parent / "shared" / "vendor" / "crosssim-3.2.0")
)
VERSION = "3.2.0"
R_WIRE = 0.5  # ohm per cell segment: 0.5 ohm arrived as 1.75e-5 ohm with the 3.0 convention
IDEAL = "opamp.model=ideal"  # CrossSim's column outputs are ideal virtual grounds
NO_CONVERTERS = ("converters.dac_bits=32", "converters.adc_bits=32")  # steps far below float32
#: One float32 rounding (CrossSim stores conductances in float32) per cell of a column.
FLOAT32 = 2.0**-24


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


def _card(*overrides: str, r_wire: float = R_WIRE) -> dict:
    config = Config().with_overrides([f"array.r_wire={r_wire}", *overrides])
    example = example_card()
    return new_card(config, timing=example["timing"], accuracy=example["accuracy"],
                    energy=example["energy"], created="2025-06-01T12:00:00Z")  # fmt: skip


def _export(tmp_path: Path, card: dict) -> Path:
    return export_card(card, "crosssim", tmp_path / "params.crosssim.json", force=True).path


def test_crosssim_reads_back_the_cards_values(crosssim, tmp_path):
    card = _card()
    params = crosssim.CrossSimParameters.from_json(str(_export(tmp_path, card)))
    device, array, conv = card["device"], card["array"], card["converters"]
    assert params.xbar.device.Rmin == pytest.approx(1 / device["g_max_siemens"], rel=1e-12)
    assert params.xbar.device.Rmax == pytest.approx(1 / device["g_min_siemens"], rel=1e-12)
    assert params.xbar.device.cell_bits == device["cell_bits"]
    assert params.xbar.device.clip_conductance is True
    parasitics = params.xbar.array.parasitics
    assert parasitics.enable and parasitics.Rp_row == parasitics.Rp_col == array["r_wire_ohm"]
    # CrossSim's own normalisation gets back to the card's ohms
    assert parasitics.Rp_row_norm * params.xbar.device.Rmin == pytest.approx(R_WIRE)
    full_scale = conv["adc_range_v"] / (
        array["r_f_ohm"] * device["g_max_siemens"] * conv["dac_range_v"]
    )
    for op in ("mvm", "vmm"):
        adc, dac = getattr(params.xbar.adc, op), getattr(params.xbar.dac, op)
        assert adc.model == "SignMagnitudeADC" and dac.model == "SignMagnitudeDAC"
        assert adc.bits == conv["adc_bits"] and dac.bits == conv["dac_bits"]
        assert adc.calibrated_range == pytest.approx([-full_scale, full_scale])
    # 1 % of an ADC step over the max_size cells of a column (rerinv.export.crosssim)
    step = full_scale / (2 ** (conv["adc_bits"] - 1) - 1)
    assert params.simulation.Verr_th_mvm == pytest.approx(0.01 * step / array["max_size"])
    params.validate()


# -- the same products ---------------------------------------------------------------------
def _products(crosssim, tmp_path, overrides, a, v, *, gain=1.0, **changes):
    """rerinv's read of ``A^T v`` and CrossSim's, from the export of a card made with
    ``overrides`` (``changes``: CrossSim parameters altered after loading the export)."""
    card = _card(*overrides, r_wire=0.0)  # r_wire, if any, is among the overrides
    config = Config.from_dict(card["config"])
    params = crosssim.CrossSimParameters.from_json(str(_export(tmp_path, card)))
    for name, value in changes.items():
        params.update({name.replace("__", "."): value})
    read = read_vmm(build_vmm(a, config, seed=0), v, get_engine("nodal"))
    if gain == 1.0:
        assert _gain(read, config) == 1.0, "the case must not need an input gain"
    unit = float(np.max(np.abs(v))) / config.converters.dac_range  # units of v per DAC volt
    core = crosssim.AnalogCore(np.ascontiguousarray(a.T[:, ::-1]), params)
    y = np.asarray(core @ np.ascontiguousarray(v[::-1] / unit), dtype=float) * unit
    return read, y


def _gain(read: VmmRead, config: Config) -> float:
    """The input gain rerinv planned for this read (1: the DAC's full scale)."""
    return float(np.max(np.abs(read.inputs))) / config.converters.dac_range


def _cases(n: int = 8, count: int = 4, seed: int = 7):
    """A matrix and vectors whose products fit the ADC range at full DAC scale, so that rerinv
    plans no input gain (the one thing CrossSim's fixed range cannot follow: see
    :func:`test_a_planned_input_gain_is_reproduced_by_widening_the_adc_range`): with the
    largest entry at ``g_max - g_min`` and the largest input at ``dac_range``, every
    ``|A^T v|`` stays within ``OUTPUT_HEADROOM * adc_range / (r_f (g_max - g_min) dac_range)``
    of ``max|A| max|v|``."""
    config = Config()
    fits = (
        OUTPUT_HEADROOM
        * config.converters.adc_range
        / (
            config.array.r_f
            * (config.device.g_max - config.device.g_min)
            * config.converters.dac_range
        )
    )
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (n, n))
    vectors = []
    while len(vectors) < count:
        v = rng.uniform(-1, 1, n)
        if np.max(np.abs(a.T @ v)) < 0.95 * fits * np.max(np.abs(a)) * np.max(np.abs(v)):
            vectors.append(v)
    return a, vectors


def _lsb_errors(crosssim, tmp_path, overrides, **changes) -> list[float]:
    """max |CrossSim - rerinv| in ADC steps for each vector of :func:`_cases`."""
    a, vectors = _cases()
    errors = []
    for v in vectors:
        read, y = _products(crosssim, tmp_path, overrides, a, v, **changes)
        errors.append(float(np.max(np.abs(y - read.y)) / read.lsb))
    return errors


def test_noise_free_products_agree_to_float32_without_converters(crosssim, tmp_path):
    """Noise off, 32-bit converters (steps of ~1e-9 of full scale): CrossSim and rerinv differ
    only by CrossSim's float32 conductances, at most one rounding per cell of a column."""
    a, vectors = _cases()
    for v in vectors:
        read, y = _products(crosssim, tmp_path, [IDEAL, *NO_CONVERTERS], a, v)
        bound = a.shape[0] * FLOAT32 * np.max(np.abs(a)) * np.max(np.abs(v))
        assert np.max(np.abs(y - read.y)) <= bound
        assert np.max(np.abs(y - read.y)) <= 1e-6 * read.full_scale


def test_noise_free_products_agree_within_half_an_adc_step(crosssim, tmp_path):
    """The acceptance case: the card's 6-bit DAC and 8-bit ADC, noise off, no wires."""
    errors = _lsb_errors(crosssim, tmp_path, [IDEAL])
    assert max(errors) <= 0.5, errors


def test_mid_rise_converters_would_not_agree(crosssim, tmp_path):
    """What the export wrote before: CrossSim's signed ``Quantizer*`` converters are mid-rise
    (no zero code), several ADC steps away from rerinv's sign-magnitude ones."""
    changes = {f"xbar__{kind}__{op}__model": f"Quantizer{kind.upper()}"
               for kind in ("adc", "dac") for op in ("mvm", "vmm")}  # fmt: skip
    errors = _lsb_errors(crosssim, tmp_path, [IDEAL], **changes)
    assert max(errors) > 1.0, errors


def _steps_moved_by_wires(overrides) -> float:
    """How far rerinv's wires move its outputs, in ADC steps, over the vectors of
    :func:`_cases` (the same read with ``r_wire`` = 0 as reference)."""
    a, vectors = _cases()
    engine = get_engine("nodal")
    wired, bare = Config().with_overrides(overrides), Config().with_overrides([IDEAL])
    moved = []
    for v in vectors:
        with_wires = read_vmm(build_vmm(a, wired, seed=0), v, engine)
        without = read_vmm(build_vmm(a, bare, seed=0), v, engine)
        moved.append(float(np.max(np.abs(with_wires.y - without.y)) / without.lsb))
    return max(moved)


@pytest.mark.parametrize(("r_wire", "moved"), [(R_WIRE, 0.0), (100.0, 4.0)])
def test_wire_resistance_products_agree_within_half_an_adc_step(crosssim, tmp_path, r_wire, moved):
    """Converters and wires on, at the exported ``Verr_th_mvm``: at 0.5 ohm the IR drop of an
    8 x 8 array is a fraction of a step (it flips a code at most); at 100 ohm, standing in
    for the IR drop of a larger array, it moves rerinv's outputs by four steps or more."""
    overrides = [IDEAL, f"array.r_wire={r_wire}"]
    errors = _lsb_errors(crosssim, tmp_path, overrides)
    assert max(errors) <= 0.5, errors
    assert _steps_moved_by_wires(overrides) >= moved


def test_ir_drop_agrees_with_rerinvs_wires(crosssim, tmp_path):
    """Without converters, the IR drop itself (product with wires minus product without) of
    CrossSim's parasitic solver against rerinv's nodal solution at 0.5 ohm; with CrossSim's
    default threshold (1e-3) the solver stops before its first correction and sees none."""
    a, vectors = _cases()
    bare = [IDEAL, *NO_CONVERTERS]
    wires = [*bare, f"array.r_wire={R_WIRE}"]
    for v in vectors:
        read0, y0 = _products(crosssim, tmp_path, bare, a, v)
        read1, y1 = _products(crosssim, tmp_path, wires, a, v)
        drop_rerinv, drop_crosssim = read1.y - read0.y, y1 - y0
        assert np.max(np.abs(drop_rerinv)) > 1e-4 * read0.full_scale  # there is an IR drop
        gap = np.max(np.abs(drop_crosssim - drop_rerinv))
        assert gap <= 2 * a.shape[0] * FLOAT32 * np.max(np.abs(a)) * np.max(np.abs(v))
        assert gap <= 1e-3 * np.max(np.abs(drop_rerinv))
        _, y_default = _products(crosssim, tmp_path, wires, a, v, simulation__Verr_th_mvm=1e-3)
        # CrossSim's default threshold: what it sees of the IR drop is float32 rounding
        assert np.max(np.abs(y_default - y0)) <= 1e-3 * np.max(np.abs(drop_rerinv))


def test_a_planned_input_gain_is_reproduced_by_widening_the_adc_range(crosssim, tmp_path):
    """A product whose outputs would overflow the ADC range: rerinv plans an input gain
    k < 1 (the DAC's output scaled before the crossbar); CrossSim's ADC range is fixed, so the
    export as written saturates, and dividing ``calibrated_range`` by k (as the notes say)
    reproduces rerinv's read within half a step."""
    a = np.random.default_rng(3).uniform(0.5, 1.0, (8, 8))
    v = np.ones(8)
    config = Config().with_overrides([IDEAL])
    read, y = _products(crosssim, tmp_path, [IDEAL], a, v, gain=None)
    k = _gain(read, config)
    assert k < 0.5
    assert np.max(np.abs(y - read.y)) / read.lsb > 10  # saturated at the fixed range
    card = _card(IDEAL, r_wire=0.0)
    full_scale = card["converters"]["adc_range_v"] / (
        card["array"]["r_f_ohm"] * card["device"]["g_max_siemens"]
    )
    wide = {f"xbar__adc__{op}__calibrated_range": [-full_scale / k, full_scale / k]
            for op in ("mvm", "vmm")}  # fmt: skip
    read, y = _products(crosssim, tmp_path, [IDEAL], a, v, gain=k, **wide)
    assert np.max(np.abs(y - read.y)) / read.lsb <= 0.5


def test_finite_gain_amplifiers_stay_within_their_error(crosssim, tmp_path):
    """rerinv's default op-amp (single pole, gain 1e5) against CrossSim's ideal outputs,
    without converters: the TIA's finite gain ``A`` scales a column's output by about
    ``1 / (1 + (1 + r_f G_col) / A)``, ``G_col`` the column's total conductance."""
    a, vectors = _cases()
    config = Config()
    for v in vectors:
        read, y = _products(crosssim, tmp_path, list(NO_CONVERTERS), a, v)
        g_col = build_vmm(a, config, seed=0).arrays.g_pos.sum(axis=0).max() * 2
        rel = (1 + config.array.r_f * g_col) / config.opamp.dc_gain
        assert 0 < np.max(np.abs(y - read.y)) <= 2 * rel * read.full_scale


def test_the_notes_say_which_crosssim_and_what_it_cannot_do(tmp_path):
    path = _export(tmp_path, _card())
    notes = json.loads(path.with_suffix(".notes.json").read_text())
    assert notes["checked_against"] == f"CrossSim {VERSION}"
    assert notes["limitations"] and "ohms" in notes["Rp_convention"]
    assert "A.T[:, ::-1]" in notes["rerinv_vmm_as_crosssim"]
    assert "max_size" in notes["Verr_th_mvm"]
