"""The nodal engine solves the same circuits as ngspice: every analog solve agrees."""

import numpy as np
import pytest

import rerinv.analog.machine
from rerinv.analog.inv import build_inv
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.mapping import map_matrix
from rerinv.matrices import random_rhs, wishart_factor

from .helpers import rel_err, solve_with

pytestmark = pytest.mark.spice  # every test here runs ngspice


class _Recording:
    """Wraps an engine; every session logs (circuit, inputs, outputs) of each solve."""

    def __init__(self, engine, log):
        self.engine, self.log, self.name = engine, log, engine.name

    def load(self, circuit, *, batches=False):
        session = self.engine.load(circuit, batches=batches)
        log = self.log

        class Session:
            def solve(self, inputs=None):
                out = session.solve(inputs)
                log.append((circuit, np.atleast_2d(inputs), out[None, :]))
                return out

            def solve_batch(self, inputs):
                out = session.solve_batch(inputs)
                log.append((circuit, np.atleast_2d(inputs), out))
                return out

            def close(self):
                session.close()

        return Session()


@pytest.mark.parametrize("r_wire", [0.0, 1.73])
@pytest.mark.parametrize("scheme", ["refine", "krylov"])
def test_every_spice_solve_of_a_scheme_matches_nodal(monkeypatch, scheme, r_wire):
    log = []
    real = rerinv.analog.machine.get_engine
    monkeypatch.setattr(
        rerinv.analog.machine, "get_engine", lambda name, workers=1: _Recording(real(name), log)
    )
    config = Config().with_overrides([f"array.r_wire={r_wire}"])
    a, b = wishart_factor(16, seed=2), random_rhs(16, seed=3)
    spice = solve_with(a, b, config, scheme=scheme, engine="spice", seed=4)
    spice_log = list(log)
    monkeypatch.setattr(rerinv.analog.machine, "get_engine", real)
    nodal = solve_with(a, b, config, scheme=scheme, engine="nodal", seed=4)
    assert len(spice_log) > 20
    sessions = {}
    for circuit, inputs, outputs in spice_log:  # replay each spice solve on the nodal engine
        session = sessions.setdefault(id(circuit), get_engine("nodal").load(circuit))
        assert rel_err(session.solve_batch(inputs), outputs) < 1e-9
    assert rel_err(nodal.x, spice.x) < 1e-9
    assert [h.effective_bits for h in nodal.history] == pytest.approx(
        [h.effective_bits for h in spice.history], abs=1e-6
    )
    assert (nodal.status, nodal.passes, nodal.inv_solves) == (
        spice.status,
        spice.passes,
        spice.inv_solves,
    )


@pytest.mark.parametrize("r_wire", [0.0, 1.73])
def test_n64_inv_and_vmm_solves_agree(r_wire):
    config = Config().with_overrides([f"array.r_wire={r_wire}"])
    a = wishart_factor(64, seed=5)
    inv = build_inv(a, config, seed=1, scaling="ruiz")
    vmm = vmm_crossbar(map_matrix(a, config.device, scaling="ruiz"), config)
    rng = np.random.default_rng(0)
    for circuit, scale in ((inv.circuit, 2e-3), (vmm, 2e-3)):
        inputs = rng.uniform(-scale, scale, (3, 64))
        spice = get_engine("spice").load(circuit)
        nodal = get_engine("nodal").load(circuit)
        expected = nodal.solve_batch(inputs)
        assert rel_err(spice.solve_batch(inputs), expected) < 1e-9
        spice.close()
