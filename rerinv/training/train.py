"""One training run: a setting (optimizer and K-FAC inverse backend) with one seed.

The network and its data are named by the spec (``network``: mlp, cnn1d, cnn2d; see
:mod:`rerinv.nn.benchmarks`); every network goes through the same loop. The run seed spawns
four independent streams: weight initialisation, mini-batch order, Fisher target sampling and
hardware programming. The first three are the same for every setting with the same seed, so
settings are compared on identical initial weights and batches. After every step the full
training-set loss, the validation loss and accuracy and the test loss and accuracy are
measured (index 0 is before the first step; only every ``spec.eval_every``-th index and the
last when the spec has that field, NaN in between), with the wall time since the run
started; a study chooses on validation and reads test once. K-FAC steps also record the damping in
force, the signed ``sum_l <V_l, grad_l>``, the layers whose direction was no descent
(``<V_l, grad_l> <= 0``) and, with adaptive damping, the reduction ratio ``rho``.
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
from rerinv.nn.backends import make_backend
from rerinv.nn.benchmarks import build_network, load_dataset
from rerinv.nn.data import Dataset, batches
from rerinv.nn.kfac import Capture, InverseEvent, Kfac
from rerinv.nn.network import Network, reduction_ratio
from rerinv.nn.optim import Adam, Sgd
from rerinv.seeds import Seed, spawn
from rerinv.training.spec import Setting, TrainingSpec


@dataclass
class RunRecord:
    """What one run measured; arrays of ``steps + 1`` entries are indexed by step.

    Attributes
    ----------
    train_loss, val_loss, test_loss : numpy.ndarray
        Full-set losses (nats per sample) before step 1 (index 0) and after every step.
    val_accuracy, test_accuracy : numpy.ndarray
        Validation and test accuracy (share; NaN for the autoencoder).
    batch_loss : numpy.ndarray
        Loss of the mini-batch each step used (``steps`` entries).
    wall_time : numpy.ndarray
        Seconds since the run started, at every index (evaluation time excluded).
    nu : numpy.ndarray
        K-FAC KL-clipping factor per step (NaN for baselines).
    damping : numpy.ndarray
        K-FAC lambda in force at each step (``steps``; NaN for baselines); it changes only
        with adaptive damping, and reaches the inverses at their next update.
    rho : numpy.ndarray
        Levenberg-Marquardt reduction ratio at the steps where adaptive damping measured it
        (``-inf``: the quadratic model predicted no decrease), else NaN.
    descent : numpy.ndarray
        Signed ``sum_l <V_l, grad_l>`` of each K-FAC step (NaN for baselines); ``<= 0``: the
        whole preconditioned direction is no descent direction.
    non_descent : numpy.ndarray
        Layers whose preconditioned direction had ``<V_l, grad_l> <= 0``, per step (int).
    non_descent_by_layer : numpy.ndarray
        The same counted per K-FAC layer over the run (int; empty for baselines).
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
    val_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    damping: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rho: np.ndarray = field(default_factory=lambda: np.zeros(0))
    descent: np.ndarray = field(default_factory=lambda: np.zeros(0))
    non_descent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    non_descent_by_layer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
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


def spec_network(spec: TrainingSpec) -> str:
    """The spec's network name (``mlp`` for specs without the field)."""
    return getattr(spec, "network", "mlp") or "mlp"


def spec_dataset(spec: TrainingSpec) -> Dataset:
    """The dataset the spec trains on (split by ``spec.data_seed``)."""
    return load_dataset(spec_network(spec), spec.task, seed=spec.data_seed, pool=spec.pool)


