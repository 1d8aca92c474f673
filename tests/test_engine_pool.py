"""Engine sessions in worker processes (``simulation.workers``): the same numbers as in-process,
errors that arrive whole, a dead worker that is reported, not waited for."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from rerinv.cli import main
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.engines.pool import PooledEngine, parallel_map
from rerinv.errors import SaturationError, SimulationError
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.mapping import map_matrix
from rerinv.matrices import random_rhs, wishart_factor

from .helpers import solve_with


@pytest.fixture
def pool():
    engine = PooledEngine("nodal", 2)
    yield engine
    engine.shutdown()


def _same_run(local, pooled):
    assert pooled.status == local.status
    assert pooled.passes == local.passes and pooled.vmm_ops == local.vmm_ops
    assert pooled.inv_solves == local.inv_solves and pooled.conversions == local.conversions
    assert pooled.by_level == local.by_level
    np.testing.assert_array_equal(pooled.x, local.x)


def test_ngspice_in_two_workers_gives_the_in_process_solve():
    """A refine with the analog residual: its 13 slices x 2 row blocks are read by two ngspice
    processes at once, and every number is the one a single ngspice gives."""
    a, b = wishart_factor(24, seed=3), random_rhs(24, seed=4)
    local = solve_with(a, b, Config(), scheme="refine", engine="spice")
    pooled = solve_with(a, b, Config(), scheme="refine", engine="spice", workers=2)
    assert local.vmm_ops > 0 and local.reached_target
    _same_run(local, pooled)
    assert len(get_engine("spice", 2)._workers) == 2  # it did run in the pool
    get_engine("spice", 2).shutdown()


@pytest.mark.parametrize("blocks", ["jacobi", "blockamc"])
def test_block_solves_run_in_workers_with_the_same_counts(blocks):
    """Block-Jacobi's blocks and BlockAMC's VMM tiles in parallel, BlockAMC's batches split
    between the workers: the same passes, counts and solution."""
    config = Config().with_overrides(["array.max_size=16", f"scheme.blocks={blocks}"])
    a, b = wishart_factor(48, seed=7), random_rhs(48, seed=8)
    local = solve_with(a, b, config, engine="nodal")
    pooled = solve_with(a, b, config, engine="nodal", workers=3)
    assert local.circuit == blocks and local.reached_target
    _same_run(local, pooled)
    assert len(get_engine("nodal", 3)._workers) == 3
    get_engine("nodal", 3).shutdown()


def test_parallel_map_keeps_order_and_runs_in_place_without_a_pool(pool):
    assert parallel_map(get_engine("nodal"), lambda k: k * k, range(5)) == [0, 1, 4, 9, 16]
    assert parallel_map(pool, lambda k: k * k, range(5)) == [0, 1, 4, 9, 16]
    # a map inside a map runs in place instead of waiting for threads busy with the outer one
    inner = parallel_map(pool, lambda k: parallel_map(pool, lambda j: j + k, range(3)), range(4))
    assert inner == [[k, k + 1, k + 2] for k in range(4)]


def test_a_railed_solve_in_a_worker_arrives_as_saturation_with_its_nodes(pool):
    arrays = map_matrix(np.ones((4, 4)), Config().device)
    session = pool.load(vmm_crossbar(arrays, Config()))
    with pytest.raises(SaturationError) as railed:
        session.solve(np.full(4, 5.0))
    assert railed.value.nodes  # the railed outputs, named
    assert session.solve(np.full(4, 1e-3)).shape == (4,)  # the worker serves on
    session.close()
    with pytest.raises(SimulationError, match="closed"):
        session.solve(np.zeros(4))


def test_a_killed_worker_is_reported_and_the_pool_starts_afresh(pool):
    circuit = vmm_crossbar(map_matrix(np.eye(3) + 0.1, Config().device), Config())
    session = pool.load(circuit)
    os.kill(session.worker.process.pid, signal.SIGKILL)
    session.worker.process.wait()
    with pytest.raises(SimulationError, match="died"):
        session.solve(np.full(3, 0.01))
    with pytest.raises(SimulationError, match="stopped"):
        session.solve(np.full(3, 0.01))  # its circuits are gone with it
    fresh = pool.load(circuit)  # new workers
    expected = get_engine("nodal").load(circuit).solve(np.full(3, 0.01))
    np.testing.assert_array_equal(fresh.solve(np.full(3, 0.01)), expected)


def test_workers_die_with_the_caller():
    """A script that starts a pool and is SIGKILLed leaves no worker behind (and needs no
    ``if __name__ == "__main__"`` guard: workers are fresh interpreters)."""
    script = (
        "import sys, numpy as np\n"
        "from rerinv.engines import get_engine\n"
        "from rerinv.hw.circuit import vmm_crossbar\n"
        "from rerinv.hw.mapping import map_matrix\n"
        "from rerinv.config import Config\n"
        "pool = get_engine('nodal', 2)\n"
        "s = pool.load(vmm_crossbar(map_matrix(np.eye(3) + 0.1, Config().device), Config()))\n"
        "print(*[w.process.pid for w in pool._workers], flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in driver.stdout.readline().split()]
    assert len(pids) == 2
    driver.kill()
    driver.wait()
    for pid in pids:
        for _ in range(100):
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        break
            except (ProcessLookupError, FileNotFoundError):
                break
            __import__("time").sleep(0.05)
        else:
            pytest.fail(f"engine worker {pid} outlived its killed caller")


def test_bad_worker_count_is_one_line_and_exit_2(capsys, tmp_path):
    np.save(tmp_path / "a.npy", np.eye(3) + 0.1)
    args = ["solve", "--matrix", str(tmp_path / "a.npy"), "--engine", "nodal"]
    assert main([*args, "--set", "simulation.workers=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "simulation.workers" in err[0]
