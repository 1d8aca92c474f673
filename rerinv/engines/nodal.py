"""The ``nodal`` engine: modified nodal analysis of the same :class:`Circuit`, in scipy.

It stamps exactly the elements the SPICE netlist holds (resistors, input sources, op-amps as
voltage-controlled sources with the model's DC gain, offset and output resistance; inverter and
TIA stages expanded as in ``pyspice_models/``), factorises once and re-solves per input vector.
Transistor-level (``sky130``) amplifiers are stamped as the linear model ngspice extracts from
them at their operating point (:func:`rerinv.engines.amplifier.linear_model`).
DC only and linear: when the linear solution would put an amplifier beyond its rails the
circuit saturates, which this engine does not model, so it raises
:class:`rerinv.errors.SaturationError` rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from rerinv.engines.amplifier import linear_model
from rerinv.engines.base import RAIL_MARGIN, check_inputs, check_rails
from rerinv.errors import SimulationError, UnsupportedByEngineError
from rerinv.hw.circuit import Circuit
from rerinv.hw.netlist import MIN_R_OUT

GROUND = "0"


class _Builder:
    """Collects MNA stamps (vectorised); node voltages first, then branch currents."""

    def __init__(self) -> None:
        self.nodes: dict[str, int] = {}
        self.two_terminal: list[tuple[list[str], list[str], np.ndarray]] = []
        self.branches = 0
        self.branch_rows: list[tuple[str, list[tuple[str, float]], float]] = []

    def node(self, name: str) -> int:
        if name == GROUND:
            return -1
        return self.nodes.setdefault(name, len(self.nodes))

    def conductances(self, a: list[str], b: list[str], g) -> None:
        """Conductances ``g[k]`` (S) between nodes ``a[k]`` and ``b[k]``."""
        for name in (*a, *b):
            if name != GROUND and name not in self.nodes:
                self.nodes[name] = len(self.nodes)
        self.two_terminal.append((list(a), list(b), np.asarray(g, dtype=float)))

    def voltage_source(self, node: str, terms: list[tuple[str, float]], const: float) -> int:
        """Branch forcing ``v(node) - sum(c * v(n)) = const``; its current leaves ``node``.
        Returns the branch index."""
        self.node(node)
        for n, _ in terms:
            self.node(n)
        self.branch_rows.append((node, terms, const))
        self.branches += 1
        return self.branches - 1

    def opamps(self, pairs: list[tuple[str, str]], gain, offset, r_out) -> None:
        """Op-amps with grounded non-inverting inputs: ``v(oi) = gain (-vos - v(inn))``, then
        ``r_out`` to the output node."""
        for inn, out in pairs:
            self.voltage_source(f"{out}#oi", [(inn, -gain)], -gain * offset)
        outs = [out for _, out in pairs]
        self.conductances([f"{o}#oi" for o in outs], outs, np.full(len(outs), 1.0 / r_out))

    def stamps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, values) of every conductance stamp, ground removed."""
        index = {**self.nodes, GROUND: -1}
        parts = [(np.array([index[x] for x in a]), np.array([index[x] for x in b]), g)
                 for a, b, g in self.two_terminal if len(g)]  # fmt: skip
        if not parts:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        i = np.concatenate([p[0] for p in parts])
        j = np.concatenate([p[1] for p in parts])
        g = np.concatenate([p[2] for p in parts])
        rows = np.concatenate([i, j, i, j])
        cols = np.concatenate([i, j, j, i])
        vals = np.concatenate([g, g, -g, -g])
        keep = (rows >= 0) & (cols >= 0)
        return rows[keep], cols[keep], vals[keep]


