"""Offline datasets and their train/validation/test splits (rerinv.nn.data, .benchmarks)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits need the `train` extra (scikit-learn)")

from rerinv.errors import InputError  # noqa: E402
from rerinv.nn.benchmarks import NETWORKS, build_network, load_dataset  # noqa: E402
from rerinv.nn.data import digits_dataset, load_digits_raw, mnist1d_dataset  # noqa: E402


def _rows(x):
    return {row.tobytes() for row in x}


def test_digits_split_is_stratified_disjoint_complete_and_seeded():
    images, labels = load_digits_raw()
    data = digits_dataset("classify", seed=3)
    parts = [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]
    assert sum(len(x) for x, _ in parts) == len(labels) == 1797
    for k in range(10):
        members = int(np.sum(labels == k))
        assert np.sum(data.y_test == k) == round(0.25 * members)
        assert np.sum(data.y_val == k) == round(0.15 * members)
    # every image in exactly one part (digits has a few duplicate images: compare counts)
    assert len(_rows(data.x_train) | _rows(data.x_val) | _rows(data.x_test)) == len(
        _rows(images / 16.0)
    )
    again, other = digits_dataset("classify", seed=3), digits_dataset("classify", seed=4)
    np.testing.assert_array_equal(again.x_val, data.x_val)
    assert not np.array_equal(other.x_val, data.x_val)
    auto = digits_dataset("autoencode", seed=3)
    np.testing.assert_array_equal(auto.y_val, auto.x_val)
    assert data.input_shape == (1, 8, 8) and digits_dataset(pool=2).input_shape == (1, 4, 4)


def test_mnist1d_is_generated_offline_from_the_seed_and_leaves_numpy_global_state_alone():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    data = mnist1d_dataset(seed=0)
    assert np.random.random() == before  # make_dataset's np.random.seed was undone
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3000, 1000, 1000)
    assert data.input_shape == (1, 40) and data.n_outputs == 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert not _rows(data.x_train) & _rows(data.x_test)
    np.testing.assert_array_equal(mnist1d_dataset(seed=0).x_test, data.x_test)
    assert not np.array_equal(mnist1d_dataset(seed=1, samples=1000).x_test[:5], data.x_test[:5])
    with pytest.raises(InputError, match="non-negative integer"):
        mnist1d_dataset(seed=-1)


@pytest.mark.parametrize("network", NETWORKS)
def test_every_benchmark_network_takes_its_dataset(network):
    data = load_dataset(network, seed=0)
    net = build_network(network, data)
    weights = net.init_weights(np.random.default_rng(0))
    logits = net.predict(weights, data.x_val[:7])
    assert logits.shape == (7, data.n_outputs)
    sizes = net.factor_sizes()
    assert (max(a for a, _ in sizes) > 256) == (network != "mlp")


def test_benchmark_errors_are_one_clear_line():
    with pytest.raises(InputError, match="choose one of mlp, cnn1d, cnn2d"):
        load_dataset("resnet")
    with pytest.raises(InputError, match="classifies"):
        load_dataset("cnn2d", "autoencode")
    with pytest.raises(InputError, match="two positive channel widths"):
        build_network("cnn2d", load_dataset("cnn2d"), hidden=(8,))
