"""Engines that solve a :class:`rerinv.hw.circuit.Circuit`: ``spice`` (ngspice) and ``nodal``.

Both load a circuit once and then re-solve it for new input voltages::

    session = get_engine("spice").load(circuit)
    outputs = session.solve(input_voltages)   # volts at circuit.outputs

With ``get_engine(name, workers=k)`` the sessions live in ``k`` worker processes and
:func:`parallel_map` runs independent solves at the same time.

A solve whose amplifier outputs sit at (or, for the linear nodal engine, beyond) the rails
raises :class:`rerinv.errors.SaturationError` instead of returning numbers. The engine names
are :data:`rerinv.config.ENGINES`; this module is their one registry.
"""

from __future__ import annotations

import importlib

from rerinv.config import ENGINES
from rerinv.engines.base import RAIL_MARGIN, Engine, Session, check_inputs, check_rails
from rerinv.engines.pool import parallel_map, resolve_workers, shared_pool
from rerinv.errors import InputError

#: name -> "module:class"; imported on first use (ngspice loads a shared library).
_REGISTRY = {
    "spice": "rerinv.engines.ngspice:NgspiceEngine",
    "nodal": "rerinv.engines.nodal:NodalEngine",
}
assert tuple(_REGISTRY) == ENGINES, "rerinv.config.ENGINES and the engine registry disagree"


def get_engine(name: str, workers: int = 1) -> Engine:
    """The engine called ``name`` (one of :data:`rerinv.config.ENGINES`): a new one in this
    process, or with ``workers`` > 1 (0: one per CPU) this process's shared pool of that many
    worker processes (:mod:`rerinv.engines.pool`)."""
    if name not in _REGISTRY:
        raise InputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    workers = resolve_workers(workers)
    if workers > 1:
        return shared_pool(name, workers)
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
    "parallel_map",
]
