"""Bad input and failing circuits give their own clear errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rerinv.analog.inv import build_inv, solve_inv
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError, SaturationError, UnstableMatrixError

from .helpers import spd


def test_unstable_matrices_are_refused_before_simulating():
    with pytest.raises(UnstableMatrixError, match="positive real part"):
        build_inv(np.array([[1.0, 2.0], [2.0, 1.0]]), Config())  # eigenvalue -1
    rotation = np.array([[-0.1, 1.0], [-1.0, -0.1]])  # complex pair, negative real part
    with pytest.raises(UnstableMatrixError):
        build_inv(rotation, Config())


@pytest.mark.parametrize("engine", ["spice", "nodal"])
def test_railed_outputs_are_reported_not_returned(engine):
    inv = build_inv(spd(8), Config())
    session = get_engine(engine).load(inv.circuit)
    with pytest.raises(SaturationError, match="rails") as info:
        session.solve(np.full(8, 1.0) * 50)
    assert info.value.nodes


def test_nodal_batches_through_the_transfer_equal_direct_solves_and_still_rail():
    """After as many vectors as inputs, nodal batches are one product with the circuit's
    transfer: the same outputs as single solves, and railed columns still raise."""
    inv = build_inv(spd(8), Config())
    session = get_engine("nodal").load(inv.circuit)
    rng = np.random.default_rng(5)
    for k in (3, 5, 7):  # 3 + 5 < 8 inputs: direct; then 15 >= 8: through the transfer
        vin = rng.uniform(-0.05, 0.05, (k, 8))
        direct = np.array([session.solve(v) for v in vin])
        assert np.max(np.abs(session.solve_batch(vin) - direct)) < 1e-12 * np.max(np.abs(direct))
    assert session._transfer is not None
    with pytest.raises(SaturationError, match="rails"):
        session.solve_batch(np.vstack([vin, np.full(8, 50.0)]))


@pytest.mark.parametrize(
    ("a", "message"),
    [
        (np.ones(4), "2-D"),
        (np.ones((3, 4)), "square"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "inf"),
        (np.eye(300), "max_size"),
        (np.array([[1.0, 1.0], [1.0, 1.0]]), "singular"),
    ],
)
def test_bad_matrices(a, message):
    with pytest.raises(InputError, match=message):
        build_inv(a, Config())


def test_bad_rhs():
    with pytest.raises(InputError, match="shape"):
        solve_inv(spd(4), np.ones(5), Config())
    with pytest.raises(InputError):
        solve_inv(spd(4), np.array([1.0, np.nan, 0.0, 0.0]), Config())


def test_missing_ngspice_is_a_clear_error(tmp_path):
    code = (
        "from rerinv.engines.ngspice import ngspice\n"
        "from rerinv.errors import NgspiceMissingError\n"
        "try:\n    ngspice()\nexcept NgspiceMissingError as e:\n    print('MISSING', e)\n"
    )
    env = {**os.environ, "NGSPICE_LIBRARY_PATH": str(tmp_path / "libngspice.so")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.startswith("MISSING") and "apt-get install" in out.stdout
