"""`rerinv verify` (the main job) and `rerinv calibrate` end to end."""

import json

import numpy as np
import pytest

from rerinv.card import validate_card
from rerinv.cli import main
from rerinv.config import Config
from rerinv.studies.calibrate import settle_timing
from rerinv.studies.mc import SweepSpec, load_results, parse_sweep, run_monte_carlo
from rerinv.studies.transient.settle import settle


def test_verify_writes_report_results_and_summary(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["verify", "--out", str(out), "--trials", "2", "--n", "16", "--workers", "1"]
    assert main([*argv, "--sky130-trials", "1"]) == 0
    printed = capsys.readouterr().out
    results = load_results(out / "results.h5")
    assert results.done.all() and {p.engine for p in results.description.points} == {"spice"}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    schemes = [p.scheme for p in results.description.points]
    for scheme in ("single", "repast", "refine", "krylov"):
        row = next(line for line in printed.splitlines() if line.split()[:1] == [scheme])
        mask = np.array(schemes) == scheme
        bits = results.effective_bits[mask]
        share = results.reached_target[mask].mean()
        assert float(row.split()[2]) == pytest.approx(np.median(bits), abs=0.006)
        assert row.split()[4] == f"{share:.0%}"
    single = results.effective_bits[np.array(schemes) == "single"]
    assert np.all(single < 16)
    # the transistor-level row: its own Monte Carlo file, printed as auto/sky130
    sky = load_results(out / "sky130.h5")
    assert sky.done.all()
    assert Config.from_toml(sky.description.points[0].config_toml).opamp.model == "sky130"
    row = next(line for line in printed.splitlines() if line.split()[:1] == ["auto/sky130"])
    assert float(row.split()[2]) == pytest.approx(np.median(sky.effective_bits), abs=0.006)


def test_verify_skips_the_n256_ngspice_solve_without_klu(tmp_path, capsys, monkeypatch):
    import rerinv.engines.ngspice as ngm
    import rerinv.studies.verify as verify_module

    monkeypatch.setattr(ngm, "ngspice_solver", lambda: "sparse")  # as on Debian 12's ngspice 39
    monkeypatch.setattr(verify_module, "large_solve", lambda *a, **k: pytest.fail("ran N=256"))
    argv = ["verify", "--out", str(tmp_path / "r"), "--trials", "1", "--n", "4", "--workers", "1"]
    assert main([*argv, "--sky130-trials", "0"]) == 0
    assert "N = 256 ngspice solve skipped: ngspice" in capsys.readouterr().out


def test_calibrate_writes_a_valid_consistent_card(tmp_path, capsys):
    card_path = tmp_path / "params.json"
    assert main(["calibrate", "--out", str(card_path), "--trials", "4", "--n", "16"]) == 0
    card = json.loads(card_path.read_text())
    validate_card(card)
    software = card["software"]  # rerinv.provenance.software_versions(): ngspice was used
    versions = {"rerinv", "ngspice", "ngspice_solver", "numpy", "scipy", "h5py", "hdf5"}
    versions |= {"python", "platform"}
    assert set(software) == versions
    assert software["ngspice"] and software["ngspice"] != "not used"
    timing = card["timing"]
    assert timing["inv_settle_typical_s"] > 0 and timing["vmm_settle_s"] > 0
    fit = timing["inv_settle_fit"]
    assert fit["n_points"] >= 2 and 0.5 < fit["a"] < 1.5
    # consistent with `rerinv settle` on the same case
    again = settle("inv", 32, Config(), seed=0)
    assert timing["inv_settle_typical_s"] == pytest.approx(again.settling_time, rel=1e-6)
    assert card["energy"]["inv_op_j"] > 0 and card["energy"]["vmm_op_j"] > 0
    schemes = card["accuracy"]["schemes"]
    assert schemes["refine"]["success_rate"] == 1.0 and schemes["single"]["success_rate"] == 0.0
    assert 0 < card["accuracy"]["inv_error_rel_fullscale"]["mean"] < 0.2
    assert main(["export", str(card_path), "--to", "crosssim"]) == 0


def test_settle_timing_skips_cases_the_formula_does_not_describe():
    timing = settle_timing(Config(), seed=1, sizes=(8,), r_ins=(100e3,))
    fit = timing["inv_settle_fit"]
    assert fit is None or fit["max_rel_error"] < 0.25


def test_spice_subset_of_the_accuracy_map_agrees_with_nodal(tmp_path):
    base = Config()
    axes = parse_sweep(["device.sigma_rel=0,0.01", "simulation.scheme=refine,krylov"], base)
    stored = {}
    for engine in ("nodal", "spice"):
        config = base.with_values("simulation", engine=engine, n=16)
        spec = SweepSpec(base=config, axes=axes, trials=10, master_seed=7)
        run_monte_carlo(spec, tmp_path / f"{engine}.h5", workers=2)
        stored[engine] = load_results(tmp_path / f"{engine}.h5")
    nodal, spice = stored["nodal"], stored["spice"]
    assert nodal.done.all() and spice.done.all()
    assert (nodal.status == spice.status).all()
    assert np.allclose(nodal.effective_bits, spice.effective_bits, atol=1e-6)
    assert (nodal.reached_target == spice.reached_target).all()


def test_a_real_failing_trial_is_stored_and_the_others_complete(tmp_path):
    base = Config().with_values("simulation", engine="spice", n=8)
    # 8-bit cells in the residual VMM: a valid configuration, but an 8-row partial sum of
    # them overflows the 8-bit ADC, which the solve refuses
    axes = parse_sweep(["scheme.vmm_cell_bits=0,8"], base)
    spec = SweepSpec(base=base, axes=axes, trials=2, master_seed=3)
    run_monte_carlo(spec, tmp_path / "f.h5", workers=1)
    results = load_results(tmp_path / "f.h5")
    assert results.done.all()
    assert list(results.status[1]) == ["failed", "failed"]
    assert all("vmm_cell_bits" in message for message in results.error[1])
    assert all(status != "failed" for status in results.status[0])
