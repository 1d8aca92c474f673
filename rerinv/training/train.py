"""One training run: a setting (optimizer and K-FAC inverse backend) with one seed.

The run seed spawns four independent streams: weight initialisation, mini-batch order,
Fisher target sampling and hardware programming. The first three are the same for every
setting with the same seed, so settings are compared on identical initial weights and batches.
After every step the full training-set loss and the test loss and accuracy are measured
(index 0 is before the first step), with the wall time since the run started.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rerinv.config import Config
from rerinv.nn import mlp
from rerinv.nn.backends import make_backend
from rerinv.nn.data import Dataset, batches, digits_dataset
from rerinv.nn.kfac import Capture, InverseEvent, Kfac
from rerinv.nn.optim import Adam, Sgd
from rerinv.seeds import Seed, spawn
from rerinv.training.spec import Setting, TrainingSpec


@dataclass
class RunRecord:
    """What one run measured; arrays of ``steps + 1`` entries are indexed by step.

    Attributes
    ----------
    train_loss, test_loss : numpy.ndarray
        Full-set losses (nats per sample) before step 1 (index 0) and after every step.
    test_accuracy : numpy.ndarray
        Test accuracy (share; NaN for the autoencoder).
    batch_loss : numpy.ndarray
        Loss of the mini-batch each step used (``steps`` entries).
    wall_time : numpy.ndarray
        Seconds since the run started, at every index (evaluation time excluded).
    nu : numpy.ndarray
        K-FAC KL-clipping factor per step (NaN for baselines).
    status : str
        ``finished`` or ``diverged`` (a non-finite loss stopped the run; the rest is NaN).
    events : list of InverseEvent
    """

    train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    batch_loss: np.ndarray
    wall_time: np.ndarray
    nu: np.ndarray
    status: str = "finished"
    events: list[InverseEvent] = field(default_factory=list)


def run_seed(master_seed: int, index: int) -> np.random.SeedSequence:
    """The seed of run ``index`` of a grid (shared by every setting)."""
    return np.random.SeedSequence(master_seed, spawn_key=(index,))


def limit_threads() -> Any:
    """One BLAS thread while training: small matrices gain nothing from more, sums do not
    depend on the thread count (same numbers in the driver and in worker processes), and
    two workers do not oversubscribe two cores. A no-op without threadpoolctl (which
    scikit-learn, the ``train`` extra, installs)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(1)


def train_run(
    spec: TrainingSpec,
    setting: Setting,
    config: Config,
    *,
    seed: Seed,
    dataset: Dataset | None = None,
    capture: Capture | None = None,
    on_step: Callable[[int], None] | None = None,
) -> RunRecord:
    """Train the spec's network with ``setting`` from ``seed``.

    Parameters
    ----------
    spec : TrainingSpec
    setting : Setting
    config : Config
        Hardware of the analog inverse backends (``simulation.engine`` and the rest).
    seed : int or numpy.random.SeedSequence
        The run seed (see the module docstring).
    dataset : Dataset, optional
        Default: ``digits_dataset(spec.task, seed=spec.data_seed, pool=spec.pool)``.
    capture : callable, optional
        Receives every damped factor before it is inverted (K-FAC only).
    on_step : callable, optional
        Called with the step number after every step (progress).
    """
    with limit_threads():
        return _train(spec, setting, config, seed, dataset, capture, on_step)


def _train(spec, setting, config, seed, dataset, capture, on_step) -> RunRecord:
    data = dataset or digits_dataset(spec.task, seed=spec.data_seed, pool=spec.pool)
    arch = spec.architecture(data.n_inputs, data.n_outputs)
    s_init, s_batches, s_fisher, s_hardware = spawn(seed, 4)
    weights = mlp.init_weights(arch, np.random.default_rng(s_init))
    fisher_rng = np.random.default_rng(s_fisher)
    kfac = optimizer = None
    if setting.optimizer == "kfac":
        backend = make_backend(setting.backend, config, setting.bits)
        kfac = Kfac(
            arch.factor_sizes(),
            spec.kfac_settings(setting.damping),
            backend,
            seed=s_hardware,
            capture=capture,
        )
    elif setting.optimizer == "sgd":
        optimizer = Sgd(setting.lr)
    else:
        optimizer = Adam(setting.lr)

    steps = spec.steps
    record = RunRecord(
        *(np.full(steps + 1, np.nan) for _ in range(3)),
        batch_loss=np.full(steps, np.nan),
        wall_time=np.full(steps + 1, np.nan),
        nu=np.full(steps, np.nan),
    )

    def evaluate(index: int) -> bool:
        train_logits = mlp.forward(arch, weights, data.x_train).logits
        test_logits = mlp.forward(arch, weights, data.x_test).logits
        record.train_loss[index] = mlp.loss(arch, train_logits, data.y_train)
        record.test_loss[index] = mlp.loss(arch, test_logits, data.y_test)
        record.test_accuracy[index] = mlp.accuracy(arch, test_logits, data.y_test)
        return math.isfinite(record.train_loss[index])

    elapsed = 0.0
    record.wall_time[0] = 0.0
    evaluate(0)
    order = batches(len(data.x_train), spec.batch_size, steps, np.random.default_rng(s_batches))
    for step, index in enumerate(order):
        start = time.perf_counter()
        x, y = data.x_train[index], data.y_train[index]
        fwd = mlp.forward(arch, weights, x)
        record.batch_loss[step] = mlp.loss(arch, fwd.logits, y)
        grads = mlp.weight_gradients(
            fwd, mlp.backward(arch, weights, fwd, mlp.output_gradient(arch, fwd.logits, y))
        )
        if kfac is not None:
            top = mlp.sampled_output_gradient(arch, fwd.logits, fisher_rng)
            kfac.update_factors(fwd.inputs, mlp.backward(arch, weights, fwd, top))
            delta, record.nu[step] = kfac.step(grads)
        else:
            delta = optimizer.step(grads)
        weights = [w + d for w, d in zip(weights, delta, strict=True)]
        elapsed += time.perf_counter() - start
        record.wall_time[step + 1] = elapsed
        if on_step is not None:
            on_step(step + 1)
        if not evaluate(step + 1):
            record.status = "diverged"
            record.train_loss[step + 1 :] = np.nan
            break
    if kfac is not None:
        record.events = kfac.events
    return record


def steps_to(values: np.ndarray, target: float, *, above: bool) -> float:
    """First index at which ``values`` reaches ``target`` (``>=`` when ``above``, else
    ``<=``); ``inf`` when it never does."""
    hits = np.flatnonzero(values >= target if above else values <= target)
    return float(hits[0]) if hits.size else math.inf
