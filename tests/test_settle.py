"""Transient settling through ngspice: the settling-time formula, final values against the DC
solution, golden waveforms, unstable circuits and the ``settle`` command."""

import json

import h5py
import numpy as np
import pytest

from rerinv import __version__
from rerinv.analog.inv import build_inv
from rerinv.cli import main
from rerinv.config import Config
from rerinv.errors import InputError, UnstableMatrixError
from rerinv.hw.circuit import inv_crossbar
from rerinv.hw.mapping import map_matrix
from rerinv.matrices import classic_matrix
from rerinv.studies.transient import (
    GOLDEN_CASES,
    compare_to_golden,
    golden_path,
    read_waveforms,
    settle,
    settle_circuit,
    settling_time,
    simulate_step,
    step_case,
)

pytestmark = pytest.mark.spice  # every test here runs ngspice


def positive_spd(n: int, delta: float, seed: int = 0) -> np.ndarray:
    """SPD matrix with positive entries only (``B B^T / 2n + delta I``, ``B`` uniform in
    [0, 1]): its negative array holds only ``g_min`` cells, so the inverters hardly load the
    loop. ``delta`` sets ``lambda_min(D^-1 G)``."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.0, 1.0, (n, 2 * n))
    return b @ b.T / (2 * n) + delta * np.eye(n)


def test_settling_time_of_known_exponentials():
    t = np.linspace(0.0, 20e-6, 40001)
    tau = 1e-6
    y = np.vstack([1 - np.exp(-t / tau), 0.5 * (1 - np.exp(-t / (2 * tau)))])
    measured = settling_time(t, y, np.array([1.0, 0.5]), 1e-3)
    assert measured == pytest.approx(2 * tau * np.log(500), rel=1e-4)  # the slower output
    assert settling_time(t, y[0], 1.0, 1e-3) == pytest.approx(tau * np.log(1000), rel=1e-4)
    assert np.isnan(settling_time(t, y[0], 1.0, 1e-9))  # exp(-20) > 1e-9: not within window
    assert settling_time(t, y[0], 0.5, 0.6) == 0.0  # never outside the band


@pytest.mark.parametrize("model", ["ideal", "finite_gain"])
def test_transient_needs_the_single_pole_model(model):
    config = Config().with_overrides([f"opamp.model={model}"])
    circuit, inputs, _ = step_case("inv", 4, config)
    with pytest.raises(InputError, match="opamp.model=single_pole"):
        simulate_step(circuit, inputs, t_stop=1e-6)
    with pytest.raises(InputError, match="opamp.model=single_pole"):
        settle("vmm", 4, config)


@pytest.mark.parametrize(
    ("n", "delta", "r_in"),
    [(8, 0.3, 100e3), (8, 0.01, 100e3), (16, 0.05, 100e3), (16, 0.05, 20e3), (32, 0.3, 100e3),
     (32, 0.01, 100e3)],
)  # fmt: skip
def test_formula_predicts_the_worst_case_settling_time(n, delta, r_in):
    """``t = ln(1/eps) / (2 pi GBW lambda_min(D^-1 G))`` within 25 % (measured 0.92-0.96).

    lambda_min spans 0.002-0.1 here (N = 8..32, delta, r_in). The formula has two premises,
    and these cases meet both:

    - The slowest mode starts with the full ADC range as its amplitude (eps is relative to
      it). The step therefore excites the slowest eigenvector of ``D^-1 G``
      (``excite="slowest"``), peaking at 80 % of the ADC range, so the expected ratio is
      ``ln(0.8 * 256) / ln(256) = 0.96``. A random ``b`` excites that mode less and settles
      sooner: 0.71-0.98 of the formula on these matrices, and
      ``ln(a_slow / eps_abs) / (2 pi GBW lambda_min)``, with ``a_slow`` the mode's actual
      amplitude in the outputs, gives 0.98-1.00 of the measurement (1.1-1.25 when the next
      modes are within 3-8 % of lambda_min and add up).
    - Ideal inverters. The inverter pole lags ``-x``, which slows the slowest mode by about
      ``1 + 2 nu`` (``nu``: its share of row conductance in the negative array), however fast
      the inverter is. Matrices with positive entries keep ``nu`` small (only ``g_min`` cells);
      ``inverter_pole_matters`` is false. See the Laplacian test for where the formula fails.
    """
    config = Config().with_overrides([f"array.r_in={r_in}"])
    report = settle("inv", positive_spd(n, delta), config, excite="slowest")
    assert report.status == "settled", report.message
    assert not report.inverter_pole_matters
    assert report.settling_time / report.predicted == pytest.approx(1.0, abs=0.25)
    assert report.max_deviation <= report.eps_abs  # final transient value = DC solution
    random_b = settle("inv", positive_spd(n, delta), config)
    assert random_b.settling_time <= 1.05 * report.predicted  # the formula is the worst case


def test_inverter_lag_breaks_the_formula_on_the_laplacian():
    """1-D Laplacian: half of each row's conductance is in the negative array, so the
    inverters slow the slowest mode by 1.86x although their pole (GBW / 2) is 66x faster than
    the loop's. The flag says so, and the small-signal model of every amplifier pole (row
    op-amps and inverters) predicts the measurement within 5 %."""
    report = settle("inv", classic_matrix("laplacian_1d", 16), Config(), excite="slowest")
    assert report.status == "settled"
    assert report.inverter_pole_matters
    assert report.settling_time / report.predicted > 1.5
    assert report.settling_time / report.predicted_small_signal == pytest.approx(1.0, abs=0.25)


@pytest.mark.parametrize("kind", ["inv", "vmm"])
def test_final_transient_values_equal_the_dc_solution(kind):
    report = settle(kind, 8, Config(), seed=3)
    assert report.status == "settled"
    assert report.max_deviation <= report.eps_abs
    assert np.max(np.abs(report.final - report.dc)) <= 1e-5  # measured ~1e-8 V
    if kind == "vmm":  # a TIA settles faster than the formula: its outputs are below 1 V
        assert report.settling_time <= report.predicted


@pytest.mark.parametrize("kind", ["inv", "vmm"])
def test_wire_resistance_networks_are_modelled(kind):
    """With 1.73 ohm wire segments the TIA input is a wire node: its feedback factor comes
    from the whole network, and the small-signal model still predicts the worst-case step."""
    config = Config().with_overrides(["array.r_wire=1.73"])
    report = settle(kind, 8, config, excite="slowest")
    assert report.status == "settled"
    assert report.max_deviation <= report.eps_abs
    assert report.settling_time / report.predicted_small_signal == pytest.approx(1.0, abs=0.25)
    if kind == "vmm":
        assert report.predicted == pytest.approx(report.predicted_small_signal, rel=1e-6)


@pytest.mark.parametrize(("kind", "n"), GOLDEN_CASES)
def test_golden_waveforms_are_reproduced(kind, n):
    """Every stored node within 1 mV (a quarter of the 3.9 mV settling band) at every stored
    time; same ngspice, same code: measured ~1e-15 V."""
    result = compare_to_golden(golden_path(kind, n))
    assert result.passed, f"{result.path.name}: {result.max_deviation:.3g} V at {result.worst_node}"


def test_golden_comparison_catches_a_halved_gbw():
    slower = Config().with_overrides(["opamp.gbw=50e6"])
    for kind, n in GOLDEN_CASES:
        result = compare_to_golden(golden_path(kind, n), slower)
        assert not result.passed
        assert result.max_deviation > 10 * result.tolerance


def test_unstable_loop_is_reported_not_solved():
    """``[[1, 2], [2, 1]]`` has eigenvalue -1: build_inv refuses it, so the circuit is built
    from its arrays directly. ngspice's DC operating point still exists (and looks like a
    solution); the transient runs to the rails, and even a symmetric step, which a noiseless
    simulation never pushes off the unstable equilibrium, is reported unstable."""
    config = Config()
    a = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(UnstableMatrixError):
        build_inv(a, config)
    arrays = map_matrix(a, config.device)
    circuit = inv_crossbar(arrays, config)
    report = settle_circuit(circuit, np.array([0.1, -0.05]), config, arrays=arrays)
    assert report.status == "unstable"
    assert "rails" in report.message
    assert report.dc is not None and np.all(np.abs(report.dc) < 0.5)  # the misleading DC point
    assert np.max(np.abs(report.final)) == pytest.approx(config.opamp.v_rail, rel=1e-2)
    assert report.lambda_min < 0 and np.isnan(report.predicted)
    assert np.isnan(report.settling_time)
    summary = report.to_dict()  # strict JSON: the missing numbers are null
    assert summary["settling_time"] is None and summary["predicted"] is None
    json.dumps(summary, allow_nan=False)
    symmetric = settle_circuit(circuit, np.array([0.1, 0.1]), config, arrays=arrays)
    assert symmetric.status == "unstable"
    assert "unstable equilibrium" in symmetric.message


def strict_json(text: str):
    """``json.loads`` that refuses NaN and infinities (not JSON, though Python writes them)."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_settle_command_json_hdf5_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "inv.h5", tmp_path / "inv.png"
    code = main(["settle", "--kind", "inv", "--n", "8", "--seed", "2", "--json",
                 "--out", str(out), "--plot", str(plot)])  # fmt: skip
    assert code == 0
    result = strict_json(capsys.readouterr().out)
    assert result["status"] == "settled" and result["kind"] == "inv" and result["n"] == 8
    assert result["eps"] == 2.0**-8 and result["settling_time"] > 0
    assert plot.stat().st_size > 10_000
    waveforms, attrs = read_waveforms(out)
    # the stored configuration is the run's: --n is simulation.n
    assert Config.from_toml(attrs["config"]) == Config().with_overrides(["simulation.n=8"])
    assert attrs["rerinv_version"] == __version__ and attrs["ngspice_version"]
    assert attrs["command_line"].startswith("rerinv settle --kind inv") and attrs["created"]
    assert attrs["settling_time"] == pytest.approx(result["settling_time"])
    assert waveforms.outputs.shape == (8, waveforms.time.size)
    with h5py.File(out) as f:
        assert f["outputs"].shape == (8, f["time"].shape[0])
        assert list(f.attrs["output_nodes"]) == [f"x{i}" for i in range(8)]


