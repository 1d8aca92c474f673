"""The precision frontier: finer slices in the INV loop, crossbar tiles in one loop, a scaling
that the rows' and columns' own scaling cannot change, verdicts that never stop a good run, and
K-FAC factors captured from a wide network."""

import json

import numpy as np
import pytest

from rerinv.analog.routes import build_preconditioner
from rerinv.cli import main
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import inv_crossbar
from rerinv.hw.mapping import map_matrix, program_conductances
from rerinv.hw.scaling import equilibrate, symmetrising_ratios
from rerinv.matrices import correlated_factor, load_matrix_set, random_rhs, wishart_factor
from rerinv.schemes import componentwise_bits, solve

from .helpers import rel_err, spd
from .test_real_matrices import NODAL, suite_matrix

WIDE_FACTORS = "tests/data/kfac_factors/digits_mlp512-256_damping1e-2.h5"


def kernel_matrix(n: int = 40, ridge: float = 1e-5, seed: int = 0) -> np.ndarray:
    """RBF Gram matrix of n points with a ridge: a smooth, decaying spectrum."""
    points = np.random.default_rng(seed).standard_normal((n, 3))
    distance = np.sum((points[:, None] - points[None]) ** 2, axis=-1)
    return np.exp(-distance / 4) + ridge * np.eye(n)


def wide_factor(size: int) -> np.ndarray:
    """The last captured factor of ``size`` from the 64-512-256-10 digits MLP."""
    found = [m for name, m, meta in load_matrix_set(WIDE_FACTORS) if meta["size"] == size]
    return found[-1]


# -- finer slices ------------------------------------------------------------------------
def test_each_slice_adds_about_a_cell_of_bits_to_the_held_matrix():
    a = kernel_matrix()
    r, c = equilibrate(a, "jacobi")
    scaled = r[:, None] * a * c[None, :]
    errors = []
    for slices in (1, 2, 3):
        arrays = map_matrix(a, Config().device, scaling="jacobi", slices=slices)
        held = arrays.conductance_matrix / arrays.scale
        errors.append(np.max(np.abs(held - scaled)))
        assert arrays.slices == slices
        assert all(f.attenuation <= 2.0**-7 for f in arrays.fine)
    assert errors[1] < errors[0] * 2.0**-7 and errors[2] < errors[1] * 2.0**-7


def test_finer_slices_hold_what_programming_left_over():
    """2 % proportional programming error: the second pair is re-targeted at what the first
    one really holds (write-verify), so what is left is its own error on a small remainder."""
    a = kernel_matrix()
    device = Config().with_overrides(["device.sigma_rel=0.02"]).device
    r, c = equilibrate(a, "jacobi")
    intended = r[:, None] * a * c[None, :]
    errors = []
    for slices in (1, 2):
        target = map_matrix(a, device, scaling="jacobi", slices=slices)
        held = program_conductances(target, device, seed=3)
        errors.append(np.max(np.abs(held.conductance_matrix / held.scale - intended)))
    assert errors[1] < errors[0] / 10


@pytest.mark.parametrize("engine", ["spice", "nodal"])
def test_sliced_inv_crossbar_equals_minus_g_inverse_i(engine):
    """Two finer slices driven by attenuators: the op-amp outputs are ``-G^-1 v / r_in`` with
    ``G`` summed from the pairs' conductances and the attenuations (computed here from the
    pieces, not from the code under test)."""
    ideal_config = Config().with_overrides(["opamp.model=ideal"])
    a = spd(12, seed=4)
    arrays = map_matrix(a, ideal_config.device, scaling="jacobi", slices=3)
    g = arrays.g_pos - arrays.g_neg
    for part in arrays.fine:
        g = g + part.attenuation * (part.g_pos - part.g_neg)
    v = np.random.default_rng(1).uniform(-0.1, 0.1, 12)
    v *= 0.5 / np.max(np.abs(np.linalg.solve(g, v / ideal_config.array.r_in)))
    session = get_engine(engine).load(inv_crossbar(arrays, ideal_config))
    out = session.solve(v)
    session.close()
    assert rel_err(out, -np.linalg.solve(g, v / ideal_config.array.r_in)) < 1e-7
    coarse = np.linalg.solve(arrays.g_pos - arrays.g_neg, v / ideal_config.array.r_in)
    assert rel_err(out, -coarse) > 1e-4  # the finer slices really take part


@pytest.mark.parametrize("engine", ["spice", "nodal"])
def test_gain_compensation_makes_the_loop_hold_the_matrix(engine):
    """Op-amps of DC gain 1e5: with the compensation the simulated loop answers
    ``-(scale A~)^-1 v / r_in`` of the intended scaled matrix to the finest slice's resolution;
    without it the row amplifiers' ``D / gain`` shows (a diagonal shift)."""
    a = spd(12, seed=5)
    errors = {}
    for compensate in (True, False):
        config = Config().with_values("scheme", inv_slices=3, compensate_gain=compensate)
        inv = build_preconditioner(a, config, seed=0)
        arrays = inv.arrays
        target = arrays.scale * (arrays.row_scale[:, None] * a * arrays.col_scale[None, :])
        v = np.random.default_rng(2).uniform(-0.1, 0.1, 12)
        expected = -np.linalg.solve(target, v / config.array.r_in)
        v, expected = v * 0.5 / np.max(np.abs(expected)), expected * 0.5 / np.max(np.abs(expected))
        session = get_engine(engine).load(inv.circuit)
        errors[compensate] = rel_err(session.solve(v), expected)
        session.close()
    assert errors[True] < 1e-6 < 1e-5 < errors[False]


