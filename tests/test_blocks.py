"""Matrices larger than one crossbar: BlockAMC and block-Jacobi preconditioners, their
counters, the tiled residual VMM, and the block machine's netlists."""

import numpy as np
import pytest

from rerinv.analog.bitsliced import BitSlicedVMM, tile_plan
from rerinv.analog.blocks import crossbar_snapshots
from rerinv.analog.machine import AnalogMachine
from rerinv.analog.units import Counters, VmmUnit
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError, SaturationError
from rerinv.hw.converters import Converter
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.schemes import effective_bits, solve

from .helpers import rel_err

BLOCKS = (
    Config()
    .with_overrides(["array.max_size=16", "scheme.blocks=blockamc"])
    .with_values("simulation", engine="nodal")
)


@pytest.mark.parametrize("n", [32, 48])
def test_blockamc_reaches_16_bits_and_counts_by_level(n):
    a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
    result = solve(a, b, BLOCKS)
    assert result.circuit == "blockamc" and result.reached_target, result.history
    assert result.effective_bits == pytest.approx(effective_bits(result.x, np.linalg.solve(a, b)))
    levels = result.by_level
    assert levels[0]["vmm_ops"] > 0 and levels[0]["crossbars"] > 0  # A12, A21 at the top
    deepest = max(levels)
    assert levels[deepest]["inv_solves"] > 0  # the diagonal blocks and Schur complements
    assert sum(v["inv_solves"] for v in levels.values()) == result.inv_solves
    assert 0 < result.setup_time < result.wall_time  # programming, Schur complements, kappa


def test_block_jacobi_is_offered_and_needs_more_passes():
    a, b = wishart_factor(32, seed=5), random_rhs(32, seed=6)
    amc = solve(a, b, BLOCKS)
    jacobi = solve(a, b, BLOCKS.with_values("scheme", blocks="jacobi"))
    assert jacobi.circuit == "jacobi" and jacobi.reached_target
    assert jacobi.passes > amc.passes  # the off-diagonal blocks matter


def test_residual_vmm_is_tiled_by_crossbar_width():
    a = wishart_factor(40, seed=1)
    with AnalogMachine(a, BLOCKS, seed=0) as m:
        tiles = m._vmm.tiles
        assert all(t.cols.stop - t.cols.start <= 16 and t.rows.stop - t.rows.start <= 16
                   for t in tiles)  # fmt: skip
        x = random_rhs(40, seed=3)
        assert rel_err(m.vmm(x), a @ x) < 2.0**-20


def test_vmm_tiles_never_read_at_a_railing_attenuation():
    """A block whose row sums would rail the TIAs at full DAC scale starts attenuated (no
    saturated read), raises an under-ranged column once, and keeps its product accurate."""
    w = np.ones((16, 16)) + 0.1 * np.random.default_rng(2).standard_normal((16, 16))
    saturated = []

    class Watching:
        name = "nodal"

        def load(self, circuit, *, batches=False):
            session = get_engine("nodal").load(circuit, batches=batches)

            class Session:
                def solve_batch(self, inputs):
                    try:
                        return session.solve_batch(inputs)
                    except SaturationError:
                        saturated.append(inputs)
                        raise

                def close(self):
                    session.close()

            return Session()

    unit = VmmUnit(w, BLOCKS, Watching(), np.random.SeedSequence(0), Counters())
    assert unit.tiles[0][4] < 1.0  # full scale would pass the ADC range
    for v in (np.ones(16), np.random.default_rng(3).uniform(-1, 1, (16, 4))):
        assert rel_err(unit(v), w @ v) < 0.05
    assert saturated == []


def test_repast_needs_one_crossbar():
    a, b = wishart_factor(32, seed=5), random_rhs(32, seed=6)
    with pytest.raises(InputError, match="one INV crossbar"):
        solve(a, b, BLOCKS.with_values("simulation", scheme="repast"))


@pytest.mark.spice
def test_every_block_solve_agrees_between_ngspice_and_nodal():
    """Each crossbar of a BlockAMC machine (INV blocks, Schur complement, VMM blocks), driven
    by the DAC voltages of its first read, gives the same outputs on both engines."""
    a, b = wishart_factor(32, seed=2), random_rhs(32, seed=3)
    snapshots = crossbar_snapshots(a, b, BLOCKS)
    assert {s.name[:3] for s in snapshots} == {"inv", "vmm"}
    for snap in snapshots:
        volts = [get_engine(e).load(snap.circuit).solve() for e in ("nodal", "spice")]
        assert rel_err(volts[1], volts[0]) < 1e-6, snap.name