def test_settle_command_summary_with_matrix_and_overrides(tmp_path, capsys):
    path = tmp_path / "a.npy"
    np.save(path, positive_spd(6, 0.1))
    code = main(["settle", "--kind", "vmm", "--matrix", str(path), "--eps", "1e-3",
                 "--set", "opamp.gbw=200e6"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "VMM N = 6" in text and "status settled" in text and "smallest TIA feedback" in text
    assert main(["settle", "--kind", "vmm", "--set", "simulation.n=4"]) == 0  # no --n, --matrix
    assert "VMM N = 4" in capsys.readouterr().out
    assert main(["settle", "--n", "4", "--set", "opamp.model=ideal"]) == 2
    assert "single_pole" in capsys.readouterr().err


def test_settle_command_json_is_strict_for_an_unstable_matrix(tmp_path, capsys):
    """``[[1, -2], [-2, 1]]`` has eigenvalue -1: held on the INV crossbar alone
    (``scheme.circuit=inv``; ``auto`` would take the generalised inverse), settle builds it all
    the same and reports ``unstable``; the numbers that do not exist (settling time,
    predictions) are JSON null, and the status and message say why."""
    path, out = tmp_path / "unstable.npy", tmp_path / "unstable.h5"
    np.save(path, np.array([[1.0, -2.0], [-2.0, 1.0]]))
    args = ["--set", "scheme.circuit=inv", "--json", "--out", str(out)]
    code = main(["settle", "--matrix", str(path), *args])
    assert code == 1
    text = capsys.readouterr().out
    result = strict_json(text)
    assert json.dumps(result, allow_nan=False)
    assert result["status"] == "unstable"
    assert "rails" in result["message"] and "small-signal model" in result["message"]
    assert result["settling_time"] is None and result["predicted"] is None
    assert result["predicted_small_signal"] is None and result["lambda_min"] < 0
    assert all(v is not None for v in result["final"])
    _, attrs = read_waveforms(out)
    assert attrs["status"] == "unstable" and np.isnan(attrs["settling_time"])
