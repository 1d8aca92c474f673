"""Workloads: a network's layer table plus how it is trained (batch, K-FAC intervals, epochs).

Built-in tables are in :mod:`rerinv.system.networks`; a user table is a CSV file with the
header ``name,kind,fan_in,fan_out,kernel_area,positions[,count]`` or a TOML file with one
``[[layer]]`` table per layer (same keys) and an optional ``[training]`` table (``batch``,
``epochs``, ``dataset_size``). The K-FAC factors of a layer are ``A``: ``fan_in * kernel_area
+ 1`` square (the +1 is the bias) and ``G``: ``fan_out`` square.

The ratio of steps to the target accuracy, second- versus first-order, is an explicit input:
per built-in network from :data:`~rerinv.system.networks.STEPS_RATIOS` (with the statistics
and inverse intervals of its source), :data:`DEFAULT_STEPS_RATIO` for a user table (Osawa et
al., CVPR 2019: K-FAC trains ResNet-50 on ImageNet to 75 % top-1 in 35 epochs against the 90
of the SGD reference), or a number, RePAST's own ratios (``repast``), or a JSON file
(:func:`load_steps_ratio`).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tomllib

from rerinv.errors import InputError, not_a_regular_file
from rerinv.system import published
from rerinv.system.networks import BUILTIN, STEPS_RATIOS

COLUMNS = ("name", "kind", "fan_in", "fan_out", "kernel_area", "positions")
KINDS = ("conv", "fc")
DEFAULT_STEPS_RATIO = 35 / 90
DEFAULT_STEPS_SOURCE = (
    "Osawa et al., CVPR 2019: K-FAC reaches 75 % top-1 on ImageNet/ResNet-50 in 35 epochs, "
    "the SGD reference in 90 (ratio 0.389), at mini-batches up to 16K and with a Fisher update"
    " frequency relaxed after the first iterations"
)
#: --steps-ratio values that select RePAST's own per-network ratios
PAPER_STEPS = ("repast", "stamp")
#: keys a --steps-ratio JSON file may hold (``second_order_vs_sgd`` is the one used)
STEPS_RATIO_KEYS = ("second_order_vs_sgd", "second_order_vs_adam", "source", "per_network")


@dataclass(frozen=True)
class Layers:
    """A layer table as arrays (one entry per row; ``count`` identical layers per row)."""

    names: tuple[str, ...]
    kind: np.ndarray
    fan_in: np.ndarray
    fan_out: np.ndarray
    kernel_area: np.ndarray
    positions: np.ndarray
    count: np.ndarray

    @property
    def n_a(self) -> np.ndarray:
        """Size of each layer's input factor A: fan_in * kernel_area + 1 (count)."""
        return self.fan_in * self.kernel_area + 1

    @property
    def n_g(self) -> np.ndarray:
        """Size of each layer's output factor G: fan_out (count)."""
        return self.fan_out

    def weights(self) -> float:
        """Number of weights and biases (count)."""
        return float(np.sum(self.n_a * self.n_g * self.count))

    def macs_per_sample(self) -> float:
        """Multiply-accumulates of one forward pass of one sample (count)."""
        return float(np.sum(self.n_a * self.n_g * self.positions * self.count))


@dataclass(frozen=True)
class Training:
    """How a workload is trained; every field > 0.

    Attributes
    ----------
    batch : int
        Samples per step (count).
    t_inv, t_cov : int
        Steps between K-FAC factor inversions (refreshes of the INV crossbars) and between
        factor-statistics updates (count).
    epochs : float
        Epochs of the first-order reference training (count).
    dataset_size : int
        Training samples per epoch (count).
    steps_ratio : float
        Steps to the target with second-order training / with SGD (1).
    steps_ratio_source : str
        Where ``steps_ratio`` comes from.
    """

    batch: int
    t_inv: int = 20
    t_cov: int = 1
    epochs: float = 90.0
    dataset_size: int = 1_281_167
    steps_ratio: float = DEFAULT_STEPS_RATIO
    steps_ratio_source: str = DEFAULT_STEPS_SOURCE

    def __post_init__(self) -> None:
        for name in ("batch", "t_inv", "t_cov", "epochs", "dataset_size", "steps_ratio"):
            value = getattr(self, name)
            if not np.all(np.asarray(value, dtype=float) > 0):
                raise InputError(f"training.{name} must be > 0, got {value!r}")

    @property
    def sgd_steps(self) -> float:
        """Steps of the first-order reference: epochs x ceil(dataset / batch) (count)."""
        return self.epochs * np.ceil(self.dataset_size / self.batch)


@dataclass(frozen=True)
class Workload:
    """A named layer table with its training defaults and where they come from."""

    name: str
    layers: Layers
    training: Training
    large: bool
    source: str


def workload_names() -> tuple[str, ...]:
    """Names of the built-in workloads."""
    return tuple(BUILTIN)


def large_workloads() -> tuple[str, ...]:
    """The built-in large networks (the ones averaged against the paper's numbers)."""
    return tuple(name for name, spec in BUILTIN.items() if spec[1])


def layers_from_rows(rows: list, where: str) -> Layers:
    """Check rows ``(name, kind, fan_in, fan_out, kernel_area, positions, count)``."""
    if not rows:
        raise InputError(f"{where}: the layer table has no rows")
    for i, row in enumerate(rows, 1):
        if row[1] not in KINDS:
            raise InputError(f"{where}: row {i} ({row[0]}): kind must be one of {KINDS}")
        for column, value in zip(COLUMNS[2:] + ("count",), row[2:], strict=True):
            if not (isinstance(value, int) and not isinstance(value, bool)) or value <= 0:
                raise InputError(
                    f"{where}: row {i} ({row[0]}): {column} must be a whole number > 0, "
                    f"got {value!r}"
                )
    columns = list(zip(*rows, strict=True))
    ints = [np.asarray(c, dtype=np.int64) for c in columns[2:]]
    return Layers(tuple(map(str, columns[0])), np.asarray(columns[1]), *ints)


