"""rerinv.torch against the numpy K-FAC: the same model, batches and targets give the same
preconditioned gradients, step after step (running averages, inverse refreshes and stale
inverses, pi-damping, KL clip), with the float64, k-bit and analog backends and with a backend
that fails.

Both sides use the true Fisher with the same sampled targets: the numpy side draws them
(``sampled_output_gradient`` from a seeded generator), the torch side is handed the same
draws (``update_factors(output, draws)``). Everything runs in float64.

PyTorch is the optional extra ``torch``: these tests skip without it, unless
``RERINV_REQUIRE_TORCH=1`` (set in CI), which turns the skip into a failure.
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

from rerinv.config import Config  # noqa: E402
from rerinv.errors import InputError  # noqa: E402
from rerinv.nn import mlp  # noqa: E402
from rerinv.nn.backends import (  # noqa: E402
    AnalogInverse,
    Float64Inverse,
    InverseBackend,
    InverseOutcome,
    QuantisedInverse,
)
from rerinv.nn.kfac import Kfac, KfacSettings  # noqa: E402
from rerinv.seeds import spawn  # noqa: E402
from rerinv.torch import KfacPreconditioner, inverse_backend  # noqa: E402

SEED = 5  # the preconditioner's seed; the numpy K-FAC gets its hardware child
SETTINGS = KfacSettings(lr=0.3, damping=0.01, decay=0.9, inverse_every=2, kl_clip=1e-3)
TOLERANCE = 1e-10  # relative to the largest entry of each layer's step


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def problem(output: str, steps: int = 4, batch: int = 16):
    """An MLP (8, 6, 5, 3) with non-zero biases, and ``steps`` batches."""
    arch = mlp.Architecture((8, 6, 5, 3), "tanh", output)
    rng = np.random.default_rng(1)
    weights = mlp.init_weights(arch, rng)
    for w in weights:
        w[:, -1] = rng.normal(0.0, 0.1, w.shape[0])
    xs = [rng.normal(size=(batch, 8)) for _ in range(steps)]
    if output == "softmax":
        ys = [rng.integers(0, 3, batch) for _ in range(steps)]
    else:
        ys = [(rng.random((batch, 3)) < 0.5).astype(float) for _ in range(steps)]
    return arch, weights, xs, ys


def numpy_run(arch, weights, xs, ys, backend):
    """The numpy K-FAC's steps and nus, and the targets it drew for the Fisher."""
    kfac = Kfac(arch.factor_sizes(), SETTINGS, backend, seed=spawn(SEED, 2)[0])
    fisher_rng = np.random.default_rng(7)
    deltas, nus, draws = [], [], []
    weights = [w.copy() for w in weights]
    for x, y in zip(xs, ys, strict=True):
        fwd = mlp.forward(arch, weights, x)
        top = mlp.output_gradient(arch, fwd.logits, y)
        grads = mlp.weight_gradients(fwd, mlp.backward(arch, weights, fwd, top))
        sampled = mlp.sampled_output_gradient(arch, fwd.logits, fisher_rng)
        if arch.output == "softmax":  # sampled = p - onehot(draw)
            draws.append(np.argmax(_softmax(fwd.logits) - sampled, axis=1))
        else:  # sampled = q - draw
            draws.append(np.round(0.5 * (1 + np.tanh(0.5 * fwd.logits)) - sampled))
        kfac.update_factors(fwd.inputs, mlp.backward(arch, weights, fwd, sampled))
        delta, nu = kfac.step(grads)
        deltas.append(delta)
        nus.append(nu)
        weights = [w + d for w, d in zip(weights, delta, strict=True)]
    return deltas, nus, draws, kfac


def torch_model(arch, weights) -> nn.Sequential:
    layers = [nn.Linear(i, o) for i, o in zip(arch.sizes[:-1], arch.sizes[1:], strict=True)]
    model = nn.Sequential(layers[0], nn.Tanh(), layers[1], nn.Tanh(), layers[2]).double()
    with torch.no_grad():
        for layer, w in zip(layers, weights, strict=True):
            layer.weight.copy_(torch.from_numpy(w[:, :-1]))
            layer.bias.copy_(torch.from_numpy(w[:, -1]))
    return model


