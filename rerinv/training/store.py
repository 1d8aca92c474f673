"""HDF5 store of a training grid: one file per grid, written by the driver alone.

It follows the Monte Carlo store's conventions (``docs/hdf5-layout.md``): format name and
version attributes, provenance as root attributes, the configuration TOML and the training
spec JSON stored verbatim, every run stored at its index (so the file does not depend on the
order runs finished in), ``done`` set last, run-dependent numbers (wall times, workers,
sessions) kept apart under ``/timing``, checksums (:mod:`rerinv.training.integrity`) verified
on every read, and ``--resume`` completing the runs not yet done. The layout is documented in
``docs/training.md``.

The driver holds the file in memory (HDF5's core driver) and saves it whole: the image goes to
a temporary file beside the target, which replaces it (:func:`rerinv.outputs.atomic_write`).
The file on disk is therefore always complete and readable (a killed run loses at most the
runs stored since the last save), and a full disk fails one save with one message instead of
leaving HDF5 with a half-written file (whose library state after ``ENOSPC`` is not safe to
use).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.checksums import dataset_options, digest
from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.outputs import atomic_write
from rerinv.training import integrity
from rerinv.training.results import (
    CHECKED_FIELDS,
    EVENT_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    LIBVER,
    STEP_FIELDS,
    factor_labels,
    inverse_updates,
    load_training,
    run_settings,
    stored_row,
)
from rerinv.training.spec import TrainingSpec


class TrainingStore:
    """An open training file, held in memory; :meth:`save` writes it whole to ``path``."""

    def __init__(self, file: h5py.File, path: str | Path, *, on_disk: bool):
        self.file = file
        self.path = Path(path)
        self.done = file["runs/done"][...]
        #: ``path`` holds this file (it was opened from there, or saved once)
        self.on_disk = on_disk
        self._saved_at = -math.inf

    @classmethod
    def create(
        cls,
        path: str | Path,
        spec: TrainingSpec,
        config: Config,
        attrs: dict[str, Any],
        descriptions: list[str],
    ) -> TrainingStore:
        """A new file for ``path`` with every dataset at its fill value; nothing is written
        to ``path`` until :meth:`save`."""
        f = _memory_file(path, "w")
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["master_seed"] = spec.master_seed
        f.attrs["checksums"] = integrity.CHECKSUMS
        string = h5py.string_dtype()
        f.create_dataset("config", data=config.to_toml(), dtype=string)
        f.create_dataset("spec", data=spec.to_json(), dtype=string)
        runs = run_settings(spec)
        settings = spec.settings()
        checked = dataset_options(np.float64)
        sgroup = f.create_group("settings")
        _strings(sgroup, "label", [s.label for s in settings])
        _strings(sgroup, "optimizer", [s.optimizer for s in settings])
        _strings(sgroup, "backend", [s.backend for s in settings])
        _strings(sgroup, "description", descriptions)
        for key in ("bits", "lr", "damping"):
            values = [np.nan if getattr(s, key) is None else getattr(s, key) for s in settings]
            sgroup.create_dataset(key, data=np.array(values, dtype=np.float64), **checked)
        g = f.create_group("runs")
        setting = np.array([settings.index(s) for s, _ in runs], dtype=np.int64)
        g.create_dataset("setting", data=setting, **checked)
        seed_index = np.array([i for _, i in runs], dtype=np.int64)
        g.create_dataset("seed_index", data=seed_index, **checked)
        n_runs, steps = len(runs), spec.steps
        g.create_dataset("done", shape=(n_runs,), dtype=np.bool_, fillvalue=False, **checked)
        for name in ("status", "error"):
            g.create_dataset(name, shape=(n_runs,), dtype=string, fillvalue="")
        f.create_group("steps")
        f.create_group("inverses")
        timing = f.create_group("timing")
        for name, (group, offset) in STEP_FIELDS.items():
            f[group].create_dataset(
                name, shape=(n_runs, steps + offset), dtype=np.float64, fillvalue=np.nan,
                **checked,
            )  # fmt: skip
        labels = factor_labels(spec)
        _strings(f["inverses"], "factor", labels)
        shape = (n_runs, inverse_updates(spec), len(labels))
        for name, (group, dtype, fill) in EVENT_FIELDS.items():
            f[group].create_dataset(
                name, shape=shape, dtype=string if dtype == "str" else dtype, fillvalue=fill,
                **dataset_options(dtype),
            )  # fmt: skip
        for name, dtype in (("run_time", np.float64), ("finished_at", np.float64)):
            timing.create_dataset(name, shape=(n_runs,), dtype=dtype, fillvalue=np.nan, **checked)
        timing.create_dataset("worker", shape=(n_runs,), dtype=string, fillvalue="")
        for group in (g, timing):  # CRC-32 of each stored run's record
            group.create_dataset("checksum", shape=(n_runs,), dtype=np.uint32, fillvalue=0,
                                 **checked)  # fmt: skip
        timing.attrs["sessions"] = "[]"
        timing.attrs["sessions_sha256"] = digest("[]")
        f.attrs["description_sha256"] = integrity.description_digest(f)
        return cls(f, path, on_disk=False)

    @classmethod
    def open(cls, path: str | Path) -> TrainingStore:
        """Open an existing training file to complete it (``--resume``), after verifying every
        checksum; a format version 1 file (no checksums) is refused."""
        results = load_training(path)
        if not results.checked:
            raise InputError(
                f"{path} was written before training files carried checksums (format version "
                "1): it can be reported but not resumed; start a new run with another --out"
            )
        return cls(_memory_file(path, "r+"), path, on_disk=True)

    def stored_spec(self) -> tuple[str, str]:
        """The spec JSON and configuration TOML the file was written for."""
        return self.file["spec"].asstr()[()], self.file["config"].asstr()[()]

    def write_run(self, run: int, record: dict[str, Any]) -> None:
        """Store one finished (or failed) run in memory: data, checksums, then ``done``."""
        f = self.file
        try:
            for name, (group, _) in STEP_FIELDS.items():
                if name in record and name in f[group]:
                    values = np.asarray(record[name], dtype=np.float64)
                    f[group][name][run, : len(values)] = values
            n_factors = f["inverses/factor"].shape[0]
            for name, (group, dtype, fill) in EVENT_FIELDS.items():
                dataset = f[group][name]
                row = np.full(dataset.shape[1:], fill, dtype=object if dtype == "str" else dtype)
                for k, event in enumerate(record.get("events", [])):
                    row[k // n_factors, k % n_factors] = event[name]
                dataset[run] = row
            f["runs/status"][run] = record["status"]
            f["runs/error"][run] = record.get("error", "")
            for name in ("run_time", "finished_at", "worker"):
                f["timing"][name][run] = record[name]
            for group, names in CHECKED_FIELDS.items():  # the values as stored, read back
                values = [(name, stored_row(f[name], run)) for name in names if name in f]
                f[group]["checksum"][run] = integrity.run_crc(values)
            f["runs/done"][run] = True
        except BaseException:  # no checksum without its done flag (a second Ctrl-C, an error)
            for group in CHECKED_FIELDS:
                f[group]["checksum"][run] = 0
            raise
        self.done[run] = True

    def add_session(self, session: dict[str, Any]) -> None:
        timing = self.file["timing"]
        text = json.dumps([*json.loads(timing.attrs["sessions"]), session])
        timing.attrs["sessions"] = text
        timing.attrs["sessions_sha256"] = digest(text)

    def save(self, *, interval: float = 0.0) -> bool:
        """Write the file whole to :attr:`path` (a temporary file beside it, renamed into
        place), unless it was saved less than ``interval`` seconds ago; True when written.

        Raises
        ------
        InputError
            One line when the file cannot be written (e.g. the disk is full); :attr:`path`
            then still holds the previous save (or nothing, before the first).
        """
        if time.monotonic() - self._saved_at < interval:
            return False
        self.file.flush()
        atomic_write(self.path, self.file.id.get_file_image())
        self.on_disk, self._saved_at = True, time.monotonic()
        return True

    def close(self) -> None:
        """Release the in-memory file (without saving it)."""
        if self.file.id.valid:
            self.file.close()


def _memory_file(path: str | Path, mode: str) -> h5py.File:
    """The file in memory (HDF5 core driver without backing store: ``mode`` ``"w"`` never
    touches ``path``, ``"r+"`` reads it once)."""
    try:
        return h5py.File(path, mode, driver="core", backing_store=False, libver=LIBVER)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({' '.join(str(exc).split())})") from None


def _strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    return group.create_dataset(
        name, data=np.array(values, dtype=object), dtype=h5py.string_dtype()
    )
