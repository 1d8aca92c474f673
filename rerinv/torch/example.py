"""Train a small 1-D CNN on MNIST-1D with K-FAC (rerinv's inverses) and with plain SGD.

``python -m rerinv.torch.example [--backend float64|kbit|analog] [--bits B] [--steps N]
[--seed S] ...`` (``--help`` lists every option). MNIST-1D (Greydanus, 2020) is made
procedurally by the ``mnist1d`` package from the seed (never downloaded): 40-sample signals of
ten digit templates, shifted, scaled, sheared and noisy. The network is
``Conv1d(1, 8, 5, stride 2) - ReLU - Conv1d(8, 8, 5, stride 2) - ReLU - Linear(80, 10)``;
both optimisers start from the same weights and see the same batches. K-FAC is
:class:`rerinv.torch.KfacPreconditioner` in front of ``torch.optim.SGD``; its inverses come
from the chosen backend (``analog``: the analog machine on the ``--engine``, default nodal).
A progress line every ``--every`` steps, then the test accuracy of both.
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from dataclasses import dataclass

import numpy as np

from rerinv.errors import RerinvError
from rerinv.nn.data import batches
from rerinv.seeds import spawn
from rerinv.torch.backend import inverse_backend
from rerinv.torch.requirement import require_torch

OPTIONS = {  # name: (type, default, help)
    "backend": (str, "float64", "inverse backend: float64, kbit, analog or a scheme name"),
    "bits": (float, None, "bits of the k-bit stand-in (default 8), or an analog target"),
    "engine": (str, "nodal", "engine of the analog backend: nodal or spice"),
    "steps": (int, 300, "training steps"),
    "seed": (int, 0, "seed of the data, initial weights, batches and hardware draws"),
    "batch-size": (int, 100, "samples per step"),
    "lr": (float, 0.2, "K-FAC learning rate"),
    "sgd-lr": (float, 0.5, "learning rate of the SGD baseline (plain SGD, no momentum)"),
    "damping": (float, 0.003, "K-FAC damping lambda"),
    "kl-clip": (float, 0.01, "K-FAC KL-clipping budget (nats)"),
    "inv-every": (int, 10, "steps between inverse updates"),
    "samples": (int, 4000, "MNIST-1D samples made (80 % train, 20 % test)"),
    "every": (int, 50, "steps between progress lines"),
    "threads": (int, 1, "PyTorch CPU threads (layers this small gain nothing from more)"),
}


class UsageError(Exception):
    """Bad command-line input: one line, exit 2."""


def usage() -> str:
    lines = [f"usage: python -m rerinv.torch.example [options]\n\n{__doc__.splitlines()[0]}\n"]
    for name, (kind, default, text) in OPTIONS.items():
        lines.append(f"  --{name} {kind.__name__.upper():6s} {text} (default {default})")
    return "\n".join(lines)


def parse(argv: list[str]) -> dict:
    """``--name value`` / ``--name=value`` pairs of :data:`OPTIONS` into their types."""
    values = {name.replace("-", "_"): default for name, (_, default, _) in OPTIONS.items()}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, equals, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name not in OPTIONS:
            raise UsageError(f"unknown option {arg!r} (--help lists them)")
        if not equals:
            if not args:
                raise UsageError(f"--{name} needs a value")
            value = args.pop(0)
        kind = OPTIONS[name][0]
        try:
            values[name.replace("-", "_")] = kind(value)
        except ValueError:
            what = {int: "an integer", float: "a number"}.get(kind, "a value")
            raise UsageError(f"--{name} takes {what}, got {value!r}") from None
    for name in ("steps", "batch_size", "inv_every", "every", "samples", "threads"):
        if values[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {values[name]}")
    for name in ("lr", "sgd_lr", "damping"):
        if not values[name] > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {values[name]}")
    if values["seed"] < 0:
        raise UsageError(f"--seed must be >= 0, got {values['seed']}")
    if values["backend"] in ("kbit", "quantised") and values["bits"] is None:
        values["bits"] = 8.0
    return values


@dataclass
class Mnist1d:
    x_train: np.ndarray  #: (N, 1, 40) float32 signals
    y_train: np.ndarray  #: (N,) int64 labels
    x_test: np.ndarray
    y_test: np.ndarray


def mnist1d(samples: int, seed: int) -> Mnist1d:
    """MNIST-1D made procedurally (``mnist1d.data.make_dataset``) from ``seed``; the global
    ``random`` and ``numpy.random`` states it seeds are restored afterwards."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise UsageError(
            "the example needs the mnist1d package: pip install 'rerinv[torch]'"
        ) from None
    args = get_dataset_args()
    args.num_samples, args.seed = samples, seed
    states = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    if len(data["y"]) < 10 or len(data["y_test"]) < 1:
        raise UsageError(f"--samples {samples} is too few for a training and a test set")
    signals = [np.asarray(data[k], dtype=np.float32)[:, None, :] for k in ("x", "x_test")]
    labels = [np.asarray(data[k], dtype=np.int64) for k in ("y", "y_test")]
    return Mnist1d(signals[0], labels[0], signals[1], labels[1])


