"""Engines that solve a :class:`rerinv.hw.circuit.Circuit`: ``spice`` (ngspice) and ``nodal``.

Both load a circuit once and then re-solve it for new input voltages::

    session = get_engine("spice").load(circuit)
    outputs = session.solve(input_voltages)   # volts at circuit.outputs

A solve whose amplifier outputs sit at (or, for the linear nodal engine, beyond) the rails
raises :class:`rerinv.errors.SaturationError` instead of returning numbers. The engine names
are :data:`rerinv.config.ENGINES`; this module is their one registry.
"""

from __future__ import annotations

import importlib

from rerinv.config import ENGINES
from rerinv.engines.base import RAIL_MARGIN, Engine, Session, check_inputs, check_rails
from rerinv.errors import InputError

#: name -> "module:class"; imported on first use (ngspice loads a shared library).
_REGISTRY = {
    "spice": "rerinv.engines.ngspice:NgspiceEngine",
    "nodal": "rerinv.engines.nodal:NodalEngine",
}
assert tuple(_REGISTRY) == ENGINES, "rerinv.config.ENGINES and the engine registry disagree"


def get_engine(name: str) -> Engine:
    """A new engine called ``name`` (one of :data:`rerinv.config.ENGINES`)."""
    if name not in _REGISTRY:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = [
    "ENGINES",
    "RAIL_MARGIN",
    "Engine",
    "Session",
    "check_inputs",
    "check_rails",
    "get_engine",
]
