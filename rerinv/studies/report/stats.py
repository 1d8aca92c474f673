"""Statistics of a Monte Carlo results file, per point.

Quantiles use numpy's ``inverted_cdf`` method (no interpolation), so a diverged trial with
``-inf`` bits counts as what it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rerinv.studies.mc.results import Results

QUANTILE_METHOD = "inverted_cdf"
STAT_COLUMNS = (
    "trials",
    "done",
    "failed",
    "median bits",
    "p10 bits",
    "p90 bits",
    "reach target",
    "95 % CI",
    "median passes",
    "median INV solves",
)


def point_statistics(results: Results) -> list[dict[str, Any]]:
    """One row per point: counts, bits quantiles, share reaching the target and its 95 %
    Wilson interval, median passes and INV solves. Failed trials count as not reaching the
    target and are left out of the quantiles."""
    rows = []
    for p, point in enumerate(results.description.points):
        done = results.done[p]
        ok = done & (results.status[p] != "failed")
        k, m = int(np.sum(results.reached_target[p] & done)), int(done.sum())
        row: dict[str, Any] = {
            "point": point.label,
            "trials": results.done.shape[1],
            "done": m,
            "failed": int(m - ok.sum()),
            "reach target": k / m if m else math.nan,
            "95 % CI": wilson_interval(k, m),
        }
        for name, values in (
            ("bits", results.effective_bits[p][ok]),
            ("passes", results.passes[p][ok]),
            ("INV solves", results.inv_solves[p][ok]),
        ):
            q = quantiles(values, [0.1, 0.5, 0.9]) if values.size else [math.nan] * 3
            if name == "bits":
                row["p10 bits"], row["median bits"], row["p90 bits"] = q
            else:
                row[f"median {name}"] = q[1]
        rows.append(row)
    return rows


def wilson_interval(k: int, m: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / m`` (NaNs when ``m == 0``)."""
    if m == 0:
        return (math.nan, math.nan)
    p = k / m
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    return (max(0.0, centre - half), min(1.0, centre + half))


def format_statistic(name: str, value: Any) -> str:
    """How the report prints one statistics cell."""
    if name == "95 % CI":
        lo, hi = value
        return "-" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"
    if isinstance(value, str | int):
        return str(value)
    if math.isnan(value):
        return "-"
    if name == "reach target":
        return f"{value:.3f}"
    return f"{value:.2f}" if name.endswith("bits") else f"{value:g}"


def quantiles(values: np.ndarray, q: list[float], axis: int | None = None) -> Any:
    """``numpy.nanquantile`` with :data:`QUANTILE_METHOD` (no interpolation)."""
    return np.nanquantile(values.astype(float), q, axis=axis, method=QUANTILE_METHOD)
