"""Reading results files of older format versions as the current version reads them.

Version 1 (rerinv before the ``[simulation]`` configuration section) kept the scheme, engine
and matrix size of each point in ``/points/{scheme,engine,n}`` and the non-swept ones, the
target bits and the pass budget as attributes of ``/sweep``; its axes ``n``, ``scheme`` and
``engine`` are the ``simulation.*`` keys of version 2. Such files are read, never resumed.
"""

from __future__ import annotations

import h5py
import numpy as np

from rerinv.config import Config

_V1_AXES = {"n": "simulation.n", "scheme": "simulation.scheme", "engine": "simulation.engine"}


def fold_version_1(
    f: h5py.File, base: str, axes: tuple, index: np.ndarray
) -> tuple[str, tuple, list[str], list[str]]:
    """A version 1 file as version 2 reads it: the then separate trial arguments (scheme,
    engine, n per point and in ``/sweep``; target bits and pass budget in ``/sweep``) folded
    into the base and point configurations, the pseudo-axes renamed ``simulation.*`` and the
    point labels made from the renamed axes."""
    points, a = f["points"], f["sweep"].attrs
    budget = {"target_bits": float(a["target_bits"]), "max_passes": int(a["max_passes"])}
    fixed = {"scheme": str(a["scheme"]), "engine": str(a["engine"]), "n": int(a["n"])}
    base = Config.from_toml(base).with_values("simulation", **fixed, **budget).to_toml()
    schemes, engines = _strings(points["scheme"]), _strings(points["engine"])
    sizes = points["n"][...]
    configs = [
        Config.from_toml(str(text))
        .with_values(
            "simulation",
            scheme=str(schemes[p]),
            engine=str(engines[p]),
            n=int(sizes[p]),
            **budget,
        )
        .to_toml()
        for p, text in enumerate(_strings(points["config"]))
    ]
    axes = tuple((_V1_AXES.get(name, name), values) for name, values in axes)
    labels = [
        ", ".join(f"{name}={values[i]}" for (name, values), i in zip(axes, row, strict=True))
        or "base"
        for row in index
    ]
    return base, axes, labels, configs


def _strings(dataset: h5py.Dataset) -> list[str]:
    return [str(v) for v in dataset.asstr()[...].tolist()]
