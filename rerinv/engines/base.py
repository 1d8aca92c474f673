"""What every engine shares: the Session protocol and the input and rail checks."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rerinv.errors import InputError, SaturationError
from rerinv.hw.circuit import Circuit

#: An amplifier output within this fraction of the rail counts as railed.
RAIL_MARGIN = 1e-3


class Session(Protocol):
    circuit: Circuit

    def solve(self, inputs: np.ndarray | None = None) -> np.ndarray:
        """Outputs (V) for input voltages ``inputs`` (V); the circuit's own when None."""
        ...

    def solve_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (K, n_outputs) for K independent input vectors (K, n_inputs)."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def load(self, circuit: Circuit, *, batches: bool = False) -> Session:
        """A session for ``circuit``; ``batches``: it will only be read through
        ``solve_batch`` (an engine may then prepare just that)."""
        ...


def check_inputs(circuit: Circuit, inputs: np.ndarray | None) -> np.ndarray:
    if inputs is None:
        return circuit.input_values
    inputs = np.asarray(inputs, dtype=float)
    if inputs.shape != (len(circuit.inputs),):
        raise InputError(f"expected {len(circuit.inputs)} input voltages, got shape {inputs.shape}")
    if not np.all(np.isfinite(inputs)):
        raise InputError("input voltages must be finite")
    return inputs


def check_rails(circuit: Circuit, nodes: tuple[str, ...], volts: np.ndarray, engine: str) -> None:
    """Raise :class:`SaturationError` when any amplifier output is at or beyond the rails."""
    limit = circuit.opamp.v_rail * (1 - RAIL_MARGIN)
    railed = np.flatnonzero(np.abs(volts) >= limit)
    if railed.size:
        names = [nodes[k] for k in railed]
        shown = ", ".join(
            f"{names[k]}={volts[railed[k]]:+.4g} V" for k in range(min(5, len(names)))
        )
        raise SaturationError(
            f"{len(names)} amplifier output(s) at the +-{circuit.opamp.v_rail:g} V rails "
            f"({engine} engine): {shown}{' ...' if len(names) > 5 else ''}. The circuit did not "
            "settle to a solution: lower the input scale, or check that the matrix is stable "
            "and well conditioned.",
            nodes=names,
            values=volts[railed],
        )
