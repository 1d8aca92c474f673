"""Statistics of a training file: steps to target with intervals, tuned baselines, step
ratios, and the small JSON the system timing model reads (schema in ``docs/training.md``).

Intervals: a mean over seeds gets a 95 % Student-t interval; a ratio of mean steps (K-FAC
setting over a tuned baseline) gets a 95 % paired bootstrap interval over seeds (seed ``i``
of every setting shares its initial weights and batches), from a fixed bootstrap seed. A run
that never reaches a target counts as ``steps + 1`` in a ratio (censored; the ratio is then
flagged) and is left out of the mean steps, whose row then says how many seeds reached it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

import rerinv
from rerinv.errors import InputError
from rerinv.outputs import atomic_write
from rerinv.training.results import TrainingResults
from rerinv.training.train import steps_to

BOOTSTRAP_SEED = 20240601
BOOTSTRAP_SAMPLES = 2000
STEPS_FORMAT = ("rerinv-training-steps", 1)


def targets(results: TrainingResults) -> list[tuple[str, float, bool]]:
    """``(metric, threshold, above)`` of the grid: test accuracy (classify) and training loss."""
    spec = results.spec
    out = [("train_loss", spec.target_loss, False)]
    if spec.task == "classify":
        out.insert(0, ("test_accuracy", spec.target_accuracy, True))
    return out


def t_interval(
    values: np.ndarray, level: float = 0.95, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float, float]:
    """Mean and its Student-t interval, clipped to ``bounds`` (NaNs when empty; zero width
    for one value)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size == 1:
        return (mean, mean, mean)
    half = (
        stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    )
    return (mean, max(bounds[0], mean - half), min(bounds[1], mean + half))


def runs_of(results: TrainingResults, setting: int) -> np.ndarray:
    """Run indices of ``setting`` that are stored and did not fail, by seed index."""
    mask = (results.setting_index == setting) & results.done & (results.status != "failed")
    runs = np.flatnonzero(mask)
    return runs[np.argsort(results.seed_index[runs])]


def steps_to_target(results: TrainingResults, runs: np.ndarray, target) -> np.ndarray:
    metric, threshold, above = target
    return np.array([steps_to(results.steps[metric][r], threshold, above=above) for r in runs])


def setting_rows(results: TrainingResults) -> list[dict[str, Any]]:
    """One row of statistics per setting."""
    rows = []
    steps = results.spec.steps
    for k, setting in enumerate(results.settings):
        runs = runs_of(results, k)
        row: dict[str, Any] = {
            "index": k,
            "label": setting.label,
            "family": setting.family,
            "optimizer": setting.optimizer,
            "backend": setting.backend,
            "bits": setting.bits,
            "lr": setting.lr,
            "damping": setting.damping
            if setting.damping is not None
            else (results.spec.damping[0] if setting.optimizer == "kfac" else None),
            "runs": runs,
            "seeds": int(runs.size),
            "failed": int(np.sum((results.setting_index == k) & (results.status == "failed"))),
            "diverged": int(np.sum(results.status[runs] == "diverged")),
        }
        for target in targets(results):
            values = steps_to_target(results, runs, target)
            row[f"steps:{target[0]}"] = values
            row[f"reached:{target[0]}"] = int(np.isfinite(values).sum())
            row[f"mean:{target[0]}"] = t_interval(values, bounds=(0.0, steps))
        final_loss = results.steps["train_loss"][runs, -1]
        row["final_loss"] = t_interval(final_loss, bounds=(0.0, math.inf))
        accuracy = results.steps["test_accuracy"][runs, -1]
        row["final_accuracy"] = t_interval(accuracy, bounds=(0.0, 1.0))
        wall = 1e3 * results.steps["wall_time"][runs, -1] / steps
        row["ms_per_step"] = t_interval(wall, bounds=(0.0, math.inf))
        ev = results.events
        bits = ev["median_bits"][runs]
        finite = np.isfinite(bits) | np.isinf(bits)
        row["median_bits"] = float(np.median(bits[finite])) if finite.any() else math.nan
        low = ev["min_bits"][runs]
        row["min_bits"] = float(np.min(low[~np.isnan(low)])) if (~np.isnan(low)).any() else math.nan
        solves = ev["inv_solves"][runs].sum(axis=2).astype(float)
        row["inv_solves_per_update"] = (
            float(solves[solves >= 0].mean()) if (solves >= 0).any() else math.nan
        )
        row["inverse_failures"] = int(np.sum(ev["error"][runs] != ""))
        row["blocks"] = int(ev["blocks"][runs].max()) if runs.size else 0
        rows.append(row)
    return rows


def tuned_baselines(results: TrainingResults, rows: list[dict]) -> dict[str, dict]:
    """Per baseline optimizer, the row of the learning rate with the fewest mean steps to the
    primary target (non-reaching seeds counted as ``steps + 1``; ties: lower final loss)."""
    metric = results.spec.primary_metric
    best: dict[str, dict] = {}
    for row in rows:
        if row["optimizer"] == "kfac" or row["seeds"] == 0:
            continue
        censored = np.where(
            np.isfinite(row[f"steps:{metric}"]), row[f"steps:{metric}"], results.spec.steps + 1
        )
        key = (float(censored.mean()), row["final_loss"][0])
        if row["optimizer"] not in best or key < best[row["optimizer"]]["_key"]:
            best[row["optimizer"]] = {**row, "_key": key}
    return best