def network(seed: np.random.SeedSequence):
    """The 1-D CNN, its initial weights drawn from ``seed`` (PyTorch's global generator is
    left as it was)."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed.generate_state(1)[0]))
        return nn.Sequential(
            nn.Conv1d(1, 8, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(8, 8, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(80, 10),
        )


def compare(data: Mnist1d, options: dict, seeds: list[np.random.SeedSequence]) -> dict:
    """Train K-FAC and SGD side by side; print progress and the result; return the final
    test accuracies (``kfac``, ``sgd``) and the preconditioner (``pre``)."""
    import torch
    import torch.nn.functional as F

    from rerinv.torch.preconditioner import KfacPreconditioner

    s_init, s_batches, s_hardware = seeds
    kfac_model = network(s_init)
    sgd_model = copy.deepcopy(kfac_model)
    pre = KfacPreconditioner(
        kfac_model,
        backend=options["backend"],
        bits=options["bits"],
        engine=options["engine"],
        lr=options["lr"],
        damping=options["damping"],
        kl_clip=options["kl_clip"],
        inv_every=options["inv_every"],
        seed=s_hardware,
    )
    kfac_opt = torch.optim.SGD(kfac_model.parameters(), lr=options["lr"])
    sgd_opt = torch.optim.SGD(sgd_model.parameters(), lr=options["sgd_lr"])
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)

    def accuracy(model) -> float:
        with torch.no_grad():
            return float((model(x_test).argmax(dim=1) == y_test).double().mean())

    print(
        f"MNIST-1D: {len(data.y_train)} training and {len(data.y_test)} test signals; "
        f"K-FAC inverses: {pre.backend.describe()}"
    )
    steps, every = options["steps"], options["every"]
    order = batches(
        len(data.y_train), options["batch_size"], steps, np.random.default_rng(s_batches)
    )
    for step, index in enumerate(order, start=1):
        x, y = torch.from_numpy(data.x_train[index]), torch.from_numpy(data.y_train[index])
        kfac_opt.zero_grad()
        out = kfac_model(x)
        pre.update_factors(out)
        loss = F.cross_entropy(out, y)
        loss.backward()
        kfac_loss = loss.item()
        pre.step()
        kfac_opt.step()
        sgd_opt.zero_grad()
        loss = F.cross_entropy(sgd_model(x), y)
        loss.backward()
        sgd_loss = loss.item()
        sgd_opt.step()
        if not (math.isfinite(kfac_loss) and math.isfinite(sgd_loss)):
            print(
                f"step {step}: a loss is not finite (K-FAC {kfac_loss:.3g}, SGD "
                f"{sgd_loss:.3g}); stopped"
            )
            break
        if step % every == 0 or step == steps:
            print(
                f"step {step:5d}/{steps}: K-FAC batch loss {kfac_loss:.3f} test accuracy "
                f"{accuracy(kfac_model):.3f} (nu {pre.last_nu:.2g}) | SGD batch loss "
                f"{sgd_loss:.3f} test accuracy {accuracy(sgd_model):.3f}"
            )
    result = {"kfac": accuracy(kfac_model), "sgd": accuracy(sgd_model), "pre": pre}
    bits = [e.median_bits for e in pre.events if math.isfinite(e.median_bits)]
    failed = sum(1 for e in pre.events if e.error)
    inverse_time = sum(e.wall_time for e in pre.events)
    print(
        f"inverses: {len(pre.events)} made, {failed} failed, median bits "
        f"{np.median(bits) if bits else math.inf:.1f}, {inverse_time:.1f} s"
    )
    print(
        f"final test accuracy after {pre.steps} steps: K-FAC ({pre.backend.name}) "
        f"{result['kfac']:.3f}, SGD {result['sgd']:.3f}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(usage())
        return 0
    try:
        torch = require_torch()
        options = parse(argv)
        torch.set_num_threads(options["threads"])
        options["backend"] = inverse_backend(
            options["backend"], bits=options["bits"], engine=options["engine"]
        )
        data = mnist1d(options["samples"], options["seed"])
        start = time.perf_counter()
        compare(data, options, spawn(options["seed"], 3))
    except (UsageError, RerinvError, ImportError) as exc:
        print(f"rerinv: error: {exc}", file=sys.stderr)
        return 2
    print(f"training time {time.perf_counter() - start:.1f} s (both optimisers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
