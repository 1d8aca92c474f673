"""Precision schemes through ngspice (and the nodal engine where stated)."""

import json

import numpy as np
import pytest

from rerinv.cli import main
from rerinv.config import Config
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.schemes import effective_bits

from .helpers import solve_with

pytestmark = pytest.mark.spice  # every test here runs ngspice


def _system(n, seed=None, **kwargs):
    seed = n if seed is None else seed
    return wishart_factor(n, seed=seed, **kwargs), random_rhs(n, seed=seed + 1)


@pytest.mark.parametrize("n", [16, 32, 64])
@pytest.mark.parametrize("scheme", ["repast", "refine"])
def test_default_config_reaches_16_bits_within_8_passes(scheme, n):
    a, b = _system(n)
    result = solve_with(a, b, Config(), scheme=scheme, engine="spice", max_passes=8)
    assert result.reached_target, result.history
    first_16 = next(k for k, h in enumerate(result.history, 1) if h.effective_bits >= 16)
    assert first_16 <= 8
    assert result.effective_bits == pytest.approx(effective_bits(result.x, np.linalg.solve(a, b)))


@pytest.mark.parametrize("n", [16, 32, 64])
def test_single_solve_stays_far_below_16_bits(n):
    a, b = _system(n)
    result = solve_with(a, b, Config(), scheme="single", engine="spice")
    assert 1 < result.effective_bits < 10
    assert not result.reached_target and result.passes == 1


def test_programming_error_slows_refine_but_not_krylov_or_auto():
    # an ill-conditioned K-FAC-like factor: batch of 32 samples for a 32-wide layer
    a, b = wishart_factor(32, seed=3, samples=32, damping=0.01), random_rhs(32, seed=100)
    config = Config().with_overrides(["device.sigma_rel=0.01"])
    refine = solve_with(a, b, config, scheme="refine", engine="spice", max_passes=8)
    assert refine.status in ("stalled", "diverged", "max_passes") and not refine.reached_target
    krylov = solve_with(a, b, config, scheme="krylov", engine="spice", max_passes=30)
    assert krylov.reached_target and krylov.effective_bits >= 16
    auto = solve_with(a, b, config, scheme="auto", engine="spice", max_passes=30)
    assert auto.reached_target and auto.switches  # it left refinement when it stopped paying


def _solve_cli(matrix, *extra) -> int:
    return main(
        ["solve", "--matrix", str(matrix), "--scheme", "refine", "--engine", "spice", *extra]
    )


def test_refine_without_equilibration_diverges_and_says_so(capsys, tmp_path):
    np.save(tmp_path / "a.npy", wishart_factor(32, seed=0))
    assert _solve_cli(tmp_path / "a.npy", "--set", "scheme.equilibrate=false") == 1
    out = capsys.readouterr().out
    assert "status diverged" in out and "did NOT reach" in out
    assert _solve_cli(tmp_path / "a.npy") == 0
    assert "status converged" in capsys.readouterr().out


def test_json_bits_equal_bits_recomputed_from_x(capsys, tmp_path):
    a, b = _system(16)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    for scheme in ("single", "repast", "refine", "krylov"):
        args = ["solve", "--matrix", str(tmp_path / "a.npy"), "--rhs", str(tmp_path / "b.npy")]
        status = main([*args, "--scheme", scheme, "--engine", "spice", "--json"])
        data = json.loads(capsys.readouterr().out)
        assert status == (0 if data["reached_target"] else 1)  # the exit status tells
        for key in (
            "n",
            "scheme",
            "engine",
            "status",
            "reached_target",
            "effective_bits",
            "passes",
            "inv_solves",
            "vmm_ops",
            "history",
            "x",
        ):
            assert key in data
        recomputed = effective_bits(np.array(data["x"]), np.linalg.solve(a, b))
        assert data["effective_bits"] == pytest.approx(recomputed, abs=1e-12)
        assert data["history"][-1]["effective_bits"] == data["effective_bits"]
        assert len(data["history"]) == data["passes"]


def test_analog_residual_is_exact_with_ideal_cells_and_its_floor_is_reported():
    a, b = _system(32, seed=1)
    ideal = solve_with(a, b, Config(), scheme="krylov", engine="nodal", max_passes=20)
    assert ideal.reached_target and ideal.vmm_ops > 0
    noisy = Config().with_overrides(["device.sigma_abs=0.03"])
    analog = solve_with(a, b, noisy, scheme="krylov", engine="nodal", max_passes=20)
    digital = solve_with(
        a,
        b,
        noisy.with_overrides(["scheme.residual=digital"]),
        scheme="krylov",
        engine="nodal",
        max_passes=20,
    )
    assert digital.reached_target and digital.vmm_ops == 0
    # the analog residual misreads its partial sums: the loop cannot get past that floor, and
    # the verified bits and the status say so (never "converged")
    assert not analog.reached_target and analog.effective_bits < 14
    assert analog.status != "converged" and analog.to_dict()["reached_target"] is False


def test_indefinite_input_needs_the_generalised_inverse(capsys, tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3 and -1
    inv_only = ["--set", "scheme.circuit=inv"]
    assert main(["solve", "--matrix", str(tmp_path / "a.npy"), "--engine", "nodal", *inv_only]) == 2
    err = capsys.readouterr().err
    assert "both sides of the imaginary axis" in err and "--set scheme.circuit=auto" in err
    assert main(["solve", "--matrix", str(tmp_path / "a.npy"), "--engine", "nodal"]) == 0
    out = capsys.readouterr().out
    assert "  ginv" in out and "status converged" in out  # the pass table names the circuit
