"""The plots of the training report, as PNG bytes (matplotlib on the Agg canvas, no pyplot)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rerinv.training.results import TrainingResults

if TYPE_CHECKING:
    from matplotlib.figure import Figure


HARDWARE_NOTE = (
    " Time is hardware time: optimizer steps x the timing model's seconds per step of each "
    "machine (rerinv.training.hardware_time: the repast architecture; the analog second-order "
    "machine for K-FAC, the first-order one for SGD and Adam), not the simulator's wall time."
)


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str
    png: bytes


def _figure(**kwargs: Any) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


#: Line style per K-FAC inverse backend; the colour says the bits (see :func:`_style`).
_LINES = {"single": (0, (1, 1)), "quantised": (0, (5, 1, 1, 1)), "refine": "-", "krylov": "-."}


def _style(row: dict, index: int) -> dict[str, Any]:
    """float64 black; baselines grey/brown dashed; other K-FAC backends: line style by
    backend, colour by bits (8 = dark, 24 = yellow; ``single`` counts as the cell bits)."""
    if row["optimizer"] != "kfac":
        colour = "tab:gray" if row["optimizer"] == "sgd" else "tab:brown"
        return {"linestyle": "--", "color": colour, "linewidth": 2}
    if row["backend"] == "float64":
        return {"color": "black", "linewidth": 2.5}
    if row.get("noise") and row["backend"] == "single" and row["bits"] is not None:
        # the cell-bits axis: colour = hardware level, dotted below 8 bits
        style = "-" if row["bits"] >= 8 else (0, (1, 1))
        colour = _NOISE_COLOURS.get(row["noise"], "tab:gray")
        return {"color": colour, "linestyle": style, "linewidth": 1.2}
    from matplotlib import colormaps

    bits = row["bits"] if row["bits"] is not None else 8.0
    colour = colormaps["plasma"](min(1.0, max(0.0, (bits - 6.0) / 20.0)))
    return {"color": colour, "linestyle": _LINES.get(row["backend"], "-"), "linewidth": 1.2}


def make_plots(
    results: TrainingResults,
    rows: list[dict],
    shown: list[dict],
    groups: list[dict] | None = None,
    step_seconds: dict[str, float] | None = None,
) -> list[Plot]:
    """Ratios against bits (one line per damping and noise level), curves of the ``shown``
    rows (K-FAC settings and tuned baselines) with bands, steps to target, factor condition
    numbers and inverse bits."""
    plots = []
    if groups:
        plots.append(_ratio_vs_bits(groups, "ratio"))
        plots.append(_ratio_vs_bits(groups, "loss_ratio"))
    plots.append(_curves(results, shown, "train_loss", "step"))
    if step_seconds:
        plots.append(_curves(results, shown, "train_loss", "hardware", step_seconds))
    if results.spec.task == "classify":
        metric = (
            "val_accuracy"
            if np.isfinite(results.steps["val_accuracy"]).any()
            else ("test_accuracy")
        )
        plots.append(_curves(results, shown, metric, "step"))
    plots.append(_steps_to_target(results, shown))
    plots.append(_conditions(results, rows))
    plots.append(_bits(results, rows))
    return plots


def _curves(
    results: TrainingResults,
    shown: list[dict],
    metric: str,
    axis: str,
    step_seconds: dict[str, float] | None = None,
) -> Plot:
    fig = _figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for i, row in enumerate(shown):
        runs = row["runs"]
        if runs.size == 0 or (axis == "hardware" and row["label"] not in step_seconds):
            continue
        values = results.steps[metric][runs]
        keep = np.isfinite(values).any(axis=0)
        if not keep.any():
            continue
        x = np.flatnonzero(keep).astype(float)  # the steps some seed measured
        values = values[:, keep]
        y = np.nanmean(values, axis=0)
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        if axis == "hardware":
            x = x * step_seconds[row["label"]] * 1e3
        style = _style(row, i)
        ax.plot(x, y, label=row["label"], **style)
        ax.fill_between(x, low, high, color=style["color"], alpha=0.12, linewidth=0)
    what = {
        "train_loss": "training loss (nats/sample)",
        "test_accuracy": "test accuracy",
        "val_accuracy": "validation accuracy",
    }[metric]
    if metric == "train_loss":
        ax.set_yscale("log")
        ax.axhline(results.spec.target_loss, color="red", linewidth=0.8, linestyle=":")
    else:
        ax.set_ylim(max(0.0, results.spec.target_accuracy - 0.25), 1.0)
        ax.axhline(results.spec.target_accuracy, color="red", linewidth=0.8, linestyle=":")
    ax.set_xlabel("optimizer step" if axis == "step" else "modelled hardware time (ms)")
    ax.set_ylabel(what)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    name = f"{metric}_vs_{axis}"
    return Plot(
        name,
        f"{what} vs {'step' if axis == 'step' else 'hardware time'}",
        "Mean over seeds (line) and the range over seeds (band, min to max); K-FAC settings "
        "solid/dotted, tuned SGD/Adam dashed; dotted red: target."
        + (HARDWARE_NOTE if axis == "hardware" else ""),
        _png(fig),
    )


#: Colour per noise level and marker per damping in the ratio plots.
_NOISE_COLOURS = {
    "ideal": "tab:blue",
    "moderate": "tab:orange",
    "harsh": "tab:red",
    "sky130": "tab:green",
}
_MARKERS = "osD^v<>p*"


def _ratio_vs_bits(groups: list[dict], key: str) -> Plot:
    fig = _figure(figsize=(8, 5))
    ax = fig.add_subplot()
    dampings = sorted({g["damping"] for g in groups}, reverse=True)
    for g in groups:
        bits = np.array([p[0] for p in g["points"]])
        if key == "ratio":
            y = np.array([p[1]["ratio"] for p in g["points"]])
            lo = np.array([p[1]["ratio_ci95"][0] for p in g["points"]])
            hi = np.array([p[1]["ratio_ci95"][1] for p in g["points"]])
        else:
            y, lo, hi = (np.array([p[1]["loss_ratio"][k] for p in g["points"]]) for k in range(3))
        label = f"damping {g['damping']:g}{' adaptive' if g['adaptive'] else ''}, {g['noise']}"
        ax.errorbar(
            bits, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], capsize=3,
            marker=_MARKERS[dampings.index(g["damping"]) % len(_MARKERS)],
            color=_NOISE_COLOURS.get(g["noise"], "tab:gray"),
            linestyle="--" if g["adaptive"] else "-", label=label,
        )  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("cell and ADC bits of the single analog solve")
    if key == "ratio":
        ax.set_ylabel("steps to target / float64's (same seeds)")
        title, caption = (
            "Steps-to-target ratio against inverse bits",
            "Mean steps of the analog single solve over mean steps of float64 K-FAC at the same "
            "damping, paired over seeds (95 % bootstrap interval); a seed that never reached "
            "the target counts as steps + 1, so a ratio near (steps + 1) / float64's is a "
            "ceiling, not a measurement.",
        )
    else:
        ax.set_ylabel("final training loss / float64's (same seeds)")
        title, caption = (
            "Final-loss ratio against inverse bits",
            "Geometric mean over seeds of the final training loss over float64's at the same "
            "damping and seed, with its 95 % t interval (on the logarithms).",
        )
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return Plot(f"{key}_vs_bits", title, caption, _png(fig))


def _steps_to_target(results: TrainingResults, shown: list[dict]) -> Plot:
    from rerinv.training.paired import choice_metric

    metric = choice_metric(results)
    fig = _figure(figsize=(8, 0.35 * len(shown) + 1.5))
    ax = fig.add_subplot()
    for i, row in enumerate(shown):
        mean, lo, hi = row[f"mean:{metric}"]
        values = row[f"steps:{metric}"]
        ax.scatter(
            np.where(np.isfinite(values), values, np.nan),
            np.full(values.size, i),
            s=10,
            color="tab:blue",
            alpha=0.5,
        )
        if np.isfinite(mean):
            ax.errorbar(mean, i, xerr=[[mean - lo], [hi - mean]], fmt="o", color="black", capsize=3)
        ax.text(
            1.01,
            i,
            f"{row[f'reached:{metric}']}/{row['seeds']}",
            transform=ax.get_yaxis_transform(),
            fontsize=7,
            va="center",
        )
    ax.set_yticks(range(len(shown)), [r["label"] for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"steps to {metric} target (dots: seeds; black: mean with 95 % t interval)")
    ax.grid(alpha=0.3)
    return Plot(
        "steps_to_target",
        f"Steps to the {metric} target",
        "Right margin: seeds that reached the target / seeds run; the mean covers those that did.",
        _png(fig),
    )


def _conditions(results: TrainingResults, rows: list[dict]) -> Plot:
    fig = _figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    kfac = [r for r in rows if r["optimizer"] == "kfac" and r["runs"].size]
    reference = [r for r in kfac if r["backend"] == "float64"] or kfac
    ev = results.events
    for row in reference:
        suffix = f" (damping {row['damping']:g})" if len(reference) > 1 else ""
        for f, label in enumerate(results.factor_labels):
            cond = ev["condition"][row["runs"], :, f]
            step = ev["step"][row["runs"][0], :, f]
            keep = step >= 0
            ax.plot(
                step[keep], np.nanmedian(cond, axis=0)[keep], marker=".", label=f"{label}{suffix}"
            )
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step of the inverse update")
    ax.set_ylabel("2-norm condition number of the damped factor")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return Plot(
        "factor_conditions",
        "Condition numbers of the damped K-FAC factors",
        "Median over seeds of the float64 K-FAC runs (every K-FAC run when none is float64).",
        _png(fig),
    )


def _bits(results: TrainingResults, rows: list[dict]) -> Plot:
    fig = _figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ev = results.events
    for i, row in enumerate(rows):
        if row["optimizer"] != "kfac" or row["backend"] == "float64" or not row["runs"].size:
            continue
        bits = ev["min_bits"][row["runs"]]  # (seeds, updates, factors)
        step = ev["step"][row["runs"][0], :, 0]
        keep = step >= 0
        worst = np.nanmin(np.where(np.isinf(bits), np.nan, bits), axis=2)
        ax.plot(
            step[keep],
            np.nanmedian(worst, axis=0)[keep],
            marker=".",
            label=row["label"],
            **_style(row, i),
        )
    ax.set_xlabel("optimizer step of the inverse update")
    ax.set_ylabel("worst column's effective bits (all factors)")
    if ax.lines:
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "no K-FAC run with an inexact inverse", ha="center",
                transform=ax.transAxes)  # fmt: skip
    ax.grid(alpha=0.3)
    return Plot(
        "inverse_bits",
        "Accuracy of the factor inverses during training",
        "Effective bits of the worst column of any factor's inverse at each update, against the "
        "float64 inverse of the damped factor; median over seeds.",
        _png(fig),
    )
