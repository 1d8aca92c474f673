"""The ``spice`` engine: ngspice through PySpice's shared-library interface.

ngspice keeps global state, so there is one instance per process (parallel work uses
processes). A circuit is parsed once; each solve ``alter``s the input sources that changed,
re-runs the operating point and reads only the amplifier outputs.
"""

from __future__ import annotations

import ctypes.util
import glob
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rerinv.engines.base import check_inputs, check_rails
from rerinv.errors import NgspiceMissingError, SimulationError
from rerinv.hw.circuit import Circuit
from rerinv.hw.netlist import BATCH_SELECTOR, source_name, to_spice

_INSTALL_HINT = (
    "install it with `apt-get install -y ngspice libngspice0` (Debian/Ubuntu) or point "
    "NGSPICE_LIBRARY_PATH at libngspice.so"
)
_FAILURE_MARKERS = (
    "aborted",
    "singular matrix",
    "iteration limit",
    "no convergence",
    "timestep too small",
    "error:",
)

_shared = None  # the process's NgSpiceShared instance
_loaded: list[int] = []  # ids of the circuits ngspice holds, oldest first
_current: int | None = None
_next_id = 0


def find_ngspice_library() -> str:
    """Path (or soname) of the ngspice shared library.

    Looks at ``NGSPICE_LIBRARY_PATH``, then the linker's ``libngspice``, then the usual
    library folders, accepting Debian's ``libngspice.so.0`` as well as ``libngspice.so``.
    """
    explicit = os.environ.get("NGSPICE_LIBRARY_PATH")
    if explicit:
        if Path(explicit).exists():
            return explicit
        raise NgspiceMissingError(
            f"NGSPICE_LIBRARY_PATH={explicit} does not exist; {_INSTALL_HINT}"
        )
    candidates = []
    for prefix in (sys.prefix, "/usr/local", "/usr", "/opt/homebrew"):
        for pattern in ("lib/libngspice.so*", "lib/*/libngspice.so*", "lib/libngspice*.dylib"):
            candidates += sorted(glob.glob(os.path.join(prefix, pattern)))
    if candidates:
        return candidates[0]
    soname = ctypes.util.find_library("ngspice")
    if soname:
        return soname
    raise NgspiceMissingError(f"the ngspice shared library was not found; {_INSTALL_HINT}")


def ngspice():
    """The process's ngspice instance, started on first use."""
    global _shared
    if _shared is None:
        path = find_ngspice_library()
        os.environ.setdefault("NGSPICE_LIBRARY_PATH", path)
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # "Unsupported version 39"
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
        except ImportError as exc:  # pragma: no cover - broken install
            raise NgspiceMissingError(f"PySpice is not installed: {exc}") from exc
        NgSpiceShared.LIBRARY_PATH = path
        try:
            _shared = NgSpiceShared.new_instance()
        except OSError as exc:
            raise NgspiceMissingError(
                f"cannot load ngspice from {path}: {exc}; {_INSTALL_HINT}"
            ) from exc
    return _shared


def ngspice_version() -> str:
    """Version string of the loaded ngspice library."""
    return str(ngspice().ngspice_version)


def _command(command: str, *, analysis: bool = False) -> str:
    """Run an ngspice command. For an analysis, notes on stderr (gmin or source stepping)
    are not failures by themselves: the caller judges the plot it produced."""
    ng = ngspice()
    try:
        return ng.exec_command(command)
    except Exception as exc:
        if analysis and "NgSpiceCommandError" in type(exc).__name__:
            return ng.stdout
        raise SimulationError(
            f"ngspice failed on `{command}`: {' '.join(ng._stderr)[-600:] or exc}"
        ) from exc


def _select(circuit_id: int) -> None:
    """Make ``circuit_id`` ngspice's current circuit (``setcirc`` numbers newest first)."""
    global _current
    if _current != circuit_id:
        _command(f"setcirc {len(_loaded) - _loaded.index(circuit_id)}")
        _current = circuit_id


