"""Run a hand-written testbench netlist in the process's ngspice and read its vectors.

For circuits that are not crossbars (amplifier characterisation, device sweeps): the netlist
is parsed as one more circuit of the ngspice session (:mod:`rerinv.engines.ngspice` keeps
its book of loaded circuits), each analysis runs, the vectors asked for are copied out as
float64 arrays, and the circuit is removed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.engines.ngspice_circuits import FAILURE_MARKERS, _load, _remove
from rerinv.engines.ngspice_lib import _command, ngspice
from rerinv.errors import SimulationError
from rerinv.hw.circuit import Circuit


@dataclass(frozen=True)
class Analysis:
    """One analysis of a testbench and what to read after it.

    ``command`` is the ngspice analysis (``op``, ``ac dec 20 1 1e10``, ...); ``lets`` are
    ``let name = expression`` commands run after it (real vectors computed from complex ones,
    e.g. ``mag(v(out))``); ``vectors`` the names read back (``v(out)``, ``i(vdd)``, a ``let``
    name)."""

    name: str
    command: str
    vectors: tuple[str, ...]
    lets: tuple[str, ...] = ()


def run_testbench(title: str, netlist: str, analyses: list[Analysis]) -> dict[str, dict]:
    """``{analysis name: {vector: float64 array}}`` of ``netlist`` (without ``.control``)."""
    from PySpice.Spice.NgSpice.Shared import ffi

    placeholder = Circuit(title, None, [], (), np.zeros(0), [], [], [], ())
    circuit_id = _load(placeholder, netlist)
    shared = ngspice()
    results: dict[str, dict] = {}
    try:
        for analysis in analyses:
            previous = shared.last_plot
            output = _command(analysis.command, analysis=True)
            plot = shared.last_plot
            text = (output + " ".join(shared._stderr)).lower()
            kind = analysis.command.split()[0]
            if plot == previous or any(m in text for m in FAILURE_MARKERS):
                raise SimulationError(
                    f"ngspice's {kind} analysis of the testbench {title} failed: "
                    f"{text.strip()[-400:]}"
                )
            for let in analysis.lets:
                _command(f"let {let}")
            values = {}
            for vector in analysis.vectors:
                info = shared._ngspice_shared.ngGet_Vec_Info(f"{plot}.{vector}".encode())
                if info == ffi.NULL or info.v_length < 1:
                    raise SimulationError(f"testbench {title}: no vector {vector} after {kind}")
                if info.v_realdata == ffi.NULL:
                    raise SimulationError(f"testbench {title}: vector {vector} is complex")
                buffer = ffi.buffer(info.v_realdata, 8 * info.v_length)
                values[vector] = np.frombuffer(buffer, np.float64).copy()
            results[analysis.name] = values
            _command(f"destroy {plot}")
    finally:
        _remove(circuit_id)
    return results
