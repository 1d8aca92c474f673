"""The inverse backend of the PyTorch preconditioner, by name.

The preconditioner takes any :class:`rerinv.nn.backends.InverseBackend`; this builds one from
the names a user types: ``float64`` (LAPACK), ``kbit`` (the k-bit stand-in,
:class:`rerinv.nn.backends.QuantisedInverse`, also called ``quantised``), ``analog`` (the
analog machine with the configuration's scheme) or a scheme name (``single``, ``repast``,
``refine``, ``krylov``, ``auto``: the analog machine with that scheme), on the
configuration's engine or on ``engine`` (``nodal`` or ``spice``).
"""

from __future__ import annotations

from rerinv.config import ENGINES, Config
from rerinv.errors import InputError
from rerinv.nn.backends import InverseBackend, make_backend
from rerinv.schemes.loops import LOOPS

#: the names :func:`inverse_backend` takes besides the scheme names
BACKEND_KINDS = ("float64", "kbit", "quantised", "analog")


def inverse_backend(
    kind: str,
    *,
    bits: float | None = None,
    config: Config | None = None,
    engine: str | None = None,
) -> InverseBackend:
    """The inverse backend ``kind``.

    Parameters
    ----------
    kind : str
        ``float64``, ``kbit`` / ``quantised``, ``analog`` or a scheme name (see the module
        docstring).
    bits : float, optional
        Cell and ADC bits of the k-bit stand-in (required for it); the target bits of an
        analog scheme that has one (``refine``, ``krylov``, ...; default: the
        configuration's ``simulation.target_bits``); ignored by ``float64`` and ``single``.
    config : Config, optional
        The hardware of the analog backends (default: ``Config()``).
    engine : {"nodal", "spice"}, optional
        Replaces ``config.simulation.engine``.
    """
    config = config if config is not None else Config()
    if engine is not None:
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        config = config.with_values("simulation", engine=engine)
    if kind == "kbit":
        kind = "quantised"
    if kind == "analog":
        kind = config.simulation.scheme
    if kind not in ("float64", "quantised") and kind not in LOOPS:
        raise InputError(
            f"unknown inverse backend {kind!r}; choose one of "
            f"{', '.join(BACKEND_KINDS + tuple(LOOPS))}"
        )
    return make_backend(kind, config, bits)
