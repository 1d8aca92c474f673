"""HDF5 store of a Monte Carlo run: one file per run, written by the driver alone.

The layout is documented in ``docs/hdf5-layout.md``; the per-trial datasets are the fields of
:data:`rerinv.studies.records.FIELDS`. Results are stored by (point, trial) index, so the
finished file does not depend on the order in which trials completed; everything that does
depend on the run (wall times, worker names, sessions) lives in the ``/timing`` group, apart
from the results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.checksums import dataset_options, digest
from rerinv.errors import InputError, RerinvError
from rerinv.studies.mc import integrity
from rerinv.studies.mc.results import (
    FORMAT_NAME,
    FORMAT_VERSION,
    RunDescription,
    load_results,
    open_results,
    read_description,
)
from rerinv.studies.mc.writes import (
    StoreWriteError,
    close_quietly,
    quiet_release,
    write_failure,
    write_reason,
)
from rerinv.studies.records import FIELDS, RESULT_FIELDS, TIMING_FIELDS

_SWEEP_ATTRS = ("trials", "master_seed", "trial_function")


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
            raise InputError(f"cannot create {path}: {write_reason(exc)}") from exc
        try:
            _check_room(path)
            _fill(f, d, shape, attrs)
        except StoreWriteError:
            f.close()
            raise
        except (OSError, RuntimeError) as exc:  # e.g. a full disk
            close_quietly(f)
            raise write_failure(path, exc) from None
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
        return cls(open_results(path, "r+"))

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
            raise write_failure(self.file.filename, exc) from None

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
            raise write_failure(self.file.filename, exc) from None

    def _add_session(self, session: dict[str, Any]) -> None:
        sessions = json.loads(self._timing.attrs["sessions"])
        sessions.append(session)
        text = json.dumps(sessions)
        self._timing.attrs["sessions"] = text
        if self._checksums:
            self._timing.attrs["sessions_sha256"] = digest(text)
        self.file.flush()

    def description(self) -> RunDescription:
        return read_description(self.file)

    def close(self) -> None:
        """Flush and close; :class:`StoreWriteError` if the file cannot be written."""
        try:
            if self.file.id.valid:
                self.file.flush()
                self.file.close()
        except (OSError, RuntimeError) as exc:
            raise write_failure(self.file.filename, exc) from None

    def abandon(self, error: StoreWriteError) -> None:
        """Let go of the file after ``error``: closed if HDF5 did not fail (the free-space
        check refused the write), else released without a close (:func:`_close_quietly`)."""
        with quiet_release():
            self._datasets, self._done, self._timing, self._crc = {}, None, None, {}
        if error.broken:
            close_quietly(self.file)
        else:
            self.close()


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
    checked = dataset_options(np.float64)
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
            **dataset_options(field.dtype),
        )  # fmt: skip
    for group in (trials, timing):  # CRC-32 of each stored trial's record
        group.create_dataset("checksum", shape=shape, dtype=np.uint32, fillvalue=0, **checked)
    timing.attrs["sessions"] = "[]"
    timing.attrs["sessions_sha256"] = digest("[]")
    f.attrs["description_sha256"] = integrity.description_digest(f)
    f.flush()


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


def _strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    return group.create_dataset(
        name, data=np.array(values, dtype=object), dtype=h5py.string_dtype()
    )
