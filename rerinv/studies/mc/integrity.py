"""Checksums of a Monte Carlo results file: corruption is reported, never shown as data.

Three layers (``docs/hdf5-layout.md``, *Integrity*):

- every numeric dataset is chunked with HDF5's Fletcher32 filter, so a changed byte of its
  data makes the read fail (HDF5 allows no filter on variable-length strings); the file uses
  the HDF5 1.8 format, whose object headers carry checksums (chunk indexes do not: a damaged
  index reads as fill values, which the per-trial checksums below then contradict);
- every stored trial has a CRC-32 of its whole record (``/trials/checksum`` over the result
  fields and ``done``, ``/timing/checksum`` over the timing fields), which covers the strings
  (status, error, worker) that live in HDF5's global heap;
- the run description (root attributes, ``/config``, ``/sweep``, ``/points``, the seed
  datasets) has a SHA-256 in the root attribute ``description_sha256``, and the session log
  one in ``/timing`` attribute ``sessions_sha256``.

Files written before checksums existed (no ``checksums`` root attribute, and none of the
above) are read unchecked; a file that lacks the attribute but holds any of the rest had its
checksums removed, and is refused (:func:`has_checksums`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from rerinv import checksums as shared
from rerinv.checksums import ChecksumError, plain, verify_digests
from rerinv.studies.records import FIELDS, RESULT_FIELDS, STRING, TIMING_FIELDS, Field

#: Root attribute naming the checksums a file carries (absent in older files).
CHECKSUMS = "fletcher32 datasets, crc32 per trial, sha256 description"
#: Root attributes left out of the description digest (the digest itself).
_UNHASHED_ATTRS = ("description_sha256",)
_DESCRIPTION_DATASETS = (
    "config",
    "sweep/names",
    "points/index",
    "points/label",
    "points/config",
    "trials/seed_entropy",
    "trials/seed_spawn_key",
)


def has_checksums(f: h5py.File, path: Any = None) -> bool:
    """Whether ``f`` carries checksums (the root attribute ``checksums``).

    A file without that attribute is read unchecked only if nothing of the checksummed format
    is left in it: a removed attribute beside checksum datasets, digests or Fletcher32-filtered
    datasets (a filter is part of a dataset's HDF5 object header, itself checksummed, and
    cannot be taken off without rewriting the data) means the checksums were taken away.

    Raises
    ------
    ChecksumError
        The ``checksums`` attribute is missing but the file was written with checksums.
    """
    if "checksums" in f.attrs:
        return True
    traces = checksum_traces(f)
    if traces:
        raise ChecksumError(
            f"{path or f.filename}: damaged results file: its checksums were removed (no root "
            f"attribute checksums, but {', '.join(traces)}); the file was changed after it was "
            "written and its numbers cannot be trusted (rerun, or restore a copy)"
        )
    return False


def checksum_traces(f: h5py.File) -> list[str]:
    """What of the checksummed format ``f`` holds (empty in a file written before it)."""
    traces = [f"root attribute {name}" for name in _UNHASHED_ATTRS if name in f.attrs]
    traces += [f"/{name}" for name in ("trials/checksum", "timing/checksum") if name in f]
    if "timing" in f and "sessions_sha256" in f["timing"].attrs:
        traces.append("/timing attribute sessions_sha256")
    names = ("trials/done", "trials/seed_entropy", *(field.path.lstrip("/") for field in FIELDS))
    filtered = [
        name
        for name in names
        if name in f and isinstance(f[name], h5py.Dataset) and f[name].fletcher32
    ]
    if filtered:
        traces.append(f"Fletcher32 checksums on /{filtered[0]}")
    return traces


# -- per-trial record checksums ------------------------------------------------------------
def _field_bytes(field: Field, value: Any) -> bytes:
    if field.dtype == STRING:
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.encode("utf-8") + b"\0"
    array = np.asarray(value, dtype=field.dtype)
    if array.dtype.kind == "f":
        array = np.where(np.isnan(array), np.nan, array)  # one NaN bit pattern
    return np.ascontiguousarray(array).tobytes()


def record_crc(fields: Sequence[Field], values: Mapping[str, Any], done: bool = True) -> int:
    """CRC-32 of one trial's stored values of ``fields`` (history rows as stored, padded)."""
    crc = zlib.crc32(b"\1" if done else b"\0")
    for field in fields:
        crc = zlib.crc32(field.name.encode() + b"=" + _field_bytes(field, values[field.name]), crc)
    return crc


