"""A training file read into memory: its format and layout (what the store writes), the
:class:`TrainingResults` and :func:`load_training`, which reads through
:func:`rerinv.untrusted.read_untrusted` and verifies every checksum
(:mod:`rerinv.training.integrity`). The writer is :mod:`rerinv.training.store`; the layout is
documented in ``docs/training.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.training import integrity
from rerinv.training.integrity import plain as _plain
from rerinv.training.spec import Setting, TrainingSpec
from rerinv.untrusted import read_untrusted

FORMAT_NAME = "rerinv-training"
#: Version 2 carries checksums; version 1 (before them) is read unchecked, never resumed.
#: Version 3 adds the validation curves and the K-FAC step's signed <V, grad>
#: (:data:`NEW_STEP_FIELDS`; NaN when read from an older file).
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
#: HDF5 1.8 object headers (checksummed), as the Monte Carlo file.
LIBVER = ("v108", "latest")

#: Per-step datasets: name -> (group, length offset): ``steps + offset`` entries per run.
STEP_FIELDS = {
    "train_loss": ("steps", 1),
    "test_loss": ("steps", 1),
    "test_accuracy": ("steps", 1),
    "batch_loss": ("steps", 0),
    "nu": ("steps", 0),
    "wall_time": ("timing", 1),
}
#: Per-step datasets of format version 3 (what :class:`~rerinv.training.train.RunRecord`
#: holds when the network has a validation split; the K-FAC step's <V, grad>, whose sign
#: says whether the step was a descent direction).
NEW_STEP_FIELDS = {
    "val_loss": ("steps", 1),
    "val_accuracy": ("steps", 1),
    "damping": ("steps", 0),
    "rho": ("steps", 0),
    "descent": ("steps", 0),
    "non_descent": ("steps", 0),
}
STEP_FIELDS.update(NEW_STEP_FIELDS)
#: Per inverse-event datasets ``(run, update, factor)``: name -> (group, dtype, fill).
EVENT_FIELDS = {
    "step": ("inverses", np.int64, -1),
    "condition": ("inverses", np.float64, np.nan),
    "damping": ("inverses", np.float64, np.nan),
    "min_bits": ("inverses", np.float64, np.nan),
    "median_bits": ("inverses", np.float64, np.nan),
    "inv_solves": ("inverses", np.int64, -1),
    "vmm_ops": ("inverses", np.int64, -1),
    "passes": ("inverses", np.int64, -1),
    "blocks": ("inverses", np.int64, -1),
    "error": ("inverses", "str", ""),
    "inverse_wall_time": ("timing", np.float64, np.nan),
}


def run_settings(spec: TrainingSpec) -> list[tuple[Setting, int]]:
    """Every run of the grid as ``(setting, seed index)``; run ``r`` is setting
    ``r // seeds``, seed ``r % seeds``."""
    return [(s, i) for s in spec.settings() for i in range(spec.seeds)]


def factor_labels(spec: TrainingSpec) -> list[str]:
    """``A1, G1, A2, G2, ...``: the factors in event order."""
    layers = len(spec.model().factor_sizes())
    return [f"{kind}{layer + 1}" for layer in range(layers) for kind in ("A", "G")]


