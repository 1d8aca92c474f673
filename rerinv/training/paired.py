"""The study's statistics: every choice on validation, paired comparisons, bits needed.

- **Choice target**: validation accuracy (classify; test accuracy only in files without a
  validation split) or the training loss (autoencoder). Every choice below is made on it.
- **Tuning with equal budgets** (:func:`tuning`): K-FAC's configurations are its float64
  settings with a fixed damping (one per damping value: the damping axis is its tuning grid),
  SGD's and Adam's their learning rates. Each family's best configuration has the fewest mean
  steps to the choice target (a seed that never reaches it counts as ``steps + 1``), ties
  broken by the lower mean final validation loss. The budgets (configurations tried) are
  reported with the choice.
- **Paired comparison** (:func:`paired`): seed ``i`` of every setting starts from the same
  weights and sees the same batches, so a setting is compared with its float64 reference
  (same damping and damping rule) seed by seed: differences of steps to the target (censored
  at ``steps + 1``) with a 95 % Student-t interval, the ratio of mean steps with a paired
  bootstrap interval, and the ratio of final training losses (geometric mean of per-seed
  ratios, t interval on their logarithms).
- **Bits needed** (:func:`bits_needed`): for one network, damping, damping rule and noise
  level, the smallest cell bits ``b`` of the ``single`` solve such that at ``b`` and at every
  larger bits tested the setting is *within float64*: its mean steps lie inside float64's
  95 % t interval of mean steps **and** the 95 % t interval of the paired differences
  contains 0 (and float64 reached the target on at least one seed).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from rerinv.training.results import TrainingResults
from rerinv.training.spec import Setting

BOOTSTRAP_SEED = 20240601
BOOTSTRAP_SAMPLES = 2000


def has_validation(results: TrainingResults) -> bool:
    return bool(np.isfinite(results.steps["val_accuracy"]).any())


def choice_metric(results: TrainingResults) -> str:
    """The metric every choice is made on (see the module docstring)."""
    if results.spec.task != "classify":
        return "train_loss"
    return "val_accuracy" if has_validation(results) else "test_accuracy"


def choice_loss(results: TrainingResults) -> str:
    """The loss that breaks ties between configurations (validation when there is one)."""
    return "val_loss" if has_validation(results) else "train_loss"


def _censored(row: dict, metric: str, cap: int) -> dict[int, float]:
    """Seed index -> steps to ``metric``'s target (``cap`` when never reached)."""
    values = row[f"steps:{metric}"]
    return {
        int(s): float(v) if math.isfinite(v) else float(cap)
        for s, v in zip(row["seed_indices"], values, strict=True)
    }


def t_mean(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its Student-t interval (zero width for one value, NaNs when empty)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if values.size == 1 or np.all(values == values[0]):
        return (mean, mean, mean)
    half = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1)
    half /= math.sqrt(values.size)
    return (mean, mean - half, mean + half)


