"""The seed tree: every random draw of rerinv flows from one explicit seed.

A seed is an ``int`` or a :class:`numpy.random.SeedSequence`; a part that needs several
independent streams spawns children of it, so results never depend on call order, worker
count or placement.
"""

from __future__ import annotations

import numpy as np

from rerinv.errors import InputError

Seed = int | np.random.SeedSequence


def seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """``seed`` as a :class:`numpy.random.SeedSequence` (a non-negative ``int`` is wrapped)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"a seed is a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def spawn(seed: Seed, count: int) -> list[np.random.SeedSequence]:
    """``count`` independent child seeds of ``seed``: always the same ones for the same seed
    (unlike :meth:`numpy.random.SeedSequence.spawn`, which advances the parent, so that a
    second call would give other children: re-building a circuit from its seed must draw the
    same conductances)."""
    parent = seed_sequence(seed)
    return [
        np.random.SeedSequence(
            parent.entropy, spawn_key=(*parent.spawn_key, k), pool_size=parent.pool_size
        )
        for k in range(count)
    ]


def trial_seed(master_seed: int, point: int, trial: int) -> np.random.SeedSequence:
    """The seed of trial ``trial`` of point ``point`` of a Monte Carlo run: identical to
    ``SeedSequence(master_seed).spawn(points)[point].spawn(trials)[trial]``."""
    return np.random.SeedSequence(master_seed, spawn_key=(point, trial))