def stored_rows(record: Mapping[str, Any], history_length: int) -> dict[str, Any]:
    """``record`` as the store writes it: histories NaN-padded to ``history_length``."""
    out = dict(record)
    for field in FIELDS:
        if field.kind == "history":
            row = np.full(history_length, np.nan)
            values = np.asarray(record[field.name], dtype=np.float64)
            row[: len(values)] = values
            out[field.name] = row
    return out


def verify_trials(path: Any, done: np.ndarray, arrays: Mapping[str, np.ndarray], f: h5py.File):
    """Raise :class:`ChecksumError` when a stored trial's values differ from its CRCs."""
    groups = (("trials/checksum", RESULT_FIELDS), ("timing/checksum", TIMING_FIELDS))
    orphans = np.zeros_like(done)
    for name, fields in groups:
        crcs = read(f, name, path)
        orphans |= (crcs != 0) & ~done
        # The driver stores one trial at a time (checksums, then done), so a killed run leaves at
        # most one trial with a checksum that is not done; more means the done flags were lost
        # (e.g. a damaged chunk index, which HDF5 reads as fill values).
        if orphans.sum() > 1:
            point, trial = np.argwhere(orphans)[0]
            raise ChecksumError(
                f"{path}: checksum mismatch: trials such as ({point}, {trial}) have stored "
                "checksums but read as not done; the file was changed or damaged after it was "
                "written"
            )
        for point, trial in zip(*np.nonzero(done), strict=True):
            values = {field.name: arrays[field.name][point, trial] for field in fields}
            if record_crc(fields, values) != int(crcs[point, trial]):
                group = name.split("/")[0]
                raise ChecksumError(
                    f"{path}: checksum mismatch in trial ({point}, {trial}) of /{group}: the "
                    "file was changed or damaged after it was written; its numbers cannot be "
                    "trusted (rerun, or restore a copy)"
                )


# -- description and sessions ----------------------------------------------------------------
def description_digest(f: h5py.File) -> str:
    """SHA-256 of everything that defines the run (see the module docstring)."""
    digest = hashlib.sha256()
    attrs = {k: plain(v) for k, v in f.attrs.items() if k not in _UNHASHED_ATTRS}
    digest.update(json.dumps(attrs, sort_keys=True, default=str).encode())
    sweep = f["sweep"]
    digest.update(json.dumps({k: plain(v) for k, v in sweep.attrs.items()}, sort_keys=True,
                             default=str).encode())  # fmt: skip
    names = [f"sweep/axis_{i}" for i in range(len(sweep["names"]))]
    for name in (*_DESCRIPTION_DATASETS, *names):
        dataset = f[name]
        digest.update(name.encode() + b"\0")
        if h5py.check_string_dtype(dataset.dtype):
            values = dataset.asstr()[()]
            values = [values] if isinstance(values, str) else np.asarray(values).ravel().tolist()
            digest.update("\0".join(values).encode("utf-8") + b"\1")
        else:
            digest.update(np.ascontiguousarray(dataset[()]).tobytes())
    for i in range(len(names)):
        digest.update(str(plain(sweep[f"axis_{i}"].attrs.get("name", ""))).encode())
    return digest.hexdigest()


def verify_description(f: h5py.File, path: Any) -> None:
    """Raise :class:`ChecksumError` when the run description or session log was altered."""
    verify_digests(f, path, description_digest(f), "run description (configuration, sweep, "
                   "points or root attributes)")  # fmt: skip


# -- reading ---------------------------------------------------------------------------------
def read(f: h5py.File, name: str, path: Any) -> np.ndarray:
    """``f[name][...]``, a failed Fletcher32 check as one line (:func:`rerinv.checksums.read`)."""
    return shared.read(f, name, path, "results file")
