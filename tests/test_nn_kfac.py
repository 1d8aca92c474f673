"""K-FAC honesty (signed KL clip, non-descent counts), adaptive damping, and one training run
per network through the network-generic loop (rerinv.nn.kfac, rerinv.training.train)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the datasets need the `train` extra (scikit-learn)")

from rerinv.errors import InputError  # noqa: E402
from rerinv.nn.backends import Float64Inverse, InverseBackend, InverseOutcome  # noqa: E402
from rerinv.nn.benchmarks import build_network, load_dataset  # noqa: E402
from rerinv.nn.kfac import Kfac, KfacSettings  # noqa: E402
from rerinv.nn.network import reduction_ratio  # noqa: E402
from rerinv.training.spec import Setting, TrainingSpec, training_config  # noqa: E402
from rerinv.training.train import run_seed, train_run  # noqa: E402


class _NegatedInverse(InverseBackend):
    """G's 'inverse' of the wrong sign (A's is right): every direction is an ascent one."""

    name = "negated"

    def invert(self, matrix, *, seed=0):
        sign = -1.0 if len(matrix) == 3 else 1.0  # the G factors below are 3 wide
        return InverseOutcome(sign * np.linalg.inv(matrix), column_bits=np.zeros(len(matrix)))


def _kfac(backend, layers=2, **settings):
    rng = np.random.default_rng(0)
    kfac = Kfac([(4, 3)] * layers, KfacSettings(inverse_every=1, **settings), backend)
    stats = [rng.standard_normal((20, 4)) for _ in range(layers)]
    kfac.update_factors(stats, [rng.standard_normal((20, 3)) for _ in range(layers)])
    return kfac, [rng.standard_normal((3, 4)) for _ in range(layers)]


def test_a_non_descent_direction_is_counted_not_hidden():
    kfac, grads = _kfac(_NegatedInverse(), kl_clip=1e-4)
    _, nu = kfac.step(grads)
    assert np.all(kfac.last_products < 0) and kfac.non_descent == 2
    assert nu == 1.0  # no KL estimate from a negative sum: nothing to clip with
    kfac.step(grads)
    assert kfac.non_descent_by_layer.tolist() == [2, 2]
    honest, _ = _kfac(Float64Inverse(), kl_clip=1e-4)
    _, nu = honest.step(grads)
    assert honest.non_descent == 0 and nu < 1.0  # the same budget clips a descent step
    quad = float(np.sum(honest.last_products))
    assert nu == pytest.approx(np.sqrt(1e-4 / (honest.settings.lr**2 * quad)))


def test_kfac_defaults_are_the_cli_grid_defaults():
    spec = TrainingSpec()
    assert spec.kfac_settings() == KfacSettings(damping=spec.damping[0])
    assert KfacSettings().damping == spec.damping[0]


@pytest.mark.parametrize("rho, factor", [(0.9, 0.95**5), (0.5, 1.0), (0.1, 0.95**-5)])
def test_levenberg_marquardt_rule(rho, factor):
    kfac, _ = _kfac(Float64Inverse(), adaptive_damping=True, adapt_every=5, damping=0.01)
    assert kfac.adapt_damping(rho) == pytest.approx(0.01 * factor)
    assert kfac.damping == pytest.approx(0.01 * factor)


def test_adaptive_damping_is_bounded_and_validated():
    kfac, _ = _kfac(
        Float64Inverse(), adaptive_damping=True, damping=0.01, min_damping=0.009, max_damping=0.02
    )
    for _ in range(5):
        kfac.adapt_damping(1.0)
    assert kfac.damping == 0.009
    for _ in range(5):
        kfac.adapt_damping(-np.inf)
    assert kfac.damping == 0.02
    with pytest.raises(InputError, match="adaptive damping"):
        KfacSettings(adaptive_damping=True, damping=2.0).validate()


def test_reduction_ratio_tends_to_one_for_small_steps_and_flags_ascent():
    data = load_dataset("cnn2d", seed=0)
    net = build_network("cnn2d", data)
    weights = net.init_weights(np.random.default_rng(0))
    x, y = data.x_train[:64], data.y_train[:64]
    trace, grads, loss = net.gradients(weights, x, y)
    small = [-1e-4 * g for g in grads]
    assert reduction_ratio(net, weights, trace, grads, small, x, y, loss) == pytest.approx(
        1.0, abs=1e-3
    )
    ascent = [1e-3 * g for g in grads]
    assert reduction_ratio(net, weights, trace, grads, ascent, x, y, loss) == -np.inf


def _spec(network, **kfac):
    """A minimal spec for the loop (the study's TrainingSpec gains ``network`` separately)."""
    settings = KfacSettings(inverse_every=5, kl_clip=0.01, **kfac)
    return SimpleNamespace(
        task="classify",
        network=network,
        hidden=(),
        activation="tanh",
        pool=1,
        data_seed=0,
        steps=10,
        batch_size=128,
        kfac_settings_for=lambda setting: settings,
    )


@pytest.mark.parametrize("network", ["cnn1d", "cnn2d"])
def test_cnn_kfac_runs_record_validation_damping_and_descent(network):
    spec = _spec(network, adaptive_damping=True, adapt_every=5)
    record = train_run(spec, Setting("kfac", "float64"), training_config(), seed=run_seed(0, 0))
    assert record.status == "finished"
    assert record.train_loss[-1] < record.train_loss[0]
    assert record.val_loss[-1] < record.val_loss[0]
    assert np.all(np.isfinite(record.val_accuracy)) and np.all(np.isfinite(record.test_loss))
    assert np.flatnonzero(~np.isnan(record.rho)).tolist() == [4, 9]  # every T1 = 5 steps
    assert record.damping[0] == 0.003 and np.all(record.damping[:5] == 0.003)
    rho = record.rho[4]
    expected = 0.003 * (0.95**5 if rho > 0.75 else 0.95**-5 if rho < 0.25 else 1.0)
    assert record.damping[5] == pytest.approx(expected)
    assert np.all(record.descent > 0) and record.non_descent.sum() == 0  # float64: descent
    assert record.non_descent_by_layer.tolist() == [0, 0, 0]
    sizes = [(e.layer, e.kind, e.size) for e in record.events[:6]]
    assert (2, "A", 321) in sizes  # the factor wider than one 256-wide crossbar


def test_baseline_records_have_no_kfac_fields():
    record = train_run(_spec("cnn1d"), Setting("adam", lr=0.01), training_config(), seed=0)
    assert np.all(np.isnan(record.damping)) and np.all(np.isnan(record.descent))
    assert record.non_descent.sum() == 0 and record.non_descent_by_layer.size == 0


def test_eval_every_measures_only_every_kth_index_and_the_last():
    spec = _spec("mlp")
    spec.eval_every, spec.steps = 4, 10
    record = train_run(spec, Setting("kfac", "float64"), training_config(), seed=0)
    for curve in (record.train_loss, record.val_accuracy, record.test_loss):
        assert np.flatnonzero(np.isfinite(curve)).tolist() == [0, 4, 8, 10]
    assert np.all(np.isfinite(record.batch_loss))


@pytest.mark.parametrize("network", ["cnn1d", "cnn2d"])
@pytest.mark.parametrize("backend", ["quantised", "single"])
def test_cnns_train_with_k_bit_and_analog_inverses(network, backend):
    """Both CNNs train with the k-bit stand-in and with the analog machine (nodal engine, one
    8-bit solve per column): the loss falls, every inverse is made (none kept from before),
    and the 321-wide A goes whole to the tiled machine with bits measured against its
    inverse."""
    spec = _spec(network)
    spec.steps = 6
    spec.kfac_settings_for = lambda setting: KfacSettings(inverse_every=6, kl_clip=0.01)
    setting = Setting("kfac", backend, 8.0 if backend == "quantised" else None)
    record = train_run(spec, setting, training_config(), seed=run_seed(0, 1))
    assert record.status == "finished" and record.train_loss[-1] < record.train_loss[0]
    assert record.events and all(e.error == "" for e in record.events)
    wide = [e for e in record.events if e.size == 321]
    assert len(wide) == 1 and 2 < wide[0].min_bits <= wide[0].median_bits < 12
    if backend == "single":
        assert "tiles" in wide[0].route
