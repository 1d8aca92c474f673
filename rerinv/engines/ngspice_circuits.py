"""The circuits ngspice holds in this process: loading a netlist as a new circuit, making one
current, removing it, and the words in ngspice's output that mean an analysis failed. Below
the engine (:mod:`rerinv.engines.ngspice`) and the testbenches
(:mod:`rerinv.engines.testbench`), which both load circuits into the one instance."""

from __future__ import annotations

import numpy as np

from rerinv.engines.ngspice_lib import _command, held_interrupts, ngspice
from rerinv.errors import SimulationError
from rerinv.hw.circuit import Circuit

#: Words in ngspice's output (lower case) that mean an analysis failed.
FAILURE_MARKERS = (
    "aborted",
    "singular matrix",
    "iteration limit",
    "no convergence",
    "timestep too small",
    "error:",
)
_loaded: list[int] = []  # ids of the circuits ngspice holds, oldest first
_current: int | None = None
_next_id = 0
_rejected: str | None = None  # the title of a netlist ngspice rejected in this process


def _select(circuit_id: int) -> None:
    """Make ``circuit_id`` ngspice's current circuit (``setcirc`` numbers newest first)."""
    global _current
    if _current != circuit_id:
        _command(f"setcirc {len(_loaded) - _loaded.index(circuit_id)}")
        _current = circuit_id


def _remove(circuit_id: int) -> None:
    """Remove a loaded circuit from ngspice."""
    global _current
    if circuit_id in _loaded:
        _select(circuit_id)
        _command("remcirc")
        _loaded.remove(circuit_id)
        _current = None


def _load(circuit: Circuit, text: str) -> int:
    """Parse ``text`` into ngspice as a new circuit; returns its id.

    A rejected netlist is a bug of the netlist writer: after one, ngspice 46 writes past its
    heap on the next load (valgrind), so this process loads nothing more into it."""
    global _current, _next_id, _rejected
    if _rejected is not None:
        raise SimulationError(
            f"ngspice rejected the netlist of {_rejected} earlier in this process and its "
            "memory is not to be trusted after that (ngspice 46 writes past its heap on the "
            "next load); run again in a new process"
        )
    ng = ngspice()
    try:
        _circ(ng, text)
    except Exception as exc:
        _rejected = circuit.title
        raise SimulationError(
            f"ngspice rejected the netlist of {circuit.title}: {ng.stdout[-600:] or exc}"
        ) from exc
    _next_id += 1
    _loaded.append(_next_id)
    _current = _next_id
    return _next_id


def _circ(ng, text: str) -> None:
    """``ngSpice_Circ`` of the non-empty lines of ``text`` (what PySpice's ``load_circuit``
    does, with the line array built in one piece: PySpice allocates one C string per line,
    a quarter of the parse time of a residual tile)."""
    from PySpice.Spice.NgSpice.Shared import ffi

    lines = [line for line in text.encode().split(b"\n") if line.strip()] + [b""]
    buffer = ffi.new("char[]", b"\0".join(lines) + b"\0")  # ngspice copies the lines
    starts = np.concatenate([[0], np.cumsum([len(line) + 1 for line in lines[:-1]])])
    array = ffi.new("char *[]", len(lines) + 1)  # NULL-terminated
    pointers = np.frombuffer(ffi.buffer(array), dtype=np.uintp)
    pointers[:-1] = int(ffi.cast("uintptr_t", buffer)) + starts.astype(np.uintp)
    ng.clear_output()
    with held_interrupts():
        failed = ng._ngspice_shared.ngSpice_Circ(array)
    if failed:
        raise SimulationError("ngSpice_Circ failed")
    if ng._error_in_stdout:
        raise SimulationError("ngspice reported an error")
