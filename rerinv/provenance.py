"""What produced a result: software versions, the simulator, time and command line.

Every result file (Monte Carlo HDF5, settling HDF5, parameter card, benchmark JSON) stores
:func:`provenance`, so a number can always be traced to the code and simulator behind it.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

import numpy as np


def software_versions(*, ngspice: bool = True) -> dict[str, str]:
    """Versions of rerinv, ngspice and its matrix solver (``ngspice_solver``: ``"klu"`` or
    ``"sparse"``; both ``"not used"`` when ``ngspice`` is False), numpy, scipy, h5py, HDF5 and
    Python, and the platform."""
    import h5py
    import scipy

    from rerinv import __version__

    if ngspice:
        from rerinv.engines.ngspice import ngspice_solver, ngspice_version

        simulator, solver = ngspice_version(), ngspice_solver()
    else:
        simulator = solver = "not used"
    return {
        "rerinv": __version__,
        "ngspice": simulator,
        "ngspice_solver": solver,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def provenance(command_line: str | None = None, *, ngspice: bool = True) -> dict[str, Any]:
    """Flat ``<name>_version`` attributes (HDF5-friendly), ``ngspice_solver``, ``platform``,
    ``created`` (UTC, ISO 8601) and ``command_line``."""
    versions = software_versions(ngspice=ngspice)
    plain = ("ngspice_solver", "platform")  # not versions: stored under their own names
    attrs: dict[str, Any] = {
        f"{name}_version": value for name, value in versions.items() if name not in plain
    }
    attrs.update({name: versions[name] for name in plain})
    attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    attrs["command_line"] = command_line or ""
    return attrs
