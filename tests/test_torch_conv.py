"""rerinv.torch on convolutions: its im2col rows against PyTorch's own convolution, and its
preconditioned gradients against the numpy K-FAC of :mod:`rerinv.nn` (KFC factors, Grosse and
Martens 2016) on the same Conv1d and Conv2d networks, weights, batches and sampled targets.

Both sides use the true Fisher with the same draws (the numpy side draws them with
``sampled_output_gradient``, the torch side is handed them), in float64. Skips without
PyTorch unless ``RERINV_REQUIRE_TORCH=1`` (CI), where a missing torch fails.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("RERINV_REQUIRE_TORCH") == "1":
    import torch  # CI: a missing torch fails here instead of skipping
else:
    torch = pytest.importorskip("torch", reason="PyTorch (the extra `torch`) is not installed")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from rerinv.nn.backends import Float64Inverse, QuantisedInverse  # noqa: E402
from rerinv.nn.kfac import Kfac, KfacSettings  # noqa: E402
from rerinv.nn.layers import Activation, Conv, Dense, Flatten, Pool  # noqa: E402
from rerinv.nn.losses import softmax  # noqa: E402
from rerinv.nn.network import Network  # noqa: E402
from rerinv.seeds import spawn  # noqa: E402
from rerinv.torch import KfacPreconditioner  # noqa: E402
from rerinv.torch.layers import KfacLayer  # noqa: E402

SEED = 3
SETTINGS = KfacSettings(lr=0.2, damping=0.01, decay=0.9, inverse_every=2, kl_clip=1e-3)
TOLERANCE = 1e-10  # relative to the largest entry of each layer's step

CONVS = [
    nn.Conv1d(3, 4, 3, stride=2, padding=1),
    nn.Conv1d(2, 3, 4, dilation=2, padding="same"),
    nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(1, 0)),
    nn.Conv2d(2, 3, 3, dilation=(2, 1), padding="same", bias=False),
    nn.Conv2d(1, 2, (3, 2), stride=2, padding="valid"),
]


@pytest.mark.parametrize("module", CONVS, ids=lambda m: repr(m))
def test_patch_rows_reproduce_the_convolution(module: nn.Module) -> None:
    """``rows @ W^T + b`` is PyTorch's convolution, position by position: the rows are the
    patches in ``weight.reshape(out, -1)``'s order (stride, padding, dilation, no bias)."""
    module = module.double()
    generator = torch.Generator().manual_seed(0)
    spatial = (9,) if isinstance(module, nn.Conv1d) else (7, 8)
    x = torch.randn(5, module.in_channels, *spatial, generator=generator, dtype=torch.float64)
    layer = KfacLayer("conv", module)
    rows = layer._patches(x)
    with torch.no_grad():
        y = module(x)
        out = rows @ module.weight.reshape(module.out_channels, -1).T
        if module.bias is not None:
            out = out + module.bias
    expected = y.reshape(y.shape[0], y.shape[1], -1).transpose(1, 2).reshape(-1, y.shape[1])
    assert rows.shape[1] == layer.dim_a - int(layer.has_bias)
    assert float((out - expected).abs().max()) < 1e-12


def networks(kind: str) -> tuple[Network, nn.Sequential]:
    """The same CNN in rerinv.nn and in PyTorch (the PyTorch weights are set later)."""
    if kind == "conv1d":
        net = Network(
            (2, 12),
            (
                Conv(2, 3, (3,), stride=2, padding=1),
                Activation("tanh"),
                Conv(3, 4, (3,), stride=1, padding=1),
                Activation("tanh"),
                Flatten(),
                Dense(24, 3),
            ),
        )
        model = nn.Sequential(
            nn.Conv1d(2, 3, 3, stride=2, padding=1),
            nn.Tanh(),
            nn.Conv1d(3, 4, 3, padding=1),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(24, 3),
        )
    else:
        net = Network(
            (2, 6, 6),
            (
                Conv(2, 3, (3, 3), stride=1, padding=1),
                Activation("tanh"),
                Pool((2, 2), "avg"),
                Conv(3, 4, (2, 2), stride=1, padding=0),
                Activation("tanh"),
                Flatten(),
                Dense(16, 3),
            ),
        )
        model = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Conv2d(3, 4, 2),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(16, 3),
        )
    return net, model.double()