def torch_run(arch, weights, xs, ys, draws, backend, **options):
    """The same steps through KfacPreconditioner + torch.optim.SGD: ``-lr * .grad`` after
    ``pre.step()`` (the move SGD makes), per step and layer, and the nus."""
    model = torch_model(arch, weights)
    pre = KfacPreconditioner(
        model,
        backend=backend,
        lr=SETTINGS.lr,
        damping=SETTINGS.damping,
        factor_decay=SETTINGS.decay,
        inv_every=SETTINGS.inverse_every,
        kl_clip=SETTINGS.kl_clip,
        loss="cross_entropy" if arch.output == "softmax" else "bce",
        seed=SEED,
        **options,
    )
    opt = torch.optim.SGD(model.parameters(), lr=SETTINGS.lr)
    moves, nus = [], []
    for x, y, drawn in zip(xs, ys, draws, strict=True):
        opt.zero_grad()
        out = model(torch.from_numpy(x))
        pre.update_factors(out, torch.from_numpy(drawn))
        if arch.output == "softmax":
            F.cross_entropy(out, torch.from_numpy(y)).backward()
        else:  # rerinv.nn.mlp's Bernoulli loss: summed over outputs, mean over the batch
            loss = F.binary_cross_entropy_with_logits(out, torch.from_numpy(y), reduction="sum")
            (loss / len(x)).backward()
        nus.append(pre.step())
        moves.append([-SETTINGS.lr * layer.grad_matrix().numpy().copy() for layer in pre.layers])
        opt.step()
    return moves, nus, pre


def worst_difference(deltas, moves) -> float:
    return max(
        float(np.max(np.abs(m - d)) / np.max(np.abs(d)))
        for step_d, step_m in zip(deltas, moves, strict=True)
        for d, m in zip(step_d, step_m, strict=True)
    )


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_preconditioned_gradients_equal_numpy_float64(output: str) -> None:
    arch, weights, xs, ys = problem(output)
    deltas, nus, draws, kfac = numpy_run(arch, weights, xs, ys, Float64Inverse())
    moves, torch_nus, pre = torch_run(arch, weights, xs, ys, draws, Float64Inverse())
    assert worst_difference(deltas, moves) < TOLERANCE
    np.testing.assert_allclose(torch_nus, nus, rtol=1e-12)
    assert min(nus) < 1.0, "the KL clip must act in this case, or it is not compared"
    assert pre.updates == kfac.updates == 2  # refreshed at steps 0 and 2, stale at 1 and 3
    np.testing.assert_allclose(pre.last_products, kfac.last_products, rtol=1e-10)
    assert len(pre.events) == 2 * 2 * 3
    for numpy_factors, torch_factors in zip(kfac.factors, pre.factors, strict=True):
        for a, b in zip(numpy_factors, torch_factors, strict=True):
            np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-14)


def test_the_comparison_can_fail() -> None:
    """Other targets for the Fisher (the labels: the empirical Fisher) give other steps."""
    arch, weights, xs, ys = problem("softmax")
    deltas, _, _, _ = numpy_run(arch, weights, xs, ys, Float64Inverse())
    moves, _, _ = torch_run(arch, weights, xs, ys, ys, Float64Inverse())
    assert worst_difference(deltas, moves) > 1e-3


def test_kbit_backend_equals_numpy_and_differs_from_float64() -> None:
    arch, weights, xs, ys = problem("softmax")
    deltas, nus, draws, _ = numpy_run(arch, weights, xs, ys, QuantisedInverse(6))
    moves, torch_nus, pre = torch_run(arch, weights, xs, ys, draws, "kbit", bits=6)
    assert pre.backend.name == "quantised-6"
    assert worst_difference(deltas, moves) < TOLERANCE
    np.testing.assert_allclose(torch_nus, nus, rtol=1e-12)
    exact, _, _, _ = numpy_run(arch, weights, xs, ys, Float64Inverse())
    assert worst_difference(exact, moves) > 1e-3  # six bits are visible in the step
    assert all(e.min_bits < 12 for e in pre.events)