@pytest.mark.spice
def test_machine_netlist_runs_in_stock_ngspice(tmp_path):
    """``rerinv netlist --kind machine`` writes every crossbar of a BlockAMC machine into one
    netlist; ``ngspice -b`` solves it, and each crossbar's outputs equal the nodal engine's."""
    import re
    import shutil
    import subprocess

    from rerinv.cli import main

    if shutil.which("ngspice") is None:
        pytest.skip("the ngspice program is not installed")
    a, b = wishart_factor(32, seed=1), random_rhs(32, seed=2)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "machine.cir"
    args = ["netlist", "--matrix", str(tmp_path / "a.npy"), "--rhs", str(tmp_path / "b.npy")]
    sets = ["--set", "array.max_size=16", "--set", "scheme.blocks=blockamc"]
    assert main([*args, "--kind", "machine", *sets, "--out", str(out)]) == 0
    text = subprocess.run(["ngspice", "-b", str(out)], capture_output=True, text=True).stdout
    printed = {m[0]: float(m[1]) for m in re.findall(r"v\((\S+)\)\s*=\s*(\S+)", text)}
    for snap in crossbar_snapshots(a, b, BLOCKS):
        volts = get_engine("nodal").load(snap.circuit).solve()
        got = np.array([printed[f"{snap.name}_{node}"] for node in snap.circuit.outputs])
        assert rel_err(got, volts) < 1e-6, snap.name


def test_tile_plan_takes_the_fewest_reads_then_the_fewest_cells():
    adc = Converter(8, 1.0)  # max_code 127
    # 64 rows: 1-bit cells in one block and 2-bit cells in two blocks both need 26 reads per
    # plane; the 2-bit plan holds half the cells
    assert tile_plan(64, 26, adc, 256) == (2, [slice(0, 32), slice(32, 64)])
    bits, blocks = tile_plan(256, 26, adc, 256)  # 3 x 26 reads beats 7 x 13
    assert bits == 1 and [b.stop - b.start for b in blocks] == [85, 85, 86]
    for n in (5, 64, 130, 300):  # every block's full-scale partial sum fits the ADC
        bits, blocks = tile_plan(n, 24, adc, 64)
        assert blocks[0].start == 0 and blocks[-1].stop == n
        assert max(b.stop - b.start for b in blocks) * (2**bits - 1) <= adc.max_code
    assert tile_plan(64, 26, adc, 256, cell_bits=3)[0] == 3
    with pytest.raises(InputError, match="vmm_cell_bits=8"):
        tile_plan(64, 26, adc, 256, cell_bits=8)


def test_residual_vmm_reads_only_the_difference_to_its_last_input():
    """x, then x + dx on the same grid: the product of x + dx is the previous one plus that of
    dx, read from fewer bit planes, and (exact cells, no truncation) the same integers a fresh
    read gives; an unrelated vector is read whole."""
    w, x = wishart_factor(40, seed=2), random_rhs(40, seed=3)
    dx = 1e-4 * random_rhs(40, seed=4)
    engine, seed = get_engine("nodal"), np.random.SeedSequence(5)
    exact = Config().with_overrides(["scheme.vmm_truncate=false"])

    def fresh():
        return BitSlicedVMM(w, exact, engine, seed, weight_bits=24, input_bits=24)

    vmm = fresh()
    vmm(x)
    ops = vmm.ops
    updated = vmm(x + dx)
    first_read = fresh()
    np.testing.assert_array_equal(updated, first_read(x + dx))
    assert vmm.ops - ops < 0.8 * first_read.ops  # dx's leading planes are zero
    assert rel_err(updated, w @ (x + dx)) < 2.0**-20
    other = random_rhs(40, seed=9)
    before, reference = vmm.ops, fresh()
    np.testing.assert_array_equal(vmm(other), reference(other))
    assert vmm.ops - before == reference.ops  # read whole, like a fresh VMM


def test_difference_reads_skip_low_weight_slices_within_half_the_rounding_error():
    """A refinement-like sequence x_k = x_{k-1} + dx_k with shrinking dx: truncated difference
    reads use fewer VMM ops than exact ones, and the kept integer product never strays from
    the exact ``W_int @ x_int`` by more than the budget, ``n 2**(input_bits - 2)`` units:
    half the weights' own rounding error. A whole read starts exact again."""
    n, bits = 40, 24
    w = wishart_factor(n, seed=7)
    rng = np.random.default_rng(8)
    steps = [random_rhs(n, seed=9)] + [2.0**-k * rng.uniform(-1, 1, n) for k in range(3, 40, 3)]
    engine, seed = get_engine("nodal"), np.random.SeedSequence(10)
    w_int = np.round(np.abs(w) / np.max(np.abs(w)) * (2**bits - 1)).astype(np.int64)
    w_int = (w_int * np.sign(w).astype(np.int64)).astype(object)
    ops = {}
    for truncate in (False, True):
        config = Config().with_values("scheme", vmm_truncate=truncate)
        vmm = BitSlicedVMM(w, config, engine, seed, weight_bits=bits, input_bits=bits)
        x, worst = np.zeros(n), 0
        for k, dx in enumerate(steps):
            x = x + dx
            vmm(x)
            if k == 0:
                whole = vmm.ops
            scale, x_int, kept = vmm._last
            worst = max(worst, max(abs(int(e)) for e in kept - w_int @ x_int.astype(object)))
        assert worst <= (n * 2 ** (bits - 2) if truncate else 0)
        ops[truncate] = vmm.ops - whole  # of the difference reads
        other = random_rhs(n, seed=11)  # a whole read: exact again
        vmm(other)
        assert all(vmm._last[2] == w_int @ vmm._last[1].astype(object))
    assert ops[True] < 0.8 * ops[False]
