"""ngspice's matrix solver (KLU by default, Sparse 1.3 as the fallback) and warm sessions.

KLU-specific tests skip, with the reason, on an ngspice without KLU (Debian 12's own 39);
everything else must pass there too. No timings here: see benchmarks/engine.py.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rerinv.engines.ngspice as ngm
import rerinv.engines.ngspice_lib as ngl
from rerinv.analog.inv import build_inv
from rerinv.engines import get_engine
from rerinv.errors import InputError, SimulationError
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.mapping import map_matrix
from rerinv.hw.netlist import BATCH_SELECTOR, batch_netlist, to_spice
from rerinv.matrices import wishart_factor
from rerinv.provenance import provenance, software_versions

from .helpers import rel_err

pytestmark = pytest.mark.spice  # every test here runs ngspice


@pytest.fixture(autouse=True)
def _restore_solver(monkeypatch):
    """Each test may switch the process's solver; it is put back afterwards."""
    ngm.ngspice_solver()  # resolve the default first, so that is what gets restored
    monkeypatch.setattr(ngl, "_solver", ngl._solver)


@pytest.fixture
def klu():
    if not ngm.ngspice_has_klu():
        pytest.skip(
            f"ngspice {ngm.ngspice_version()} has no KLU solver (needs ngspice >= 42 built "
            "with KLU; on Debian 12 install it from bookworm-backports, see README)"
        )


def _inv(n, config, seed=0):
    """An INV crossbar and input voltages that keep its outputs well inside the rails."""
    inv = build_inv(wishart_factor(n, seed=n), config, seed=seed)
    g = inv.arrays.conductance_matrix
    rng = np.random.default_rng(seed)
    vin = rng.uniform(-1, 1, n)
    vin *= 0.5 / np.max(np.abs(np.linalg.solve(g, vin / config.array.r_in)))
    return inv, vin


def _solver_of_an_op(session) -> str:
    """The solver ngspice reports for an operating point of ``session``'s circuit."""
    ngm._select(session.circuit_id)
    out = ngm._command("op", analysis=True).lower()
    ngm._command(f"destroy {ngm.ngspice().last_plot}")
    return "klu" if "using klu" in out else "sparse"


def test_klu_and_sparse_give_the_same_inv_operating_point(klu, ideal_config):
    inv, vin = _inv(32, ideal_config)
    expected = -np.linalg.solve(inv.arrays.conductance_matrix, vin / ideal_config.array.r_in)
    outputs = {}
    for solver in ("klu", "sparse"):
        assert ngm.set_ngspice_solver(solver) == solver
        with get_engine("spice").load(inv.circuit) as session:
            assert session.solver == solver
            assert _solver_of_an_op(session) == solver  # ngspice really uses it
            outputs[solver] = session.solve(vin)
        assert rel_err(outputs[solver], expected) < 1e-6
    assert rel_err(outputs["klu"], outputs["sparse"]) < 1e-12


def test_klu_is_the_default_where_ngspice_has_it(klu):
    assert ngm.set_ngspice_solver(None) == "klu"
    assert ngm.solver_options() == "klu"
    assert ngm.solver_options("sparse") == "sparse"


@pytest.mark.parametrize("solver", ["klu", "sparse"])
def test_solve_batch_equals_repeated_solve(solver, ideal_config, request):
    if solver == "klu":
        request.getfixturevalue("klu")
    ngm.set_ngspice_solver(solver)
    inv, vin = _inv(16, ideal_config)
    rng = np.random.default_rng(1)
    batches = [vin * rng.uniform(-1, 1, (6, 16))]
    changed = batches[0].copy()
    changed[2, 5], changed[4] = -changed[2, 5], 0.0  # a few gains altered, one row zeroed
    batches += [changed, changed[:3], np.vstack([changed, batches[0]])]  # fewer, then more
    spice = get_engine("spice").load(inv.circuit)
    nodal = get_engine("nodal").load(inv.circuit)
    try:
        for inputs in batches:
            out = spice.solve_batch(inputs)
            assert out.shape == (len(inputs), 16)
            assert rel_err(out, np.array([spice.solve(u) for u in inputs])) < 1e-12
            assert rel_err(out, nodal.solve_batch(inputs)) < 1e-9
        assert spice.batch_loads == 2  # parsed once, again only when K grew from 6 to 12
    finally:
        spice.close()