@dataclass(eq=False)
class NodalSession:
    """A factorised circuit: each solve is one sparse triangular solve pair.

    Batches: once a session has solved as many vectors as the circuit has inputs, it solves
    one identity batch to get the circuit's transfer from inputs to outputs and amplifier
    outputs (the circuit is linear) and answers every later batch with one matrix product:
    the same numbers to rounding, and what makes the many column solves of BlockAMC's Schur
    complements cheap."""

    circuit: Circuit
    lu: spla.SuperLU
    n_nodes: int
    input_branches: np.ndarray
    constant_rhs: np.ndarray
    output_index: np.ndarray
    monitor_index: np.ndarray
    monitored: tuple[str, ...]
    node_index: dict[str, int]
    _transfer: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)
    _solved: int = field(default=0, init=False, repr=False)  #: vectors solved in batches

    def solve(self, inputs: np.ndarray | None = None) -> np.ndarray:
        x = self.lu.solve(self._rhs(check_inputs(self.circuit, inputs)))
        if not np.all(np.isfinite(x)):
            raise SimulationError(f"nodal solve of {self.circuit.title} gave non-finite values")
        check_rails(self.circuit, self.monitored, x[self.monitor_index], "nodal")
        return x[self.output_index]

    def solve_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (K, n_outputs) for K input vectors (K, n_inputs)."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        if inputs.shape[1:] != (len(self.circuit.inputs),) or not np.all(np.isfinite(inputs)):
            for row in inputs:  # the one-vector check says what is wrong
                check_inputs(self.circuit, row)
        n_in, n_out = inputs.shape[1], len(self.output_index)
        watched = np.concatenate([self.output_index, self.monitor_index])
        self._solved += inputs.shape[0]
        if self._transfer is None and self._solved >= n_in:
            at_zero = self._solve_columns(np.zeros((0, n_in)))[watched, 0]  # offsets, if any
            transfer = self._solve_columns(np.eye(n_in))[watched] - at_zero[:, None]
            self._transfer = (transfer, at_zero)
        if self._transfer is not None:
            transfer, at_zero = self._transfer
            y = at_zero[:, None] + transfer @ inputs.T
        else:
            y = self._solve_columns(inputs)[watched]
        if not np.all(np.isfinite(y)):
            raise SimulationError(f"nodal solve of {self.circuit.title} gave non-finite values")
        amplifiers = y[n_out:]
        limit = self.circuit.opamp.v_rail * (1 - RAIL_MARGIN)
        for column in np.flatnonzero(np.any(np.abs(amplifiers) >= limit, axis=0))[:1]:
            check_rails(self.circuit, self.monitored, amplifiers[:, column], "nodal")
        return y[:n_out].T

    def _solve_columns(self, inputs: np.ndarray) -> np.ndarray:
        """Every unknown (rows) for the input vectors ``inputs`` (K, n_inputs); one column
        of zero inputs when K = 0."""
        k = max(inputs.shape[0], 1)
        rhs = np.repeat(self.constant_rhs[:, None], k, axis=1)
        if inputs.shape[0]:
            rhs[self.n_nodes + self.input_branches, :] = inputs.T
        return self.lu.solve(rhs)

    def amplifier_voltages(self, inputs: np.ndarray | None = None) -> np.ndarray:
        """Every amplifier output (``monitored`` order) of the linear circuit, without the
        rail check: how far beyond the rails a DC point would lie."""
        return self.lu.solve(self._rhs(check_inputs(self.circuit, inputs)))[self.monitor_index]

    def dissipated_power(self, inputs: np.ndarray | None = None) -> float:
        """Power the circuit's resistors (cells, wires, r_in, feedback) dissipate (W)."""
        x = self.lu.solve(self._rhs(check_inputs(self.circuit, inputs)))
        v = np.append(x[: self.n_nodes], 0.0)  # index -1 is ground
        a = np.array([self.node_index.get(r[0], -1) for r in self.circuit.resistors])
        b = np.array([self.node_index.get(r[1], -1) for r in self.circuit.resistors])
        ohms = np.array([r[2] for r in self.circuit.resistors])
        return float(np.sum((v[a] - v[b]) ** 2 / ohms))

    def _rhs(self, inputs: np.ndarray) -> np.ndarray:
        rhs = self.constant_rhs.copy()
        rhs[self.n_nodes + self.input_branches] = inputs
        return rhs

    def close(self) -> None:
        """Nothing to free beyond Python objects (kept for symmetry with ngspice)."""


