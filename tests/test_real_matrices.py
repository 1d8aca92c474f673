"""Real matrices: scaling, the stabilised INV, the generalised-inverse circuit, verdicts, read
noise, residual widths and the public-matrix suite."""

import numpy as np
import pytest

from rerinv.analog.inv import build_inv, output_factor
from rerinv.analog.machine import AnalogMachine
from rerinv.analog.routes import build_preconditioner
from rerinv.cli import main
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError, UnstableMatrixError
from rerinv.hw.circuit import ginv_crossbar
from rerinv.hw.mapping import map_matrix
from rerinv.hw.scaling import choose_scaling, equilibrate
from rerinv.matrices import load_matrix, random_rhs
from rerinv.resources import matrices_dir
from rerinv.schemes import STATUSES, effective_bits, solve
from rerinv.schemes.result import final_status
from rerinv.schemes.stopping import Run
from rerinv.studies.suite import grounded_laplacian, run_case, run_suite, suite_cases

from .helpers import rel_err, solve_with

NODAL = Config().with_values("simulation", engine="nodal")


def suite_matrix(name: str) -> np.ndarray:
    """A matrix of the shipped suite; ``NAME_grounded`` is the grounded Laplacian."""
    base, _, grounded = name.partition("_grounded")
    a = load_matrix(matrices_dir() / f"{base}.mtx")
    return grounded_laplacian(a) if name.endswith("_grounded") else a


