"""What a training grid is: the task and its hyper-parameters, and the settings it compares.

A :class:`TrainingSpec` is plain data that round-trips through JSON (it is stored verbatim in
every training file, next to the hardware configuration TOML). :meth:`TrainingSpec.settings`
expands it to the compared settings: K-FAC with each inverse backend (and each target bits
where that backend takes bits, each cell resolution of the ``single`` solve, each hardware
noise level of the analog backends, each damping value and damping rule), and the first-order
baselines at each learning rate of their grid. Every setting is trained with every seed.

Noise levels (:data:`NOISE_LEVELS`) are named hardware changes applied to the configuration of
the analog backends only (``float64`` and the ``quantised`` stand-in cannot model noise).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.nn.benchmarks import NETWORKS, build_network, load_dataset
from rerinv.nn.data import TASKS, Dataset
from rerinv.nn.kfac import KfacSettings
from rerinv.nn.mlp import Architecture
from rerinv.nn.network import Network
from rerinv.schemes.loops import LOOPS
from rerinv.training.levels import noise_config

#: Backends of the K-FAC inverse: ``float64``, the ``quantised`` stand-in, or an analog scheme.
BACKENDS = ("float64", "quantised", *LOOPS)
#: Backends whose result depends on the bits axis (``single`` is one solve at the cell bits).
BITS_BACKENDS = tuple(b for b in BACKENDS if b not in ("float64", "single"))
#: Backends that run on the analog machine (noise levels apply to them only).
ANALOG_BACKENDS = tuple(LOOPS)
#: Damping rules: a fixed lambda, or Levenberg-Marquardt adaptation from it (Martens and
#: Grosse 2015, section 6.5), an option of :class:`rerinv.nn.kfac.KfacSettings`.
DAMPING_RULES = ("fixed", "adaptive")


@dataclass(frozen=True)
class Setting:
    """One compared setting: an optimizer and (for K-FAC) its inverse backend."""

    optimizer: str  #: kfac | sgd | adam
    backend: str = ""  #: K-FAC inverse backend (see :data:`BACKENDS`); "" for baselines
    bits: float | None = None  #: target bits (analog) or stand-in bits (quantised)
    lr: float | None = None  #: learning rate (baselines)
    damping: float | None = None  #: K-FAC Tikhonov lambda
    noise: str = ""  #: hardware noise level of an analog backend ("": the grid's hardware)
    adaptive: bool = False  #: Levenberg-Marquardt damping starting from ``damping``

    @property
    def label(self) -> str:
        if self.optimizer != "kfac":
            return f"{self.optimizer} lr={self.lr:g}"
        if self.backend == "float64":
            text = "kfac float64"
        elif self.backend == "single":
            text = "kfac single" + (f"-{self.bits:g}bit" if self.bits is not None else "")
        elif self.backend == "quantised":
            text = f"kfac quantised-{self.bits:g}"
        else:
            text = f"kfac {self.backend}@{self.bits:g}"
        text += f" damping={self.damping:g}" if self.damping is not None else ""
        text += " adaptive" if self.adaptive else ""
        return text + (f" noise={self.noise}" if self.noise else "")

    @property
    def reference(self) -> Setting:
        """The float64 K-FAC setting this one is paired with (same damping and rule)."""
        return Setting("kfac", "float64", damping=self.damping, adaptive=self.adaptive)

    @property
    def family(self) -> str:
        """The label without the learning rate (baselines are tuned over it)."""
        return self.optimizer if self.optimizer != "kfac" else self.label


#: What a spec stored before these keys existed meant (its grid had none of these axes).
LEGACY_VALUES = {
    "network": "mlp",
    "cell_bits": [],
    "noise": ["ideal"],
    "noise_cell_bits": [],
    "noise_damping": [],
    "analog_damping": [],
    "damping_rules": ["fixed"],
    "eval_every": 1,
}


@dataclass(frozen=True)
class TrainingSpec:
    """A training grid: task, network, optimizer settings, targets, axes.

    Units: learning rates and damping are dimensionless; losses in nats per sample.
    """

    task: str = "classify"  #: classify | autoencode (digits)
    #: mlp (digits), cnn1d (MNIST-1D) or cnn2d (digits): :mod:`rerinv.nn.benchmarks`
    network: str = "mlp"
    #: MLP hidden widths (64-32-10 classifier by default), or the CNN's two channel widths
    #: (empty: the network's defaults)
    hidden: tuple[int, ...] = (32,)
    activation: str = "tanh"
    pool: int = 1  #: average-pool the 8x8 inputs (2: 16 inputs, a small network)
    steps: int = 60  #: optimizer steps per run
    batch_size: int = 256
    data_seed: int = 0  #: train/test split (shared by all runs)
    master_seed: int = 0  #: run seed i is SeedSequence(master_seed, spawn_key=(i,))
    seeds: int = 5  #: runs per setting (paired: seed i is the same init and batches everywhere)
    kfac_lr: float = 1.0
    #: K-FAC lambda values (an axis; also K-FAC's tuning grid, chosen on validation)
    damping: tuple[float, ...] = (0.003, 0.01, 0.001, 0.0001)
    pi_damping: bool = True
    decay: float = 0.95
    inverse_every: int = 10  #: T_inv
    kl_clip: float = 0.1
    kfac_momentum: float = 0.0
    backends: tuple[str, ...] = ("float64", "single")
    bits: tuple[float, ...] = (8, 12, 16, 24)  #: target / stand-in bits (an axis)
    #: cell (and ADC) bits of the ``single`` solve, an axis; empty: the configuration's
    cell_bits: tuple[int, ...] = (4, 5, 6, 7, 8, 10)
    #: hardware noise levels (:data:`NOISE_LEVELS`) of the analog backends
    noise: tuple[str, ...] = ("ideal", "moderate", "harsh", "sky130")
    #: cell bits run at the levels other than ``ideal`` (empty: all of ``cell_bits``)
    noise_cell_bits: tuple[int, ...] = (4, 6, 8, 10)
    #: damping values run at the levels other than ``ideal`` (empty: all of ``damping``)
    noise_damping: tuple[float, ...] = (0.003,)
    #: damping values of the analog settings at every level (empty: all of ``damping``);
    #: float64 runs every damping (K-FAC's tuning grid)
    analog_damping: tuple[float, ...] = ()
    damping_rules: tuple[str, ...] = ("fixed",)  #: fixed and/or adaptive (an axis)
    sgd_lrs: tuple[float, ...] = (0.3, 0.6, 1.0, 2.0)  #: SGD, momentum 0.9
    adam_lrs: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05)
    target_accuracy: float = 0.95  #: test accuracy target (classify)
    target_loss: float = 0.01  #: full training-set loss target (nats per sample)
    #: measure the full-set losses and accuracies every k steps (and after the last)
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        for name in self.backends:
            if name not in BACKENDS:
                raise InputError(
                    f"unknown K-FAC inverse backend {name!r}; choose from {', '.join(BACKENDS)}"
                )
        if self.network not in NETWORKS:
            raise InputError(
                f"unknown network {self.network!r}; choose one of {', '.join(NETWORKS)}"
            )
        if self.network != "mlp" and self.task != "classify":
            raise InputError(f"the {self.network} network classifies (task classify)")
        if self.eval_every < 1:
            raise InputError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.pool not in (1, 2, 4, 8):
            raise InputError(f"pool must be 1, 2, 4 or 8, got {self.pool}")
        if self.steps < 1 or self.seeds < 1 or self.batch_size < 1:
            raise InputError("steps, seeds and batch size must be positive")
        if self.master_seed < 0 or self.data_seed < 0:
            raise InputError("seeds are non-negative integers")
        if any(not 2 <= b <= 48 for b in self.bits):
            raise InputError(f"bits must be between 2 and 48, got {self.bits}")
        if any(not 2 <= b <= 16 for b in (*self.cell_bits, *self.noise_cell_bits)):
            raise InputError(f"cell bits must be between 2 and 16, got {self.cell_bits}")
        for level in self.noise:
            noise_config(Config(), level)
        if not self.noise:
            raise InputError("give at least one noise level (e.g. ideal)")
        for rule in self.damping_rules:
            if rule not in DAMPING_RULES:
                raise InputError(
                    f"unknown damping rule {rule!r}; choose from {', '.join(DAMPING_RULES)}"
                )
        if not self.damping_rules:
            raise InputError("give at least one damping rule (fixed or adaptive)")
        if self.network == "mlp":
            self.architecture()
        elif len(self.hidden) not in (0, 2):
            raise InputError(f"{self.network} takes two channel widths, got {self.hidden}")
        for lam in self.damping:
            self.kfac_settings(lam).validate()

    def check_dataset(self) -> None:
        """Refuse what the data cannot give (before any run): a mini-batch larger than the
        training set."""
        samples = len(self.dataset().x_train)
        if self.batch_size > samples:
            raise InputError(
                f"batch size {self.batch_size} exceeds the {samples} training samples of "
                f"{self.dataset_name}; choose at most {samples} (--batch-size)"
            )

    def dataset(self) -> Dataset:
        """The network's dataset, split by ``data_seed`` (train, validation, test)."""
        return load_dataset(self.network, self.task, seed=self.data_seed, pool=self.pool)

    def model(self, data: Dataset | None = None) -> Network:
        """The network (built for ``data``, default :meth:`dataset`)."""
        return build_network(
            self.network, data or self.dataset(), hidden=tuple(self.hidden),
            activation=self.activation,
        )  # fmt: skip

    def network_description(self) -> str:
        """``64-32-10`` for an MLP, the layer list of a CNN."""
        if self.network == "mlp":
            return "-".join(map(str, self.architecture().sizes))
        return self.model().describe()

    def factor_sizes(self) -> list[tuple[int, int]]:
        """``(A, G)`` widths of every K-FAC layer."""
        return [tuple(map(int, sizes)) for sizes in self.model().factor_sizes()]

    @property
    def dataset_name(self) -> str:
        """E.g. ``digits-classify``, ``digits-classify-pool2``, ``mnist1d-classify``."""
        data = "mnist1d" if self.network == "cnn1d" else "digits"
        return f"{data}-{self.task}" + (f"-pool{self.pool}" if self.pool > 1 else "")

    @classmethod
    def for_task(cls, task: str = "classify", **values) -> TrainingSpec:
        """The spec of ``task`` with its own defaults (network, targets, baseline learning
        rates), then ``values`` on top. ``autoencode``: 64-16-64 with sigmoid outputs, target
        20 nats of training loss, SGD ``(0.03, 0.1, 0.3, 1.0)``, Adam ``(0.003, ..., 0.1)``."""
        defaults: dict = {"task": task}
        if values.get("network", "mlp") != "mlp":
            defaults.update(hidden=())
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

    def kfac_settings_for(self, setting: Setting) -> KfacSettings:
        """The K-FAC hyper-parameters of ``setting`` (its damping and damping rule)."""
        settings = self.kfac_settings(setting.damping)
        if setting.adaptive:
            if "adaptive_damping" not in {f.name for f in fields(KfacSettings)}:
                raise InputError("this K-FAC has no adaptive (Levenberg-Marquardt) damping")
            settings = replace(settings, adaptive_damping=True)
        return settings

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
        named = self.noise != ("ideal",)  # one level only: the label does not name it
        out = []
        for rule in self.damping_rules:
            adaptive = rule == "adaptive"
            for lam in lams:
                for backend in self.backends:
                    for level in self.noise if backend in ANALOG_BACKENDS else ("ideal",):
                        if not self._analog_runs(backend, level, lam):
                            continue
                        bits = self._bits(backend, level)
                        noise = level if named and backend in ANALOG_BACKENDS else ""
                        out += [
                            Setting("kfac", backend, b, damping=lam, noise=noise,
                                    adaptive=adaptive)
                            for b in bits
                        ]  # fmt: skip
        out += [Setting("sgd", lr=lr) for lr in self.sgd_lrs]
        out += [Setting("adam", lr=lr) for lr in self.adam_lrs]
        return out

    def _analog_runs(self, backend: str, level: str, lam: float | None) -> bool:
        """Whether the grid runs ``backend`` at noise ``level`` and damping ``lam``."""
        if lam is None or backend not in ANALOG_BACKENDS:
            return True
        if self.analog_damping and lam not in self.analog_damping:
            return False
        return level == "ideal" or not self.noise_damping or lam in self.noise_damping

    def _bits(self, backend: str, level: str) -> list[float | None]:
        if backend in BITS_BACKENDS:
            return list(self.bits)
        if backend != "single" or not self.cell_bits:
            return [None]
        if level != "ideal" and self.noise_cell_bits:
            return [float(b) for b in self.noise_cell_bits]
        return [float(b) for b in self.cell_bits]

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
        for key, value in LEGACY_VALUES.items():  # a file written before the key existed
            data.setdefault(key, value)
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
