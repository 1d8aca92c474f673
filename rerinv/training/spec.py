"""What a training grid is: the task and its hyper-parameters, and the settings it compares.

A :class:`TrainingSpec` is plain data that round-trips through JSON (it is stored verbatim in
every training file, next to the hardware configuration TOML). :meth:`TrainingSpec.settings`
expands it to the compared settings: K-FAC with each inverse backend (and each target bits
where that backend takes bits, each damping value), and the first-order baselines at each
learning rate of their grid. Every setting is trained with every seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.nn.data import TASKS, digits_dataset
from rerinv.nn.kfac import KfacSettings
from rerinv.nn.mlp import Architecture
from rerinv.schemes.loops import LOOPS

#: Backends of the K-FAC inverse: ``float64``, the ``quantised`` stand-in, or an analog scheme.
BACKENDS = ("float64", "quantised", *LOOPS)
#: Backends whose result depends on the bits axis (``single`` is one solve at the cell bits).
BITS_BACKENDS = tuple(b for b in BACKENDS if b not in ("float64", "single"))


@dataclass(frozen=True)
class Setting:
    """One compared setting: an optimizer and (for K-FAC) its inverse backend."""

    optimizer: str  #: kfac | sgd | adam
    backend: str = ""  #: K-FAC inverse backend (see :data:`BACKENDS`); "" for baselines
    bits: float | None = None  #: target bits (analog) or stand-in bits (quantised)
    lr: float | None = None  #: learning rate (baselines)
    damping: float | None = None  #: K-FAC Tikhonov lambda

    @property
    def label(self) -> str:
        if self.optimizer != "kfac":
            return f"{self.optimizer} lr={self.lr:g}"
        if self.backend == "float64":
            text = "kfac float64"
        elif self.backend == "single":
            text = "kfac single"
        elif self.backend == "quantised":
            text = f"kfac quantised-{self.bits:g}"
        else:
            text = f"kfac {self.backend}@{self.bits:g}"
        return text + (f" damping={self.damping:g}" if self.damping is not None else "")

    @property
    def family(self) -> str:
        """The label without the learning rate (baselines are tuned over it)."""
        return self.optimizer if self.optimizer != "kfac" else self.label


@dataclass(frozen=True)
class TrainingSpec:
    """A training grid: task, network, optimizer settings, targets, axes.

    Units: learning rates and damping are dimensionless; losses in nats per sample.
    """

    task: str = "classify"  #: classify | autoencode (digits)
    hidden: tuple[int, ...] = (32,)  #: hidden widths (64-32-10 classifier by default)
    activation: str = "tanh"
    pool: int = 1  #: average-pool the 8x8 inputs (2: 16 inputs, a small network)
    steps: int = 150  #: optimizer steps per run
    batch_size: int = 256
    data_seed: int = 0  #: train/test split (shared by all runs)
    master_seed: int = 0  #: run seed i is SeedSequence(master_seed, spawn_key=(i,))
    seeds: int = 5  #: runs per setting (paired: seed i is the same init and batches everywhere)
    kfac_lr: float = 1.0
    damping: tuple[float, ...] = (0.003,)  #: K-FAC lambda values (an axis)
    pi_damping: bool = True
    decay: float = 0.95
    inverse_every: int = 10  #: T_inv
    kl_clip: float = 0.1
    kfac_momentum: float = 0.0
    backends: tuple[str, ...] = ("float64", "single", "refine", "quantised")
    bits: tuple[float, ...] = (8, 12, 16, 24)  #: target / stand-in bits (an axis)
    sgd_lrs: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)  #: SGD, momentum 0.9
    adam_lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
    target_accuracy: float = 0.95  #: test accuracy target (classify)
    target_loss: float = 0.01  #: full training-set loss target (nats per sample)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        for name in self.backends:
            if name not in BACKENDS:
                raise InputError(
                    f"unknown K-FAC inverse backend {name!r}; choose from {', '.join(BACKENDS)}"
                )
        if self.pool not in (1, 2, 4, 8):
            raise InputError(f"pool must be 1, 2, 4 or 8, got {self.pool}")
        if self.steps < 1 or self.seeds < 1 or self.batch_size < 1:
            raise InputError("steps, seeds and batch size must be positive")
        if self.master_seed < 0 or self.data_seed < 0:
            raise InputError("seeds are non-negative integers")
        if any(not 2 <= b <= 48 for b in self.bits):
            raise InputError(f"bits must be between 2 and 48, got {self.bits}")
        self.architecture()
        for lam in self.damping:
            self.kfac_settings(lam).validate()

    def check_dataset(self) -> None:
        """Refuse what the data cannot give (before any run): a mini-batch larger than the
        training set."""
        samples = len(digits_dataset(self.task, seed=self.data_seed, pool=self.pool).x_train)
        if self.batch_size > samples:
            raise InputError(
                f"batch size {self.batch_size} exceeds the {samples} training images of "
                f"digits-{self.task}; choose at most {samples} (--batch-size)"
            )

    @classmethod
    def for_task(cls, task: str = "classify", **values) -> TrainingSpec:
        """The spec of ``task`` with its own defaults (network, targets, baseline learning
        rates), then ``values`` on top. ``autoencode``: 64-16-64 with sigmoid outputs, target
        20 nats of training loss, SGD ``(0.03, 0.1, 0.3, 1.0)``, Adam ``(0.003, ..., 0.1)``."""
        defaults: dict = {"task": task}
        if task == "autoencode":
            defaults.update(
                hidden=(16,),
                target_loss=20.0,
                sgd_lrs=(0.03, 0.1, 0.3, 1.0),
                adam_lrs=(0.003, 0.01, 0.03, 0.1),
            )
        defaults.update(values)
        return cls(**defaults)

    @property
    def primary_metric(self) -> str:
        """The target the comparison is about: test accuracy (classify) or training loss."""
        return "test_accuracy" if self.task == "classify" else "train_loss"

    def architecture(
        self, n_inputs: int | None = None, n_outputs: int | None = None
    ) -> Architecture:
        n_inputs = n_inputs or 64 // self.pool**2
        out = n_outputs or (10 if self.task == "classify" else n_inputs)
        output = "softmax" if self.task == "classify" else "sigmoid"
        return Architecture((n_inputs, *self.hidden, out), self.activation, output)

    def kfac_settings(self, damping: float | None = None) -> KfacSettings:
        return KfacSettings(
            lr=self.kfac_lr,
            damping=self.damping[0] if damping is None else damping,
            pi_damping=self.pi_damping,
            decay=self.decay,
            inverse_every=self.inverse_every,
            kl_clip=self.kl_clip,
            momentum=self.kfac_momentum,
        )

    def settings(self) -> list[Setting]:
        """Every compared setting, in a fixed order (K-FAC first, then SGD, then Adam)."""
        lams: list[float | None] = list(self.damping) if len(self.damping) > 1 else [None]
        out = []
        for lam in lams:
            for backend in self.backends:
                bits = [None] if backend not in BITS_BACKENDS else list(self.bits)
                out += [Setting("kfac", backend, b, damping=lam) for b in bits]
        out += [Setting("sgd", lr=lr) for lr in self.sgd_lrs]
        out += [Setting("adam", lr=lr) for lr in self.adam_lrs]
        return out

    # -- JSON --------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainingSpec:
        data = json.loads(text)
        known = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise InputError(f"unknown training spec key(s) {sorted(unknown)}")
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = tuple(value)
        return cls(**data)


#: What ``rerinv train`` changes in the built-in hardware configuration (``--config``,
#: ``--preset`` and ``--set`` apply on top): the fast nodal engine, a pass budget that lets
#: 24-bit targets converge, and a float64 residual VMM. The bit-sliced analog residual
#: (``scheme.residual = "analog"``) costs ~50 ms per VMM at N = 65 on the nodal engine (576
#: plane solves), ~100x the rest of a K-FAC step; with exact cells it computes the same
#: product to 24-bit fixed point (see docs/training.md for the measured difference).
TRAINING_DEFAULTS = {
    "simulation": {"engine": "nodal", "max_passes": 16},
    "scheme": {"residual": "digital"},
}


def training_config(base: Config | None = None) -> Config:
    """``base`` (default: the built-in configuration) with :data:`TRAINING_DEFAULTS`."""
    config = base or Config()
    for section, values in TRAINING_DEFAULTS.items():
        config = config.with_values(section, **values)
    return config