def stiff_spd(n: int = 32, seed: int = 0) -> np.ndarray:
    """SPD with eigenvalues log-spaced over 1e-4 .. 1: its 8-bit copy is indefinite."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (q * np.logspace(0, -4, n)) @ q.T


# -- scaling ------------------------------------------------------------------------------
def test_jacobi_scaling_is_exact_and_keeps_symmetry():
    a = suite_matrix("bcspwr03_grounded") * np.linspace(1, 50, 117)[:, None]
    a = (a + a.T) / 2
    assert choose_scaling(a) == "jacobi"
    r, c = equilibrate(a, "jacobi")
    scaled = r[:, None] * a * c[None, :]
    assert np.allclose(np.diag(scaled), 1.0) and np.allclose(scaled, scaled.T)
    assert not np.allclose(np.log2(r), np.round(np.log2(r)))  # not rounded to powers of two
    assert choose_scaling(suite_matrix("bfwa62")) == "ruiz"


def test_scaling_choice_is_visible_in_the_result():
    a = suite_matrix("can_24_grounded")
    result = solve(a, random_rhs(23, seed=0), NODAL)
    assert result.scaling == "jacobi" and result.circuit == "inv"
    off = solve(a, random_rhs(23, seed=0), NODAL.with_values("scheme", equilibrate=False))
    assert off.scaling == "none"


# -- the three routes ---------------------------------------------------------------------
@pytest.mark.spice
@pytest.mark.parametrize("n", [2, 7, 24])
def test_ginv_circuit_solves_an_indefinite_matrix_on_both_engines(n, ideal_config):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n))
    arrays = map_matrix(a, ideal_config.device, scaling="ruiz")
    circuit = ginv_crossbar(arrays, ideal_config)
    g = arrays.conductance_matrix
    v = rng.uniform(-0.1, 0.1, n)
    expected = -np.linalg.solve(g, v / ideal_config.array.r_in)  # closed form
    v *= 0.5 / np.max(np.abs(expected))
    expected *= 0.5 / np.max(np.abs(expected))
    for engine in ("nodal", "spice"):
        session = get_engine(engine).load(circuit)
        assert rel_err(session.solve(v), expected) < 1e-8, engine
        session.close()


@pytest.mark.spice
def test_ginv_transient_settles_to_its_dc_solution():
    """ngspice's transient of the compensated generalised-inverse circuit (single-pole
    op-amps, inverter and TIA poles) ends at the DC solution: the loop is really stable."""
    config = Config()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    inv = build_preconditioner(a, config, seed=0)
    assert inv.route == "ginv"
    g = inv.arrays.conductance_matrix
    v = rng.uniform(-0.1, 0.1, 6)
    v *= 0.4 / np.max(np.abs(np.linalg.solve(g, v / config.array.r_in)))
    session = get_engine("spice").load(inv.circuit)
    dc = session.solve(v)
    t_stop = 3 * inv.settling_time(1e-6)
    waves = session.transient(t_stop / 400, t_stop, v)
    final = np.array([waves[f"x{j}"][-1] for j in range(6)])
    session.close()
    assert np.max(np.abs(final - dc)) < 1e-4 * np.max(np.abs(dc))


def test_stiff_spd_gets_a_finer_or_stabilised_inv_and_build_inv_says_why_not():
    a = stiff_spd()
    with pytest.raises(UnstableMatrixError, match=r"--set scheme.circuit=auto"):
        build_inv(a, Config(), scaling="jacobi")
    plain = map_matrix(a, Config().device, scaling="jacobi").conductance_matrix
    assert np.min(np.linalg.eigvals(plain).real) < 0  # one slice of 8-bit cells: unstable
    inv = build_preconditioner(a, Config(), seed=0)  # auto: a second slice holds it
    assert inv.route == "inv" and inv.arrays.slices == 2 and inv.arrays.shift == 0
    one_slice = Config().with_overrides(["scheme.inv_slices=1"])
    shifted = build_preconditioner(a, one_slice, seed=0)
    assert shifted.route == "inv_shifted" and shifted.arrays.shift > 0
    for held in (inv, shifted):  # the programmed copies are stable
        assert np.min(np.linalg.eigvals(held.arrays.conductance_matrix).real) > 0


def test_a_matrix_with_every_eigenvalue_negative_is_held_as_minus_a():
    a = -suite_matrix("can_24_grounded")
    inv = build_preconditioner(a, Config(), seed=0)
    assert inv.route == "inv" and inv.sign == -1.0
    assert np.all(output_factor(inv, 1.0) > 0)  # the read-out flips the sign back
    result = solve(a, random_rhs(23, seed=1), NODAL)
    assert result.reached_target, result.history


@pytest.mark.parametrize(
    ("name", "route", "slices"),
    [
        ("can_24_grounded", "inv", 1),
        ("dwt_59_grounded", "inv", 0),
        ("bcspwr03_grounded", "inv_shifted", 1),
        ("can_24", "ginv", 0),
    ],
)
def test_each_route_reaches_16_bits(name, route, slices):
    a = suite_matrix(name)
    config = NODAL.with_values("scheme", inv_slices=slices)
    result = solve(a, random_rhs(a.shape[0], seed=0), config)
    assert result.circuit == route
    assert result.reached_target and result.passes <= 40, result.history


@pytest.mark.spice
@pytest.mark.parametrize("name", ["can_24_grounded", "dwt_59_grounded", "can_24"])
def test_ngspice_and_nodal_agree_pass_by_pass_on_every_route(name):
    a = suite_matrix(name)
    b = random_rhs(a.shape[0], seed=0)
    nodal = solve(a, b, NODAL)
    spice = solve(a, b, NODAL.with_values("simulation", engine="spice"))
    assert spice.circuit == nodal.circuit and spice.passes == nodal.passes
    for p, q in zip(spice.history, nodal.history, strict=True):
        assert p.effective_bits == pytest.approx(q.effective_bits, abs=0.05)
    assert spice.status == nodal.status == "converged"


# -- verdicts -----------------------------------------------------------------------------
def test_status_never_contradicts_the_verified_bits():
    assert final_status("converged", False) == "unverified"
    assert final_status("diverged", True) == "converged"
    a, b = stiff_spd(24, seed=3), random_rhs(24, seed=4)
    for overrides in ([], ["device.sigma_abs=0.01"], ["device.sigma_rel=0.02"]):
        for scheme in ("refine", "krylov", "auto", "single"):
            r = solve_with(a, b, Config().with_overrides(overrides), engine="nodal", scheme=scheme)
            assert r.status in STATUSES
            assert (r.status == "converged") == r.reached_target, (overrides, scheme)
            assert r.effective_bits == pytest.approx(effective_bits(r.x, np.linalg.solve(a, b)))


class _FakeMachine:
    class counters:  # noqa: N801 - the attribute the run reads
        inv_solves = vmm_ops = 0

    row_scale = col_scale = np.ones(4)
    preconditioner = "inv"

    def follow_unknowns(self, y):
        return False


def test_one_bad_first_residual_is_not_divergence():
    b = np.ones(4)
    run = Run(_FakeMachine(), b, np.ones(4), Config(), 16, 40)
    assert run.record(np.ones(4) * 0.5, 9.4) is None  # 9.4 x ||b|| once: go on
    assert run.record(np.ones(4) * 0.9, 0.1) is None
    bad = Run(_FakeMachine(), b, np.ones(4), Config(), 16, 40)
    statuses = [bad.record(np.ones(4), 9.0 * k) for k in (1, 2, 3)]
    assert statuses == [None, None, "diverged"]  # a trend of stall_passes = 3 passes
    assert np.array_equal(bad.answer("diverged"), np.zeros(4))  # the best measured iterate
    falling = Run(_FakeMachine(), b, np.ones(4), Config(), 16, 40)
    statuses = [falling.record(np.ones(4), r) for r in (80.0, 40.0, 20.0, 10.0, 5.0)]
    assert statuses == [None] * 5  # far above ||b|| but falling: never divergence


def test_singular_input_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(InputError, match="singular"):
        solve(np.ones((4, 4)), np.ones(4), NODAL)
    np.save(tmp_path / "s.npy", np.ones((4, 4)))
    assert main(["solve", "--matrix", str(tmp_path / "s.npy"), "--engine", "nodal"]) == 2
    err = capsys.readouterr().err
    assert "singular" in err and err.count("\n") == 1 and "Traceback" not in err


# -- residual widths and read noise -------------------------------------------------------
def test_residual_width_follows_the_target_and_condition():
    a = suite_matrix("bcspwr03_grounded")
    with AnalogMachine(a, NODAL, seed=0) as m16:
        plan16 = m16.residual
    with AnalogMachine(a, NODAL.with_values("simulation", target_bits=24), seed=0) as m24:
        plan24 = m24.residual
    assert plan24.weight_bits == plan16.weight_bits + 8
    assert plan16.weight_bits >= 16 + np.log2(plan16.condition_estimate)
    assert plan16.floor_bits >= 16 and m16.counters.inv_solves > 0  # the estimate is counted
    fixed = NODAL.with_overrides(["scheme.vmm_weight_bits=20", "scheme.vmm_input_bits=20"])
    with AnalogMachine(a, fixed, seed=0) as m:
        assert m.residual.source == "configured" and m.residual.weight_bits == 20


def test_read_noise_shows_in_every_pass_and_is_seeded():
    a, b = suite_matrix("can_24_grounded"), random_rhs(23, seed=2)
    noisy = NODAL.with_overrides(["device.read_noise=0.005"])
    clean = solve(a, b, NODAL, seed=1)
    one, two = solve(a, b, noisy, seed=1), solve(a, b, noisy, seed=1)
    assert [h.effective_bits for h in one.history] == [h.effective_bits for h in two.history]
    other = solve(a, b, noisy, seed=2)
    assert [h.effective_bits for h in one.history] != [h.effective_bits for h in other.history]
    # every read (INV solve and VMM plane) sees new conductances: the measured residuals move
    pairs = zip(one.history, clean.history, strict=False)
    assert all(p.residual_norm != q.residual_norm for p, q in pairs)


def test_read_noise_in_a_monte_carlo_sweep(tmp_path):
    out = tmp_path / "noise.h5"
    args = ["mc", "--engine", "nodal", "--n", "16", "--trials", "4", "--workers", "1"]
    args += ["--sweep", "device.read_noise=0,0.02", "--scheme", "single", "--out", str(out)]
    assert main(args) == 0
    from rerinv.studies.mc import load_results

    results = load_results(out)
    clean, noisy = results.effective_bits
    assert np.all(np.isfinite(clean)) and np.all(np.isfinite(noisy))
    assert np.mean(noisy) < np.mean(clean)  # 2 % per read costs bits on a single solve


# -- the suite ------------------------------------------------------------------------------
def test_suite_lists_public_matrices_with_sources():
    cases = list(suite_cases())
    assert len(cases) >= 20 and all(c.source for c in cases)
    assert {"spd", "nonsymmetric", "symmetric_indefinite", "laplacian"} <= {c.kind for c in cases}


def test_suite_rows_say_when_the_target_was_first_reached():
    """``passes_to_target`` as ``rerinv solve --json`` gives it: null when no pass did."""
    cases = {c.name: c for c in suite_cases()}
    singular, reached = (run_case(cases[name], NODAL) for name in ("GD97_b", "Trefethen_20"))
    assert singular.status == "singular" and singular.passes_to_target is None
    assert reached.reached_target and 1 <= reached.passes_to_target <= reached.passes


@pytest.mark.slow
def test_whole_suite_default_and_with_programming_error():
    """Acceptance: every non-singular matrix with cond <= 1e6 reaches 16 verified bits
    within 40 passes, at the default configuration and with 1 % programming error."""
    for config in (NODAL, NODAL.with_overrides(["device.sigma_rel=0.01"])):
        for row in run_suite(config):
            if row.status == "singular" or row.cond > 1e6:
                continue
            assert row.reached_target and row.passes <= 40, row
