"""The ``spice`` engine: ngspice through PySpice's shared-library interface.

ngspice keeps global state, so there is one instance per process (parallel work uses
processes). A session parses its circuit once and keeps it loaded: :meth:`NgspiceSession.solve`
``alter``s the input sources that changed and re-runs the operating point;
:meth:`NgspiceSession.solve_batch` keeps a second, batch variant of the circuit loaded (K
input vectors as VCCS gains selected by one ``dc`` sweep, see
:func:`rerinv.hw.netlist.to_spice`) and only ``alter``s the gains that changed. Each variant is
parsed when first needed: a crossbar only ever read in batches (the residual VMM's tiles) is
parsed once, not twice.

Matrix solver: KLU when the loaded ngspice has it (ngspice >= 42 built with KLU, every build
from 43 on; Debian 12 gets 46 from bookworm-backports), else Sparse 1.3, which re-orders the
dense crossbar block on every analysis (seconds at N = 128). :func:`ngspice_solver` says which
one this process uses; every circuit loaded here selects it in its ``.options`` line, because
even ngspice 46 uses Sparse unless told otherwise. Transients run on Sparse: with KLU, ``tran``
of the INV crossbar crawls or hangs for N >= 16.

Every ngspice analysis rebuilds and re-orders the circuit matrix (``CKTdoJob`` resets the
circuit), so an operating point costs a matrix set-up even when only a source changed; a
``dc`` sweep pays it once for all its points. See docs/benchmarks.md for the measured costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rerinv.engines.amplifier import trimmed
from rerinv.engines.base import check_inputs, check_rails
from rerinv.engines.ngspice_circuits import (  # noqa: F401  (_loaded: the tests count it)
    FAILURE_MARKERS,
    _load,
    _loaded,
    _remove,
    _select,
)
from rerinv.engines.ngspice_lib import (  # noqa: F401  (re-exported: the engine's API)
    KLU_FIRST_VERSION,
    SOLVER_ENV,
    SOLVERS,
    _command,
    find_ngspice_library,
    ngspice,
    ngspice_has_klu,
    ngspice_solver,
    ngspice_version,
    set_ngspice_solver,
    solver_options,
)
from rerinv.errors import SimulationError
from rerinv.hw.circuit import Circuit
from rerinv.hw.netlist import BATCH_SELECTOR, batch_gain_name, source_name, to_spice

#: ngspice truncates longer commands (PySpice refuses them); joined ``alter``s stay below.
_MAX_COMMAND = 1000


def analysis_statistics() -> dict[str, float]:
    """ngspice's counters (``rusage all``) of its current circuit, cumulative since it was
    loaded: ``"Netlist parsing time"``, ``"Total analysis time"``, ``"Matrix reorder time"``,
    ``"Matrix factor time"``, ``"Matrix solve time"``, ``"Total iterations"``, ... (seconds
    or counts). Not every ngspice build reports every counter."""
    stats = {}
    for line in _command("rusage all").splitlines():
        name, sep, value = line.partition("=")
        try:
            number = float(value.split()[0]) if sep and value.split() else None
        except ValueError:
            number = None
        if number is not None:
            stats[name.strip()] = number
    return stats


def _joined(commands: list[str]) -> Iterator[str]:
    """``commands`` joined with ``;`` into command lines ngspice takes whole."""
    line = ""
    for command in commands:
        if line and len(line) + 3 + len(command) > _MAX_COMMAND:
            yield line
            line = ""
        line = f"{line} ; {command}" if line else command
    if line:
        yield line


@dataclass(eq=False)
class NgspiceSession:
    """A circuit loaded into ngspice, ready to be re-solved for new inputs."""

    circuit: Circuit
    circuit_id: int | None  #: the loaded plain circuit; None until a single solve needs it
    applied: np.ndarray = field(repr=False)
    monitored: tuple[str, ...] = ()
    solver: str = "sparse"  #: the matrix solver its circuits are loaded with
    closed: bool = field(default=False, repr=False)
    batch_id: int | None = field(default=None, repr=False)  #: the loaded batch variant
    batch_gains: np.ndarray | None = field(default=None, repr=False)  #: its (capacity, n) gains
    batch_loads: int = field(default=0, repr=False)  #: times the batch variant was parsed

    def solve(self, inputs: np.ndarray | None = None) -> np.ndarray:
        inputs = check_inputs(self.circuit, inputs)
        self._plain()
        for k in np.flatnonzero(inputs != self.applied):
            _command(f"alter {source_name(self.circuit.inputs[k])} dc = {inputs[k]:.17g}")
        self.applied = inputs.copy()
        volts = _analysis("op", "op", self.circuit, self.monitored)[:, 0]
        check_rails(self.circuit, self.monitored, volts, "spice")
        return volts[: len(self.circuit.outputs)]

    def solve_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (K, n_outputs) for K input vectors (K, n_inputs), solved in one ``dc``
        sweep of the session's batch variant (one matrix set-up for all K).

        The batch variant is parsed on the first call (and again only when K exceeds every
        earlier K); later calls ``alter`` the gains that changed."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        if inputs.shape[0] == 1 and self.batch_id is None:
            return self.solve(inputs[0])[None, :]
        for row in inputs:
            check_inputs(self.circuit, row)
        if inputs.shape[0] == 0:
            return np.empty((0, len(self.circuit.outputs)))
        self._check_open()
        self._set_batch(inputs)
        _select(self.batch_id)
        volts = _analysis(
            f"dc {BATCH_SELECTOR} 0 {inputs.shape[0] - 1} 1", "dc", self.circuit, self.monitored
        )
        for column in volts.T:
            check_rails(self.circuit, self.monitored, column, "spice")
        return volts[: len(self.circuit.outputs)].T

    def _set_batch(self, inputs: np.ndarray) -> None:
        """Load ``inputs`` into the batch variant: parse it when missing or too small, else
        ``alter`` the gains that differ from the loaded ones."""
        k = inputs.shape[0]
        if self.batch_id is None or self.batch_gains.shape[0] < k:
            if self.batch_id is not None:
                _remove(self.batch_id)
                self.batch_id = None
            text = to_spice(self.circuit, options=solver_options(self.solver), batch=inputs)
            self.batch_id = _load(self.circuit, text)
            self.batch_gains = inputs.copy()
            self.batch_loads += 1
            return
        rows, cols = np.nonzero(self.batch_gains[:k] != inputs)
        if rows.size:
            nodes = self.circuit.inputs
            _select(self.batch_id)
            commands = [
                f"alter {batch_gain_name(j, nodes[c])} gain = {inputs[j, c]:.17g}"
                for j, c in zip(rows, cols, strict=True)
            ]
            try:
                for line in _joined(commands):
                    _command(line)
            except SimulationError:
                _remove(self.batch_id)  # partly altered: parse afresh next time
                self.batch_id = self.batch_gains = None
                raise
            self.batch_gains[:k] = inputs

    def transient(
        self, step: float, stop: float, inputs: np.ndarray, rise: float = 1e-11
    ) -> dict[str, np.ndarray]:
        """Step response: every input source ramps from 0 V at ``t = 0`` to ``inputs`` (V) at
        ``t = rise`` (s), then holds; ngspice runs ``tran step stop 0 step`` (``step`` is also
        the largest internal time step, s) from the operating point with all inputs at 0 V.

        Returns ``{"time": t, node: v(node), ...}`` for every monitored node (outputs first,
        then the other amplifier outputs), as float64 arrays over ngspice's accepted time
        points. The sources keep their DC values, so :meth:`solve` is unaffected. The
        transient runs on the Sparse solver (KLU stalls on it); the session's solver is
        restored afterwards.
        """
        inputs = check_inputs(self.circuit, inputs)
        if not 0 < rise < stop or not 0 < step <= stop:
            raise SimulationError(f"bad transient times: step={step}, stop={stop}, rise={rise}")
        self._plain()
        for node, value in zip(self.circuit.inputs, inputs, strict=True):
            _command(f"alter @{source_name(node)}[pwl] = [ 0 0 {rise:.17g} {value:.17g} ]")
        monitored = ("time", *self.monitored)
        klu = self.solver == "klu"
        if klu:
            _command("option sparse")
        try:
            rows = _analysis(
                f"tran {step:.17g} {stop:.17g} 0 {step:.17g}", "tran", self.circuit, monitored
            )
        finally:
            if klu:
                _select(self.circuit_id)
                _command("option klu")
        return {node: row.copy() for node, row in zip(monitored, rows, strict=True)}

    def statistics(self, batch: bool = False) -> dict[str, float]:
        """:func:`analysis_statistics` of this session's circuit (its batch variant when
        ``batch``): parse, set-up, re-order, factor and solve times so far."""
        self._check_open()
        circuit_id = self.batch_id if batch else self.circuit_id
        if circuit_id is None:
            raise SimulationError(
                f"this session has no {'batch' if batch else 'plain'} variant loaded yet"
            )
        _select(circuit_id)
        return analysis_statistics()

    def _plain(self) -> None:
        """Make the plain circuit ngspice's current one, parsing it on first use."""
        self._check_open()
        if self.circuit_id is None:
            text = to_spice(self.circuit, options=solver_options(self.solver))
            self.circuit_id = _load(self.circuit, text)
        _select(self.circuit_id)

    def _check_open(self) -> None:
        if self.closed:
            raise SimulationError("this circuit was closed; load it again")

    def close(self) -> None:
        """Remove the circuit and its batch variant from ngspice (frees their memory)."""
        for circuit_id in (self.batch_id, self.circuit_id):
            if circuit_id is not None:
                _remove(circuit_id)
        self.batch_id = self.circuit_id = None
        self.closed = True

    def __enter__(self) -> NgspiceSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _analysis(command: str, kind: str, circuit: Circuit, monitored: tuple[str, ...]) -> np.ndarray:
    """Run ``command`` and return the ``monitored`` vectors, shape (nodes, points)."""
    from PySpice.Spice.NgSpice.Shared import ffi

    ng = ngspice()
    previous = ng.last_plot
    output = _command(command, analysis=True)
    plot = ng.last_plot
    text = (output + " ".join(ng._stderr)).lower()
    if plot == previous or not plot.startswith(kind) or any(m in text for m in FAILURE_MARKERS):
        raise SimulationError(
            f"ngspice's {kind} analysis did not converge for {circuit.title}: "
            f"{text.strip()[-600:]}. Check the matrix is stable and the op-amp settings sane."
        )
    lib = ng._ngspice_shared
    rows = []
    for node in monitored:
        info = lib.ngGet_Vec_Info(f"{plot}.{node}".encode())
        if info == ffi.NULL or info.v_length < 1:
            raise SimulationError(f"ngspice returned no value for node {node}")
        rows.append(np.frombuffer(ffi.buffer(info.v_realdata, 8 * info.v_length), np.float64))
    volts = np.array(rows)
    _command(f"destroy {plot}")
    return volts


class NgspiceEngine:
    """Solves circuits with ngspice (the reference engine), on :func:`ngspice_solver`."""

    name = "spice"

    def load(self, circuit: Circuit, *, batches: bool = False) -> NgspiceSession:
        """Parse ``circuit`` into ngspice; raise :class:`SimulationError` if it is rejected.

        With ``batches`` (the caller reads it only through :meth:`NgspiceSession.solve_batch`)
        nothing is parsed yet: the batch variant is, on the first batch. Transistor-level
        amplifiers with ``opamp.trim_bits`` get their offset trims here (measured once per
        circuit title and configuration: :func:`rerinv.engines.amplifier.trimmed`)."""
        circuit = trimmed(circuit)
        monitored = circuit.outputs + tuple(
            n for n in circuit.amplifier_outputs if n not in set(circuit.outputs)
        )
        session = NgspiceSession(
            circuit, None, circuit.input_values.copy(), monitored, solver=ngspice_solver()
        )
        if not batches:
            session._plain()
        return session
