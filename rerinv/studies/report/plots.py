"""The plots of the Monte Carlo report, as PNG bytes (matplotlib on the Agg canvas)."""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rerinv.studies.mc.results import Results
from rerinv.studies.report.stats import quantiles, wilson_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Plot:
    """One plot of the report: ``name`` (file stem), title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def make_plots(results: Results) -> list[Plot]:
    """Every plot of the report, as PNG bytes."""
    target = results.description.target_bits
    plots = [_final_bits(results, target), _bits_per_pass(results, target)]
    others = [a for a in results.description.axes if a[0] != "simulation.scheme" and len(a[1]) > 1]
    plots += [_reach_versus(results, axis, others) for axis in others]
    if not others:
        plots.append(_reach_per_point(results))
    if len(others) >= 2:
        plots.append(_accuracy_map(results, others[0], others[1]))
    return plots


def _figure(**kwargs: Any) -> Figure:
    """A matplotlib figure on the Agg canvas (no pyplot, no global backend; imported lazily
    so that the CLI starts fast)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _horizontal() -> dict[str, Any]:
    import matplotlib

    version = tuple(int(v) for v in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if version >= (3, 10) else {"vert": False}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _final_bits(results: Results, target: float) -> Plot:
    points = results.description.points
    fig = _figure(figsize=(8, 1.5 + 0.35 * len(points)))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only
    for p in range(len(points)):
        bits = results.effective_bits[p][results.done[p] & np.isfinite(results.effective_bits[p])]
        if bits.size:
            ax.boxplot(bits, positions=[p], widths=0.6, showfliers=False, **_horizontal())
            ax.plot(bits, p + rng.uniform(-0.2, 0.2, bits.size), ".", alpha=0.4, color="C0")
    ax.axvline(target, color="C3", ls="--", label=f"target {target:g} bits")
    ax.set_yticks(range(len(points)), [pt.label for pt in points])
    ax.invert_yaxis()
    ax.set_xlabel("final effective bits")
    ax.legend(loc="lower right")
    return Plot(
        "final_bits",
        "Final effective bits per point",
        "Box: quartiles of the finite final bits of the completed trials; dots: trials.",
        _png(fig),
    )


def _bits_per_pass(results: Results, target: float) -> Plot:
    points = results.description.points
    cols = min(4, len(points))
    rows = math.ceil(len(points) / cols)
    fig = _figure(figsize=(3.2 * cols, 2.4 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    passes = np.arange(1, results.history_bits.shape[2] + 1)
    for p, ax in enumerate(axes.flat):
        if p >= len(points):
            ax.set_visible(False)
            continue
        history = _carried(results.history_bits[p][results.done[p]])
        if history.size and np.isfinite(history).any():
            p10, p50, p90 = quantiles(history, [0.1, 0.5, 0.9], axis=0)
            ax.fill_between(passes, p10, p90, alpha=0.3, label="10-90 %")
            ax.plot(passes, p50, "o-", ms=3, label="median")
        ax.axhline(target, color="C3", ls="--", lw=1)
        ax.set_title(points[p].label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("pass")
    fig.supylabel("effective bits")
    return Plot(
        "bits_per_pass",
        "Effective bits versus pass",
        "Median and 10-90 % band over "
        "the completed trials; a trial that stopped keeps its last value.",
        _png(fig),
    )


def _carried(history: np.ndarray) -> np.ndarray:
    """Carry each trial's last pass forward over the NaN padding; drop trials with no pass."""
    history = history[~np.all(np.isnan(history), axis=1)].copy()
    for k in range(1, history.shape[1] if history.ndim == 2 else 0):
        gap = np.isnan(history[:, k])
        history[gap, k] = history[gap, k - 1]
    return history


def _groups(results: Results, names: list[str]) -> list[tuple[str, list[int]]]:
    """Points grouped by their values of ``names`` (labels like ``n=16, scheme=refine``)."""
    values = {name: results.axis_values(name) for name in names}
    keys: dict[str, list[int]] = {}
    for p in range(results.n_points):
        label = ", ".join(f"{name}={values[name][p]}" for name in names)
        keys.setdefault(label, []).append(p)
    return list(keys.items())


def _share(results: Results, points: list[int]) -> tuple[float, float, float]:
    done = results.done[points]
    k, m = int(np.sum(results.reached_target[points] & done)), int(done.sum())
    lo, hi = wilson_interval(k, m)
    return (k / m if m else math.nan), lo, hi


def _bars(stats: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Shares and their (2, n) error bars from ``(share, low, high)`` triples."""
    share = np.array([s[0] for s in stats])
    err = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats]).T.reshape(2, len(stats))
    return share, np.clip(np.nan_to_num(err), 0.0, None)


def _positions(values: tuple[str, ...]) -> tuple[list[float], bool]:
    try:
        return [float(v) for v in values], True
    except ValueError:
        return list(range(len(values))), False


def _scheme_panels(results: Results) -> list[str]:
    return list(dict.fromkeys(p.scheme for p in results.description.points))


def _reach_versus(results: Results, axis: tuple, others: list[tuple]) -> Plot:
    name, values = axis
    schemes = _scheme_panels(results)
    rest = [a[0] for a in others if a[0] != name]
    lines = _groups(results, rest) if rest else [("", list(range(results.n_points)))]
    pooled = len(lines) > 8
    if pooled:
        lines = [("all other values pooled", list(range(results.n_points)))]
    fig = _figure(figsize=(4 * len(schemes), 3.4))
    axes = fig.subplots(1, len(schemes), squeeze=False, sharey=True)[0]
    x, numeric = _positions(values)
    mine = results.axis_values(name)
    point_scheme = [p.scheme for p in results.description.points]
    for ax, scheme in zip(axes, schemes, strict=True):
        for label, members in lines:
            stats = [
                _share(results, [p for p in members if mine[p] == v and point_scheme[p] == scheme])
                for v in values
            ]
            share, err = _bars(stats)
            ax.errorbar(x, share, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xticks(x, values)
        ax.set_title(f"scheme {scheme}")
        ax.set_xlabel(name)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if rest:
            ax.legend(fontsize=7)
    axes[0].set_ylabel(f"P(>= {results.description.target_bits:g} bits)")
    return Plot(
        f"reach_vs_{name}",
        f"Probability of reaching the target versus {name}",
        "Share of completed trials reaching the target (failed trials count as not "
        "reaching it), with 95 % Wilson intervals"
        + ("; other swept values pooled." if pooled else "."),
        _png(fig),
    )


def _reach_per_point(results: Results) -> Plot:
    points = results.description.points
    fig = _figure(figsize=(8, 1.5 + 0.35 * len(points)))
    ax = fig.add_subplot()
    stats = [_share(results, [p]) for p in range(len(points))]
    share, err = _bars(stats)
    ax.barh(range(len(points)), share, xerr=err, capsize=3)
    ax.set_yticks(range(len(points)), [pt.label for pt in points])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(f"P(>= {results.description.target_bits:g} bits)")
    return Plot(
        "reach_per_point",
        "Probability of reaching the target per point",
        "With 95 % Wilson intervals.",
        _png(fig),
    )


def _accuracy_map(results: Results, x_axis: tuple, y_axis: tuple) -> Plot:
    schemes = _scheme_panels(results)
    fig = _figure(figsize=(4.2 * len(schemes) + 1, 3.6))
    axes = fig.subplots(1, len(schemes), squeeze=False)[0]
    xs, ys = results.axis_values(x_axis[0]), results.axis_values(y_axis[0])
    point_scheme = [p.scheme for p in results.description.points]
    image = None
    for ax, scheme in zip(axes, schemes, strict=True):
        grid = np.full((len(y_axis[1]), len(x_axis[1])), np.nan)
        for (i, yv), (j, xv) in itertools.product(enumerate(y_axis[1]), enumerate(x_axis[1])):
            members = [
                p
                for p in range(results.n_points)
                if xs[p] == xv and ys[p] == yv and point_scheme[p] == scheme
            ]
            grid[i, j] = _share(results, members)[0]
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=8)
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", origin="lower", aspect="auto")
        ax.set_xticks(range(len(x_axis[1])), x_axis[1])
        ax.set_yticks(range(len(y_axis[1])), y_axis[1])
        ax.set_xlabel(x_axis[0])
        ax.set_ylabel(y_axis[0])
        ax.set_title(f"scheme {scheme}")
    fig.colorbar(image, ax=list(axes), label="P(reach target)")
    return Plot(
        "accuracy_map",
        f"Accuracy map: {y_axis[0]} x {x_axis[0]}",
        "Share of completed trials reaching the target; other swept values pooled.",
        _png(fig),
    )
