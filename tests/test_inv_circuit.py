"""INV and VMM crossbars through ngspice, against closed forms and the nodal engine."""

import numpy as np
import pytest

from rerinv.analog.inv import build_inv, row_conductance, solve_inv
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import inv_crossbar, vmm_crossbar
from rerinv.hw.mapping import map_matrix

from .helpers import nonsymmetric, rel_err, spd

pytestmark = pytest.mark.spice  # every test here runs ngspice


def _inv_solve(a, config, engine="spice", seed=0):
    inv = build_inv(a, config, seed=seed)
    vin = np.random.default_rng(seed).uniform(-0.2, 0.2, a.shape[0])
    # the input scale keeps outputs well inside the rails
    g = inv.arrays.conductance_matrix
    vin *= 0.5 / np.max(np.abs(np.linalg.solve(g, vin / config.array.r_in)))
    session = get_engine(engine).load(inv.circuit)
    out = session.solve(vin)
    session.close()
    return inv, vin, out


@pytest.mark.parametrize("kind", ["spd", "nonsymmetric"])
@pytest.mark.parametrize("n", [4, 8, 16, 32, 64])
def test_ideal_inv_equals_minus_g_inverse_i(kind, n, ideal_config):
    a = spd(n, seed=n) if kind == "spd" else nonsymmetric(n, seed=n)
    assert (a < 0).any()
    inv, vin, out = _inv_solve(a, ideal_config)
    expected = -np.linalg.solve(inv.arrays.conductance_matrix, vin / ideal_config.array.r_in)
    assert rel_err(out, expected) < 1e-6


def test_finite_gain_error_matches_first_order_prediction():
    gain = 1e4
    config = Config().with_overrides(
        ["opamp.model=finite_gain", f"opamp.gain={gain}", "device.bits=24"]
    )
    a = spd(16, seed=3)
    inv, vin, out = _inv_solve(a, config)
    g = inv.arrays.conductance_matrix
    v0 = -np.linalg.solve(g, vin / config.array.r_in)
    # row op-amp: v_row = -V/A adds D V / A; inverter: -V (1 - 2/A) adds 2 Gn V / A
    e = (np.diag(row_conductance(inv.arrays, config)) + 2 * inv.arrays.g_neg) / gain
    predicted = -np.linalg.solve(g, e @ v0)
    measured = out - v0
    assert np.linalg.norm(measured - predicted) < 0.1 * np.linalg.norm(predicted)
    assert np.linalg.norm(measured) > 1e-6 * np.linalg.norm(v0)  # the error is really there


@pytest.mark.parametrize("engine", ["spice", "nodal"])
def test_vmm_equals_minus_rf_gt_v(engine, ideal_config):
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (24, 24))
    arrays = map_matrix(a, ideal_config.device)
    v = rng.uniform(-0.05, 0.05, 24)
    session = get_engine(engine).load(vmm_crossbar(arrays, ideal_config))
    y = session.solve(v)
    assert rel_err(y, -ideal_config.array.r_f * arrays.conductance_matrix.T @ v) < 1e-6


@pytest.mark.parametrize(
    ("model", "tolerance"), [("ideal", 1e-5), ("finite_gain", 1e-9), ("single_pole", 1e-9)]
)
def test_op_amp_offsets_agree_with_the_nodal_engine_and_move_the_outputs(model, tolerance):
    """The offset is a current into the op-amp models' gain node (no series source): ngspice
    and the nodal engine (an independent stamp of ``v(oi) = gain (-vos - v(inn))``) agree (to
    rounding of the 1e12 gain for the ideal model: 4e-7 on KLU, 2e-6 on ngspice 39's Sparse)."""
    outputs = {}
    for vos in (0.0, 2e-3):
        config = Config().with_overrides([f"opamp.model={model}", f"opamp.offset={vos}"])
        inv, vin, out = _inv_solve(spd(8, seed=4), config)
        assert rel_err(out, get_engine("nodal").load(inv.circuit).solve(vin)) < tolerance
        outputs[vos] = out
    assert rel_err(outputs[2e-3], outputs[0.0]) > 1e-3  # the offset is not ignored


def test_wire_resistance_error_grows_and_matches_nodal():
    def wire_error(n, r_wire):
        config = Config().with_overrides(
            ["opamp.model=ideal", "device.bits=24", f"array.r_wire={r_wire}"]
        )
        inv, vin, out = _inv_solve(spd(n, seed=1), config)
        nodal = get_engine("nodal").load(inv.circuit).solve(vin)
        assert rel_err(out, nodal) < 1e-6  # SPICE agrees with an independent nodal solve
        ideal = -np.linalg.solve(inv.arrays.conductance_matrix, vin / config.array.r_in)
        return rel_err(out, ideal)

    by_n = [wire_error(n, 1.73) for n in (8, 16, 32)]
    by_r = [wire_error(16, r) for r in (0.5, 1.73, 5.0)]
    assert by_n[0] < by_n[1] < by_n[2]
    assert by_r[0] < by_r[1] < by_r[2]
    assert by_n[0] > 1e-5  # the wires really matter


def test_alter_re_solve_matches_fresh_load_and_circuits_coexist(ideal_config):
    a, c = spd(8, seed=2), nonsymmetric(6, seed=2)
    first = build_inv(a, ideal_config).circuit
    second = build_inv(c, ideal_config).circuit
    s1 = get_engine("spice").load(first)
    s2 = get_engine("spice").load(second)
    rng = np.random.default_rng(0)
    for _ in range(3):  # alternate between two loaded circuits, each re-solved with alter
        v1, v2 = rng.uniform(-0.05, 0.05, 8), rng.uniform(-0.05, 0.05, 6)
        assert rel_err(s1.solve(v1), get_engine("nodal").load(first).solve(v1)) < 1e-9
        assert rel_err(s2.solve(v2), get_engine("nodal").load(second).solve(v2)) < 1e-9
    s1.close()
    s2.close()


@pytest.mark.parametrize("engine", ["spice", "nodal"])
def test_solve_inv_recovers_x(engine, ideal_config):
    a = spd(12, seed=4)
    b = np.random.default_rng(4).standard_normal(12)
    config = ideal_config.with_values("simulation", engine=engine)
    solution = solve_inv(a, b, config)
    assert rel_err(solution.x, np.linalg.solve(a, b)) < 1e-6
    eq = solve_inv(a * np.logspace(0, 2, 12)[:, None], b, config, scaling="ruiz")
    assert rel_err(eq.x, np.linalg.solve(a * np.logspace(0, 2, 12)[:, None], b)) < 1e-6


def test_default_config_gives_a_few_bits_only():
    a, b = spd(16, seed=6), np.random.default_rng(6).standard_normal(16)
    x = solve_inv(a, b, Config()).x
    error = rel_err(x, np.linalg.solve(a, b))
    assert 1e-4 < error < 0.1  # 8-bit cells: far from 16 bits, far from garbage


def test_inverter_mismatch_is_seeded(ideal_config):
    config = ideal_config.with_overrides(["array.inverter_mismatch=0.01"])
    a = spd(6)
    one = build_inv(a, config, seed=1).circuit.inverters
    assert one == build_inv(a, config, seed=1).circuit.inverters
    assert one != build_inv(a, config, seed=2).circuit.inverters
    assert inv_crossbar(map_matrix(a, config.device), ideal_config).inverters[0][2] == 1e5