def _railed_node(circuit: Circuit, out: str) -> str:
    """The node whose voltage the rails limit: a macro-model clamps before its output
    resistance (``<out>#oi``, as ``pyspice_models/opamp.lib`` does); a transistor-level
    amplifier's Thevenin source is a small-signal fiction (its output stage is a current
    source behind ``r_out``), so its output itself."""
    return out if circuit.opamp.model == "sky130" else f"{out}#oi"


class NodalEngine:
    """Fast DC engine for big sweeps; agrees with ngspice on the same circuit."""

    name = "nodal"

    def load(self, circuit: Circuit, *, batches: bool = False) -> NodalSession:
        if circuit.opamp.model == "sky130" and circuit.opamp.mismatch:
            raise UnsupportedByEngineError(
                "the nodal engine stamps one linear model for every sky130 amplifier and "
                "cannot hold per-device mismatch draws: use --engine spice (or "
                "opamp.mismatch = false)"
            )
        # macro-models: the configured values; sky130: extracted from the transistors
        amp = linear_model(circuit.opamp)
        gain, offset, r_out = amp.gain, amp.offset, max(amp.r_out, MIN_R_OUT)
        b = _Builder()
        inputs = [b.voltage_source(node, [], 0.0) for node in circuit.inputs]
        if circuit.resistors:
            a, c, ohms = zip(*circuit.resistors, strict=True)
            b.conductances(a, c, 1.0 / np.asarray(ohms, dtype=float))
        b.opamps(circuit.opamps, gain, offset, r_out)
        mids = [f"inverter{k}#n" for k in range(len(circuit.inverters))]
        if circuit.inverters:
            a, out, r1, r2 = zip(*circuit.inverters, strict=True)
            b.conductances(a, mids, 1.0 / np.asarray(r1, dtype=float))
            b.conductances(mids, out, 1.0 / np.asarray(r2, dtype=float))
            b.opamps(list(zip(mids, out, strict=True)), gain, offset, r_out)
        if circuit.tias:
            a, out, rf = zip(*circuit.tias, strict=True)
            b.conductances(a, out, 1.0 / np.asarray(rf, dtype=float))
            b.opamps(list(zip(a, out, strict=True)), gain, offset, r_out)
        # railing is decided on the op-amps' internal (pre-r_out) outputs, as the SPICE clamp is
        amplifiers = circuit.amplifier_outputs

        n = len(b.nodes)
        stamp_rows, stamp_cols, stamp_vals = b.stamps()
        rows, cols, vals = stamp_rows.tolist(), stamp_cols.tolist(), stamp_vals.tolist()
        rhs = np.zeros(n + b.branches)
        for k, (node, terms, const) in enumerate(b.branch_rows):
            i = b.nodes[node]
            # KCL: the branch current leaves `node`; constraint row: v(node) - sum c v(n) = const
            rows += [i, n + k]
            cols += [n + k, i]
            vals += [1.0, 1.0]
            for other, coefficient in terms:
                j = b.node(other)
                if j >= 0:
                    rows.append(n + k)
                    cols.append(j)
                    vals.append(-coefficient)
            rhs[n + k] = const
        matrix = sp.csc_matrix((vals, (rows, cols)), shape=(n + b.branches,) * 2)
        try:
            lu = spla.splu(matrix)
        except RuntimeError as exc:
            raise SimulationError(f"nodal matrix of {circuit.title} is singular: {exc}") from exc
        return NodalSession(
            circuit=circuit,
            lu=lu,
            n_nodes=n,
            input_branches=np.asarray(inputs, dtype=int),
            constant_rhs=rhs,
            output_index=np.array([b.nodes[o] for o in circuit.outputs]),
            monitor_index=np.array([b.nodes[_railed_node(circuit, out)] for out in amplifiers]),
            monitored=amplifiers,
            node_index=b.nodes,
        )