def inverse_updates(spec: TrainingSpec) -> int:
    return -(-spec.steps // spec.inverse_every)


@dataclass
class TrainingResults:
    """A training file in memory. Arrays are indexed by run first (see :func:`run_settings`)."""

    path: Path
    attrs: dict[str, Any]
    spec: TrainingSpec
    config: Config
    settings: list[Setting]
    setting_index: np.ndarray  #: (R,) index into ``settings``
    seed_index: np.ndarray  #: (R,)
    done: np.ndarray  #: (R,) bool
    status: np.ndarray  #: (R,) finished | diverged | failed | ""
    error: np.ndarray  #: (R,)
    steps: dict[str, np.ndarray]  #: STEP_FIELDS, (R, steps [+1])
    events: dict[str, np.ndarray]  #: EVENT_FIELDS, (R, updates, factors)
    factor_labels: list[str]
    descriptions: list[str]  #: (settings,) one line on each setting's inverse backend
    sessions: list[dict[str, Any]]
    #: True when every checksum was verified; False for a format version 1 file (written
    #: before training files carried checksums), whose numbers cannot be verified
    checked: bool = True


#: What each run's CRC covers: ``/runs/checksum`` (results) and ``/timing/checksum``.
CHECKED_FIELDS = {
    "runs": (
        *(f"{group}/{name}" for name, (group, _) in STEP_FIELDS.items() if group != "timing"),
        *(f"{group}/{name}" for name, (group, _, _) in EVENT_FIELDS.items() if group != "timing"),
        "runs/status",
        "runs/error",
    ),
    "timing": (
        *(f"{group}/{name}" for name, (group, _) in STEP_FIELDS.items() if group == "timing"),
        *(f"{group}/{name}" for name, (group, _, _) in EVENT_FIELDS.items() if group == "timing"),
        "timing/run_time",
        "timing/finished_at",
        "timing/worker",
    ),
}


def load_training(path: str | Path) -> TrainingResults:
    """Read a file written by ``rerinv train`` into memory, verifying its checksums.

    The file is read through :func:`rerinv.untrusted.read_untrusted` (a structure check,
    then a child process with a time limit): a damaged file cannot hang the caller.

    Raises
    ------
    InputError
        One line: the file is missing, is not a training file, is damaged (a
        ``rerinv.untrusted.DamagedFileError`` when reading it would hang or crash), or (an
        ``integrity.ChecksumError``) its data differ from their checksums.
    """
    _check_is_file(path)
    return read_untrusted(path, _load_file, what="training file")


def _load_file(path: str | Path) -> TrainingResults:
    """:func:`load_training` in this process (the reader :func:`read_untrusted` runs)."""
    with _open(path) as f:
        try:
            return _load(f, path)
        except RerinvError:
            raise
        except (
            KeyError, ValueError, TypeError, IndexError, AttributeError, OSError, RuntimeError,
            RecursionError,
        ) as exc:  # fmt: skip
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise InputError(f"{path}: damaged training file ({reason})") from None


def _load(f: h5py.File, path: str | Path) -> TrainingResults:
    version = int(f.attrs["format_version"])
    checked = version >= 2
    traces = integrity.checksum_traces(f)
    if not checked and traces:
        raise integrity.ChecksumError(
            f"{path}: damaged training file: it reads as format version 1 (no checksums) but "
            f"holds {traces[0]}: its checksums were removed after it was written, so its "
            "numbers cannot be trusted (rerun, or restore a copy)"
        )
    if checked:
        if "checksums" not in f.attrs:
            raise integrity.ChecksumError(
                f"{path}: damaged training file: format version {version} without its "
                "checksums attribute (removed or damaged); its numbers cannot be trusted"
            )
        integrity.verify_description(f, path)
    read = lambda name: integrity.read(f, name, path)  # noqa: E731
    spec = TrainingSpec.from_json(str(read("spec")[()]))
    names = ("label", "optimizer", "backend", "bits", "lr", "damping", "description")
    s = {name: read(f"settings/{name}") for name in names}
    # the settings are the spec's (noise level and damping rule live in the label); the
    # stored columns must agree with them
    settings = spec.settings()
    stored = [
        (str(label), str(opt), str(backend), *(None if np.isnan(v) else float(v) for v in nums))
        for label, opt, backend, *nums in zip(*(s[name] for name in names[:-1]), strict=True)
    ]
    expected = [(x.label, x.optimizer, x.backend, x.bits, x.lr, x.damping) for x in settings]
    checked_fields = {
        group: tuple(name for name in names if name in f) for group, names in CHECKED_FIELDS.items()
    }
    present = {name for name, (group, _) in STEP_FIELDS.items() if f"{group}/{name}" in f}
    if not present >= set(STEP_FIELDS) - set(NEW_STEP_FIELDS):
        raise InputError(f"{path}: damaged training file (a per-step dataset is missing)")
    arrays = {name: read(name) for group in checked_fields.values() for name in group}
    done = read("runs/done")
    setting_index, seed_index = read("runs/setting"), read("runs/seed_index")
    labels = read("inverses/factor").tolist()
    n_runs = len(run_settings(spec))
    shapes_agree = (
        stored == expected
        and done.shape == setting_index.shape == seed_index.shape == (n_runs,)
        and np.array_equal(setting_index, [settings.index(s) for s, _ in run_settings(spec)])
        and labels == factor_labels(spec)
        and all(
            arrays[f"{group}/{name}"].shape == (n_runs, spec.steps + offset)
            for name, (group, offset) in STEP_FIELDS.items()
            if name in present
        )
        and all(
            arrays[f"{group}/{name}"].shape == (n_runs, inverse_updates(spec), len(labels))
            for name, (group, _, _) in EVENT_FIELDS.items()
        )
    )
    if not shapes_agree:
        raise InputError(f"{path}: damaged training file (datasets disagree with its spec)")
    if checked:
        integrity.verify_runs(
            path,
            done,
            {group: read(f"{group}/checksum") for group in CHECKED_FIELDS},
            lambda group, run: [(name, arrays[name][run]) for name in checked_fields[group]],
        )
    timing = f["timing"]
    sessions = json.loads(str(_plain(timing.attrs["sessions"])))
    if not isinstance(sessions, list):
        raise InputError(f"{path}: damaged training file (/timing sessions is not a list)")
    return TrainingResults(
        path=Path(path),
        attrs={k: _plain(v) for k, v in f.attrs.items()},
        spec=spec,
        config=Config.from_toml(str(read("config")[()]), source=f"{path}:/config"),
        settings=settings,
        setting_index=setting_index,
        seed_index=seed_index,
        done=done,
        status=arrays["runs/status"],
        error=arrays["runs/error"],
        steps={
            name: arrays[f"{group}/{name}"]
            if name in present
            else np.full((n_runs, spec.steps + offset), np.nan)
            for name, (group, offset) in STEP_FIELDS.items()
        },
        events={name: arrays[f"{group}/{name}"] for name, (group, _, _) in EVENT_FIELDS.items()},
        factor_labels=labels,
        descriptions=s["description"].tolist(),
        sessions=sessions,
        checked=checked,
    )


def _check_is_file(path: str | Path) -> None:
    if not Path(path).is_file():
        what = "is a folder, not" if Path(path).is_dir() else "no such file: not"
        raise InputError(f"{path}: {what} a training file")


def _open(path: str | Path) -> h5py.File:
    _check_is_file(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({' '.join(str(exc).split())})") from None
    try:
        name, version = _plain(f.attrs.get("format")), _plain(f.attrs.get("format_version"))
        version = None if version is None else int(version)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        f.close()
        raise InputError(f"{path}: damaged training file ({type(exc).__name__})") from None
    if name != FORMAT_NAME:
        f.close()
        raise InputError(f"{path} is not a rerinv training file (format attribute)")
    if version not in READABLE_VERSIONS:
        f.close()
        raise InputError(
            f"{path} uses training format version {version}; this rerinv reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (a newer file needs a newer rerinv)"
        )
    return f


def stored_row(dataset: h5py.Dataset, run: int) -> Any:
    return dataset.asstr()[run] if h5py.check_string_dtype(dataset.dtype) else dataset[run]
