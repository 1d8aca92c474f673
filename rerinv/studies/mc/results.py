"""A Monte Carlo results file read into memory (``docs/hdf5-layout.md``): the run description,
the per-trial arrays, and :func:`load_results`, which reads through
:func:`rerinv.untrusted.read_untrusted` and verifies every checksum
(:mod:`rerinv.studies.mc.integrity`). The writer is :mod:`rerinv.studies.mc.store`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.checksums import plain as _plain
from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.studies.mc import integrity
from rerinv.studies.mc.legacy import fold_version_1
from rerinv.studies.records import FIELDS
from rerinv.untrusted import read_untrusted

FORMAT_NAME = "rerinv-montecarlo"
FORMAT_VERSION = 2
#: Versions :func:`load_results` reads. Version 1 (before the ``[simulation]`` section) kept
#: the scheme, engine and size apart from each point's configuration; it is read (not resumed)
#: by folding them back into it.
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class PointRecord:
    """One sweep point as stored: axis value indices, a label and its full configuration
    (whose ``[simulation]`` section says what its trials run)."""

    index: tuple[int, ...]
    label: str
    config_toml: str

    @cached_property
    def config(self) -> Config:
        return Config.from_toml(self.config_toml, source=f"point {self.label}")

    @property
    def scheme(self) -> str:
        return self.config.simulation.scheme

    @property
    def engine(self) -> str:
        return self.config.simulation.engine

    @property
    def n(self) -> int:
        return self.config.simulation.n


@dataclass(frozen=True)
class RunDescription:
    """Everything that defines a run's results (compared on ``--resume``)."""

    base_config_toml: str
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    points: tuple[PointRecord, ...]
    trials: int
    master_seed: int
    trial_function: str = "rerinv.studies.trial:run_trial"  #: ``module:name`` of the trial function

    @property
    def max_passes(self) -> int:
        """Largest pass budget of any point: the length of the stored histories."""
        return max(p.config.simulation.max_passes for p in self.points)

    @property
    def target_bits(self) -> float:
        """The target of the run (the largest, when points differ)."""
        return max(p.config.simulation.target_bits for p in self.points)


@dataclass(frozen=True)
class Results:
    """A Monte Carlo results file in memory (see ``docs/hdf5-layout.md``).

    Every field of the record schema (:data:`rerinv.studies.records.FIELDS`) is an array in
    ``fields`` and an attribute of the same name: ``results.effective_bits`` is
    ``results.fields["effective_bits"]``. Arrays are indexed ``[point, trial]`` (history
    arrays ``[point, trial, pass]``); trials that are not ``done`` hold the fields' fill
    values (``""``, ``False``, NaN, -1).
    """

    path: Path
    attrs: dict[str, Any]  #: root attributes: format, versions, created, command line
    description: RunDescription
    config: Config  #: the base configuration
    done: np.ndarray
    fields: Mapping[str, np.ndarray]  #: one array per record field, by name
    seed_entropy: np.ndarray
    seed_spawn_key: np.ndarray
    sessions: list[dict[str, Any]]

    def __getattr__(self, name: str) -> np.ndarray:
        fields = self.__dict__.get("fields", {})  # not self.fields: no recursion while unpickling
        if name in fields:
            return fields[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.fields]

    @property
    def n_points(self) -> int:
        return len(self.description.points)

    @property
    def failed(self) -> np.ndarray:
        """Mask of trials stored as failed."""
        return self.done & (self.status == "failed")

    def axis_values(self, name: str) -> list[str]:
        """Each point's value of the swept axis ``name`` (as given on the command line)."""
        for position, (axis, values) in enumerate(self.description.axes):
            if axis == name:
                return [values[p.index[position]] for p in self.description.points]
        raise InputError(
            f"{name!r} is not a swept axis of {self.path}; swept: "
            f"{[a for a, _ in self.description.axes] or 'none'}"
        )


def load_results(path: str | Path) -> Results:
    """Read a results file written by ``rerinv mc`` into memory.

    The file is read through :func:`rerinv.untrusted.read_untrusted` (a structure check,
    then a child process with a time limit), so a damaged file cannot hang the caller.

    Raises
    ------
    InputError
        If the file is missing, is not a rerinv Monte Carlo results file, or is damaged
        (``rerinv.untrusted.DamagedFileError`` when reading it would hang or crash);
        ``integrity.ChecksumError`` (an InputError) when stored data differs from its checksums.
    """
    if not Path(path).is_file():
        raise InputError(f"{path}: no such results file")
    return read_untrusted(path, _load_file, what="results file")


