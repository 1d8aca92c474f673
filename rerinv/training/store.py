"""HDF5 store of a training grid: one file per grid, written by the driver alone.

It follows the Monte Carlo store's conventions (``docs/hdf5-layout.md``): format name and
version attributes, provenance as root attributes, the configuration TOML and the training
spec JSON stored verbatim, every run stored at its index (so the file does not depend on the
order runs finished in), ``done`` set last, run-dependent numbers (wall times, workers,
sessions) kept apart under ``/timing``, and ``--resume`` completing the runs not yet done. The
layout is documented in ``docs/training.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.training.spec import Setting, TrainingSpec

FORMAT_NAME = "rerinv-training"
FORMAT_VERSION = 1

#: Per-step datasets: name -> (group, length offset): ``steps + offset`` entries per run.
STEP_FIELDS = {
    "train_loss": ("steps", 1),
    "test_loss": ("steps", 1),
    "test_accuracy": ("steps", 1),
    "batch_loss": ("steps", 0),
    "nu": ("steps", 0),
    "wall_time": ("timing", 1),
}
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
    layers = len(spec.architecture().shapes)
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


class TrainingStore:
    """An open training file."""

    def __init__(self, file: h5py.File):
        self.file = file
        self.done = file["runs/done"][...]

    @classmethod
    def create(
        cls,
        path: str | Path,
        spec: TrainingSpec,
        config: Config,
        attrs: dict[str, Any],
        descriptions: list[str],
    ) -> TrainingStore:
        """Create ``path`` (must not exist) with every dataset at its fill value."""
        try:
            f = h5py.File(path, "w-")
        except (OSError, FileExistsError) as exc:
            raise InputError(f"cannot create {path}: {exc}") from exc
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["master_seed"] = spec.master_seed
        string = h5py.string_dtype()
        f.create_dataset("config", data=config.to_toml(), dtype=string)
        f.create_dataset("spec", data=spec.to_json(), dtype=string)
        runs = run_settings(spec)
        settings = spec.settings()
        sgroup = f.create_group("settings")
        _strings(sgroup, "label", [s.label for s in settings])
        _strings(sgroup, "optimizer", [s.optimizer for s in settings])
        _strings(sgroup, "backend", [s.backend for s in settings])
        _strings(sgroup, "description", descriptions)
        for key in ("bits", "lr", "damping"):
            values = [np.nan if getattr(s, key) is None else getattr(s, key) for s in settings]
            sgroup.create_dataset(key, data=np.array(values, dtype=np.float64))
        g = f.create_group("runs")
        g.create_dataset("setting", data=np.array([settings.index(s) for s, _ in runs]))
        g.create_dataset("seed_index", data=np.array([i for _, i in runs], dtype=np.int64))
        g.create_dataset("done", shape=(len(runs),), dtype=np.bool_, fillvalue=False)
        for name in ("status", "error"):
            g.create_dataset(name, shape=(len(runs),), dtype=string, fillvalue="")
        n_runs, steps = len(runs), spec.steps
        f.create_group("steps")
        f.create_group("inverses")
        timing = f.create_group("timing")
        for name, (group, offset) in STEP_FIELDS.items():
            f[group].create_dataset(
                name, shape=(n_runs, steps + offset), dtype=np.float64, fillvalue=np.nan
            )
        labels = factor_labels(spec)
        _strings(f["inverses"], "factor", labels)
        shape = (n_runs, inverse_updates(spec), len(labels))
        for name, (group, dtype, fill) in EVENT_FIELDS.items():
            f[group].create_dataset(
                name, shape=shape, dtype=string if dtype == "str" else dtype, fillvalue=fill
            )
        for name, dtype in (("run_time", np.float64), ("finished_at", np.float64)):
            timing.create_dataset(name, shape=(n_runs,), dtype=dtype, fillvalue=np.nan)
        timing.create_dataset("worker", shape=(n_runs,), dtype=string, fillvalue="")
        timing.attrs["sessions"] = "[]"
        f.flush()
        return cls(f)

    @classmethod
    def open(cls, path: str | Path) -> TrainingStore:
        return cls(_open(path, "r+"))

    def stored_spec(self) -> tuple[str, str]:
        """The spec JSON and configuration TOML the file was written for."""
        return self.file["spec"].asstr()[()], self.file["config"].asstr()[()]

    def write_run(self, run: int, record: dict[str, Any]) -> None:
        """Store one finished (or failed) run and flush; ``done`` is set last."""
        f = self.file
        for name, (group, _) in STEP_FIELDS.items():
            if name in record:
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
        f["runs/done"][run] = True
        self.done[run] = True
        f.flush()

    def add_session(self, session: dict[str, Any]) -> None:
        timing = self.file["timing"]
        timing.attrs["sessions"] = json.dumps([*json.loads(timing.attrs["sessions"]), session])
        self.file.flush()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.flush()
            self.file.close()


def load_training(path: str | Path) -> TrainingResults:
    """Read a file written by ``rerinv train`` into memory."""
    with _open(path, "r") as f:
        spec = TrainingSpec.from_json(f["spec"].asstr()[()])
        s = f["settings"]
        settings = [
            Setting(
                str(opt),
                str(backend),
                *(None if np.isnan(v) else float(v) for v in (bits, lr, damping)),
            )
            for opt, backend, bits, lr, damping in zip(
                s["optimizer"].asstr()[...],
                s["backend"].asstr()[...],
                s["bits"][...],
                s["lr"][...],
                s["damping"][...],
                strict=True,
            )
        ]
        return TrainingResults(
            path=Path(path),
            attrs={k: _plain(v) for k, v in f.attrs.items()},
            spec=spec,
            config=Config.from_toml(f["config"].asstr()[()], source=f"{path}:/config"),
            settings=settings,
            setting_index=f["runs/setting"][...],
            seed_index=f["runs/seed_index"][...],
            done=f["runs/done"][...],
            status=np.array(f["runs/status"].asstr()[...].tolist(), dtype=str),
            error=np.array(f["runs/error"].asstr()[...].tolist(), dtype=str),
            steps={name: f[group][name][...] for name, (group, _) in STEP_FIELDS.items()},
            events={
                name: (
                    np.array(f[group][name].asstr()[...].tolist(), dtype=str)
                    if dtype == "str"
                    else f[group][name][...]
                )
                for name, (group, dtype, _) in EVENT_FIELDS.items()
            },
            factor_labels=f["inverses/factor"].asstr()[...].tolist(),
            descriptions=s["description"].asstr()[...].tolist(),
            sessions=json.loads(f["timing"].attrs["sessions"]),
        )


def _open(path: str | Path, mode: str) -> h5py.File:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such training file")
    try:
        f = h5py.File(path, mode)
    except OSError as exc:
        raise InputError(f"{path}: cannot open as HDF5 ({exc})") from exc
    if f.attrs.get("format") != FORMAT_NAME:
        f.close()
        raise InputError(f"{path} is not a rerinv training file (format attribute)")
    if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
        f.close()
        raise InputError(
            f"{path} uses training format version {f.attrs.get('format_version')}; this "
            f"rerinv reads version {FORMAT_VERSION}"
        )
    return f


def _strings(group: h5py.Group, name: str, values: list[str]) -> h5py.Dataset:
    return group.create_dataset(
        name, data=np.array(values, dtype=object), dtype=h5py.string_dtype()
    )


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
