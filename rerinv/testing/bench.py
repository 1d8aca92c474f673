"""The bench a testbench works on: one configuration, one engine, one seed, and the studies
(a scheme solve, a VMM read, a settling step) returned with everything needed to explain and
reproduce them when an assertion fails.

Every draw of a bench flows from its ``seed``: ``bench.rng`` (the test's own numbers) is
``numpy.random.default_rng(seed)``; a solve programs its arrays exactly as
``rerinv solve --seed <seed>`` does, a VMM read as ``rerinv netlist --kind vmm --seed <seed>``,
a settling step as ``rerinv settle --seed <seed>``; transistor-level amplifiers with mismatch
draw it from ``opamp.mismatch_seed = <seed>`` (another chip for every seed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rerinv.analog.vmm import VmmRead, build_vmm, read_vmm
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import Circuit
from rerinv.schemes import SolveResult, solve
from rerinv.studies.transient.settle import SettleReport, settle_circuit, step_case


class _Forward:
    """Reads what it does not have itself from the wrapped study (``.result``)."""

    result: Any

    def __getattr__(self, name: str) -> Any:
        if name == "result":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.result, name)


@dataclass(frozen=True, eq=False)
class Solved(_Forward):
    """A scheme solve (:class:`~rerinv.schemes.SolveResult`, whose fields it forwards:
    ``solved.effective_bits``) with its system, configuration and seed."""

    result: SolveResult
    a: np.ndarray
    b: np.ndarray
    config: Config
    seed: int


@dataclass(frozen=True, eq=False)
class VmmReadout(_Forward):
    """One read of a VMM crossbar (:class:`~rerinv.analog.vmm.VmmRead`: ``y``, ``exact``,
    ``lsb``) with the circuit (driven at the read's input voltages) and its seed."""

    result: VmmRead
    a: np.ndarray
    circuit: Circuit
    config: Config
    seed: int


@dataclass(frozen=True, eq=False)
class Settled(_Forward):
    """A settling step (:class:`~rerinv.studies.transient.settle.SettleReport`) with the
    circuit (driven at the step's final input voltages) and its seed."""

    result: SettleReport
    a: np.ndarray
    circuit: Circuit
    config: Config
    seed: int


class Bench:
    """Configuration, engine and seed of one test (the ``rerinv`` fixture).

    Parameters
    ----------
    config : Config
        The configuration; ``engine`` (when given) replaces ``simulation.engine``.
    seed : int
        Every draw of the bench flows from it (module docstring).
    engine : {"spice", "nodal"}, optional
    """

    def __init__(self, config: Config, *, seed: int, engine: str | None = None) -> None:
        if engine is not None:
            config = config.with_values("simulation", engine=engine)
        if config.opamp.model == "sky130" and config.opamp.mismatch:
            config = config.with_values("opamp", mismatch_seed=seed)
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._sessions: list = []

    @property
    def engine(self) -> str:
        return self.config.simulation.engine

    def solve(self, a, b, **simulation: Any) -> Solved:
        """Solve ``a x = b`` with the bench's scheme, target and budget; keyword arguments
        replace ``simulation`` values for this solve (``target_bits=20``, ``scheme="krylov"``,
        ``max_passes=8``)."""
        config = self.config.with_values("simulation", **simulation) if simulation else self.config
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return Solved(solve(a, b, config, seed=self.seed), a, b, config, self.seed)

    def vmm(self, a, v) -> VmmReadout:
        """Read ``A^T v`` once on a VMM crossbar programmed from the bench's seed, through
        the DAC and the ADC (:func:`rerinv.analog.vmm.read_vmm`)."""
        a = np.asarray(a, dtype=float)
        crossbar = build_vmm(a, self.config, seed=self.seed)
        read = read_vmm(crossbar, v, get_engine(self.engine))
        circuit = replace(crossbar.circuit, input_values=read.inputs)
        return VmmReadout(read, a, circuit, self.config, self.seed)

    def settle(self, kind: str, a, *, eps: float | None = None, excite: str = "random") -> Settled:
        """Step the INV (``kind="inv"``, the crossbar a solve with this seed uses) or VMM
        crossbar of ``a`` and measure its settling in ngspice
        (:func:`rerinv.studies.transient.settle.settle_circuit`); ``eps`` is the band relative
        to the ADC range (default half an ADC step)."""
        a = np.asarray(a, dtype=float)
        circuit, inputs, arrays = step_case(kind, a, self.config, seed=self.seed, excite=excite)
        report = settle_circuit(circuit, inputs, self.config, eps=eps, arrays=arrays)
        circuit = replace(circuit, input_values=inputs)
        return Settled(report, a, circuit, self.config, self.seed)

    def load(self, circuit: Circuit):
        """An engine session for ``circuit`` on the bench's engine, closed with the bench."""
        session = get_engine(self.engine).load(circuit)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        while self._sessions:
            self._sessions.pop().close()