def spec_model(spec: TrainingSpec, data: Dataset) -> Network:
    """The spec's network for ``data`` (``hidden`` = MLP widths or the CNN's two channels)."""
    return build_network(
        spec_network(spec), data, hidden=tuple(spec.hidden), activation=spec.activation
    )


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
        Default: :func:`spec_dataset`.
    capture : callable, optional
        Receives every damped factor before it is inverted (K-FAC only).
    on_step : callable, optional
        Called with the step number after every step (progress).
    """
    with limit_threads():
        return _train(spec, setting, config, seed, dataset, capture, on_step)


def _kfac_settings(spec, setting):
    if hasattr(spec, "kfac_settings_for"):
        return spec.kfac_settings_for(setting)
    return spec.kfac_settings(setting.damping)


def _new_record(steps: int, layers: int) -> RunRecord:
    curve = lambda n: np.full(n, np.nan)  # noqa: E731
    return RunRecord(
        train_loss=curve(steps + 1),
        test_loss=curve(steps + 1),
        test_accuracy=curve(steps + 1),
        batch_loss=curve(steps),
        wall_time=curve(steps + 1),
        nu=curve(steps),
        val_loss=curve(steps + 1),
        val_accuracy=curve(steps + 1),
        damping=curve(steps),
        rho=curve(steps),
        descent=curve(steps),
        non_descent=np.zeros(steps, dtype=np.int64),
        non_descent_by_layer=np.zeros(layers, dtype=np.int64),
    )


def _train(spec, setting, config, seed, dataset, capture, on_step) -> RunRecord:
    data = dataset or spec_dataset(spec)
    net = spec_model(spec, data)
    s_init, s_batches, s_fisher, s_hardware = spawn(seed, 4)
    weights = net.init_weights(np.random.default_rng(s_init))
    fisher_rng = np.random.default_rng(s_fisher)
    kfac = optimizer = None
    if setting.optimizer == "kfac":
        backend = make_backend(setting.backend, config, setting.bits)
        kfac = Kfac(
            net.factor_sizes(),
            _kfac_settings(spec, setting),
            backend,
            seed=s_hardware,
            capture=capture,
        )
    elif setting.optimizer == "sgd":
        optimizer = Sgd(setting.lr)
    else:
        optimizer = Adam(setting.lr)

    steps = spec.steps
    eval_every = int(getattr(spec, "eval_every", 1) or 1)
    record = _new_record(steps, len(net.factor_sizes()) if kfac is not None else 0)
    x_val = data.x_val if data.x_val is not None else data.x_test[:0]
    y_val = data.y_val if data.y_val is not None else data.y_test[:0]

    def evaluate(index: int) -> bool:
        if index % eval_every and index != steps:  # not measured: NaN; the batch loss decides
            return math.isfinite(record.batch_loss[index - 1])
        record.train_loss[index] = net.loss(net.predict(weights, data.x_train), data.y_train)
        if len(x_val):
            logits = net.predict(weights, x_val)
            record.val_loss[index] = net.loss(logits, y_val)
            record.val_accuracy[index] = net.accuracy(logits, y_val)
        logits = net.predict(weights, data.x_test)
        record.test_loss[index] = net.loss(logits, data.y_test)
        record.test_accuracy[index] = net.accuracy(logits, data.y_test)
        return math.isfinite(record.train_loss[index])

    elapsed = 0.0
    record.wall_time[0] = 0.0
    evaluate(0)
    order = batches(len(data.x_train), spec.batch_size, steps, np.random.default_rng(s_batches))
    for step, index in enumerate(order):
        start = time.perf_counter()
        x, y = data.x_train[index], data.y_train[index]
        trace, grads, record.batch_loss[step] = net.gradients(weights, x, y)
        if kfac is not None:
            top = net.sampled_output_gradient(trace.logits, fisher_rng)
            kfac.update_factors(net.kfac_inputs(trace), net.backward(weights, trace, top))
            record.damping[step] = kfac.damping
            delta, record.nu[step] = kfac.step(grads)
            record.descent[step] = float(np.sum(kfac.last_products))
            record.non_descent[step] = kfac.non_descent
            if kfac.adapt_due():
                rho = reduction_ratio(
                    net, weights, trace, grads, delta, x, y, record.batch_loss[step]
                )
                record.rho[step] = rho
                kfac.adapt_damping(rho)
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
        record.non_descent_by_layer = kfac.non_descent_by_layer.copy()
    return record


def steps_to(values: np.ndarray, target: float, *, above: bool) -> float:
    """First index at which ``values`` reaches ``target`` (``>=`` when ``above``, else
    ``<=``); ``inf`` when it never does."""
    hits = np.flatnonzero(values >= target if above else values <= target)
    return float(hits[0]) if hits.size else math.inf