@pytest.mark.spice
def test_tiled_crossbar_with_wires_agrees_between_engines():
    """A 20 x 20 matrix on 8-wide crossbar tiles (3 x 3) with wire resistance: every tile's
    lines start at the shared row node and column driver; ngspice and nodal agree, and the
    tiling changes the answer (shorter lines, less IR drop) against one 20-wide array."""
    a = spd(20, seed=2)
    config = Config().with_overrides(["array.r_wire=50", "array.max_size=8"])
    arrays = map_matrix(a, config.device, scaling="jacobi", slices=2)
    v = np.random.default_rng(3).uniform(-0.05, 0.05, 20)
    tiled = inv_crossbar(arrays, config)
    out = [get_engine(e).load(tiled).solve(v) for e in ("spice", "nodal")]
    assert rel_err(out[0], out[1]) < 1e-7
    one_array = inv_crossbar(arrays, config.with_values("array", max_size=20))
    wide = get_engine("nodal").load(one_array).solve(v)
    ideal = -np.linalg.solve(arrays.conductance_matrix, v / config.array.r_in)
    assert rel_err(out[1], ideal) < rel_err(wide, ideal)


def test_matrices_wider_than_a_crossbar_run_as_one_tiled_loop():
    a = kernel_matrix(36, ridge=1e-4)
    config = NODAL.with_overrides(["array.max_size=16"])
    result = solve(a, random_rhs(36, seed=1), config)
    assert result.reached_target, result.history
    assert result.history[-1].preconditioner.endswith("3x3 tiles")
    assert result.by_level[0]["crossbars"] == 2 * result.inv_slices * 9


def test_auto_adds_a_slice_when_the_crossbar_cannot_hold_the_spectrum():
    a = kernel_matrix(60, ridge=1e-6)
    result = solve(a, random_rhs(60, seed=2), NODAL)
    assert result.reached_target and result.passes_to_target <= 20, result.history
    assert result.inv_slices >= 2
    one = solve(a, random_rhs(60, seed=2), NODAL.with_values("scheme", inv_slices=1))
    assert not one.reached_target or one.passes_to_target > result.passes_to_target


# -- scaling the input --------------------------------------------------------------------
def test_symmetrising_ratios_find_the_symmetric_matrix_behind_a_scaled_one():
    s = spd(10, seed=1)
    d1, d2 = 10.0 ** np.linspace(0, 6, 10), 10.0 ** np.linspace(3, -2, 10)
    t = symmetrising_ratios(d1[:, None] * s * d2[None, :])
    assert t is not None and rel_err(t / t[0], (d1 / d2) / (d1[0] / d2[0])) < 1e-9
    assert symmetrising_ratios(np.array([[2.0, 1.0], [-1.0, 2.0]])) is None
    r0, c0 = equilibrate(s, "jacobi")
    for scaled in (d1[:, None] * s, s * d2[None, :]):  # rows, columns: the same scaled matrix
        r, c = equilibrate(scaled, "jacobi")
        assert rel_err(r[:, None] * scaled * c[None, :], r0[:, None] * s * c0[None, :]) < 1e-12


def test_ruiz_scaling_is_the_same_for_any_row_and_column_scaling():
    """Ruiz sweeps from the log-balanced matrix: a non-symmetric matrix whose rows and columns
    were scaled by up to 1e6 gets the same scaled matrix (max-norm sweeps alone stop wherever
    they started)."""
    a = suite_matrix("west0067")
    rng = np.random.default_rng(3)
    d1, d2 = (10.0 ** rng.uniform(0, 6, a.shape[0]) for _ in range(2))
    r0, c0 = equilibrate(a, "ruiz")
    scaled = d1[:, None] * a * d2[None, :]
    r, c = equilibrate(scaled, "ruiz")
    assert rel_err(r[:, None] * scaled * c[None, :], r0[:, None] * a * c0[None, :]) < 1e-9


def convection(n: int = 10, peclet: float = 50.0) -> np.ndarray:
    """Upwind convection-diffusion on an ``n`` x ``n`` grid, wind (1, 0.5): a symmetric matrix
    behind a diagonal similarity that spreads over seven decades."""
    h, nu = 1.0 / (n + 1), 1.0 / peclet

    def upwind(w: float) -> np.ndarray:
        return (2 * nu + h * w) * np.eye(n) - (nu + h * w) * np.eye(n, k=-1) - nu * np.eye(n, k=1)

    return np.kron(np.eye(n), upwind(1.0)) + np.kron(upwind(0.5), np.eye(n))


