"""Real data for training in the loop, made offline: scikit-learn's 8x8 digits and MNIST-1D.

The digits set (1797 images of 8x8 pixels, grey levels 0..16, ten classes) ships inside
scikit-learn, so no download is needed; scikit-learn is the optional extra ``train``
(``pip install rerinv[train]``). Two tasks use it:

- ``classify``: a classifier (softmax output, cross-entropy loss), MLP or 2-D CNN;
- ``autoencode``: an MLP autoencoder (sigmoid output, Bernoulli cross-entropy summed over the
  64 pixels), the classic K-FAC benchmark shape in miniature.

MNIST-1D (Greydanus and Kobak, ICML 2024; the ``mnist1d`` package, also in ``train``) is a
procedurally generated ten-class set of 1-D signals of length 40, made here by
``mnist1d.data.make_dataset`` with its seed set to the data seed (never downloaded): 5000
signals, a task where convolution matters (an MLP reaches ~70 %, a small CNN ~95 %).

Every dataset is split three ways, stratified by class and drawn from the data seed:
**train** (the optimiser sees it), **validation** (every choice of a study: targets,
learning rates, stopping) and **test** (read once, for the final numbers).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rerinv.errors import InputError
from rerinv.seeds import Seed, seed_sequence

DIGITS_TASKS = ("classify", "autoencode")
#: Tasks of the spec (``TrainingSpec.task``).
TASKS = DIGITS_TASKS


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and targets of one task, split into training, validation and test sets.

    Attributes
    ----------
    name : str
        ``digits-classify``, ``digits-autoencode`` (``-pool2`` etc. when pooled) or
        ``mnist1d-classify``.
    x_train, x_val, x_test : numpy.ndarray
        Inputs, shape (samples, features): digits pixel values scaled to [0, 1], MNIST-1D
        signals standardised by the generator (dimensionless).
    y_train, y_val, y_test : numpy.ndarray
        Class labels (int64) for ``classify``; the inputs themselves for ``autoencode``.
    n_outputs : int
        Width of the network output (10 classes, or 64 pixels).
    input_shape : tuple of int
        Shape of one sample for a convolutional network, channels first: ``(1, 8, 8)``
        (digits; ``(1, 4, 4)`` pooled by 2), ``(1, 40)`` (MNIST-1D).
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    input_shape: tuple[int, ...] = ()

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]


def load_digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """The digits images (1797, 64) as float64 grey levels 0..16 and their labels (int64).

    Raises
    ------
    InputError
        When scikit-learn is not installed (it is the optional extra ``train``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise InputError(
            "training needs scikit-learn for its digits data set: install it with "
            "`pip install 'rerinv[train]'` (or `pip install scikit-learn`)"
        ) from exc
    digits = load_digits()
    return np.asarray(digits.data, dtype=np.float64), np.asarray(digits.target, dtype=np.int64)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)``: ``round(f * members)`` of each class to test and to
    validation (``fractions = (val, test)``), the rest to training (shuffled)."""
    val_fraction, test_fraction = fractions
    role = np.zeros(len(labels), dtype=np.int8)  # 0 train, 1 val, 2 test
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(val_fraction * len(members)))
        role[members[:n_test]] = 2
        role[members[n_test : n_test + n_val]] = 1
    return rng.permutation(np.flatnonzero(role == 0)), *(np.flatnonzero(role == k) for k in (1, 2))


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 < test_fraction < 1.0 and 0.0 < val_fraction < 1.0):
        raise InputError(
            f"validation and test fractions must be in (0, 1), got {val_fraction!r}, "
            f"{test_fraction!r}"
        )
    if val_fraction + test_fraction >= 0.9:
        raise InputError("validation and test together must leave at least 10 % for training")


def digits_dataset(
    task: str = "classify",
    *,
    seed: Seed = 0,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    pool: int = 1,
) -> Dataset:
    """The digits task ``task`` with a stratified, seeded train/validation/test split.

    Parameters
    ----------
    task : {"classify", "autoencode"}
    seed : int or numpy.random.SeedSequence
        Draws the split (every training run of a grid shares it: the data seed is not the
        run seed).
    test_fraction, val_fraction : float
        Shares of each class held out for testing and for validation, in (0, 1).
    pool : {1, 2, 4, 8}
        Average-pool the 8x8 images over ``pool x pool`` pixels (2 gives 4x4 = 16 inputs: a
        smaller network, e.g. for an end-to-end ngspice run).
    """
    if task not in DIGITS_TASKS:
        raise InputError(f"unknown digits task {task!r}; choose one of {', '.join(DIGITS_TASKS)}")
    _check_fractions(val_fraction, test_fraction)
    if pool not in (1, 2, 4, 8):
        raise InputError(f"pool must be 1, 2, 4 or 8 (it divides the 8x8 image), got {pool!r}")
    images, labels = load_digits_raw()
    x = images / 16.0
    side = 8 // pool
    if pool > 1:
        x = x.reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(-1, side * side)
    rng = np.random.default_rng(seed_sequence(seed))
    train, val, test = stratified_split(labels, (val_fraction, test_fraction), rng)
    targets, n_out = (labels, int(labels.max()) + 1) if task == "classify" else (x, x.shape[1])
    return Dataset(
        name=f"digits-{task}" + (f"-pool{pool}" if pool > 1 else ""),
        task=task,
        x_train=x[train],
        y_train=targets[train],
        x_test=x[test],
        y_test=targets[test],
        n_outputs=n_out,
        x_val=x[val],
        y_val=targets[val],
        input_shape=(1, side, side),
    )


@functools.lru_cache(maxsize=4)
def _mnist1d_raw(seed: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise InputError(
            "MNIST-1D needs the mnist1d package: install it with `pip install 'rerinv[train]'` "
            "(or `pip install mnist1d`)"
        ) from exc
    args = get_dataset_args()
    args.seed, args.num_samples = int(seed), int(samples)
    state = np.random.get_state()  # make_dataset seeds numpy's global generator: restore it
    try:
        made = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.concatenate([made["x"], made["x_test"]]).astype(np.float64)
    y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def mnist1d_dataset(
    *,
    seed: int = 0,
    samples: int = 5000,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
) -> Dataset:
    """MNIST-1D classification, generated from ``seed`` (the generator's own seed and the
    split's), split train/validation/test (3000/1000/1000 by default).

    Parameters
    ----------
    seed : int
        Data seed: the signals (``mnist1d``'s ``args.seed``) and the split.
    samples : int
        Signals generated (a multiple of 10; the generator makes ``samples // 10`` per class).
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the MNIST-1D data seed is a non-negative integer, got {seed!r}")
    if samples < 100:
        raise InputError(f"MNIST-1D needs at least 100 samples, got {samples}")
    _check_fractions(val_fraction, test_fraction)
    x, labels = _mnist1d_raw(int(seed), int(samples))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1,)))
    train, val, test = stratified_split(labels, (val_fraction, test_fraction), rng)
    return Dataset(
        name="mnist1d-classify",
        task="classify",
        x_train=x[train],
        y_train=labels[train],
        x_test=x[test],
        y_test=labels[test],
        n_outputs=int(labels.max()) + 1,
        x_val=x[val],
        y_val=labels[val],
        input_shape=(1, x.shape[1]),
    )


def batches(n_samples: int, batch_size: int, steps: int, rng: np.random.Generator):
    """Index arrays of ``steps`` mini-batches: epochs of a fresh permutation each, the last
    partial batch of an epoch dropped."""
    if not 1 <= batch_size <= n_samples:
        raise InputError(f"batch size must be between 1 and {n_samples}, got {batch_size}")
    per_epoch = n_samples // batch_size
    order = rng.permutation(n_samples)
    for step in range(steps):
        k = step % per_epoch
        if k == 0 and step > 0:
            order = rng.permutation(n_samples)
        yield order[k * batch_size : (k + 1) * batch_size]
