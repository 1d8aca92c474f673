"""Circuit testbenches for users: a pytest plugin (:mod:`rerinv.testing.plugin`, loaded by
the ``pytest11`` entry point), the bench its ``rerinv`` fixture gives
(:mod:`rerinv.testing.bench`), assertions that explain their failures
(:mod:`rerinv.testing.assertions`) and Monte Carlo yields (:mod:`rerinv.testing.yields`).

The names below load on first use, so that the plugin costs a session that does not use it
nothing: ``from rerinv.testing import assert_bits``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Bench": "rerinv.testing.bench",
    "Solved": "rerinv.testing.bench",
    "Settled": "rerinv.testing.bench",
    "VmmReadout": "rerinv.testing.bench",
    "CheckFailed": "rerinv.testing.assertions",
    "assert_bits": "rerinv.testing.assertions",
    "assert_settles": "rerinv.testing.assertions",
    "assert_matches_reference": "rerinv.testing.assertions",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rerinv.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