class FailingInverse(InverseBackend):
    """float64, except for the calls numbered in ``failing`` (0-based), which fail."""

    name = "failing"

    def __init__(self, failing: set[int]):
        self.failing, self.calls = failing, 0

    def invert(self, matrix, *, seed=0) -> InverseOutcome:
        call, self.calls = self.calls, self.calls + 1
        if call in self.failing:
            return InverseOutcome(None, error="SaturationError: railed (test)")
        return Float64Inverse().invert(matrix)


def test_failed_inverses_keep_the_previous_one_as_numpy_does() -> None:
    """Call 0 (layer 0's A, first update): no previous inverse, I / mean(diag) instead;
    call 6 + 3 (layer 1's G, second update): the first update's inverse is kept."""
    failing = {0, 9}
    arch, weights, xs, ys = problem("softmax")
    deltas, nus, draws, kfac = numpy_run(arch, weights, xs, ys, FailingInverse(failing))
    moves, torch_nus, pre = torch_run(arch, weights, xs, ys, draws, FailingInverse(failing))
    assert worst_difference(deltas, moves) < TOLERANCE
    np.testing.assert_allclose(torch_nus, nus, rtol=1e-12)
    errors = [(e.step, e.layer, e.kind) for e in pre.events if e.error]
    assert pre.non_descent_by_layer.tolist() == kfac.non_descent_by_layer.tolist()
    assert errors == [(0, 0, "A"), (2, 1, "G")]
    healthy, _, _, _ = numpy_run(arch, weights, xs, ys, Float64Inverse())
    assert worst_difference(healthy, moves) > 1e-3  # the failures changed the steps


@pytest.mark.parametrize("engine", ["nodal", "spice"])
def test_analog_backend_equals_numpy(engine: str) -> None:
    """The analog machine in the loop (one step, one inverse update of six factors): the
    same seeds program the same crossbars on either engine."""
    config = Config().with_values("simulation", engine=engine, scheme="single")
    arch, weights, xs, ys = problem("softmax", steps=1)
    deltas, nus, draws, _ = numpy_run(arch, weights, xs, ys, AnalogInverse(config))
    moves, torch_nus, pre = torch_run(arch, weights, xs, ys, draws, "analog", config=config)
    assert pre.backend.name == "analog-single"
    assert pre.backend.config.simulation.engine == engine
    assert all(e.passes == e.size and e.inv_solves >= e.size and not e.error for e in pre.events)
    assert worst_difference(deltas, moves) < TOLERANCE
    exact, _, _, _ = numpy_run(arch, weights, xs, ys, Float64Inverse())
    assert worst_difference(exact, moves) > 1e-6


def test_inverse_backend_names() -> None:
    assert isinstance(inverse_backend("float64"), Float64Inverse)
    assert inverse_backend("kbit", bits=8).name == "quantised-8"
    assert inverse_backend("refine", bits=12, engine="nodal").name == "analog-refine@12"
    assert inverse_backend("analog", engine="nodal").config.simulation.engine == "nodal"
    for kind, options in (("kbit", {}), ("magic", {}), ("float64", {"engine": "hspice"})):
        with pytest.raises(InputError):
            inverse_backend(kind, **options)


def test_misuse_is_one_clear_error() -> None:
    arch, weights, xs, ys = problem("softmax", steps=1)
    model = torch_model(arch, weights)
    with pytest.raises(InputError, match="skip names no module"):
        KfacPreconditioner(model, skip=["nope"])
    with pytest.raises(InputError, match="fisher"):
        KfacPreconditioner(model, fisher="sampled")
    with pytest.raises(InputError, match="damping"):
        KfacPreconditioner(model, damping=0.0)
    pre = KfacPreconditioner(model, skip=["0"])
    assert [layer.name for layer in pre.layers] == ["2", "4"]
    with pytest.raises(InputError, match="update_factors"):
        pre.step()
    with torch.no_grad():
        out = model(torch.from_numpy(xs[0]))
    with pytest.raises(InputError, match="training mode with gradients"):
        pre.update_factors(out)
    other = torch_model(arch, weights)
    empirical = KfacPreconditioner(other, fisher="empirical")
    with pytest.raises(InputError, match="labels"):
        empirical.update_factors(other(torch.from_numpy(xs[0])))
