"""Monte Carlo report: statistics per point, plots, configuration and versions.

``write_report(results.h5, out)`` writes one self-contained HTML file (PNG plots embedded as
base64) or Markdown with the PNGs next to it. Quantiles use numpy's ``inverted_cdf`` method (no
interpolation), so a diverged trial with ``-inf`` bits counts as what it is.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rerinv.errors import InputError
from rerinv.studies.mc.store import Results, load_results

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


@dataclass(frozen=True)
class Plot:
    """One plot of the report: ``name`` (file stem), title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


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
            q = _quantiles(values, [0.1, 0.5, 0.9]) if values.size else [math.nan] * 3
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


def _quantiles(values: np.ndarray, q: list[float], axis: int | None = None) -> Any:
    return np.nanquantile(values.astype(float), q, axis=axis, method=QUANTILE_METHOD)


# -- plots ---------------------------------------------------------------------------------
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
            p10, p50, p90 = _quantiles(history, [0.1, 0.5, 0.9], axis=0)
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


# -- documents -----------------------------------------------------------------------------
def write_report(results_path: str | Path, out: str | Path, fmt: str = "html") -> Path:
    """Write the report of ``results_path`` to ``out``.

    Parameters
    ----------
    results_path : str or Path
        HDF5 file written by ``rerinv mc``.
    out : str or Path
        Report file.
    fmt : {"html", "md"}
        ``html``: one self-contained file, plots embedded as base64 PNG. ``md``: Markdown, the
        PNGs written next to it as ``<stem>-<plot>.png``.

    Returns
    -------
    Path
        ``out``.
    """
    if fmt not in ("html", "md"):
        raise InputError(f"report format must be html or md, got {fmt!r}")
    results = load_results(results_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(results, make_plots(results))
    if fmt == "html":
        out.write_text(_html(blocks))
    else:
        for block in blocks:
            if block[0] == "plot":
                (out.parent / f"{out.stem}-{block[1].name}.png").write_bytes(block[1].png)
        out.write_text(_markdown(blocks, out.stem))
    return out


def _blocks(results: Results, plots: list[Plot]) -> list[tuple]:
    d, a = results.description, results.attrs
    total, done, failed = results.done.size, int(results.done.sum()), int(results.failed.sum())
    swept = {name for name, _ in d.axes}
    base = results.config.simulation
    fixed = [k for k in ("scheme", "engine", "n") if f"simulation.{k}" not in swept]
    blocks: list[tuple] = [
        ("h1", "rerinv Monte Carlo report"),
        (
            "p",
            f"{results.path.name}: {done} of {total} trials stored ({failed} failed); "
            f"{len(d.points)} points x {d.trials} trials; target {d.target_bits:g} bits, at "
            f"most {d.max_passes} passes; master seed {d.master_seed}; "
            + ", ".join(f"{k} {getattr(base, k)}" for k in fixed)
            + f". Created {a.get('created', '?')} by: {a.get('command_line') or '?'}",
        ),
    ]
    if done < total:
        blocks.append(
            (
                "p",
                "Incomplete run: the statistics cover the stored trials only; "
                "complete it with the same command and --resume.",
            )
        )
    stats = point_statistics(results)
    rows = [[r["point"], *(format_statistic(c, r[c]) for c in STAT_COLUMNS)] for r in stats]
    blocks += [
        ("h2", "Statistics per point"),
        (
            "p",
            "Bits, passes and INV solves over completed trials that did not fail; 'reach "
            "target' is the share of completed trials with effective bits >= the target "
            "(failed trials count as not reaching it), with its 95 % Wilson interval.",
        ),
        ("table", ["point", *STAT_COLUMNS], rows, "statistics"),
        ("h2", "Plots"),
    ]
    for plot in plots:
        blocks += [("h3", plot.title), ("plot", plot), ("p", plot.caption)]
    errors = [
        [d.points[p].label, str(t), str(results.error[p, t])]
        for p, t in zip(*np.nonzero(results.failed), strict=True)
    ]
    if errors:
        blocks += [
            ("h2", f"Failed trials ({len(errors)})"),
            ("table", ["point", "trial", "error"], errors[:100], "failures"),
        ]
    blocks += [
        ("h2", "Configuration"),
        ("table", ["swept axis", "values"], [[n, ", ".join(v)] for n, v in d.axes], "sweep"),
        ("p", "Base configuration (each point applies its swept values on top of it):"),
        ("pre", d.base_config_toml),
        ("h2", "Versions and provenance"),
        ("table", ["attribute", "value"], [[k, str(v)] for k, v in sorted(a.items())], "versions"),
        ("h2", "Driver sessions"),
        (
            "table",
            ["started", "ended", "backend", "trials stored", "interrupted"],
            [
                [s["started"], s["ended"], s["backend"], str(s["stored"]), str(s["interrupted"])]
                for s in results.sessions
            ],
            "sessions",
        ),
    ]
    return blocks


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
    "th,td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "pre{background:#f6f6f6;padding:0.8em;font-size:0.85em}img{max-width:100%}"
)


def _html(blocks: list[tuple]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>rerinv Monte Carlo report</title><style>{_CSS}</style></head><body>",
    ]
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{e(content[0])}</{kind}>")
        elif kind == "pre":
            parts.append(f"<pre>{e(content[0])}</pre>")
        elif kind == "plot":
            data = base64.b64encode(content[0].png).decode()
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{e(content[0].title)}">')
        else:
            headers, rows, ident = content
            parts.append(f'<table id="{ident}"><thead><tr>')
            parts += [f"<th>{e(h)}</th>" for h in headers] + ["</tr></thead><tbody>"]
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
    return "\n".join([*parts, "</body></html>", ""])


def _markdown(blocks: list[tuple], stem: str) -> str:
    parts = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + content[0])
        elif kind == "p":
            parts.append(content[0])
        elif kind == "pre":
            parts.append(f"```toml\n{content[0].rstrip()}\n```")
        elif kind == "plot":
            parts.append(f"![{content[0].title}]({stem}-{content[0].name}.png)")
        else:
            headers, rows, _ = content
            cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
