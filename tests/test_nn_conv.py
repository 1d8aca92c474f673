"""Convolutional layers and KFC (rerinv.nn.layers, rerinv.nn.network, rerinv.nn.kfac), each
checked against a computation written here independently: direct loops, finite differences,
explicit per-location sums, an explicit Kronecker solve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rerinv.errors import InputError
from rerinv.nn.backends import Float64Inverse
from rerinv.nn.kfac import Kfac, KfacSettings
from rerinv.nn.layers import Activation, Conv, Dense, Flatten, Pool
from rerinv.nn.network import Network, quadratic_model


def direct_conv(x, w, kernel, stride, padding):
    """Cross-correlation by loops: ``y[b, o, t] = sum_{c, k} w[o, c, k] x_pad[b, c, s t + k]
    + bias[o]`` (``w`` is (out, in*K + 1), bias last)."""
    batch, channels, *spatial = x.shape
    weights = w[:, :-1].reshape(w.shape[0], channels, *kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * len(kernel))
    out = [(n + 2 * padding - k) // stride + 1 for n, k in zip(spatial, kernel, strict=True)]
    y = np.zeros((batch, w.shape[0], *out))
    for b, o in itertools.product(range(batch), range(w.shape[0])):
        for t in itertools.product(*(range(n) for n in out)):
            total = w[o, -1]
            for c in range(channels):
                for k in itertools.product(*(range(n) for n in kernel)):
                    pos = tuple(stride * ti + ki for ti, ki in zip(t, k, strict=True))
                    total += weights[(o, c, *k)] * xp[(b, c, *pos)]
            y[(b, o, *t)] = total
    return y


def explicit_patches(x, kernel, stride, padding):
    """Homogeneous patch of every (sample, location), by loops: ``(B, T, C*K + 1)``."""
    batch, channels, *spatial = x.shape
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * len(kernel))
    out = [(n + 2 * padding - k) // stride + 1 for n, k in zip(spatial, kernel, strict=True)]
    rows = []
    for b in range(batch):
        per = []
        for t in itertools.product(*(range(n) for n in out)):
            patch = [
                xp[(b, c, *(stride * ti + ki for ti, ki in zip(t, k, strict=True)))]
                for c in range(channels)
                for k in itertools.product(*(range(n) for n in kernel))
            ]
            per.append([*patch, 1.0])
        rows.append(per)
    return np.array(rows)


CASES = [  # kernel, stride, padding, input spatial shape
    ((3,), 1, 1, (9,)),
    ((4,), 2, 0, (11,)),
    ((3, 2), 1, 1, (5, 4)),
    ((3, 3), 2, 1, (7, 6)),
]


@pytest.mark.parametrize("kernel, stride, padding, spatial", CASES)
def test_conv_forward_equals_direct_loops(kernel, stride, padding, spatial):
    rng = np.random.default_rng(0)
    layer = Conv(3, 4, kernel, stride=stride, padding=padding)
    w = rng.standard_normal(layer.weight_shape())
    x = rng.standard_normal((2, 3, *spatial))
    y, _ = layer.forward(w, x)
    expected = direct_conv(x, w, kernel, stride, padding)
    assert y.shape == expected.shape == (2, 4, *layer.output_shape((3, *spatial))[1:])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def small_cnn(ndim: int, pool: str, output: str = "softmax") -> Network:
    if ndim == 1:
        layers = [Conv(2, 3, (3,), stride=1, padding=1), Activation("tanh"), Pool((2,), pool)]
        layers += [Conv(3, 4, (2,), stride=2, padding=1), Activation("tanh"), Flatten()]
        shape = (2, 8)
    else:
        layers = [Conv(1, 3, (3, 3), padding=1), Activation("tanh"), Pool((2, 2), pool)]
        layers += [Conv(3, 2, (2, 2), stride=1), Activation("tanh"), Flatten()]
        shape = (1, 6, 4)
    net = Network(shape, tuple(layers), output)
    flat = net.shapes[-1][0]
    return Network(shape, (*layers, Dense(flat, 5)), output)


def _batch(net, rng, batch=4):
    x = rng.standard_normal((batch, *net.input_shape))
    if net.output == "softmax":
        return x, rng.integers(0, net.n_outputs, batch)
    return x, rng.random((batch, net.n_outputs))


def _perturbed(weights, rng):
    return [w + 0.3 * rng.standard_normal(w.shape) for w in weights]  # non-zero biases


@pytest.mark.parametrize(
    "ndim, pool, output", [(1, "avg", "softmax"), (1, "max", "sigmoid"), (2, "avg", "softmax")]
)
def test_weight_gradients_match_finite_differences(ndim, pool, output):
    rng = np.random.default_rng(1)
    net = small_cnn(ndim, pool, output)
    weights = _perturbed(net.init_weights(rng), rng)
    x, y = _batch(net, rng)
    _, grads, _ = net.gradients(weights, x, y)
    h = 1e-6
    for layer, w in enumerate(weights):
        for index in itertools.product(range(w.shape[0]), range(w.shape[1])):
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[layer][index] += h
            minus[layer][index] -= h
            numeric = (
                net.loss(net.forward(plus, x).logits, y) - net.loss(net.forward(minus, x).logits, y)
            ) / (2 * h)
            assert grads[layer][index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def _per_location_output_gradients(net, weights, x, y):
    """``d loss_b / d s[b, o, t]`` of the first layer (a convolution), by finite differences
    on its output through the rest of the network: (B, T, out)."""
    first = net.layers[0]
    s, _ = first.forward(weights[0], x)
    rest = Network(s.shape[1:], net.layers[1:], net.output)
    h = 1e-6
    grads = np.zeros((len(x), int(np.prod(s.shape[2:])), s.shape[1]))
    for b in range(len(x)):
        for o in range(s.shape[1]):
            for t, loc in enumerate(itertools.product(*(range(n) for n in s.shape[2:]))):
                plus, minus = s[b : b + 1].copy(), s[b : b + 1].copy()
                plus[(0, o, *loc)] += h
                minus[(0, o, *loc)] -= h
                up = rest.loss(rest.forward(weights[1:], plus).logits, y[b : b + 1])
                down = rest.loss(rest.forward(weights[1:], minus).logits, y[b : b + 1])
                grads[b, t, o] = (up - down) / (2 * h)
    return grads


@pytest.mark.parametrize("ndim", [1, 2])
def test_kfc_factors_equal_explicit_per_location_sums(ndim):
    """A = mean over batch and locations of [a_t, 1][a_t, 1]^T (patches gathered by loops
    here); G = batch mean of sum_t g_t g_t^T with g_t from finite differences; and
    A (x) G = Omega (x) Gamma of Grosse and Martens (2016): Omega = E[sum_t a_t a_t^T],
    Gamma = E[sum_t g_t g_t^T] / |T|."""
    rng = np.random.default_rng(2)
    net = small_cnn(ndim, "avg")
    weights = _perturbed(net.init_weights(rng), rng)
    x, y = _batch(net, rng, batch=3)
    trace = net.forward(weights, x)
    top = net.output_gradient(trace.logits, y)
    gs = net.backward(weights, trace, top)
    conv = net.layers[0]
    patches = explicit_patches(x, conv.kernel, conv.stride, conv.padding)
    g_fd = _per_location_output_gradients(net, weights, x, y)
    np.testing.assert_allclose(net.kfac_inputs(trace)[0], patches, rtol=0, atol=0)
    np.testing.assert_allclose(gs[0], g_fd, rtol=1e-6, atol=1e-9)

    batch, locations = patches.shape[:2]
    a_explicit = np.zeros((patches.shape[2],) * 2)
    g_explicit = np.zeros((g_fd.shape[2],) * 2)
    for b in range(batch):
        for t in range(locations):
            a_explicit += np.outer(patches[b, t], patches[b, t]) / (batch * locations)
            g_explicit += np.outer(g_fd[b, t], g_fd[b, t]) / batch
    kfac = Kfac(net.factor_sizes(), KfacSettings(), Float64Inverse())
    kfac.update_factors(net.kfac_inputs(trace), gs)  # first step: the plain batch statistics
    a, g = kfac.factors[0]
    np.testing.assert_allclose(a, a_explicit, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, g_explicit, rtol=1e-6, atol=1e-12)
    omega = sum(np.outer(p, p) for row in patches for p in row) / batch
    gamma = sum(np.outer(v, v) for row in g_fd for v in row) / (batch * locations)
    np.testing.assert_allclose(np.kron(a, g), np.kron(omega, gamma), rtol=1e-6, atol=1e-12)


def test_kfc_scaling_recovers_the_fisher_when_its_assumptions_hold():
    """Per-sample gradients sum_t g_t a_t^T with a_t, g_t independent and identically
    distributed over locations (KFC's IAD, SH and SUD hold exactly): the empirical Fisher is
    |T| E[a a^T] (x) E[g g^T], which A (x) G reproduces; without the |T| it would be 4x off."""
    rng = np.random.default_rng(3)
    samples, locations = 100_000, 4
    a = rng.standard_normal((samples, locations, 3)) @ np.array(
        [[1, 0.5, 0], [0, 1, 0], [0, 0.3, 1]]
    )
    g = rng.standard_normal((samples, locations, 2)) * np.array([1.0, 0.5])
    per_sample = np.einsum("btg,bta->bag", g, a).reshape(samples, -1)  # vec: columns stacked
    fisher = per_sample.T @ per_sample / samples
    a_stat, g_stat = Kfac.statistics(a, g)
    approx = np.kron(a_stat, g_stat)
    assert np.max(np.abs(approx - fisher)) < 0.03 * np.max(np.abs(fisher))


def test_conv_kfac_step_is_the_explicit_kronecker_solve():
    """With float64 inverses the step of every layer (convolutions and dense) is
    -lr (A_d (x) G_d)^-1 vec(grad) of its damped factors, nu from the signed sum."""
    rng = np.random.default_rng(4)
    net = small_cnn(2, "max")
    weights = _perturbed(net.init_weights(rng), rng)
    x, y = _batch(net, rng, batch=6)
    trace, grads, _ = net.gradients(weights, x, y)
    settings = KfacSettings(lr=0.2, damping=0.03, kl_clip=1e-3, inverse_every=1)
    kfac = Kfac(net.factor_sizes(), settings, Float64Inverse(), seed=0)
    top = net.sampled_output_gradient(trace.logits, np.random.default_rng(5))
    kfac.update_factors(net.kfac_inputs(trace), net.backward(weights, trace, top))
    delta, nu = kfac.step(grads)
    natural = []
    for layer, grad in enumerate(grads):
        a_d, g_d, da, dg = kfac.damped_factors(layer)
        assert da * dg == pytest.approx(settings.damping)
        solved = np.linalg.solve(np.kron(a_d, g_d), grad.flatten(order="F"))
        natural.append(solved.reshape(grad.shape, order="F"))
    quad = sum(float(np.sum(v * g)) for v, g in zip(natural, grads, strict=True))
    assert quad > 0 and kfac.non_descent == 0
    assert nu == pytest.approx(min(1.0, np.sqrt(settings.kl_clip / (settings.lr**2 * quad))))
    assert nu < 1  # the clip is active in this case
    for d, v in zip(delta, natural, strict=True):
        np.testing.assert_allclose(d, -settings.lr * nu * v, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("ndim, pool", [(1, "max"), (2, "avg")])
def test_tangent_and_quadratic_model_match_finite_differences(ndim, pool):
    """J d (forward mode) against the central difference of the logits, and the Fisher
    quadratic d^T F d against mean_b (J_b d)^T F_R (J_b d) with F_R written out here."""
    rng = np.random.default_rng(6)
    net = small_cnn(ndim, pool)
    weights = _perturbed(net.init_weights(rng), rng)
    x, y = _batch(net, rng)
    trace, grads, _ = net.gradients(weights, x, y)
    d = [rng.standard_normal(w.shape) for w in weights]
    h = 1e-6
    up = net.forward([w + h * v for w, v in zip(weights, d, strict=True)], x).logits
    down = net.forward([w - h * v for w, v in zip(weights, d, strict=True)], x).logits
    jd = (up - down) / (2 * h)
    np.testing.assert_allclose(net.tangent(weights, trace, d), jd, rtol=1e-6, atol=1e-8)
    p = np.exp(trace.logits) / np.exp(trace.logits).sum(axis=1, keepdims=True)
    curvature = np.mean([v @ (np.diag(q) - np.outer(q, q)) @ v for v, q in zip(jd, p, strict=True)])
    model, linear, quad = quadratic_model(net, weights, trace, grads, d)
    assert quad == pytest.approx(curvature, rel=1e-6)
    assert linear == pytest.approx(sum(np.sum(g * v) for g, v in zip(grads, d, strict=True)))
    assert model == pytest.approx(linear + quad / 2)


def test_shapes_are_checked():
    with pytest.raises(InputError, match="cannot take inputs"):
        Network((1, 8), (Conv(1, 2, (3,)), Flatten(), Dense(5, 3)))
    with pytest.raises(InputError, match="divisible"):
        Network((1, 7), (Pool((2,)), Flatten(), Dense(3, 2)))
    with pytest.raises(InputError, match="does not fit"):
        Network((1, 2), (Conv(1, 2, (5,)), Flatten(), Dense(2, 2)))
    with pytest.raises(InputError, match="needs inputs"):
        Network((2, 8), (Conv(1, 2, (3,)), Flatten(), Dense(12, 2)))
