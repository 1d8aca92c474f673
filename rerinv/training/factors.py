"""Factor capture: the real, damped K-FAC factors met during training, as a matrix set.

A factor set is one HDF5 file (format ``rerinv-factor-set``, version 1): root attributes hold
the provenance, the task and the training spec JSON; every matrix is a dataset
``/factors/<name>`` (float64, square, symmetric positive definite) whose attributes say where
it came from: ``step`` (optimizer step of the inverse update), ``update`` (inverse update
index), ``layer`` (0-based), ``kind`` (``A``: layer inputs with bias, ``G``: pre-activation
gradients), ``damping`` (the multiple of I already added), ``condition`` (2-norm condition
number), ``size``, ``seed_index``, ``setting``. :func:`load_factor_set` returns
``(name, matrix, metadata)`` items in a fixed (name) order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.matrices import MATRIX_SET_FORMAT, load_matrix_set
from rerinv.outputs import atomic_write
from rerinv.provenance import provenance
from rerinv.training.spec import Setting, TrainingSpec
from rerinv.training.train import run_seed, train_run

FORMAT_NAME = MATRIX_SET_FORMAT
FORMAT_VERSION = 1


def capture_factors(
    spec: TrainingSpec,
    config: Config,
    out: str | Path,
    *,
    setting: Setting | None = None,
    seed_index: int = 0,
    every: int = 1,
    command_line: str | None = None,
    relative_damping: float | None = None,
    sizes: tuple[int, ...] = (),
    dtype: str = "float64",
    force: bool = False,
) -> Path:
    """Train one K-FAC run and save the damped factors of every ``every``-th inverse update.

    Parameters
    ----------
    spec : TrainingSpec
    config : Config
        Hardware, used only when ``setting`` has an analog backend.
    out : str or Path
        Factor-set file to create (must not exist).
    setting : Setting, optional
        K-FAC setting to train (default: float64 inverses at the spec's first damping).
    seed_index : int
        Which run seed of the grid (same initial weights and batches as in the grid).
    every : int
        Keep every ``every``-th inverse update (1: all of them).
    relative_damping : float, optional
        Store ``F + relative_damping * tr(F)/n * I`` of each undamped factor ``F`` (the usual
        K-FAC Tikhonov scale, e.g. 0.01) instead of the factor as the run damped it.
    sizes : tuple of int
        Keep only factors of these sizes (all when empty).
    dtype : str
        ``float64`` or ``float32`` (half the file; the stored matrix is then what a suite
        solves).
    force : bool
        Replace an existing ``out`` (atomically, once the factors are captured).
    """
    setting = setting or Setting("kfac", "float64")
    if setting.optimizer != "kfac":
        raise InputError("factor capture needs a K-FAC setting")
    if every < 1:
        raise InputError(f"capture every must be >= 1 inverse update, got {every}")
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} exists; pass --force to replace it, or choose another file")
    spec.check_dataset()
    items: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    updates: dict[int, int] = {}

    def keep(step: int, layer: int, kind: str, matrix: np.ndarray, damping: float) -> None:
        update = updates.setdefault(step, len(updates))
        if update % every or (sizes and matrix.shape[0] not in sizes):
            return
        if relative_damping is not None:
            raw = matrix - damping * np.eye(matrix.shape[0])
            damping = relative_damping * float(np.trace(raw)) / raw.shape[0]
            matrix = raw + damping * np.eye(raw.shape[0])
        matrix = matrix.astype(dtype).astype(np.float64)  # what is stored is what is solved
        metadata = {
            "step": step,
            "update": update,
            "layer": layer,
            "kind": kind,
            "damping": float(damping),
            "condition": float(np.linalg.cond(matrix)),
            "size": matrix.shape[0],
            "seed_index": seed_index,
            "setting": setting.label,
        }
        items.append((f"step{step:05d}-layer{layer}-{kind}", matrix.copy(), metadata))

    train_run(spec, setting, config, seed=run_seed(spec.master_seed, seed_index), capture=keep)
    attrs = {
        **provenance(command_line, ngspice=False),
        "task": f"digits-{spec.task}",
        "network": spec.network_description(),
        "spec": spec.to_json(),
    }
    if relative_damping is not None:
        attrs["damping_rule"] = f"F + {relative_damping:g} * tr(F)/n * I (undamped F)"
    return save_factor_set(out, items, attrs, dtype=dtype)


def save_factor_set(
    path: str | Path,
    items: list[tuple[str, np.ndarray, dict[str, Any]]],
    attrs: dict[str, Any],
    dtype: str = "float64",
) -> Path:
    """Write ``(name, matrix, metadata)`` items and root ``attrs`` to a factor-set file.

    The file is made in memory and written atomically (a temporary file beside ``path``,
    renamed into place): a failure (e.g. a full disk) leaves ``path`` as it was."""
    path = Path(path)
    with h5py.File(path, "w", driver="core", backing_store=False) as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in attrs.items():
            f.attrs[key] = value
        group = f.create_group("factors")
        for name, matrix, metadata in items:
            dataset = group.create_dataset(
                name, data=np.asarray(matrix, dtype=dtype), compression="gzip", shuffle=True
            )
            for key, value in metadata.items():
                dataset.attrs[key] = value
        f.flush()
        image = f.id.get_file_image()
    return atomic_write(path, image)


def load_factor_set(path: str | Path) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
    """The ``(name, matrix, metadata)`` items of a factor-set file, sorted by name
    (:func:`rerinv.matrices.load_matrix_set`)."""
    return load_matrix_set(path)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