def test_the_residual_follows_unknowns_that_the_scaling_spreads():
    """Jacobi scaling of the symmetric matrix behind convection-diffusion spreads the unknowns
    ``y = x / c`` over decades: the residual VMM widens by what ``c`` costs the user's answer,
    and a column scaling by up to 1e6 moves the passes by at most one (from the rows-first
    Ruiz scaling it moved them from 3 to 11)."""
    a = convection()
    b = random_rhs(a.shape[0], seed=0)
    d = 10.0 ** np.random.default_rng(7).uniform(0, 6, a.shape[0])
    base, scaled = solve(a, b, NODAL), solve(a * d[None, :], b, NODAL)
    assert base.reached_target and scaled.reached_target
    assert any("for the unknowns" in what for _, what in base.switches)
    assert abs(scaled.passes_to_target - base.passes_to_target) <= 1


@pytest.mark.parametrize("name", ["bcspwr02_grounded", "cage5", "LFAT5"])
def test_scaling_rows_or_columns_by_up_to_1e6_changes_the_passes_by_at_most_one(name):
    a = suite_matrix(name)
    n = a.shape[0]
    b = random_rhs(n, seed=0)
    base = solve(a, b, NODAL)
    d = 10.0 ** np.random.default_rng(7).uniform(0, 6, n)
    for scaled, rhs in ((d[:, None] * a, d * b), (a * d[None, :], b)):
        result = solve(scaled, rhs, NODAL)
        assert result.reached_target, (name, result.history)
        assert abs(result.passes_to_target - base.passes_to_target) <= 1


# -- verdicts and reporting -----------------------------------------------------------------
def test_componentwise_bits_see_the_worst_entry():
    x_ref = np.array([1.0, 1e-3, -2.0])
    x = x_ref + np.array([1e-6, 1e-6, 0.0])
    assert componentwise_bits(x, x_ref) == pytest.approx(-np.log2(1e-3))
    assert componentwise_bits(x_ref, x_ref) == np.inf


def test_solve_exit_status_says_whether_the_target_was_reached(tmp_path, capsys):
    a = kernel_matrix(30, ridge=1e-4)
    np.save(tmp_path / "a.npy", a)
    base = ["solve", "--matrix", str(tmp_path / "a.npy"), "--engine", "nodal", "--json"]
    assert main([*base, "--max-passes", "1"]) == 1
    missed = json.loads(capsys.readouterr().out)
    assert missed["passes_to_target"] is None and not missed["reached_target"]
    assert main(base) == 0
    reached = json.loads(capsys.readouterr().out)
    assert 1 <= reached["passes_to_target"] <= reached["passes"]
    assert reached["history"][reached["passes_to_target"] - 1]["effective_bits"] >= 16
    assert reached["componentwise_bits"] <= reached["effective_bits"] + 1
    assert all(h["preconditioner"].startswith("inv") for h in reached["history"])


# -- K-FAC factors captured from real training of a wide network ---------------------------
def test_captured_wide_factors_are_real_and_ill_conditioned():
    items = load_matrix_set(WIDE_FACTORS)
    sizes = {meta["size"] for _, _, meta in items}
    assert {256, 257, 512, 513} <= sizes
    for _, m, meta in items:
        assert np.allclose(m, m.T) and np.linalg.eigvalsh(m)[0] > 0
        if meta["size"] >= 256:
            assert meta["condition"] > 1e3  # real factors keep their conditioning


def test_the_correlated_generator_looks_like_the_captured_factors():
    """Condition numbers inside the captured range, and an ill-conditioning that Jacobi
    scaling keeps (the Wishart generator's does not survive it)."""
    captured = [m for _, m, meta in load_matrix_set(WIDE_FACTORS) if meta["size"] >= 256]
    conds = [np.linalg.cond(m) for m in captured]
    for n in (256, 512):
        a = correlated_factor(n, seed=0)
        assert min(conds) < np.linalg.cond(a) < max(conds)
        r, c = equilibrate(a, "jacobi")
        eig = np.linalg.eigvalsh(r[:, None] * a * c[None, :])
        assert eig[-1] / eig[0] > 1e3
    w = wishart_factor(256, seed=0)
    r, c = equilibrate(w, "jacobi")
    eig = np.linalg.eigvalsh(r[:, None] * w * c[None, :])
    assert eig[-1] / eig[0] < 1e2  # the generator's ill-conditioning is its column scales


def test_a_real_256_wide_kfac_factor_reaches_16_bits():
    a = wide_factor(256)
    r, c = equilibrate(a, "jacobi")
    eig = np.linalg.eigvalsh(r[:, None] * a * c[None, :])
    assert eig[-1] / eig[0] > 1e3  # Jacobi scaling does not remove its ill-conditioning
    result = solve(a, random_rhs(256, seed=0), NODAL)
    assert result.reached_target and result.passes_to_target <= 40, result.history
    assert result.inv_slices >= 2  # 8-bit cells alone cannot hold its small eigenvalues
