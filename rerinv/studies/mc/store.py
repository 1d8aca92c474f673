"""HDF5 store of a Monte Carlo run: one file per run, written by the driver alone.

The layout is documented in ``docs/hdf5-layout.md``. Results are stored by (point, trial)
index, so the finished file does not depend on the order in which trials completed; everything
that does depend on the run (wall times, worker names, sessions) lives in the ``/timing``
group, apart from the results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError

FORMAT_NAME = "rerinv-montecarlo"
FORMAT_VERSION = 2
#: Versions :func:`load_results` reads. Version 1 (before the ``[simulation]`` section) kept
#: the scheme, engine and size apart from each point's configuration; it is read (not resumed)
#: by folding them back into it.
READABLE_VERSIONS = (1, 2)

#: Per-trial datasets of ``/trials`` (shape ``(points, trials)``) and their fill values.
SCALAR_FIELDS: dict[str, tuple[Any, Any]] = {
    "status": (h5py.string_dtype(), ""),
    "reached_target": (np.bool_, False),
    "effective_bits": (np.float64, np.nan),
    "passes": (np.int64, -1),
    "inv_solves": (np.int64, -1),
    "vmm_ops": (np.int64, -1),
    "conversions": (np.int64, -1),
    "error": (h5py.string_dtype(), ""),
}
_SWEEP_ATTRS = ("trials", "master_seed", "trial_function")
_TIMING_FIELDS = ("wall_time", "finished_at", "worker")
#: Per-pass datasets of ``/trials`` (shape ``(points, trials, max_passes)``, NaN padded).
HISTORY_FIELDS = ("history_bits", "history_residual")


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

    Arrays indexed ``[point, trial]`` (history arrays ``[point, trial, pass]``). Entries of
    trials that are not ``done`` hold fill values (``""``, ``False``, NaN, -1).
    """

    path: Path
    attrs: dict[str, Any]  #: root attributes: format, versions, created, command line
    description: RunDescription
    config: Config  #: the base configuration
    done: np.ndarray
    status: np.ndarray
    reached_target: np.ndarray
    effective_bits: np.ndarray
    passes: np.ndarray
    inv_solves: np.ndarray
    vmm_ops: np.ndarray
    conversions: np.ndarray
    history_bits: np.ndarray
    history_residual: np.ndarray
    error: np.ndarray
    seed_entropy: np.ndarray
    seed_spawn_key: np.ndarray
    wall_time: np.ndarray
    sessions: list[dict[str, Any]]

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
        names = [*SCALAR_FIELDS, *HISTORY_FIELDS, "done"]
        self._datasets = {name: file["trials"][name] for name in names}
        self._datasets.update({name: self._timing[name] for name in _TIMING_FIELDS})
        self.done = self._datasets["done"][...]

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
        for name, (dtype, fill) in SCALAR_FIELDS.items():
            trials.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill)
        for name in HISTORY_FIELDS:
            trials.create_dataset(
                name, shape=(*shape, d.max_passes), dtype=np.float64, fillvalue=np.nan
            )
        timing = f.create_group("timing")
        timing.create_dataset("wall_time", shape=shape, dtype=np.float64, fillvalue=np.nan)
        timing.create_dataset("finished_at", shape=shape, dtype=np.float64, fillvalue=np.nan)
        timing.create_dataset("worker", shape=shape, dtype=h5py.string_dtype(), fillvalue="")
        timing.attrs["sessions"] = "[]"
        f.flush()
        return cls(f)

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """Open an existing results file for appending trials (``--resume``)."""
        f = _open(path, "r+")
        if int(f.attrs["format_version"]) != FORMAT_VERSION:
            version = int(f.attrs["format_version"])
            f.close()
            raise InputError(
                f"{path} uses results format version {version}; this rerinv reads it but "
                f"resumes only version {FORMAT_VERSION} files: start a new run"
            )
        return cls(f)

    # -- writing -----------------------------------------------------------------------------
    def write_trial(self, point: int, trial: int, record: dict[str, Any]) -> None:
        """Store one finished trial and flush; ``done`` is set last."""
        ds = self._datasets
        for name in (*SCALAR_FIELDS, *_TIMING_FIELDS):
            ds[name][point, trial] = record[name]
        for name in HISTORY_FIELDS:
            row = np.full(ds[name].shape[2], np.nan)
            values = np.asarray(record[name], dtype=np.float64)
            row[: len(values)] = values
            ds[name][point, trial, :] = row
        ds["done"][point, trial] = True
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
        t = f["trials"]
        description = _description(f)
        return Results(
            path=Path(path),
            attrs={k: _plain(v) for k, v in f.attrs.items()},
            description=description,
            config=Config.from_toml(description.base_config_toml, source=f"{path}:/config"),
            done=t["done"][...],
            status=_read_strings(t["status"]),
            reached_target=t["reached_target"][...],
            effective_bits=t["effective_bits"][...],
            passes=t["passes"][...],
            inv_solves=t["inv_solves"][...],
            vmm_ops=t["vmm_ops"][...],
            conversions=t["conversions"][...],
            history_bits=t["history_bits"][...],
            history_residual=t["history_residual"][...],
            error=_read_strings(t["error"]),
            seed_entropy=t["seed_entropy"][...],
            seed_spawn_key=t["seed_spawn_key"][...],
            wall_time=f["timing/wall_time"][...],
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
    version = int(f.attrs["format_version"])
    if version not in READABLE_VERSIONS:
        f.close()
        raise InputError(
            f"{path} uses results format version {version}; this rerinv reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: upgrade rerinv"
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
    a = sweep.attrs
    if int(f.attrs["format_version"]) == 1:  # scheme, engine, n, budget beside the config
        configs = _fold_version_1(points, a, configs)
        axes = tuple((_V1_AXES.get(name, name), values) for name, values in axes)
    records = tuple(
        PointRecord(
            index=tuple(int(i) for i in index[p]), label=str(labels[p]), config_toml=configs[p]
        )
        for p in range(len(labels))
    )
    return RunDescription(
        base_config_toml=f["config"].asstr()[()],
        axes=axes,
        points=records,
        trials=int(a["trials"]),
        master_seed=int(a["master_seed"]),
        trial_function=str(a["trial_function"]),
    )


_V1_AXES = {"n": "simulation.n", "scheme": "simulation.scheme", "engine": "simulation.engine"}


def _fold_version_1(points: h5py.Group, sweep_attrs: Any, configs: np.ndarray) -> list[str]:
    """Version 1 point configurations with the then separate trial arguments put back in."""
    schemes, engines = _read_strings(points["scheme"]), _read_strings(points["engine"])
    sizes = points["n"][...]
    budget = (float(sweep_attrs["target_bits"]), int(sweep_attrs["max_passes"]))
    return [
        Config.from_toml(str(text))
        .with_values(
            "simulation",
            scheme=str(schemes[p]),
            engine=str(engines[p]),
            n=int(sizes[p]),
            target_bits=budget[0],
            max_passes=budget[1],
        )
        .to_toml()
        for p, text in enumerate(configs)
    ]


def _strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    return group.create_dataset(
        name, data=np.array(values, dtype=object), dtype=h5py.string_dtype()
    )


def _read_strings(dataset: h5py.Dataset) -> np.ndarray:
    values = dataset.asstr()[...]
    return np.array(values.tolist(), dtype=str).reshape(values.shape)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
