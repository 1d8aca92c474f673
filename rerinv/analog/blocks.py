"""Matrices larger than one crossbar: block preconditioners built from crossbar-sized units.

``BlockInverse`` is BlockAMC (Pan, Zuo, Sun et al., arXiv 2401.10042): ``A`` is split 2 x 2,
recursively until every diagonal block fits ``array.max_size``::

    A = [[A11, A12],      z1 = A11^-1 b1              (INV crossbar(s) of A11)
         [A21, A22]]      x2 = S^-1 (b2 - A21 z1)      (VMM of A21, INV of S)
                          x1 = z1 - A11^-1 (A12 x2)    (VMM of A12, INV of A11)

with the Schur complement ``S = A22 - A21 A11^-1 A12`` formed by the hardware itself when the
blocks are programmed: one ``A11^-1`` solve per column of ``A12`` and a VMM of ``A21`` on each
(counted at that level), then mapped to its own INV crossbar (symmetrised when ``A`` is
symmetric: the host knows that). The independent column solves run in a batch.

``BlockJacobi`` is the simpler block-diagonal preconditioner: the inverses of the diagonal
blocks alone, for comparison; its blocks are independent and run in parallel on a pooled
engine (``simulation.workers``). BlockAMC's steps each wait for the one before; its independent
columns (the Schur complement's, a batch) are split between the workers holding the crossbar.

The off-diagonal VMMs are plain ``device.bits`` crossbars with DAC and ADC
(:class:`~rerinv.analog.units.VmmUnit`): the preconditioner only has to be good enough for the
outer high-precision loop to contract.
Every unit counts its INV solves, VMM ops and crossbars at its block level (0 = the whole).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rerinv.analog.routes import build_preconditioner
from rerinv.analog.units import Counters, InvUnit, VmmUnit
from rerinv.config import Config
from rerinv.engines import parallel_map
from rerinv.hw.circuit import Circuit
from rerinv.hw.scaling import is_symmetric
from rerinv.seeds import seed_sequence, spawn


def make_inverse(a, config: Config, engine, seed, counters: Counters, read_rng, level: int = 1):
    """An INV crossbar unit when ``a`` fits one crossbar or ``scheme.blocks`` is ``tiled`` (one
    loop over crossbar tiles), else a block preconditioner of ``scheme.blocks`` structure."""
    tiled = config.scheme.blocks == "tiled"
    if a.shape[0] <= config.array.max_size or tiled:
        crossbar = build_preconditioner(a, config, seed=seed, tiled=tiled)
        return InvUnit(crossbar, engine, seed, counters, read_rng, level)
    if config.scheme.blocks == "jacobi":
        return BlockJacobi(a, config, engine, seed, counters, read_rng, level)
    return BlockInverse(a, config, engine, seed, counters, read_rng, level)


class BlockInverse:
    """BlockAMC 2 x 2 recursive block inverse (see the module docstring)."""

    def __init__(self, a, config: Config, engine, seed, counters, read_rng, level: int = 1):
        a = np.asarray(a, dtype=float)
        self.n, self.h = a.shape[0], -(-a.shape[0] // 2)
        h = self.h
        seeds = spawn(seed, 4)
        a11, a12, a21, a22 = a[:h, :h], a[:h, h:], a[h:, :h], a[h:, h:]
        self.a11 = make_inverse(a11, config, engine, seeds[0], counters, read_rng, level + 1)
        self.v12 = VmmUnit(a12, config, engine, seeds[1], counters, level)
        self.v21 = VmmUnit(a21, config, engine, seeds[2], counters, level)
        # the Schur complement, formed by the hardware: A11^-1 on every column of A12
        z = self.a11(a12)  # one batch of independent column solves
        schur = a22 - self.v21(z)
        if is_symmetric(a):
            schur = (schur + schur.T) / 2
        self.s = make_inverse(schur, config, engine, seeds[3], counters, read_rng, level + 1)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)  # (n,) or (n, K): K independent vectors
        z1 = self.a11(v[: self.h])
        x2 = self.s(v[self.h :] - self.v21(z1))
        x1 = z1 - self.a11(self.v12(x2))
        return np.concatenate([x1, x2])

    def add_slice(self) -> bool:
        return False

    def set_dac_slices(self, slices: int) -> None:
        self.a11.set_dac_slices(slices)
        self.s.set_dac_slices(slices)

    def close(self) -> None:
        for part in (self.a11, self.v12, self.v21, self.s):
            part.close()


class BlockJacobi:
    """Block-diagonal preconditioner: ``diag(A_kk^-1)`` on crossbar-sized diagonal blocks."""

    def __init__(self, a, config: Config, engine, seed, counters, read_rng, level: int = 1):
        a = np.asarray(a, dtype=float)
        size = config.array.max_size
        self.engine, self.read_noise = engine, bool(config.device.read_noise)
        self.edges = list(range(0, a.shape[0], size)) + [a.shape[0]]
        seeds = spawn(seed, len(self.edges) - 1)
        self.units = [
            InvUnit(
                build_preconditioner(a[lo:hi, lo:hi], config, seed=s),
                engine,
                s,
                counters,
                read_rng,
                level,
            )
            for lo, hi, s in zip(self.edges[:-1], self.edges[1:], seeds, strict=True)
        ]

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        jobs = list(zip(self.units, self.edges[:-1], self.edges[1:], strict=True))

        def apply(job):
            unit, lo, hi = job
            return unit(v[lo:hi])  # (n,) or (n, K)

        if self.read_noise:  # one generator for every read: in order
            return np.concatenate([apply(job) for job in jobs])
        return np.concatenate(parallel_map(self.engine, apply, jobs))  # independent blocks

    def add_slice(self) -> bool:
        return False

    def set_dac_slices(self, slices: int) -> None:
        for unit in self.units:
            unit.set_dac_slices(slices)

    def close(self) -> None:
        for unit in self.units:
            unit.close()


@dataclass(frozen=True)
class CrossbarSnapshot:
    """One crossbar of a (block) machine, with the DAC voltages of its first read while the
    machine applied its preconditioner to a vector."""

    name: str
    circuit: Circuit  #: ``input_values`` hold those voltages


class _Recording:
    """Engine wrapper: remembers every loaded circuit and the inputs of its first solve."""

    def __init__(self, engine):
        self.engine, self.name, self.seen = engine, engine.name, {}

    def load(self, circuit: Circuit, *, batches: bool = False):
        session, seen = self.engine.load(circuit, batches=batches), self.seen

        class _Session:
            def solve(self, inputs=None):
                seen.setdefault(id(circuit), (circuit, np.array(inputs, dtype=float)))
                return session.solve(inputs)

            def solve_batch(self, inputs):
                seen.setdefault(id(circuit), (circuit, np.array(inputs, dtype=float)[0]))
                return session.solve_batch(inputs)

            def close(self):
                session.close()

        return _Session()


def crossbar_snapshots(a, b, config: Config, *, seed=0) -> list[CrossbarSnapshot]:
    """Every crossbar of the preconditioner for ``a`` (one crossbar, or the blocks of
    ``scheme.blocks`` when ``a`` is larger than ``array.max_size``), each with the DAC
    voltages of its first read while the preconditioner is applied to ``b`` (on the nodal
    engine): the netlists ``rerinv netlist --kind blocks`` writes."""
    from rerinv.analog.units import Counters
    from rerinv.engines import get_engine

    recorder = _Recording(get_engine("nodal"))
    unit = make_inverse(
        np.asarray(a, dtype=float), config, recorder, seed_sequence(seed), Counters(),
        np.random.default_rng(0), level=0,
    )  # fmt: skip
    try:
        unit(np.asarray(b, dtype=float))
    finally:
        unit.close()
    snapshots = []
    for k, (circuit, inputs) in enumerate(recorder.seen.values()):
        kind = "inv" if circuit.opamps else "vmm"
        snapshots.append(CrossbarSnapshot(f"{kind}{k:03d}", replace(circuit, input_values=inputs)))
    return snapshots


def machine_circuit(a, b, config: Config, *, seed=0) -> tuple[Circuit, tuple[str, ...]]:
    """Every crossbar of :func:`crossbar_snapshots` side by side in one circuit (node prefixes
    ``<name>_``), and the header lines that say what its nodes are: what
    ``rerinv netlist --kind machine`` writes and stock ``ngspice -b`` solves in one operating
    point."""
    from rerinv.errors import InputError
    from rerinv.hw.circuit import merge_circuits

    if not np.any(b):
        raise InputError("the right-hand side is all zeros: no crossbar would be driven")
    snapshots = crossbar_snapshots(a, b, config, seed=seed)
    names = [s.name for s in snapshots]
    circuit = merge_circuits(
        [s.circuit for s in snapshots], [f"{n}_" for n in names],
        f"rerinv analog machine for a {len(b)}x{len(b)} matrix, {len(names)} crossbars",
    )  # fmt: skip
    header = (
        f"{len(names)} crossbars ({', '.join(names)}), each with the DAC voltages of its first "
        "read while the machine applied its preconditioner to b; node <crossbar>_xK / _yK are "
        "its outputs (INV: x, VMM: y)",
    )
    return circuit, header