def test_the_batch_variant_stays_loaded_and_is_altered(monkeypatch, ideal_config):
    loads = []
    real_load = ngm._load
    monkeypatch.setattr(ngm, "_load", lambda c, text: loads.append(text) or real_load(c, text))
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, (12, 12))
    circuit = vmm_crossbar(map_matrix(a, ideal_config.device), ideal_config)
    before = len(ngm._loaded)
    session = get_engine("spice").load(circuit)
    nodal = get_engine("nodal").load(circuit)
    for _ in range(4):  # bit planes, as the residual VMM sends them
        planes = rng.choice([-1.0, 0.0, 1.0], (8, 12)) * 0.01
        assert rel_err(session.solve_batch(planes), nodal.solve_batch(planes)) < 1e-9
    assert len(loads) == 2  # the circuit, then its batch variant: each parsed once
    assert len(ngm._loaded) == before + 2
    session.close()
    assert len(ngm._loaded) == before
    with pytest.raises(SimulationError, match="closed"):
        session.solve_batch(planes)


def test_a_batch_only_session_parses_only_its_batch_variant(monkeypatch, ideal_config):
    loads = []
    real_load = ngm._load
    monkeypatch.setattr(ngm, "_load", lambda c, text: loads.append(text) or real_load(c, text))
    rng = np.random.default_rng(3)
    circuit = vmm_crossbar(map_matrix(rng.uniform(-1, 1, (10, 10)), ideal_config.device),
                           ideal_config)  # fmt: skip
    session = get_engine("spice").load(circuit, batches=True)
    nodal = get_engine("nodal").load(circuit, batches=True)
    assert loads == []
    planes = rng.choice([-1.0, 1.0], (5, 10)) * 0.01
    for k in (5, 1, 3):  # one vector runs on the loaded batch variant too
        assert rel_err(session.solve_batch(planes[:k]), nodal.solve_batch(planes[:k])) < 1e-9
    assert len(loads) == 1 and BATCH_SELECTOR in loads[0]
    assert rel_err(session.solve(planes[0]), nodal.solve(planes[0])) < 1e-9  # parsed now
    assert len(loads) == 2
    session.close()


def test_a_batch_netlist_solves_its_own_vectors(ideal_config):
    """The batch netlist alone (as parsed, before any alter) holds its K vectors."""
    inv, vin = _inv(8, ideal_config)
    inputs = np.vstack([vin, -vin, 0.5 * vin])
    text = to_spice(inv.circuit, batch=inputs)
    assert "pwl(v(batchsel)" in text and ".options" not in text
    session = get_engine("spice").load(inv.circuit)
    expected = np.array([session.solve(u) for u in inputs])
    circuit_id = ngm._load(inv.circuit, text)
    try:
        volts = ngm._analysis("dc vbatchsel 0 2 1", "dc", inv.circuit, inv.circuit.outputs)
        assert rel_err(volts.T, expected) < 1e-12
    finally:
        ngm._remove(circuit_id)
        session.close()


def test_netlists_select_the_solver(ideal_config):
    inv, _ = _inv(4, ideal_config)
    assert ".options klu" in batch_netlist(inv.circuit)  # standalone: ignored before 42
    solver = ngm.ngspice_solver()
    options = ngm.solver_options(solver)
    assert options in ("klu", "sparse", "")
    assert (options == "") == (not ngm.ngspice_has_klu())
    assert f".options {options}" in to_spice(inv.circuit, options=options) or not options


