"""Checksums of a training file: corruption is reported, never shown as data.

The design of the Monte Carlo file's (:mod:`rerinv.studies.mc.integrity`,
``docs/hdf5-layout.md``, *Integrity*), for the training layout (``docs/training.md``):

- every numeric dataset is chunked with HDF5's Fletcher32 filter, so a changed byte of its
  data makes the read fail; the file uses the HDF5 1.8 format, whose object headers carry
  checksums;
- every stored run has a CRC-32 of its whole record: ``/runs/checksum`` over its steps, its
  inverse events, status, error and ``done``; ``/timing/checksum`` over its timing fields.
  This covers the strings (status, errors, worker) that HDF5 cannot filter;
- the grid description (root attributes, ``/config``, ``/spec``, ``/settings``, the run
  indexes, the factor labels) has a SHA-256 in the root attribute ``description_sha256``, and
  the session log one in the ``/timing`` attribute ``sessions_sha256``.

Format version 1 files (before checksums) are read unchecked and labelled as such; a version 2
file without its checksums, or a "version 1" file holding any trace of them
(:func:`checksum_traces`), had them removed and is refused.

What this and the Monte Carlo file share (the error, the Fletcher32 options, the reads, the
digests) is :mod:`rerinv.checksums`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import h5py
import numpy as np

from rerinv import checksums as shared
from rerinv.checksums import ChecksumError, plain, verify_digests
from rerinv.errors import InputError

#: Root attribute naming the checksums a file carries.
CHECKSUMS = "fletcher32 datasets, crc32 per run, sha256 description"
#: Datasets (besides the root attributes) that define the grid.
DESCRIPTION_DATASETS = (
    "config",
    "spec",
    "settings/label",
    "settings/optimizer",
    "settings/backend",
    "settings/description",
    "settings/bits",
    "settings/lr",
    "settings/damping",
    "runs/setting",
    "runs/seed_index",
    "inverses/factor",
)
_UNHASHED_ATTRS = ("description_sha256",)


def _value_bytes(value: Any) -> bytes:
    array = np.asarray(value)
    if array.dtype.kind in "USO":
        texts = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]
        return "\0".join(texts).encode("utf-8") + b"\1"
    if array.dtype.kind == "f":
        array = np.where(np.isnan(array), np.nan, array.astype(np.float64))  # one NaN pattern
    elif array.dtype.kind in "iub":
        array = array.astype(np.int64)
    return np.ascontiguousarray(array).tobytes()


def run_crc(values: Iterable[tuple[str, Any]], done: bool = True) -> int:
    """CRC-32 of one run's stored ``(name, value)`` pairs (rows as stored, padded)."""
    crc = zlib.crc32(b"\1" if done else b"\0")
    for name, value in values:
        crc = zlib.crc32(name.encode() + b"=" + _value_bytes(value), crc)
    return crc


def verify_runs(
    path: Any, done: np.ndarray, checksums: Mapping[str, np.ndarray], values_of
) -> None:
    """Raise :class:`ChecksumError` when a stored run differs from its CRCs.

    ``checksums`` maps a group (``runs``, ``timing``) to its stored CRCs; ``values_of(group,
    run)`` gives the ``(name, value)`` pairs that group's CRC covers.
    """
    orphans = np.zeros_like(done)
    for group, crcs in checksums.items():
        if crcs.shape != done.shape:
            raise InputError(f"{path}: damaged training file (/{group}/checksum has a wrong shape)")
        orphans |= (crcs != 0) & ~done
        # One run is stored at a time (data, checksums, then done) and the file is replaced
        # whole, so a stored checksum on a run that is not done means the flags were changed.
        if orphans.any():
            run = int(np.flatnonzero(orphans)[0])
            raise ChecksumError(
                f"{path}: checksum mismatch: run {run} has a stored checksum but reads as not "
                "done; the file was changed or damaged after it was written"
            )
        for run in np.flatnonzero(done):
            if run_crc(values_of(group, int(run))) != int(crcs[run]):
                raise ChecksumError(
                    f"{path}: checksum mismatch in run {run} (/{group}): the file was changed "
                    "or damaged after it was written; its numbers cannot be trusted (rerun, or "
                    "restore a copy)"
                )


# -- description and sessions ----------------------------------------------------------------
def description_digest(f: h5py.File) -> str:
    """SHA-256 of everything that defines the grid (see the module docstring)."""
    digest = hashlib.sha256()
    attrs = {k: plain(v) for k, v in f.attrs.items() if k not in _UNHASHED_ATTRS}
    digest.update(json.dumps(attrs, sort_keys=True, default=str).encode())
    for name in DESCRIPTION_DATASETS:
        dataset = f[name]
        digest.update(name.encode() + b"\0")
        if h5py.check_string_dtype(dataset.dtype):
            values = dataset.asstr()[()]
            values = [values] if isinstance(values, str) else np.asarray(values).ravel().tolist()
            digest.update("\0".join(values).encode("utf-8") + b"\1")
        else:
            digest.update(_value_bytes(dataset[()]))
    return digest.hexdigest()


def verify_description(f: h5py.File, path: Any) -> None:
    """Raise :class:`ChecksumError` when the grid description or session log was altered."""
    verify_digests(f, path, description_digest(f), "grid description (spec, configuration, "
                   "settings or root attributes)")  # fmt: skip


def checksum_traces(f: h5py.File) -> list[str]:
    """What of the checksummed format (version 2) ``f`` holds: empty in a file written before
    it. A Fletcher32 filter is part of a dataset's (checksummed) object header and cannot be
    taken off without rewriting the data, so a version 1 label on a filtered file is a lie."""
    traces = [f"the root attribute {name}" for name in ("checksums", *_UNHASHED_ATTRS)
              if name in f.attrs]  # fmt: skip
    traces += [f"/{name}" for name in ("runs/checksum", "timing/checksum") if name in f]
    if "timing" in f and "sessions_sha256" in f["timing"].attrs:
        traces.append("the /timing attribute sessions_sha256")
    filtered: list[str] = []
    f.visititems(
        lambda name, obj: filtered.append(name)
        if isinstance(obj, h5py.Dataset) and obj.fletcher32 else None
    )  # fmt: skip
    traces += [f"Fletcher32 checksums on /{name}" for name in filtered[:1]]
    return traces


# -- reading ---------------------------------------------------------------------------------
def read(f: h5py.File, name: str, path: Any) -> np.ndarray:
    """``f[name][...]`` (strings as ``str``), a failed Fletcher32 check as one line
    (:func:`rerinv.checksums.read`)."""
    return shared.read(f, name, path, "training file", strings=True)
