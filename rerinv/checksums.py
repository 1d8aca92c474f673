"""What the checksummed HDF5 files of rerinv share (the Monte Carlo results,
:mod:`rerinv.studies.mc.integrity`, and the training files, :mod:`rerinv.training.integrity`):
the error, the dataset options that put HDF5's Fletcher32 filter on every dataset it can
filter, the reads that turn a failed filter into one line, and the digests of a file's
description and session log."""

from __future__ import annotations

import hashlib
from typing import Any

import h5py
import numpy as np

from rerinv.errors import InputError


class ChecksumError(InputError):
    """Stored data does not match its checksum: the file was changed or damaged."""


def dataset_options(dtype: Any) -> dict[str, Any]:
    """``create_dataset`` keywords: Fletcher32 (chunked) for every type HDF5 can filter
    (HDF5 allows no filter on variable-length strings)."""
    if isinstance(dtype, str) and dtype == "str":
        return {}
    return {} if h5py.check_string_dtype(np.dtype(dtype)) is not None else {"fletcher32": True}


def digest(text: str) -> str:
    """SHA-256 (hex) of ``text``: the session log's ``sessions_sha256``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plain(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read(f: h5py.File, name: str, path: Any, what: str, *, strings: bool = False) -> np.ndarray:
    """``f[name][...]`` (``strings``: variable-length strings as ``str``), with a failed
    Fletcher32 check or an unreadable dataset as one :class:`InputError` line naming the
    dataset; ``what`` names the file ("results file", "training file")."""
    try:
        dataset = f[name]
    except KeyError:
        raise InputError(f"{path}: damaged {what}, no dataset /{name}") from None
    if not isinstance(dataset, h5py.Dataset):
        raise InputError(f"{path}: damaged {what}, /{name} is not a dataset")
    try:
        if strings and h5py.check_string_dtype(dataset.dtype):
            values = dataset.asstr()[...]
            return np.array(np.asarray(values, dtype=object).tolist(), dtype=str).reshape(
                np.shape(values)
            )
        return dataset[...]
    except (OSError, RuntimeError) as exc:
        if dataset.fletcher32:
            raise ChecksumError(
                f"{path}: checksum mismatch in /{name} (Fletcher32): the file was changed or "
                "damaged after it was written; its numbers cannot be trusted (rerun, or "
                "restore a copy)"
            ) from None
        raise InputError(f"{path}: damaged {what}, cannot read /{name} ({exc})") from None


def verify_digests(f: h5py.File, path: Any, description_digest: str, description: str) -> None:
    """Raise :class:`ChecksumError` when the file's description (whose digest, recomputed, is
    ``description_digest``; ``description`` says what it covers) or its session log
    (``/timing`` attributes ``sessions``, ``sessions_sha256``) was altered."""
    if plain(f.attrs.get("description_sha256", "")) != description_digest:
        raise ChecksumError(
            f"{path}: checksum mismatch in the {description}: the file was changed or damaged "
            "after it was written"
        )
    timing = f["timing"]
    if plain(timing.attrs.get("sessions_sha256", "")) != digest(
        str(plain(timing.attrs["sessions"]))
    ):
        raise ChecksumError(f"{path}: checksum mismatch in the session log (/timing sessions)")