def test_provenance_records_the_ngspice_version_and_solver():
    attrs = provenance("pytest")
    assert attrs["ngspice_version"] == ngm.ngspice_version()
    assert attrs["ngspice_solver"] == ngm.ngspice_solver() in ngm.SOLVERS
    assert software_versions()["ngspice_solver"] == attrs["ngspice_solver"]
    unused = provenance(ngspice=False)
    assert unused["ngspice_version"] == unused["ngspice_solver"] == "not used"


def test_an_old_ngspice_runs_on_sparse_and_says_so_once(monkeypatch, capsys, ideal_config):
    monkeypatch.setattr(ngl, "ngspice_version", lambda: "39")
    monkeypatch.setattr(ngl, "_solver", None)
    monkeypatch.setattr(ngl, "_noted_sparse", False)
    assert not ngm.ngspice_has_klu()
    assert ngm.ngspice_solver() == "sparse"
    assert ngm.ngspice_solver() == ngm.set_ngspice_solver(None) == "sparse"
    assert ngm.solver_options() == ""  # ngspice 39 gets no .options line at all
    inv, vin = _inv(8, ideal_config)
    with get_engine("spice").load(inv.circuit) as session:
        assert session.solver == "sparse"
        expected = -np.linalg.solve(inv.arrays.conductance_matrix, vin / ideal_config.array.r_in)
        assert rel_err(session.solve(vin), expected) < 1e-6
        session.solve_batch(np.vstack([vin, -vin]))
    with pytest.raises(InputError, match="no KLU"):
        ngm.set_ngspice_solver("klu")
    lines = capsys.readouterr().err.splitlines()
    notes = [line for line in lines if line.startswith("rerinv: ngspice")]
    assert notes == [
        "rerinv: ngspice 39 has no KLU solver; using Sparse (slow for N >= 64). "
        "Install ngspice >= 42 from bookworm-backports: see README"
    ]