def step_ratio(results: TrainingResults, row: dict, base: dict, metric: str) -> dict[str, Any]:
    """Mean steps of ``row`` over mean steps of ``base`` to ``metric``'s target, with a paired
    bootstrap 95 % interval over the seeds both have."""
    cap = results.spec.steps + 1
    seeds_a = dict(zip(results.seed_index[row["runs"]], row[f"steps:{metric}"], strict=True))
    seeds_b = dict(zip(results.seed_index[base["runs"]], base[f"steps:{metric}"], strict=True))
    common = sorted(set(seeds_a) & set(seeds_b))
    if not common:
        return {"ratio": math.nan, "ci95": [math.nan, math.nan], "censored": False, "seeds": 0}
    a = np.array([seeds_a[s] for s in common])
    b = np.array([seeds_b[s] for s in common])
    censored = bool(not (np.isfinite(a).all() and np.isfinite(b).all()))
    a, b = np.where(np.isfinite(a), a, cap), np.where(np.isfinite(b), b, cap)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(common), (BOOTSTRAP_SAMPLES, len(common)))
    boot = a[picks].mean(axis=1) / np.maximum(b[picks].mean(axis=1), 1e-12)
    return {
        "ratio": float(a.mean() / max(b.mean(), 1e-12)),
        "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "censored": censored,
        "seeds": len(common),
    }


def steps_summary(results: TrainingResults, setting: str | None = None) -> dict[str, Any]:
    """The step-ratio summary for the system timing model (see ``docs/training.md``).

    Its top-level ``second_order_vs_sgd`` / ``second_order_vs_adam`` (what ``rerinv timing
    --steps-ratio FILE`` reads) are the primary-target ratios of the K-FAC setting labelled
    ``setting`` (default ``kfac float64``, else the first K-FAC setting); ``by_setting``
    holds them for every K-FAC setting.
    """
    rows = setting_rows(results)
    best = tuned_baselines(results, rows)
    spec = results.spec
    out: dict[str, Any] = {
        "format": STEPS_FORMAT[0],
        "format_version": STEPS_FORMAT[1],
        "source": results.path.name,
        "rerinv_version": rerinv.__version__,
        "task": f"digits-{spec.task}" + (f"-pool{spec.pool}" if spec.pool > 1 else ""),
        "network": list(spec.architecture().sizes),
        "steps_budget": spec.steps,
        "inverse_every": spec.inverse_every,
        "seeds": spec.seeds,
        "engine": results.config.simulation.engine,
        "block_diagonal_split": any(r["blocks"] > 1 for r in rows),
        "checksums_verified": results.checked,
        "targets": [],
    }
    for metric, threshold, above in targets(results):
        entry: dict[str, Any] = {
            "metric": metric,
            "threshold": threshold,
            "direction": "at_least" if above else "at_most",
            "baselines": {},
            "settings": [],
        }
        for name, row in best.items():
            mean, lo, hi = row[f"mean:{metric}"]
            entry["baselines"][name] = {
                "lr": row["lr"],
                "steps_mean": _num(mean),
                "steps_ci95": [_num(lo), _num(hi)],
                "reached": row[f"reached:{metric}"],
                "seeds": row["seeds"],
            }
        for row in rows:
            if row["optimizer"] != "kfac":
                continue
            mean, lo, hi = row[f"mean:{metric}"]
            item = {
                "label": row["label"],
                "backend": row["backend"],
                "bits": row["bits"],
                "damping": row["damping"],
                "median_effective_bits": _num(row["median_bits"]),
                "steps_mean": _num(mean),
                "steps_ci95": [_num(lo), _num(hi)],
                "reached": row[f"reached:{metric}"],
                "seeds": row["seeds"],
                "inv_solves_per_inverse_update": _num(row["inv_solves_per_update"]),
            }
            for name, base in best.items():
                ratio = step_ratio(results, row, base, metric)
                item[f"ratio_vs_{name}"] = _num(ratio["ratio"])
                item[f"ratio_vs_{name}_ci95"] = [_num(v) for v in ratio["ci95"]]
                item[f"ratio_vs_{name}_censored"] = ratio["censored"]
            entry["settings"].append(item)
        out["targets"].append(entry)
    primary = next(t for t in out["targets"] if t["metric"] == spec.primary_metric)
    by_setting = {
        item["label"]: {
            name: item.get(f"ratio_vs_{name}") for name in ("sgd", "adam") if name in best
        }
        for item in primary["settings"]
    }
    labels = list(by_setting)
    chosen = setting or ("kfac float64" if "kfac float64" in by_setting else None)
    if chosen is None and labels:
        chosen = labels[0]
    if chosen is not None and chosen not in by_setting:
        raise InputError(f"no K-FAC setting {chosen!r} in {results.path}; choose from {labels}")
    if chosen is not None:
        for name, ratio in by_setting[chosen].items():
            out[f"second_order_vs_{name}"] = ratio
        out["source"] = (
            f"{results.path.name}: {chosen}, steps to {spec.primary_metric} "
            f"{primary['threshold']:g} over tuned baselines, digits-{spec.task}, "
            f"{spec.seeds} seeds (rerinv train)"
        )
    out["by_setting"] = by_setting
    return out


def write_steps_json(
    results: TrainingResults, path: str | Path, setting: str | None = None
) -> Path:
    """Write :func:`steps_summary` as JSON to ``path`` (atomically: a temporary file beside
    it, renamed into place)."""
    return atomic_write(path, steps_json(results, setting))


def steps_json(results: TrainingResults, setting: str | None = None) -> str:
    """:func:`steps_summary` as the text of the steps JSON file."""
    return json.dumps(steps_summary(results, setting), indent=2) + "\n"


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    if value is None:
        return None
    return float(value) if math.isfinite(value) else None
