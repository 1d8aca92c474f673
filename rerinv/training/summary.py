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
from rerinv.training.levels import describe_level
from rerinv.training.paired import bits_needed, choice_metric, has_validation, non_descent, tuning
from rerinv.training.results import TrainingResults
from rerinv.training.train import steps_to

BOOTSTRAP_SEED = 20240601
BOOTSTRAP_SAMPLES = 2000
STEPS_FORMAT = ("rerinv-training-steps", 2)


def targets(results: TrainingResults) -> list[tuple[str, float, bool]]:
    """``(metric, threshold, above)`` of the grid: validation accuracy (when the file has a
    validation split) and test accuracy (classify), and the training loss."""
    spec = results.spec
    out = [("train_loss", spec.target_loss, False)]
    if spec.task == "classify":
        out.insert(0, ("test_accuracy", spec.target_accuracy, True))
        if has_validation(results):
            out.insert(0, ("val_accuracy", spec.target_accuracy, True))
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
            "noise": setting.noise or ("ideal" if setting.backend == "single" else ""),
            "bits": setting.bits,
            "lr": setting.lr,
            "damping": setting.damping
            if setting.damping is not None
            else (results.spec.damping[0] if setting.optimizer == "kfac" else None),
            "runs": runs,
            "seed_indices": results.seed_index[runs],
            "seeds": int(runs.size),
            "non_descent": non_descent(results, runs),
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
    """Per baseline optimizer, the row of the learning rate chosen on the choice target
    (:func:`rerinv.training.paired.tuning`: validation, equal budgets)."""
    chosen = tuning(results, rows)
    return {name: chosen[name]["row"] for name in ("sgd", "adam") if name in chosen}


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
    --steps-ratio FILE`` reads) are the choice-target ratios (validation accuracy) of the
    K-FAC setting labelled ``setting`` (default: the float64 K-FAC configuration chosen on
    validation) over the tuned baselines; ``per_network`` holds the SGD ratio under the
    network's name, ``by_setting`` both ratios of every K-FAC setting.
    """
    rows = setting_rows(results)
    chosen_rows = tuning(results, rows)
    best = tuned_baselines(results, rows)
    spec = results.spec
    metric = choice_metric(results)
    out: dict[str, Any] = {
        "format": STEPS_FORMAT[0],
        "format_version": STEPS_FORMAT[1],
        "source": results.path.name,
        "rerinv_version": rerinv.__version__,
        "task": spec.dataset_name,
        "network_name": spec.network,
        "network": spec.network_description(),
        "steps_budget": spec.steps,
        "inverse_every": spec.inverse_every,
        "seeds": spec.seeds,
        "engine": results.config.simulation.engine,
        "choice_metric": metric,
        "hardware": hardware_levels(results),
        "block_diagonal_split": any(r["blocks"] > 1 for r in rows),
        "checksums_verified": results.checked,
        "tuning": {
            name: {
                "chosen": entry["row"]["label"],
                "budget": entry["budget"],
                "candidates": {label: _num(v) for label, v in entry["candidates"]},
            }
            for name, entry in chosen_rows.items()
        },
        "targets": [],
    }
    for metric_name, threshold, above in targets(results):
        entry: dict[str, Any] = {
            "metric": metric_name,
            "threshold": threshold,
            "direction": "at_least" if above else "at_most",
            "baselines": {},
            "settings": [],
        }
        for name, row in best.items():
            mean, lo, hi = row[f"mean:{metric_name}"]
            entry["baselines"][name] = {
                "lr": row["lr"],
                "steps_mean": _num(mean),
                "steps_ci95": [_num(lo), _num(hi)],
                "reached": row[f"reached:{metric_name}"],
                "seeds": row["seeds"],
            }
        for row in rows:
            if row["optimizer"] != "kfac":
                continue
            mean, lo, hi = row[f"mean:{metric_name}"]
            item = {
                "label": row["label"],
                "backend": row["backend"],
                "bits": row["bits"],
                "damping": row["damping"],
                "noise": results.settings[row["index"]].noise or "ideal",
                "adaptive": results.settings[row["index"]].adaptive,
                "median_effective_bits": _num(row["median_bits"]),
                "steps_mean": _num(mean),
                "steps_ci95": [_num(lo), _num(hi)],
                "reached": row[f"reached:{metric_name}"],
                "seeds": row["seeds"],
                "inv_solves_per_inverse_update": _num(row["inv_solves_per_update"]),
                "non_descent_layer_steps_per_run": _num(row["non_descent"]["layer_steps"]),
                "non_descent_steps_per_run": _num(row["non_descent"]["steps"]),
            }
            for name, base in best.items():
                ratio = step_ratio(results, row, base, metric_name)
                item[f"ratio_vs_{name}"] = _num(ratio["ratio"])
                item[f"ratio_vs_{name}_ci95"] = [_num(v) for v in ratio["ci95"]]
                item[f"ratio_vs_{name}_censored"] = ratio["censored"]
            entry["settings"].append(item)
        out["targets"].append(entry)
    out["bits_needed"] = [_bits_entry(group) for group in bits_needed(results, rows)]
    primary = next(t for t in out["targets"] if t["metric"] == metric)
    by_setting = {
        item["label"]: {
            name: item.get(f"ratio_vs_{name}") for name in ("sgd", "adam") if name in best
        }
        for item in primary["settings"]
    }
    labels = list(by_setting)
    default = chosen_rows["kfac"]["row"]["label"] if "kfac" in chosen_rows else None
    chosen = setting or default or (labels[0] if labels else None)
    if chosen is not None and chosen not in by_setting:
        raise InputError(f"no K-FAC setting {chosen!r} in {results.path}; choose from {labels}")
    if chosen is not None:
        for name, ratio in by_setting[chosen].items():
            out[f"second_order_vs_{name}"] = ratio
        if by_setting[chosen].get("sgd") is not None:
            out["per_network"] = {spec.network: by_setting[chosen]["sgd"]}
        out["source"] = (
            f"{results.path.name}: {chosen}, steps to {metric} {primary['threshold']:g} over "
            f"the baselines tuned on it (equal budgets), {spec.dataset_name}, {spec.network}, "
            f"{spec.seeds} seeds (rerinv train)"
        )
    out["by_setting"] = by_setting
    out["test_once"] = test_once(results, rows, chosen_rows)
    return out


def hardware_levels(results: TrainingResults) -> dict[str, str]:
    """Noise level -> what it changes (the levels the grid ran)."""
    return {level: describe_level(results.config, level) for level in results.spec.noise}


def test_once(results: TrainingResults, rows: list[dict], chosen: dict) -> list[dict]:
    """Test-set numbers of the configurations chosen on validation (and of the ``single``
    settings at the chosen K-FAC damping: their hardware is not a choice), read once here."""
    shown = [(name, entry["row"]) for name, entry in chosen.items()]
    if "kfac" in chosen:
        damping = chosen["kfac"]["row"]["damping"]
        shown += [
            (row["label"], row)
            for row in rows
            if row["backend"] == "single" and row["damping"] == damping
            and not results.settings[row["index"]].adaptive
        ]  # fmt: skip
    out = []
    for name, row in shown:
        mean, lo, hi = row.get("mean:test_accuracy", (math.nan,) * 3)
        acc, acc_lo, acc_hi = row["final_accuracy"]
        out.append(
            {
                "name": name,
                "label": row["label"],
                "test_steps_mean": _num(mean),
                "test_steps_ci95": [_num(lo), _num(hi)],
                "test_reached": row.get("reached:test_accuracy", 0),
                "final_test_accuracy": _num(acc),
                "final_test_accuracy_ci95": [_num(acc_lo), _num(acc_hi)],
                "seeds": row["seeds"],
            }
        )
    return out


def _bits_entry(group: dict) -> dict[str, Any]:
    ref = group["reference"]
    mean, lo, hi = ref[f"mean:{group['metric']}"]
    return {
        "damping": group["damping"],
        "adaptive": group["adaptive"],
        "noise": group["noise"],
        "metric": group["metric"],
        "bits_needed": group["bits_needed"],
        "tested": group["tested"],
        "float64_steps_mean": _num(mean),
        "float64_steps_ci95": [_num(lo), _num(hi)],
        "points": [
            {
                "bits": bits,
                "median_effective_bits": _num(row["median_bits"]),
                "steps_mean": _num(result["mean"][0]),
                "float64_steps_mean_censored": _num(result["reference"][0]),
                "float64_steps_ci95_censored": [_num(v) for v in result["reference"][1:]],
                "diff_mean": _num(result["diff"][0]),
                "diff_ci95": [_num(v) for v in result["diff"][1:]],
                "ratio": _num(result["ratio"]),
                "ratio_ci95": [_num(v) for v in result["ratio_ci95"]],
                "final_loss_ratio": _num(result["loss_ratio"][0]),
                "final_loss_ratio_ci95": [_num(v) for v in result["loss_ratio"][1:]],
                "within_float64": result["within"],
                "censored": result["censored"],
                "seeds": result["seeds"],
            }
            for bits, result, row in group["points"]
        ],
    }


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
