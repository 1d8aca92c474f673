"""HDF5 store of a Monte Carlo run: one file per run, written by the driver alone.

The layout is documented in ``docs/hdf5-layout.md``; the per-trial datasets are the fields of
:data:`rerinv.studies.records.FIELDS`. Results are stored by (point, trial) index, so the
finished file does not depend on the order in which trials completed; everything that does
depend on the run (wall times, worker names, sessions) lives in the ``/timing`` group, apart
from the results.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.studies.mc import integrity
from rerinv.studies.mc.legacy import fold_version_1
from rerinv.studies.records import FIELDS, RESULT_FIELDS, TIMING_FIELDS
from rerinv.untrusted import read_untrusted

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
        path = file.filename
        try:
            self._timing = file["timing"]
            self._datasets = {f.name: file[f.group][f.name] for f in FIELDS}
            self._done = file["trials/done"]
        except KeyError as exc:
            file.close()
            raise InputError(f"{path}: damaged results file ({exc.args[0]})") from None
        try:
            self._checksums = integrity.has_checksums(file, path)
        except RerinvError:
            file.close()
            raise
        if self._checksums:
            self._crc = {"trials": file["trials/checksum"], "timing": file["timing/checksum"]}
        try:
            self.done = integrity.read(file, "trials/done", path)
        except RerinvError:
            file.close()
            raise

    # -- creation / opening ----------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | Path, description: RunDescription, attrs: dict[str, Any]
    ) -> ResultStore:
        """Create ``path`` (must not exist) with every dataset at its fill value."""
        d = description
        shape = (len(d.points), d.trials)
        # v1.8 format: checksummed object headers; not 1.10, whose superblock marks a file
        # "open for write" until closed, so that a killed run could be neither read nor resumed
        try:
            f = h5py.File(path, "w-", libver=("v108", "latest"))
        except (OSError, FileExistsError) as exc:
            raise InputError(f"cannot create {path}: {_reason(exc)}") from exc
        try:
            _check_room(path)
            _fill(f, d, shape, attrs)
        except StoreWriteError:
            f.close()
            raise
        except (OSError, RuntimeError) as exc:  # e.g. a full disk
            _close_quietly(f)
            raise _write_failure(path, exc) from None
        return cls(f)

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """Open an existing results file for appending trials (``--resume``); only files of
        the current format version (a file of another version is not opened for writing)."""
        # every checksum, in a time-limited child process, before HDF5 opens it here
        version = int(load_results(path).attrs["format_version"])
        if version != FORMAT_VERSION:
            raise InputError(
                f"{path} uses results format version {version}: this rerinv reads it but "
                f"resumes only version {FORMAT_VERSION} files; start a new run with another --out"
            )
        return cls(_open(path, "r+"))

    # -- writing -----------------------------------------------------------------------------
    def write_trial(self, point: int, trial: int, record: dict[str, Any]) -> None:
        """Store one finished trial and flush; ``done`` is set last.

        Raises
        ------
        StoreWriteError
            The file cannot be written (a full disk, an I/O error); the store should then be
            :meth:`abandon`-ed.
        """
        _check_room(self.file.filename)
        try:
            self._write_trial(point, trial, record)
        except (OSError, RuntimeError) as exc:
            raise _write_failure(self.file.filename, exc) from None

    def _write_trial(self, point: int, trial: int, record: dict[str, Any]) -> None:
        history = self._datasets[next(f.name for f in FIELDS if f.kind == "history")]
        stored = integrity.stored_rows(record, history.shape[2])
        for field in FIELDS:
            self._datasets[field.name][point, trial] = stored[field.name]
        if self._checksums:
            self._crc["trials"][point, trial] = integrity.record_crc(RESULT_FIELDS, stored)
            self._crc["timing"][point, trial] = integrity.record_crc(TIMING_FIELDS, stored)
        self._done[point, trial] = True
        self.done[point, trial] = True
        self.file.flush()

    def add_session(self, session: dict[str, Any]) -> None:
        """Append one driver session (start, end, command line, trials stored) to ``/timing``;
        :class:`StoreWriteError` if the file cannot be written."""
        _check_room(self.file.filename)
        try:
            self._add_session(session)
        except (OSError, RuntimeError) as exc:
            raise _write_failure(self.file.filename, exc) from None

    def _add_session(self, session: dict[str, Any]) -> None:
        sessions = json.loads(self._timing.attrs["sessions"])
        sessions.append(session)
        text = json.dumps(sessions)
        self._timing.attrs["sessions"] = text
        if self._checksums:
            self._timing.attrs["sessions_sha256"] = integrity.sessions_digest(text)
        self.file.flush()

    def description(self) -> RunDescription:
        return _description(self.file)

    def close(self) -> None:
        """Flush and close; :class:`StoreWriteError` if the file cannot be written."""
        try:
            if self.file.id.valid:
                self.file.flush()
                self.file.close()
        except (OSError, RuntimeError) as exc:
            raise _write_failure(self.file.filename, exc) from None

    def abandon(self, error: StoreWriteError) -> None:
        """Let go of the file after ``error``: closed if HDF5 did not fail (the free-space
        check refused the write), else released without a close (:func:`_close_quietly`)."""
        with _quiet_release():
            self._datasets, self._done, self._timing, self._crc = {}, None, None, {}
        if error.broken:
            _close_quietly(self.file)
        else:
            self.close()


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
    with _open(path, "r") as f:
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
    description = _description(f)
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


def _fill(f: h5py.File, d: RunDescription, shape: tuple[int, int], attrs: dict[str, Any]) -> None:
    """Write a new file's description and every dataset at its fill value."""
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    for key, value in attrs.items():
        f.attrs[key] = value
    f.attrs["master_seed"] = d.master_seed
    f.attrs["checksums"] = integrity.CHECKSUMS
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
    checked = integrity.dataset_options(np.float64)
    trials.create_dataset("done", shape=shape, dtype=np.bool_, fillvalue=False, **checked)
    entropy = np.full(shape, d.master_seed, dtype=np.uint64)
    trials.create_dataset("seed_entropy", data=entropy, **checked)
    key = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), -1)
    trials.create_dataset("seed_spawn_key", data=key.astype(np.int64), **checked)
    timing = f.create_group("timing")
    for field in FIELDS:
        size = (d.max_passes,) if field.kind == "history" else ()
        f[field.group].create_dataset(
            field.name, shape=(*shape, *size), dtype=field.dtype, fillvalue=field.fill,
            **integrity.dataset_options(field.dtype),
        )  # fmt: skip
    for group in (trials, timing):  # CRC-32 of each stored trial's record
        group.create_dataset("checksum", shape=shape, dtype=np.uint32, fillvalue=0, **checked)
    timing.attrs["sessions"] = "[]"
    timing.attrs["sessions_sha256"] = integrity.sessions_digest("[]")
    f.attrs["description_sha256"] = integrity.description_digest(f)
    f.flush()


