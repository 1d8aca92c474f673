"""K-FAC for PyTorch models: rewrites ``.grad`` before a stock ``torch.optim`` step.

The pattern of kfac-pytorch's ``KFACPreconditioner``, with rerinv's inverse backends::

    pre = KfacPreconditioner(model, backend="kbit", bits=8, lr=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)     # the same lr
    for x, y in batches:
        opt.zero_grad()
        logits = model(x)
        pre.update_factors(logits)                          # true Fisher: sampled targets
        torch.nn.functional.cross_entropy(logits, y).backward()
        pre.step()                                          # .grad <- nu G^-1 grad A^-1
        opt.step()

Hooks on every registered layer keep its input (forward pre-hook) and its output (forward
hook) of the last forward pass made in training mode with gradients on.
:meth:`KfacPreconditioner.update_factors` draws targets from the model's own predictive
distribution (the true Fisher that K-FAC approximates; ``fisher="empirical"`` takes the
labels instead), takes the gradients of their summed loss with respect to the layer outputs
(``torch.autograd.grad``, leaving every ``.grad`` alone) and folds the statistics of
:mod:`rerinv.torch.layers` into running averages. :meth:`KfacPreconditioner.step` refreshes
the inverses when due and rewrites the gradients.

The conventions are those of :class:`rerinv.nn.kfac.Kfac`: running averages with decay
``min(factor_decay, 1 - 1/(t+1))`` at step ``t``; pi-damping ``A + pi sqrt(lambda) I``,
``G + sqrt(lambda)/pi I``; the damped factors inverted by the backend at steps ``0,
inv_every, 2 inv_every, ...`` (a failed inverse keeps the previous one, the first falls back
to ``I / mean(diag)``); the gradient becomes ``nu G^-1 grad A^-1`` with the KL clip ``nu =
min(1, sqrt(kl_clip / (lr^2 sum_l <V_l, grad_l>)))`` (1 when the sum is not
positive). A plain SGD step with learning rate
``lr`` then moves the weights exactly as the numpy K-FAC does, and SGD's momentum (without
dampening) is the numpy K-FAC's heavy-ball momentum. Inverse update ``u`` of factor ``f``
(``2 layer + {0: A, 1: G}``) programs its crossbar from ``SeedSequence(entropy,
spawn_key=(*key, u, f))`` of the hardware seed, child 0 of ``seed``; child 1 seeds the target
draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rerinv.config import Config
from rerinv.errors import InputError
from rerinv.nn.backends import InverseBackend
from rerinv.nn.kfac import FACTOR_KINDS, Capture, InverseEvent, KfacSettings
from rerinv.seeds import Seed, spawn
from rerinv.torch.backend import inverse_backend
from rerinv.torch.layers import SUPPORTED, KfacLayer

LOSSES = ("cross_entropy", "bce")
FISHERS = ("true", "empirical")


class KfacPreconditioner:
    """K-FAC preconditioner of the Linear and Conv1d/Conv2d layers of ``model``.

    Parameters
    ----------
    model : nn.Module
        Every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` in it is registered, except
        those named in ``skip``; other parameters keep their plain gradient.
    backend : InverseBackend or str
        Makes the factor inverses; a name goes to :func:`rerinv.torch.inverse_backend` with
        ``bits``, ``config`` and ``engine`` (``float64``, ``kbit``, ``analog``, a scheme).
    lr : float or callable, optional
        The optimizer's learning rate (used by the KL clip); a callable is asked at every
        step (for a schedule). Give the optimizer the same one.
    damping, pi_damping, factor_decay, inv_every, kl_clip : optional
        ``damping``, ``pi_damping``, ``decay``, ``inverse_every``, ``kl_clip`` of
        :class:`rerinv.nn.kfac.KfacSettings`; each left out takes its default there (as does
        ``lr``), so the two implementations share their defaults.
    loss : {"cross_entropy", "bce"}
        The model's output: logits ``(B, classes)`` of a softmax cross-entropy, or logits of
        independent Bernoulli outputs (cross-entropy summed over them).
    fisher : {"true", "empirical"}
        Targets of the ``G`` statistics: drawn from the model (true Fisher), or the labels.
    seed : int or numpy.random.SeedSequence
        Root of the hardware draws and of the target draws (see the module docstring).
    capture : callable, optional
        ``capture(step, layer, kind, damped_factor, damping)`` before every inverse.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        backend: InverseBackend | str = "float64",
        bits: float | None = None,
        config: Config | None = None,
        engine: str | None = None,
        lr: float | Callable[[], float] | None = None,
        damping: float | None = None,
        pi_damping: bool | None = None,
        factor_decay: float | None = None,
        inv_every: int | None = None,
        kl_clip: float | None = None,
        loss: str = "cross_entropy",
        fisher: str = "true",
        seed: Seed = 0,
        skip: Iterable[str] = (),
        capture: Capture | None = None,
    ):
        given = {
            "lr": None if callable(lr) else lr,
            "damping": damping,
            "pi_damping": pi_damping,
            "decay": factor_decay,
            "inverse_every": inv_every,
            "kl_clip": kl_clip,
        }
        self.settings = replace(KfacSettings(), **{k: v for k, v in given.items() if v is not None})
        self.settings.validate()
        if loss not in LOSSES or fisher not in FISHERS:
            raise InputError(
                f"loss must be one of {', '.join(LOSSES)} and fisher one of "
                f"{', '.join(FISHERS)}, got {loss!r} and {fisher!r}"
            )
        if isinstance(backend, str):
            backend = inverse_backend(backend, bits=bits, config=config, engine=engine)
        self.backend, self.loss, self.fisher = backend, loss, fisher
        self.lr = lr if callable(lr) else self.settings.lr
        self.capture = capture
        self._hardware, self._sampling = spawn(seed, 2)
        self._generators: dict[torch.device, torch.Generator] = {}
        skip = set(skip)
        self.layers = [
            KfacLayer(name, module)
            for name, module in model.named_modules()
            if isinstance(module, SUPPORTED) and name not in skip
        ]
        unknown = skip - {name for name, _ in model.named_modules()}
        if unknown:
            raise InputError(f"skip names no module of the model: {', '.join(sorted(unknown))}")
        if not self.layers:
            raise InputError(
                "the model has no nn.Linear, nn.Conv1d or nn.Conv2d layer to precondition"
            )
        self.factors = [
            [layer.module.weight.new_zeros(n, n) for n in (layer.dim_a, layer.dim_g)]
            for layer in self.layers
        ]
        self.inverses: list[list[torch.Tensor | None]] = [[None, None] for _ in self.layers]
        self.events: list[InverseEvent] = []
        self.steps = 0  #: step() calls so far (t of the decay schedule)
        self.updates = 0  #: inverse updates so far
        self.statistics = 0  #: update_factors() calls so far
        self.last_nu = math.nan  #: the KL-clipping factor of the last step
        #: ``<V_l, grad_l>`` per layer of the last step (<= 0: not a descent direction)
        self.last_products = np.full(len(self.layers), np.nan)  # NaN: no step yet
        #: steps at which each layer's direction was not a descent direction
        self.non_descent_by_layer = np.zeros(len(self.layers), dtype=np.int64)
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self._handles = []
        for index, layer in enumerate(self.layers):
            self._handles.append(layer.module.register_forward_pre_hook(self._keeper(index, True)))
            self._handles.append(layer.module.register_forward_hook(self._keeper(index, False)))

    # -- hooks ------------------------------------------------------------------------------
    def _keeper(self, index: int, is_input: bool):
        def keep_input(module, args):
            if module.training and torch.is_grad_enabled():
                self._inputs[index] = args[0].detach()

        def keep_output(module, args, output):
            if module.training and torch.is_grad_enabled():
                self._outputs[index] = output

        return keep_input if is_input else keep_output

    def remove(self) -> None:
        """Remove the hooks (the preconditioner cannot be used afterwards)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- statistics -------------------------------------------------------------------------
    def update_factors(self, output: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        """Fold the statistics of the last training forward pass, whose model output is
        ``output``, into the running factors.

        ``targets``: with ``fisher="true"``, leave it out to draw the targets from the model
        (or give draws of your own); with ``fisher="empirical"``, the labels (required).
        Class indices ``(B,)`` for ``cross_entropy``, 0/1 of ``output``'s shape for ``bce``.
        """
        missing = [layer.name for i, layer in enumerate(self.layers) if i not in self._outputs]
        if missing or not output.requires_grad:
            raise InputError(
                "update_factors needs the output of a forward pass made in training mode with "
                f"gradients on, through every registered layer (missing: {', '.join(missing)})"
            )
        if targets is None:
            if self.fisher == "empirical":
                raise InputError("fisher='empirical' needs the labels: update_factors(output, y)")
            targets = self._draw(output.detach())
        if self.loss == "cross_entropy":
            if output.dim() != 2:
                raise InputError(
                    f"loss='cross_entropy' takes (batch, classes) logits, got "
                    f"shape {tuple(output.shape)}"
                )
            total = F.cross_entropy(output, targets, reduction="sum")
        else:
            total = F.binary_cross_entropy_with_logits(
                output, targets.to(output.dtype), reduction="sum"
            )
        indices = sorted(self._outputs)
        grads = torch.autograd.grad(
            total, [self._outputs[i] for i in indices], retain_graph=True, allow_unused=True
        )
        unused = [self.layers[i].name for i, g in zip(indices, grads, strict=True) if g is None]
        if unused:
            raise InputError(
                f"the output does not depend on layer(s) {', '.join(unused)}; "
                "leave them out with skip=[...]"
            )
        batch = output.shape[0]
        rho = min(self.settings.decay, 1.0 - 1.0 / (self.steps + 1))
        with torch.no_grad():
            for i, gy in zip(indices, grads, strict=True):
                layer, factors = self.layers[i], self.factors[i]
                stats = (layer.a_factor(self._inputs[i]), layer.g_factor(gy, batch))
                for k, stat in enumerate(stats):
                    factors[k] = rho * factors[k] + (1.0 - rho) * stat.to(factors[k].dtype)
        self._inputs.clear()
        self._outputs.clear()
        self.statistics += 1

    def _draw(self, output: torch.Tensor) -> torch.Tensor:
        generator = self._generators.get(output.device)
        if generator is None:
            state = int(self._sampling.generate_state(1, np.uint64)[0] >> np.uint64(1))
            generator = torch.Generator(device=output.device).manual_seed(state)
            self._generators[output.device] = generator
        if self.loss == "cross_entropy":
            probs = torch.softmax(output, dim=1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return torch.bernoulli(torch.sigmoid(output), generator=generator)

    # -- inverses ---------------------------------------------------------------------------
    def damped_factors(self, index: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(A + dA I, G + dG I, dA, dG)`` of layer ``index`` in float64 numpy."""
        a, g = (f.detach().to("cpu", torch.float64).numpy() for f in self.factors[index])
        root = math.sqrt(self.settings.damping)
        pi = 1.0
        if self.settings.pi_damping:
            ta, tg = np.trace(a) / a.shape[0], np.trace(g) / g.shape[0]
            pi = math.sqrt(ta / tg) if ta > 0 and tg > 0 else 1.0
        da, dg = pi * root, root / pi
        return a + da * np.eye(a.shape[0]), g + dg * np.eye(g.shape[0]), da, dg

    def refresh_inverses(self) -> None:
        """Invert every damped factor with the backend (one inverse update)."""
        u = self.updates
        for index, layer in enumerate(self.layers):
            a_d, g_d, da, dg = self.damped_factors(index)
            weight = layer.module.weight
            for k, (matrix, added) in enumerate(((a_d, da), (g_d, dg))):
                f = 2 * index + k
                if self.capture is not None:
                    self.capture(self.steps, index, FACTOR_KINDS[k], matrix, added)
                seed = np.random.SeedSequence(
                    self._hardware.entropy, spawn_key=(*self._hardware.spawn_key, u, f)
                )
                outcome = self.backend.invert(matrix, seed=seed)
                self.events.append(InverseEvent.of(self.steps, index, k, matrix, added, outcome))
                inverse = outcome.inverse
                if inverse is None:
                    if self.inverses[index][k] is not None:
                        continue
                    inverse = np.eye(matrix.shape[0]) / np.mean(np.diag(matrix))
                self.inverses[index][k] = torch.as_tensor(
                    inverse, dtype=weight.dtype, device=weight.device
                )
        self.updates += 1

    # -- the step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self) -> float:
        """Rewrite every registered layer's ``.grad`` into ``nu G^-1 grad A^-1`` (refreshing
        the inverses when due); returns the KL-clipping factor ``nu``."""
        if self.statistics == 0:
            raise InputError(
                "no factor statistics yet: call update_factors(output) after the "
                "forward pass and before step()"
            )
        lr = float(self.lr()) if callable(self.lr) else float(self.lr)
        if not lr > 0:
            raise InputError(f"the learning rate must be > 0, got {lr!r}")
        grads = [layer.grad_matrix() for layer in self.layers]
        if self.steps % self.settings.inverse_every == 0:
            self.refresh_inverses()
        natural = [
            inv_g @ grad @ inv_a for grad, (inv_a, inv_g) in zip(grads, self.inverses, strict=True)
        ]
        self.last_products = np.array(
            [float(torch.sum(v * g)) for v, g in zip(natural, grads, strict=True)]
        )
        self.non_descent_by_layer += self.last_products <= 0
        nu = 1.0
        quad = float(np.sum(self.last_products))  # signed: nu = 1 when it is not positive
        if self.settings.kl_clip > 0 and quad > 0:
            nu = min(1.0, math.sqrt(self.settings.kl_clip / (lr**2 * quad)))
        for layer, v in zip(self.layers, natural, strict=True):
            layer.set_grad(nu * v)
        self.steps += 1
        self.last_nu = nu
        return nu