def numpy_run(net: Network, weights, xs, ys, backend):
    """The numpy K-FAC's steps and nus, and the targets it drew for the Fisher."""
    kfac = Kfac(net.factor_sizes(), SETTINGS, backend, seed=spawn(SEED, 2)[0])
    rng = np.random.default_rng(11)
    deltas, nus, draws = [], [], []
    weights = [w.copy() for w in weights]
    for x, y in zip(xs, ys, strict=True):
        trace, grads, _ = net.gradients(weights, x, y)
        sampled = net.sampled_output_gradient(trace.logits, rng)
        draws.append(np.argmax(softmax(trace.logits) - sampled, axis=1))  # p - onehot(draw)
        kfac.update_factors(net.kfac_inputs(trace), net.backward(weights, trace, sampled))
        delta, nu = kfac.step(grads)
        deltas.append(delta)
        nus.append(nu)
        weights = [w + d for w, d in zip(weights, delta, strict=True)]
    return deltas, nus, draws, kfac


def torch_run(model: nn.Sequential, weights, xs, ys, draws, backend):
    layers = [m for m in model if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    with torch.no_grad():
        for layer, w in zip(layers, weights, strict=True):
            layer.weight.copy_(torch.from_numpy(w[:, :-1]).reshape(layer.weight.shape))
            layer.bias.copy_(torch.from_numpy(w[:, -1]))
    pre = KfacPreconditioner(
        model,
        backend=backend,
        lr=SETTINGS.lr,
        damping=SETTINGS.damping,
        factor_decay=SETTINGS.decay,
        inv_every=SETTINGS.inverse_every,
        kl_clip=SETTINGS.kl_clip,
        seed=SEED,
    )
    opt = torch.optim.SGD(model.parameters(), lr=SETTINGS.lr)
    moves, nus = [], []
    for x, y, drawn in zip(xs, ys, draws, strict=True):
        opt.zero_grad()
        out = model(torch.from_numpy(x))
        pre.update_factors(out, torch.from_numpy(drawn))
        F.cross_entropy(out, torch.from_numpy(y)).backward()
        nus.append(pre.step())
        moves.append([-SETTINGS.lr * layer.grad_matrix().numpy().copy() for layer in pre.layers])
        opt.step()
    return moves, nus, pre


@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
@pytest.mark.parametrize("backend", ["float64", "kbit"])
def test_conv_preconditioned_gradients_equal_numpy(kind: str, backend: str) -> None:
    net, model = networks(kind)
    rng = np.random.default_rng(2)
    weights = net.init_weights(rng)
    for w in weights:
        w[:, -1] = rng.normal(0.0, 0.1, w.shape[0])
    xs = [rng.normal(size=(10, *net.input_shape)) for _ in range(3)]
    ys = [rng.integers(0, 3, 10) for _ in range(3)]
    inverse = Float64Inverse() if backend == "float64" else QuantisedInverse(7)
    deltas, nus, draws, kfac = numpy_run(net, weights, xs, ys, inverse)
    moves, torch_nus, pre = torch_run(model, weights, xs, ys, draws, inverse)
    worst = max(
        float(np.max(np.abs(m - d)) / np.max(np.abs(d)))
        for step_d, step_m in zip(deltas, moves, strict=True)
        for d, m in zip(step_d, step_m, strict=True)
    )
    assert worst < TOLERANCE
    np.testing.assert_allclose(torch_nus, nus, rtol=1e-12)
    assert min(nus) < 1.0  # the KL clip acts, so it is compared
    for numpy_factors, torch_factors in zip(kfac.factors, pre.factors, strict=True):
        for a, b in zip(numpy_factors, torch_factors, strict=True):
            np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-14)
    assert [layer.conv for layer in pre.layers] == [True, True, False]