def _load_file(path: str | Path) -> Results:
    """:func:`load_results` in this process (the reader :func:`read_untrusted` runs)."""
    with open_results(path, "r") as f:
        try:
            return _load(f, path)
        except RerinvError:
            raise
        except (KeyError, ValueError, TypeError, IndexError, OSError, RuntimeError) as exc:
            what = "checksum mismatch in HDF5 metadata" if "checksum" in str(exc) else "damaged"
            what += " results file"
            raise InputError(f"{path}: {what} ({type(exc).__name__}: {exc})") from None


def _load(f: h5py.File, path: str | Path) -> Results:
    missing = [field.path for field in FIELDS if field.path not in f]
    if missing:
        raise InputError(f"{path}: damaged results file, no dataset {', '.join(missing)}")
    checked = integrity.has_checksums(f, path)
    if checked:
        integrity.verify_description(f, path)
    description = read_description(f)
    done = integrity.read(f, "trials/done", path)
    fields = {field.name: _read(f, field.path.lstrip("/"), path) for field in FIELDS}
    if done.shape != (len(description.points), description.trials) or any(
        v.shape[:2] != done.shape for v in fields.values()
    ):
        raise InputError(f"{path}: damaged results file (dataset shapes disagree)")
    if checked:
        integrity.verify_trials(path, done, fields, f)
    return Results(
        path=Path(path),
        attrs={k: _plain(v) for k, v in f.attrs.items()},
        description=description,
        config=Config.from_toml(description.base_config_toml, source=f"{path}:/config"),
        done=done,
        fields=fields,
        seed_entropy=integrity.read(f, "trials/seed_entropy", path),
        seed_spawn_key=integrity.read(f, "trials/seed_spawn_key", path),
        sessions=json.loads(f["timing"].attrs["sessions"]),
    )


# -- helpers -------------------------------------------------------------------------------
def open_results(path: str | Path, mode: str) -> h5py.File:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such results file")
    try:
        f = h5py.File(path, mode)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({exc})") from None
    try:
        name, version = f.attrs.get("format"), f.attrs.get("format_version")
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        f.close()
        raise InputError(f"{path}: damaged results file ({exc})") from None
    if name != FORMAT_NAME:
        f.close()
        raise InputError(f"{path} is not a rerinv Monte Carlo results file (no format attribute)")
    if version is None or int(version) not in READABLE_VERSIONS:
        f.close()
        raise InputError(
            f"{path} uses results format version {version}; this rerinv reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (a newer file needs a newer rerinv)"
        )
    return f


def read_description(f: h5py.File) -> RunDescription:
    sweep, points = f["sweep"], f["points"]
    names = _read_strings(sweep["names"]).tolist()
    axes = tuple(
        (name, tuple(_read_strings(sweep[f"axis_{i}"]).tolist())) for i, name in enumerate(names)
    )
    index = points["index"][...]
    labels, configs = _read_strings(points["label"]), _read_strings(points["config"])
    base = f["config"].asstr()[()]
    a = sweep.attrs
    if int(f.attrs["format_version"]) == 1:  # scheme, engine, n, budget beside the config
        base, axes, labels, configs = fold_version_1(f, base, axes, index)
    records = tuple(
        PointRecord(
            index=tuple(int(i) for i in index[p]), label=str(labels[p]), config_toml=configs[p]
        )
        for p in range(len(labels))
    )
    return RunDescription(
        base_config_toml=base,
        axes=axes,
        points=records,
        trials=int(a["trials"]),
        master_seed=int(a["master_seed"]),
        trial_function=str(a["trial_function"]),
    )


def _read(f: h5py.File, name: str, path: str | Path) -> np.ndarray:
    dataset = f[name]
    if h5py.check_string_dtype(dataset.dtype):
        return _read_strings(dataset)
    return integrity.read(f, name, path)


def _read_strings(dataset: h5py.Dataset) -> np.ndarray:
    values = dataset.asstr()[...]
    return np.array(values.tolist(), dtype=str).reshape(values.shape)
