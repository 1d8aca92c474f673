"""Files rerinv ships: the SPICE sub-circuit libraries, the golden transient set, the
real-matrix suite and the K-FAC factors captured from training.

The repository keeps them in its top-level ``pyspice_models/`` and ``waveforms/`` folders (the
user-facing places); this package links to them, and the wheel carries copies as package data,
so an installed rerinv finds them through :mod:`importlib.resources` wherever it runs.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from rerinv.errors import RerinvError


def _folder(name: str) -> Traversable:
    return files(__name__) / name


def model_text(name: str) -> str:
    """Text of the sub-circuit library ``pyspice_models/<name>`` (e.g. ``opamp.lib``)."""
    try:
        return (_folder("pyspice_models") / name).read_text()
    except OSError as exc:  # pragma: no cover - broken install
        raise RerinvError(
            f"rerinv's SPICE model {name} is missing from the installation ({exc}); "
            "reinstall rerinv"
        ) from exc


def matrices_dir() -> Path:
    """Folder of the real-matrix suite (``tests/data/matrices`` in a checkout): Matrix Market
    files with ``index.toml`` and a README giving each one's source and licence."""
    return Path(str(_folder("matrices")))


def kfac_factors_dir() -> Path:
    """Folder of the K-FAC factor sets captured from real training (``tests/data/kfac_factors``
    in a checkout; matrix-set HDF5 files, :func:`rerinv.matrices.load_matrix_set`)."""
    return Path(str(_folder("kfac_factors")))


def golden_dir() -> Path:
    """Folder of the golden waveform files (the repository's ``waveforms/`` in a checkout).

    rerinv installs as plain files (wheels are unpacked), so the folder is a real path.
    """
    return Path(str(_folder("waveforms")))
