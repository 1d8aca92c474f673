"""Real data for training in the loop: scikit-learn's 8x8 digits, split and scaled.

The digits set (1797 images of 8x8 pixels, grey levels 0..16, ten classes) ships inside
scikit-learn, so no download is needed; scikit-learn is the optional extra ``train``
(``pip install rerinv[train]``). Two tasks use it:

- ``classify``: an MLP classifier (softmax output, cross-entropy loss);
- ``autoencode``: an MLP autoencoder (sigmoid output, Bernoulli cross-entropy summed over the
  64 pixels), the classic K-FAC benchmark shape in miniature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.errors import InputError
from rerinv.seeds import Seed, seed_sequence

TASKS = ("classify", "autoencode")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and targets of one task, split into training and test sets.

    Attributes
    ----------
    name : str
        ``digits-classify`` or ``digits-autoencode`` (``-pool2`` etc. when pooled).
    x_train, x_test : numpy.ndarray
        Inputs, shape (samples, 64 / pool**2), pixel values scaled to [0, 1] (dimensionless).
    y_train, y_test : numpy.ndarray
        Class labels (int64) for ``classify``; the inputs themselves for ``autoencode``.
    n_outputs : int
        Width of the network output (10 classes, or 64 pixels).
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int

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


def digits_dataset(
    task: str = "classify", *, seed: Seed = 0, test_fraction: float = 0.25, pool: int = 1
) -> Dataset:
    """The digits task ``task`` with a stratified, seeded train/test split.

    Parameters
    ----------
    task : {"classify", "autoencode"}
    seed : int or numpy.random.SeedSequence
        Draws the split (every training run of a grid shares it: the data seed is not the
        run seed).
    test_fraction : float
        Share of each class held out for testing, in (0, 1).
    pool : {1, 2, 4, 8}
        Average-pool the 8x8 images over ``pool x pool`` pixels (2 gives 4x4 = 16 inputs: a
        smaller network, e.g. for an end-to-end ngspice run).
    """
    if task not in TASKS:
        raise InputError(f"unknown training task {task!r}; choose one of {', '.join(TASKS)}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if pool not in (1, 2, 4, 8):
        raise InputError(f"pool must be 1, 2, 4 or 8 (it divides the 8x8 image), got {pool!r}")
    images, labels = load_digits_raw()
    x = images / 16.0
    if pool > 1:
        side = 8 // pool
        x = x.reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(-1, side * side)
    rng = np.random.default_rng(seed_sequence(seed))
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[: int(round(test_fraction * len(members)))]] = True
    train_idx = rng.permutation(np.flatnonzero(~test))
    test_idx = np.flatnonzero(test)
    if task == "classify":
        y_train, y_test, n_out = labels[train_idx], labels[test_idx], int(labels.max()) + 1
    else:
        y_train, y_test, n_out = x[train_idx], x[test_idx], x.shape[1]
    return Dataset(
        name=f"digits-{task}" + (f"-pool{pool}" if pool > 1 else ""),
        task=task,
        x_train=x[train_idx],
        y_train=y_train,
        x_test=x[test_idx],
        y_test=y_test,
        n_outputs=n_out,
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