@contextlib.contextmanager
def _quiet_release() -> Iterator[None]:
    """Release HDF5 objects after a failed write without h5py's "Exception ignored ..."
    tracebacks: HDF5 retries the writes it could not do while its objects are released."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # h5py also prints each traceback
            yield
            gc.collect()
    finally:
        sys.unraisablehook = hook


def _close_quietly(f: h5py.File) -> None:
    """Let go of ``f`` after a failed write, writing nothing more to it: its descriptor is
    pointed at ``/dev/null``, and it is not closed (HDF5 2.0 crashes closing a file whose
    metadata flush failed); HDF5 closes it, writing to ``/dev/null``, when Python exits."""
    with _quiet_release(), contextlib.suppress(Exception):
        handle = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, handle)
        os.close(null)


def _write_failure(path: str | Path, exc: BaseException) -> StoreWriteError:
    """The one-line error of a failed write; the HDF5 objects of the failed call (held by the
    tracebacks of ``exc`` and its context) are released quietly first."""
    reason = _reason(exc)
    with _quiet_release():
        cause: BaseException | None = exc
        while cause is not None:
            cause.__traceback__ = None
            cause = cause.__context__
    return StoreWriteError(path, reason, broken=True)


class StoreWriteError(RerinvError):
    """The results file cannot be written (a full disk, an I/O error).

    ``broken`` is True when the HDF5 library itself failed a write: HDF5 2.0 then crashes
    when it closes the file (even when Python exits), so a process should exit at once
    (``os._exit``) after reporting it."""

    def __init__(self, path: str | Path, reason: str, broken: bool = False):
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason, self.broken = path, reason, broken

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.broken)


#: Free bytes the device of a results file must keep: a write is refused below this, before
#: HDF5 runs into a full disk (after which it can neither flush nor close the file).
ROOM = 1 << 20


def _check_room(path: str | Path) -> None:
    try:
        stat = os.statvfs(Path(path).parent)
    except (OSError, AttributeError):
        return
    free = stat.f_bavail * stat.f_frsize
    if free < ROOM:
        raise StoreWriteError(path, f"no space left on device ({free // 1024} KiB free)")


# -- helpers -------------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    """A one-line reason of an HDF5 write failure (h5py's messages span several lines)."""
    text = str(exc)
    if (
        getattr(exc, "errno", None) == errno.ENOSPC
        or "No space left" in text
        or "errno = 28" in text
    ):
        return "no space left on device"
    return getattr(exc, "strerror", None) or text.splitlines()[0] if text else type(exc).__name__


_plain = integrity._plain


def _open(path: str | Path, mode: str) -> h5py.File:
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


def _read(f: h5py.File, name: str, path: str | Path) -> np.ndarray:
    dataset = f[name]
    if h5py.check_string_dtype(dataset.dtype):
        return _read_strings(dataset)
    return integrity.read(f, name, path)


def _read_strings(dataset: h5py.Dataset) -> np.ndarray:
    values = dataset.asstr()[...]
    return np.array(values.tolist(), dtype=str).reshape(values.shape)
