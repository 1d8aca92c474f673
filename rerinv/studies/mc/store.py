"""HDF5 store of a Monte Carlo run: one file per run, written by the driver alone.

The layout is documented in ``docs/hdf5-layout.md``; the per-trial datasets are the fields of
:data:`rerinv.studies.records.FIELDS`. Results are stored by (point, trial) index, so the
finished file does not depend on the order in which trials completed; everything that does
depend on the run (wall times, worker names, sessions) lives in the ``/timing`` group, apart
from the results.
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

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.studies.mc.legacy import fold_version_1
from rerinv.studies.records import FIELDS

FORMAT_NAME = "rerinv-montecarlo"
FORMAT_VERSION = 2
#: Versions :func:`load_results` reads. Version 1 (before the ``[simulation]`` section) kept
#: the scheme, engine and size apart from each point's configuration; it is read (not resumed)
#: by folding them back into it.
READABLE_VERSIONS = (1, 2)
_SWEEP_ATTRS = ("trials", "master_seed", "trial_function")


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


class ResultStore:
    """An open results file; the Monte Carlo driver is its only writer."""

    def __init__(self, file: h5py.File):
        self.file = file
        self._timing = file["timing"]
        self._datasets = {f.name: file[f.group][f.name] for f in FIELDS}
        self._done = file["trials/done"]
        self.done = self._done[...]

    # -- creation / opening ----------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, description: RunDescription, attrs: dict[str, Any]
    ) -> ResultStore:
        """Create ``path`` (must not exist) with every dataset at its fill value."""
        d = description
        shape = (len(d.points), d.trials)
        try:
            f = h5py.File(path, "w-")
        except (OSError, FileExistsError) as exc:
            raise InputError(f"cannot create {path}: {exc}") from exc
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["master_seed"] = d.master_seed
        f.create_dataset("config", data=d.base_config_toml, dtype=h5py.string_dtype())
        sweep = f.create_group("sweep")
        for key in _SWEEP_ATTRS:
            sweep.attrs[key] = getattr(d, key)
        _strings(sweep, "names", [name for name, _ in d.axes])
        for i, (name, values) in enumerate(d.axes):
            _strings(sweep, f"axis_{i}", list(values)).attrs["name"] = name
        points = f.create_group("points")
        points.create_dataset(
            "index",
            data=np.array([p.index for p in d.points], dtype=np.int64).reshape(
                len(d.points), len(d.axes)
            ),
        )
        _strings(points, "label", [p.label for p in d.points])
        _strings(points, "config", [p.config_toml for p in d.points])
        trials = f.create_group("trials")
        trials.create_dataset("done", shape=shape, dtype=np.bool_, fillvalue=False)
        entropy = np.full(shape, d.master_seed, dtype=np.uint64)
        trials.create_dataset("seed_entropy", data=entropy)
        key = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), -1)
        trials.create_dataset("seed_spawn_key", data=key.astype(np.int64))
        timing = f.create_group("timing")
        for field in FIELDS:
            size = (d.max_passes,) if field.kind == "history" else ()
            f[field.group].create_dataset(
                field.name, shape=(*shape, *size), dtype=field.dtype, fillvalue=field.fill
            )
        timing.attrs["sessions"] = "[]"
        f.flush()
        return cls(f)

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """Open an existing results file for appending trials (``--resume``); only files of
        the current format version (a file of another version is not opened for writing)."""
        with _open(path, "r") as f:
            version = int(f.attrs["format_version"])
        if version != FORMAT_VERSION:
            raise InputError(
                f"{path} uses results format version {version}: this rerinv reads it but "
                f"resumes only version {FORMAT_VERSION} files; start a new run with another --out"
            )
        return cls(_open(path, "r+"))

    # -- writing -----------------------------------------------------------------------------
    def write_trial(self, point: int, trial: int, record: dict[str, Any]) -> None:
        """Store one finished trial and flush; ``done`` is set last."""
        for field in FIELDS:
            dataset = self._datasets[field.name]
            if field.kind == "history":
                row = np.full(dataset.shape[2], np.nan)
                values = np.asarray(record[field.name], dtype=np.float64)
                row[: len(values)] = values
                dataset[point, trial, :] = row
            else:
                dataset[point, trial] = record[field.name]
        self._done[point, trial] = True
        self.done[point, trial] = True
        self.file.flush()

    def add_session(self, session: dict[str, Any]) -> None:
        """Append one driver session (start, end, command line, trials stored) to ``/timing``."""
        sessions = json.loads(self._timing.attrs["sessions"])
        sessions.append(session)
        self._timing.attrs["sessions"] = json.dumps(sessions)
        self.file.flush()

    def description(self) -> RunDescription:
        return _description(self.file)

    def close(self) -> None:
        if self.file.id.valid:
            self.file.flush()
            self.file.close()


def load_results(path: str | Path) -> Results:
    """Read a results file written by ``rerinv mc`` into memory.

    Raises
    ------
    InputError
        If the file is missing or is not a rerinv Monte Carlo results file.
    """
    with _open(path, "r") as f:
        missing = [field.path for field in FIELDS if field.path not in f]
        if missing:
            raise InputError(f"{path}: damaged results file, no dataset {', '.join(missing)}")
        description = _description(f)
        return Results(
            path=Path(path),
            attrs={k: _plain(v) for k, v in f.attrs.items()},
            description=description,
            config=Config.from_toml(description.base_config_toml, source=f"{path}:/config"),
            done=f["trials/done"][...],
            fields={field.name: _read(f[field.path]) for field in FIELDS},
            seed_entropy=f["trials/seed_entropy"][...],
            seed_spawn_key=f["trials/seed_spawn_key"][...],
            sessions=json.loads(f["timing"].attrs["sessions"]),
        )


def describe_mismatch(stored: RunDescription, given: RunDescription) -> list[str]:
    """What differs between the run a file was written for and ``given`` (empty if nothing)."""
    problems = []
    if stored.base_config_toml != given.base_config_toml:
        old = Config.from_toml(stored.base_config_toml).to_dict()
        new = Config.from_toml(given.base_config_toml).to_dict()
        problems += [
            f"configuration {section}.{key}: stored {old[section][key]!r}, given {value!r}"
            for section, values in new.items()
            for key, value in values.items()
            if old[section][key] != value
        ] or ["base configuration text differs"]
    for key in ("axes", "trials", "master_seed", "trial_function"):
        if getattr(stored, key) != getattr(given, key):
            problems.append(f"{key}: stored {getattr(stored, key)}, given {getattr(given, key)}")
    if not problems and stored.points != given.points:
        problems.append("the per-point configurations differ (written by another rerinv version?)")
    return problems


# -- helpers -------------------------------------------------------------------------------
def _open(path: str | Path, mode: str) -> h5py.File:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such results file")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({exc})") from exc
    if f.attrs.get("format") != FORMAT_NAME:
        f.close()
        raise InputError(f"{path} is not a rerinv Monte Carlo results file (no format attribute)")
    version = f.attrs.get("format_version")
    if version is None or int(version) not in READABLE_VERSIONS:
        f.close()
        raise InputError(
            f"{path} uses results format version {version}; this rerinv reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (a newer file needs a newer rerinv)"
        )
    return f


def _description(f: h5py.File) -> RunDescription:
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


def _strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    return group.create_dataset(
        name, data=np.array(values, dtype=object), dtype=h5py.string_dtype()
    )


def _read(dataset: h5py.Dataset) -> np.ndarray:
    return _read_strings(dataset) if h5py.check_string_dtype(dataset.dtype) else dataset[...]


def _read_strings(dataset: h5py.Dataset) -> np.ndarray:
    values = dataset.asstr()[...]
    return np.array(values.tolist(), dtype=str).reshape(values.shape)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