def _python(code: str, timeout: float, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_environment_picks_the_solver():
    code = "import rerinv.engines.ngspice as n; print(n.ngspice_solver())"
    out = _python(code, 60, RERINV_NGSPICE_SOLVER="sparse")
    assert out.returncode == 0 and out.stdout.split() == ["sparse"], out.stderr
    out = _python(code, 60, RERINV_NGSPICE_SOLVER="bogus")
    assert out.returncode != 0 and "RERINV_NGSPICE_SOLVER must be one of" in out.stderr


def test_an_n16_inv_transient_runs_on_sparse_and_the_session_returns_to_klu(klu):
    """With KLU, ngspice's ``tran`` of the INV crossbar crawls (N = 16) or hangs (N = 32):
    the session switches to Sparse around it. Run in a subprocess: a hang fails the test."""
    code = """
        import numpy as np
        import rerinv.engines.ngspice as n
        from rerinv.analog.inv import build_inv
        from rerinv.config import Config
        from rerinv.matrices import wishart_factor
        config = Config()  # single-pole op-amps: the transient has dynamics
        inv = build_inv(wishart_factor(16, seed=16), config, seed=0)
        g = inv.arrays.conductance_matrix
        vin = np.random.default_rng(0).uniform(-1, 1, 16)
        vin *= 0.5 / np.max(np.abs(np.linalg.solve(g, vin / config.array.r_in)))
        session = n.NgspiceEngine().load(inv.circuit)
        assert session.solver == "klu"
        dc = session.solve(vin)
        said = {}  # what ngspice printed for each analysis: "Using <solver> as ..."
        command = n._command
        def spy(text, **kw):
            out = command(text, **kw)
            said[text.split()[0]] = "klu" if "using klu" in out.lower() else "sparse"
            return out
        n._command = spy
        wave = session.transient(2e-8, 8e-6, vin, 1e-11)
        final = np.array([wave[node][-1] for node in inv.circuit.outputs])
        again = session.solve(vin)
        print(len(wave["time"]), np.max(np.abs(final - dc)) / np.max(np.abs(dc)), said["tran"],
              said["op"], np.max(np.abs(again - dc)) / np.max(np.abs(dc)))
    """
    try:
        out = _python(code, 60, RERINV_NGSPICE_SOLVER="klu")
    except subprocess.TimeoutExpired:
        pytest.fail("the N = 16 INV transient did not finish in 60 s (KLU hang?)")
    assert out.returncode == 0, out.stderr[-2000:]
    points, settled, tran, op, again = out.stdout.split()
    assert int(points) > 100 and float(settled) < 1e-9  # settled to the operating point
    assert tran == "sparse" and op == "klu"  # Sparse for the transient, then back to KLU
    assert float(again) < 1e-12  # the same operating point


def test_an_inv_solve_runs_its_dac_slices_as_one_batch_and_never_rails_first(monkeypatch):
    """A fresh INV crossbar's first solve ranges one vector from FIRST_ALPHA up (a railed
    ngspice point costs hundreds of Newton iterations): an ``op`` at FIRST_ALPHA, one louder,
    then the rest of the batch at that range; every later call sends all its DAC slices to
    ngspice as one ``dc`` sweep. The results match the nodal engine's."""
    from rerinv.analog.machine import AnalogMachine
    from rerinv.analog.units import FIRST_ALPHA
    from rerinv.config import Config

    a = wishart_factor(16, seed=16)
    v = np.random.default_rng(3).uniform(-1, 1, 16)
    config = Config().with_values(
        "scheme", residual="digital", dac_slices=2, dac_slicing="separate"
    )
    calls = []
    solve, solve_batch = ngm.NgspiceSession.solve, ngm.NgspiceSession.solve_batch

    def counted_solve(self, inputs=None):
        calls.append(("op", float(np.max(np.abs(inputs)))))
        return solve(self, inputs)

    def counted_batch(self, inputs):
        calls.append(("dc", np.atleast_2d(inputs).shape[0]))
        return solve_batch(self, inputs)

    monkeypatch.setattr(ngm.NgspiceSession, "solve", counted_solve)
    monkeypatch.setattr(ngm.NgspiceSession, "solve_batch", counted_batch)
    results = {}
    for engine in ("nodal", "spice"):
        machine = AnalogMachine(a, config.with_values("simulation", engine=engine), seed=4)
        unit = machine.unit
        assert unit.alpha == FIRST_ALPHA
        results[engine] = [unit(v), unit(v)]
        assert unit.alpha > FIRST_ALPHA  # raised after the first vector
        machine.close()
    dac_range = config.converters.dac_range
    kinds = [kind for kind, _ in calls]
    assert kinds == ["op", "op", "dc", "op", "dc"], calls  # K = 1 batches run as an op
    assert calls[0][1] <= FIRST_ALPHA * dac_range < calls[1][1]  # probe, then louder
    assert calls[-1] == ("dc", 2)  # the second call: both DAC slices in one sweep
    for spice, nodal in zip(results["spice"], results["nodal"], strict=True):
        assert rel_err(spice, nodal) < 1e-6
    assert rel_err(results["spice"][1], np.linalg.solve(a, v)) < 0.1


def test_a_netlist_ngspice_rejects_is_a_simulation_error():
    """After rejecting a netlist, ngspice 46 writes past its heap on the next load (valgrind
    shows it; glibc aborted the process once): rerinv reports the rejection and loads nothing
    more in that process. In a process of its own, away from the other tests' ngspice."""
    script = textwrap.dedent(
        """
        import rerinv.engines.ngspice as ngm
        from rerinv.errors import SimulationError

        class Named:
            title = "a broken circuit"

        for text in ("R1 a 0 {nosuchparam}", "R1 a 0 1"):  # a bad netlist, then a good one
            try:
                ngm._load(Named, f"* title\\n{text}\\nV1 a 0 1\\n.end\\n")
            except SimulationError as exc:
                print("REFUSED:", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    refusals = [line for line in out.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 2, out
    assert "ngspice rejected the netlist of a broken circuit:" in refusals[0]
    assert "earlier in this process" in refusals[1]  # nothing more goes into that ngspice