def tuning(results: TrainingResults, rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Per family (``kfac``: float64 with fixed damping; ``sgd``; ``adam``) the chosen row,
    its budget and every candidate's mean censored steps (see the module docstring)."""
    metric, loss = choice_metric(results), choice_loss(results)
    cap = results.spec.steps + 1
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        setting: Setting = results.settings[row["index"]]
        if setting.optimizer == "kfac":
            if setting.backend != "float64" or setting.adaptive:
                continue
            family = "kfac"
        else:
            family = setting.optimizer
        if row["seeds"] == 0:
            continue
        steps = np.mean(list(_censored(row, metric, cap).values()))
        final = results.steps[loss][row["runs"], -1]
        final_loss = float(np.nanmean(final)) if np.isfinite(final).any() else math.inf
        entry = out.setdefault(family, {"budget": 0, "candidates": [], "_key": None})
        entry["budget"] += 1
        entry["candidates"].append((row["label"], float(steps)))
        key = (float(steps), final_loss)
        if entry["_key"] is None or key < entry["_key"]:
            entry.update(row=row, _key=key, steps=float(steps))
    for entry in out.values():
        entry.pop("_key")
    return out


def paired(results: TrainingResults, row: dict, reference: dict, metric: str) -> dict[str, Any]:
    """``row`` against ``reference`` on the seeds both have (see the module docstring)."""
    cap = results.spec.steps + 1
    a_steps, b_steps = _censored(row, metric, cap), _censored(reference, metric, cap)
    seeds = sorted(set(a_steps) & set(b_steps))
    out: dict[str, Any] = {"seeds": len(seeds)}
    if not seeds:
        return {**out, "diff": (math.nan,) * 3, "ratio": math.nan, "ratio_ci95": [math.nan] * 2,
                "mean": (math.nan,) * 3, "reference": (math.nan,) * 3, "within": False,
                "loss_ratio": (math.nan,) * 3, "censored": False}  # fmt: skip
    a = np.array([a_steps[s] for s in seeds])
    b = np.array([b_steps[s] for s in seeds])
    out["censored"] = bool((a >= cap).any() or (b >= cap).any())
    out["mean"], out["reference"] = t_mean(a), t_mean(b)
    out["diff"] = t_mean(a - b)
    out["ratio"] = float(a.mean() / max(b.mean(), 1e-12))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(seeds), (BOOTSTRAP_SAMPLES, len(seeds)))
    boot = a[picks].mean(axis=1) / np.maximum(b[picks].mean(axis=1), 1e-12)
    out["ratio_ci95"] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
    _, lo, hi = out["diff"]
    ref_mean, ref_lo, ref_hi = out["reference"]
    out["reference_reached"] = int((b < cap).sum())
    # float64 must reach the target on some seed: two runs that both never reach it are
    # not "as fast as float64", they are unmeasured
    out["within"] = bool(
        out["reference_reached"] > 0 and lo <= 0.0 <= hi and ref_lo <= out["mean"][0] <= ref_hi
    )
    la = _final_losses(results, row, seeds)
    lb = _final_losses(results, reference, seeds)
    logs = np.log(la / lb)
    mean, lo, hi = t_mean(logs)
    out["loss_ratio"] = (
        (math.exp(mean), math.exp(lo), math.exp(hi)) if logs.size else ((math.nan,) * 3)
    )
    return out


def _final_losses(results: TrainingResults, row: dict, seeds: list[int]) -> np.ndarray:
    by_seed = dict(zip(row["seed_indices"], row["runs"], strict=True))
    losses = results.steps["train_loss"][[by_seed[s] for s in seeds], -1]
    return np.where(np.isfinite(losses), np.maximum(losses, 1e-300), np.inf)


def reference_row(results: TrainingResults, rows: list[dict], row: dict) -> dict | None:
    """The float64 row ``row`` is paired with (same damping and rule), if in the grid."""
    setting: Setting = results.settings[row["index"]]
    try:
        return rows[results.settings.index(setting.reference)]
    except ValueError:
        return None


def bits_needed(results: TrainingResults, rows: list[dict]) -> list[dict[str, Any]]:
    """One group per (damping, damping rule, noise level) of ``single`` settings with cell
    bits: every bits' paired comparison with float64 and the bits needed (``None`` when no
    tested bits is within; see the module docstring)."""
    metric = choice_metric(results)
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        s: Setting = results.settings[row["index"]]
        if s.optimizer == "kfac" and s.backend == "single" and s.bits is not None:
            groups[(row["damping"], s.adaptive, s.noise or "ideal")].append(row)
    out = []
    for (damping, adaptive, noise), members in groups.items():
        ref = reference_row(results, rows, members[0])
        if ref is None:
            continue
        points = sorted(
            ((float(r["bits"]), paired(results, r, ref, metric), r) for r in members),
            key=lambda p: p[0],
        )
        needed = None
        for bits, result, _ in reversed(points):
            if not result["within"]:
                break
            needed = bits
        out.append(
            {
                "damping": damping,
                "adaptive": adaptive,
                "noise": noise,
                "metric": metric,
                "reference": ref,
                "points": points,
                "bits_needed": needed,
                "tested": [p[0] for p in points],
            }
        )
    order = {name: k for k, name in enumerate(results.spec.noise)}
    out.sort(key=lambda g: (g["adaptive"], order.get(g["noise"], 99), -g["damping"]))
    return out


def non_descent(results: TrainingResults, runs: np.ndarray) -> dict[str, float]:
    """Per run (mean over ``runs``): layer-steps whose preconditioned direction was no
    descent direction (``<V_l, grad_l> <= 0``), and steps whose whole direction was not
    (signed ``sum_l <V_l, grad_l> <= 0``); NaN for files or optimizers without them."""
    layers = results.steps["non_descent"][runs]
    whole = results.steps["descent"][runs]
    if not runs.size or not np.isfinite(whole).any():
        return {"layer_steps": math.nan, "steps": math.nan}
    return {
        "layer_steps": float(np.nansum(layers) / runs.size),
        "steps": float(np.sum(whole <= 0) / runs.size),
    }