@dataclass(eq=False)
class NgspiceSession:
    """A circuit loaded into ngspice, ready to be re-solved for new inputs."""

    circuit: Circuit
    circuit_id: int
    applied: np.ndarray = field(repr=False)
    monitored: tuple[str, ...] = ()

    def solve(self, inputs: np.ndarray | None = None) -> np.ndarray:
        inputs = check_inputs(self.circuit, inputs)
        if self.circuit_id not in _loaded:
            raise SimulationError("this circuit was closed; load it again")
        _select(self.circuit_id)
        for k in np.flatnonzero(inputs != self.applied):
            _command(f"alter {source_name(self.circuit.inputs[k])} dc = {inputs[k]:.17g}")
        self.applied = inputs.copy()
        volts = self._operating_point()
        check_rails(self.circuit, self.monitored, volts, "spice")
        return volts[: len(self.circuit.outputs)]

    def solve_batch(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (K, n_outputs) for K input vectors (K, n_inputs), solved in one ``dc``
        sweep of a batch variant of the circuit (one matrix ordering for all K)."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        if inputs.shape[0] == 1:
            return self.solve(inputs[0])[None, :]
        for row in inputs:
            check_inputs(self.circuit, row)
        batch = _load(self.circuit, to_spice(self.circuit, batch=inputs))
        try:
            _select(batch)
            volts = _analysis(f"dc {BATCH_SELECTOR} 0 {inputs.shape[0] - 1} 1", "dc", self)
        finally:
            _select(batch)
            _command("remcirc")
            _loaded.remove(batch)
            _forget_current()
        for column in volts.T:
            check_rails(self.circuit, self.monitored, column, "spice")
        return volts[: len(self.circuit.outputs)].T

    def transient(
        self, step: float, stop: float, inputs: np.ndarray, rise: float = 1e-11
    ) -> dict[str, np.ndarray]:
        """Step response: every input source ramps from 0 V at ``t = 0`` to ``inputs`` (V) at
        ``t = rise`` (s), then holds; ngspice runs ``tran step stop 0 step`` (``step`` is also
        the largest internal time step, s) from the operating point with all inputs at 0 V.

        Returns ``{"time": t, node: v(node), ...}`` for every monitored node (outputs first,
        then the other amplifier outputs), as float64 arrays over ngspice's accepted time
        points. The sources keep their DC values, so :meth:`solve` is unaffected.
        """
        inputs = check_inputs(self.circuit, inputs)
        if self.circuit_id not in _loaded:
            raise SimulationError("this circuit was closed; load it again")
        if not 0 < rise < stop or not 0 < step <= stop:
            raise SimulationError(f"bad transient times: step={step}, stop={stop}, rise={rise}")
        _select(self.circuit_id)
        for node, value in zip(self.circuit.inputs, inputs, strict=True):
            _command(f"alter @{source_name(node)}[pwl] = [ 0 0 {rise:.17g} {value:.17g} ]")
        probe = replace(self, monitored=("time", *self.monitored))
        rows = _analysis(f"tran {step:.17g} {stop:.17g} 0 {step:.17g}", "tran", probe)
        return {node: row.copy() for node, row in zip(probe.monitored, rows, strict=True)}

    def _operating_point(self) -> np.ndarray:
        return _analysis("op", "op", self)[:, 0]

    def close(self) -> None:
        """Remove the circuit from ngspice (frees its memory)."""
        global _current
        if self.circuit_id in _loaded:
            _select(self.circuit_id)
            _command("remcirc")
            _loaded.remove(self.circuit_id)
            _current = None

    def __enter__(self) -> NgspiceSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _forget_current() -> None:
    global _current
    _current = None


def _load(circuit: Circuit, text: str) -> int:
    """Parse ``text`` into ngspice as a new circuit; returns its id."""
    global _current, _next_id
    ng = ngspice()
    try:
        ng.load_circuit(text)
    except Exception as exc:
        raise SimulationError(
            f"ngspice rejected the netlist of {circuit.title}: {ng.stdout[-600:] or exc}"
        ) from exc
    _next_id += 1
    _loaded.append(_next_id)
    _current = _next_id
    return _next_id


def _analysis(command: str, kind: str, session: NgspiceSession) -> np.ndarray:
    """Run ``command`` and return the monitored node voltages, shape (nodes, points)."""
    from PySpice.Spice.NgSpice.Shared import ffi

    ng = ngspice()
    previous = ng.last_plot
    output = _command(command, analysis=True)
    plot = ng.last_plot
    text = (output + " ".join(ng._stderr)).lower()
    if plot == previous or not plot.startswith(kind) or any(m in text for m in _FAILURE_MARKERS):
        raise SimulationError(
            f"ngspice's {kind} analysis did not converge for {session.circuit.title}: "
            f"{text.strip()[-600:]}. Check the matrix is stable and the op-amp settings sane."
        )
    lib = ng._ngspice_shared
    rows = []
    for node in session.monitored:
        info = lib.ngGet_Vec_Info(f"{plot}.{node}".encode())
        if info == ffi.NULL or info.v_length < 1:
            raise SimulationError(f"ngspice returned no value for node {node}")
        rows.append(np.frombuffer(ffi.buffer(info.v_realdata, 8 * info.v_length), np.float64))
    volts = np.array(rows)
    _command(f"destroy {plot}")
    return volts


class NgspiceEngine:
    """Solves circuits with ngspice (the reference engine)."""

    name = "spice"

    def load(self, circuit: Circuit) -> NgspiceSession:
        """Parse ``circuit`` into ngspice; raise :class:`SimulationError` if it is rejected."""
        circuit_id = _load(circuit, to_spice(circuit))
        monitored = circuit.outputs + tuple(
            n for n in circuit.amplifier_outputs if n not in set(circuit.outputs)
        )
        return NgspiceSession(circuit, circuit_id, circuit.input_values.copy(), monitored)