def _number(text: str, column: str, row: int, where: str) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: row {row}: {column} must be a whole number > 0, got {text!r}"
        ) from None
    if not math.isfinite(value) or value != round(value):
        raise InputError(f"{where}: row {row}: {column} must be a whole number > 0, got {text!r}")
    return int(value)


def read_layer_table(path: str | Path) -> tuple[Layers, dict]:
    """A user layer table (``.csv`` or ``.toml``) and its ``[training]`` table (TOML only)."""
    path = Path(path)
    where = str(path)
    if reason := not_a_regular_file(path):
        raise InputError(reason)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read layer table {path}: {exc}") from exc
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{where}: not valid TOML: {exc}") from exc
        records = data.get("layer")
        if not isinstance(records, list):
            raise InputError(f"{where}: expected [[layer]] tables with keys {', '.join(COLUMNS)}")
        training = data.get("training", {})
    elif path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{where}: missing column {missing[0]!r}; the header must hold "
                             f"{', '.join(COLUMNS)} (and optionally count)")  # fmt: skip
        records = list(reader)
        training = {}
    else:
        raise InputError(f"{where}: a layer table must be .csv or .toml")
    rows = []
    for i, record in enumerate(records, 1):
        missing = [c for c in COLUMNS if c not in record]
        if missing:
            raise InputError(f"{where}: row {i}: missing column {missing[0]!r}")
        numbers = [
            record[c] if isinstance(record[c], int) else _number(record[c], c, i, where)
            for c in COLUMNS[2:]
        ]
        count = record.get("count", 1)
        count = count if isinstance(count, int) else _number(count or "1", "count", i, where)
        rows.append((str(record["name"]), str(record["kind"]).strip(), *numbers, count))
    return layers_from_rows(rows, where), training


def load_workload(name_or_path: str | Path, **training) -> Workload:
    """A built-in workload by name or a user layer table, with ``training`` overrides
    (``batch``, ``t_inv``, ``t_cov``, ``epochs``, ``dataset_size``, ``steps_ratio``,
    ``steps_ratio_source``; None keeps the default)."""
    given = {k: v for k, v in training.items() if v is not None}
    name = str(name_or_path)
    if name in BUILTIN:
        rows, large, dataset, epochs, batch, source = BUILTIN[name]
        layers = layers_from_rows(rows(), name)
        ratio, t_cov, t_inv, ratio_source, *_ = STEPS_RATIOS[name]
        base = {
            "batch": batch,
            "epochs": epochs,
            "dataset_size": dataset,
            "t_cov": t_cov,
            "t_inv": t_inv,
            "steps_ratio": ratio,
            "steps_ratio_source": ratio_source,
        }
    elif Path(name).suffix in (".csv", ".toml"):
        layers, table = read_layer_table(name)
        unknown = set(table) - {"batch", "epochs", "dataset_size", "t_inv", "t_cov"}
        if unknown:
            raise InputError(f"{name}: unknown key training.{sorted(unknown)[0]}")
        base, large, source = {"batch": 256, **table}, True, f"user layer table {name}"
        name = Path(name).stem
    else:
        raise InputError(
            f"unknown workload {name!r}: choose one of {', '.join(BUILTIN)} "
            "or give a layer table (.csv or .toml)"
        )
    spec = Training(**{**base, **given})
    return Workload(name, layers, spec, large, source)


def load_steps_ratio(value: str, network: str | None = None) -> tuple[float, str]:
    """``--steps-ratio``: a number, ``repast`` (the paper's own per-network epoch ratio,
    :data:`rerinv.system.published.STEPS_RATIOS`, read off STAMP's charts), or a JSON file
    with ``second_order_vs_sgd`` (optionally ``per_network: {name: ratio}``,
    ``second_order_vs_adam`` and ``source``).

    Returns
    -------
    (float, str)
        The ratio of second-order to SGD steps, and where it comes from.
    """
    if value.strip().lower() in PAPER_STEPS:
        if network not in published.STEPS_RATIOS:
            raise InputError(
                f"--steps-ratio {value}: RePAST/STAMP gives no epoch ratio for {network!r} (it"
                f" has {', '.join(published.STEPS_RATIOS)}); give a number or a JSON file"
            )
        ratio, theirs = published.STEPS_RATIOS[network]
        return ratio, published.STEPS_SOURCE.format(name=theirs, ratio=1 / ratio)
    try:
        ratio = float(value)
    except ValueError:
        pass
    else:
        if not (math.isfinite(ratio) and ratio > 0):
            raise InputError(f"--steps-ratio must be > 0, got {value!r}")
        return ratio, "given on the command line"
    path = Path(value)
    if reason := not_a_regular_file(path):
        raise InputError(f"--steps-ratio: {reason}")
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"--steps-ratio: not a number and not a readable file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"--steps-ratio {path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "second_order_vs_sgd" not in data:
        raise InputError(f"--steps-ratio {path}: missing key 'second_order_vs_sgd'")
    per_network = data.get("per_network") or {}
    ratio = per_network.get(network, data["second_order_vs_sgd"])
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise InputError(f"--steps-ratio {path}: second_order_vs_sgd must be > 0, got {ratio!r}")
    return float(ratio), f"{path}: {data.get('source', 'no source given')}"


def with_training(workload: Workload, **changes) -> Workload:
    """A copy with training fields changed (values may be numpy arrays, for sweeps)."""
    return replace(workload, training=replace(workload.training, **changes))
