"""The figures of ``rerinv timing`` (matplotlib, Agg backend), as PNG bytes.

Every figure is at most :data:`WIDTH_IN` inches wide (the HTML page scales it to its column),
uses the four machines' own breakdowns, normalises so that small networks stay visible, and
writes the absolute numbers beside the bars.

- ``phases``: per network, each machine's time per step by phase as shares of 100 %, with the
  time to train above the bar;
- ``energy``: the same for energy per step by category, with the energy to train;
- ``speedup``: speed-up and energy saving to train against the three baselines, per network
  and for the mean of the large networks, with RePAST's published values on the matching bars;
- ``sweep_<axis>``: both ratios against one axis, the operating point marked, units on the axis;
- ``first_order``: the first-order ReRAM baseline against GPU SGD, with PipeLayer's published
  means;
- ``tornado``: the four headline ratios against every assumption (:mod:`rerinv.system.tornado`).
"""

from __future__ import annotations

import io
import math

import numpy as np

from rerinv.system.compare import BASELINES, MACHINES

WIDTH_IN, DPI = 10.0, 96

SHORT = {"reram_kfac": "ReRAM\nK-FAC", "gpu_kfac": "GPU\nK-FAC", "gpu_sgd": "GPU\nSGD",
         "reram_sgd": "ReRAM\nSGD"}  # fmt: skip
BASELINE_LABELS = {"vs_gpu_kfac": "vs GPU K-FAC", "vs_gpu_sgd": "vs GPU SGD",
                   "vs_reram_sgd": "vs first-order ReRAM"}  # fmt: skip
#: the paper's value for a (kind, baseline) pair: which bar it belongs on
PAPER_BARS = {("speedup", "vs_gpu_kfac"): ("speedup_vs_gpu", "115.8x vs GPU"),
              ("speedup", "vs_reram_sgd"): ("speedup_vs_pipelayer", "11.4x vs PipeLayer"),
              ("energy_saving", "vs_gpu_kfac"): ("energy_saving_vs_gpu", "41.9x vs GPU"),
              ("energy_saving", "vs_reram_sgd"): ("energy_saving_vs_pipelayer",
                                                  "12.8x vs PipeLayer")}  # fmt: skip


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    _plt().close(fig)
    return buffer.getvalue()


def duration(seconds: float) -> str:
    """``3.2 h``, ``41 d``: the unit that keeps the number readable."""
    for unit, size in (("y", 3.156e7), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def energy_text(joules: float) -> str:
    """``4.1 MWh``, ``12 kWh``, ``3.5 kJ``, ``3 J``."""
    for unit, size in (("GWh", 3.6e12), ("MWh", 3.6e9), ("kWh", 3.6e6), ("Wh", 3600.0),
                       ("kJ", 1e3)):  # fmt: skip
        if joules >= size:
            return f"{joules / size:.3g} {unit}"
    return f"{joules:.3g} J"


def _breakdown(machine: dict, kind: str) -> dict[str, float]:
    """One machine's time (``kind = "time"``) or energy per step, by phase or category."""
    keys = (
        ("time_by_phase_s", "time_by_category_s")
        if kind == "time"
        else ("energy_by_category_j", "energy_by_phase_j")
    )
    for key in keys:
        if machine.get(key):
            return {k: float(v) for k, v in machine[key].items()}
    return {"board power x time" if kind == "energy" else "total": float(machine[f"{kind}_s"
            if kind == "time" else "energy_j"])}  # fmt: skip


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, n)
    return math.ceil(n / cols), cols


def share_figure(study: dict, kind: str) -> bytes:
    """``phases`` (kind ``time``) or ``energy`` (kind ``energy``): normalised stacked bars."""
    plt = _plt()
    names = list(study["networks"])
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, 2.35 * rows + 0.9), squeeze=False)
    keys = list(
        dict.fromkeys(
            k
            for n in names
            for m in MACHINES
            for k in _breakdown(study["networks"][n]["machines"][m], kind)
        )
    )
    palette = plt.cm.tab10 if len(keys) <= 10 else plt.cm.tab20
    colours = {k: palette(i % palette.N) for i, k in enumerate(keys)}
    for ax, name in zip(axes.flat, names, strict=False):
        r = study["networks"][name]
        parts = [_breakdown(r["machines"][m], kind) for m in MACHINES]
        totals = np.array([sum(p.values()) or 1.0 for p in parts])
        bottom = np.zeros(len(MACHINES))
        for key in keys:  # one bar call per key: the same stacking order on every machine
            share = np.array([max(p.get(key, 0.0), 0.0) for p in parts]) / totals
            if share.any():
                ax.bar(np.arange(len(MACHINES)), share, bottom=bottom, color=colours[key],
                       width=0.7)  # fmt: skip
                bottom += share
        for i, machine in enumerate(MACHINES):
            to_train = r["to_train"][machine]
            text = (duration(to_train["time_s"]) if kind == "time"
                    else energy_text(to_train["energy_j"]))  # fmt: skip
            ax.text(i, 1.02, text.replace(" ", "\n"), ha="center", va="bottom", fontsize=6.5)
        ax.set_xticks(range(len(MACHINES)), [SHORT[m] for m in MACHINES], fontsize=6.5)
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.5, 1], ["0", "50 %", "100 %"], fontsize=7)
        ax.set_title(name, fontsize=8.5)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    what = "time per step by phase" if kind == "time" else "energy per step by category"
    total = "time to train" if kind == "time" else "energy to train"
    fig.suptitle(f"Share of {what} (100 % = the machine's own step); above each bar: {total}",
                 fontsize=9)  # fmt: skip
    fig.legend(handles, list(colours), loc="lower center", ncol=min(8, len(colours)),
               fontsize=7, frameon=False)  # fmt: skip
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.99, top=1 - 0.55 / height,
                        bottom=(0.75 + 0.15 * (len(colours) > 8)) / height, wspace=0.3,
                        hspace=0.7)  # fmt: skip
    return _png(fig)


def ratios_figure(study: dict) -> bytes:
    """Speed-up and energy saving to train, per network and the mean of the large networks,
    with the paper's values on the bars of the baseline they compare with."""
    plt = _plt()
    names = list(study["networks"])
    groups = names + (["mean (large)"] if study.get("averages") else [])
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 4.3))
    width = 0.27
    x = np.arange(len(groups))
    for ax, kind, title in ((axes[0], "speedup", "speed-up to train (x)"),
                            (axes[1], "energy_saving", "energy saving to train (x)")):  # fmt: skip
        for i, key in enumerate(BASELINES):
            values = [study["networks"][n][kind][key] for n in names]
            if study.get("averages"):
                values.append(study["averages"][f"{kind}_{key}"]["mean"])
            ax.bar(x + (i - 1) * width, values, width, label=BASELINE_LABELS[key], color=f"C{i}")
            if (kind, key) in PAPER_BARS and study.get("averages"):
                claim, text = PAPER_BARS[(kind, key)]
                xp = x[-1] + (i - 1) * width
                ax.plot([xp - width / 2, xp + width / 2], [study["paper"][claim]] * 2, c="k",
                        lw=2)  # fmt: skip
                ax.annotate(f"paper {text}", (xp, study["paper"][claim]), fontsize=6.5,
                            xytext=(-4, 4), textcoords="offset points", ha="right",
                            bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})  # fmt: skip
        ax.axhline(1.0, c="grey", lw=0.6)
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 3)
        _log_ticks(ax.yaxis)
        ax.set_xticks(x, groups, rotation=35, ha="right", fontsize=7.5)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("ReRAM K-FAC against each baseline (>1: ReRAM K-FAC is better); black bars: "
                 "RePAST's published means", fontsize=8.5)  # fmt: skip
    fig.subplots_adjust(left=0.06, right=0.99, top=0.88, bottom=0.24, wspace=0.16)
    return _png(fig)


def first_order_figure(study: dict) -> bytes | None:
    """The first-order ReRAM baseline against GPU SGD (speed-up and energy saving to train),
    per network, with PipeLayer's published means as dashed lines where the study has them."""
    names = [n for n, r in study["networks"].items() if "first_order" in r]
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.6))
    x = np.arange(len(names))
    for i, (key, label) in enumerate((("speedup_vs_gpu_sgd", "speed-up"),
                                      ("energy_saving_vs_gpu_sgd", "energy saving"))):  # fmt: skip
        values = [study["networks"][n]["first_order"][key] for n in names]
        ax.bar(x + (i - 0.5) * 0.38, values, 0.38, color=f"C{i + 4}", label=label)
    for claim, colour, text in (("pipelayer_speedup_vs_gpu", "C4", "PipeLayer: speed-up"),
                                ("pipelayer_energy_saving_vs_gpu", "C5",
                                 "PipeLayer: energy saving")):  # fmt: skip
        if claim in study["paper"]:
            value = study["paper"][claim]
            ax.axhline(value, c=colour, ls="--", lw=1)
            ax.annotate(f"{text} {value:g}x (published)", (0.995, value), xytext=(0, 3),
                        xycoords=("axes fraction", "data"), textcoords="offset points",
                        fontsize=7, c=colour, ha="right",
                        bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1})  # fmt: skip
    ax.axhline(1.0, c="grey", lw=0.5)
    ax.set_yscale("log")
    _log_ticks(ax.yaxis)
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=7.5)
    ax.set_title("first-order ReRAM (SGD) against GPU SGD, to train (x)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(left=0.07, right=0.99, top=0.9, bottom=0.25)
    return _png(fig)


def sweep_figure(study: dict, axis: str, per_network: dict, info: dict) -> bytes:
    """Speed-up (left) and energy saving (right) against one axis; the operating point is a
    dotted vertical line and a dot on each curve."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 4.0))
    point = info.get("operating_point")
    unit = info.get("unit") or ""
    for ax, kind, title in ((axes[0], "speedup", "speed-up to train (x)"),
                            (axes[1], "energy_saving", "energy saving to train (x)")):  # fmt: skip
        for i, (name, s) in enumerate(per_network.items()):
            v = np.asarray(s["values"], float)
            for key, style in (("vs_gpu_kfac", "-"), ("vs_reram_sgd", "--")):
                y = np.asarray(s[kind][key], float)
                ax.plot(v, y, c=f"C{i}", ls=style, lw=1.1, label=name if style == "-" else None)
                if point is not None and v.min() <= point <= v.max() and v.size > 1:
                    order = np.argsort(v)
                    ax.plot(point, np.interp(point, v[order], y[order]), "o", c=f"C{i}", ms=3.5)
        if point is not None:
            ax.axvline(point, c="k", ls=":", lw=0.9)
            ax.annotate("operating point", (point, 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -10), textcoords="offset points", fontsize=6.5)  # fmt: skip
        ax.axhline(1.0, c="grey", lw=0.5)
        positive = all(min(s["values"]) > 0 for s in per_network.values())
        ax.set_xscale("log" if info.get("scale", "log") == "log" and positive else "linear")
        _value_ticks(ax, per_network)
        ax.set_yscale("log")
        _log_ticks(ax.yaxis)
        ax.set_xlabel(f"{info.get('meaning', axis)}" + (f" ({unit})" if unit else ""), fontsize=8)
        ax.set_title(title, fontsize=8.5)
        ax.tick_params(labelsize=7)
    axes[1].legend(fontsize=6.5, loc="best")
    fig.suptitle("solid: against GPU K-FAC; dashed: against first-order ReRAM; dots: the "
                 "operating point", fontsize=8.5)  # fmt: skip
    fig.subplots_adjust(left=0.07, right=0.99, top=0.87, bottom=0.13, wspace=0.18)
    return _png(fig)


def tornado_figure(tornado: dict, *, top: int = 12) -> bytes:
    """One panel per claim: the ``top`` assumptions that move it most, low (blue) and high
    (orange) ends of their range, the value in use (black) and the paper's (red)."""
    plt = _plt()
    claims = tornado["claims"]
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH_IN, 9.2))
    for ax, (claim, info) in zip(axes.flat, claims.items(), strict=True):
        base = info["base"]
        rows = sorted(tornado["assumptions"], key=lambda r: -_swing(r, claim, base))[:top][::-1]
        for side, colour in (("low", "C0"), ("high", "C1")):
            values = np.array([row["results"][claim][side] for row in rows])
            ax.barh(np.arange(len(rows)), values - base, left=base, color=colour, height=0.7)
        ax.set_yticks(range(len(rows)), [f"{r['name']} [{_num(r['low'])}, {_num(r['high'])}]"
                                         for r in rows], fontsize=6.5)  # fmt: skip
        ax.axvline(base, c="k", lw=1)
        ax.axvline(info["paper"], c="C3", ls="--", lw=1)
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, info["paper"] / 1.5), max(high, info["paper"] * 1.5))
        ax.set_title(f"{info['label']}\n{base:.3g}x in use (black), paper {info['paper']}x "
                     "(red)", fontsize=7.5)  # fmt: skip
        _log_ticks(ax.xaxis)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("C0", "C1")]
    fig.legend(handles, ["assumption at its low end", "at its high end"], loc="lower center",
               ncol=2, fontsize=7.5, frameon=False)  # fmt: skip
    over = ", ".join(tornado["averaged_over"])
    fig.suptitle(f"One assumption at a time (mean of {over}); range in brackets", fontsize=8.5)
    fig.subplots_adjust(left=0.25, right=0.985, top=0.92, bottom=0.07, wspace=1.08,
                        hspace=0.25)  # fmt: skip
    return _png(fig)


def _value_ticks(ax, per_network: dict) -> None:
    """A few swept values are the ticks themselves; on a log axis, plain numbers."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    values = sorted({float(v) for s in per_network.values() for v in s["values"]})
    if len(values) <= 12:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif ax.get_xscale() == "log":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="x", labelsize=7)


def _log_ticks(axis) -> None:
    """Plain ``20x`` labels on a log axis, no minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    axis.set_minor_formatter(NullFormatter())
    axis.set_tick_params(labelsize=7)


def _swing(row: dict, claim: str, base: float) -> float:
    return max(abs(math.log(row["results"][claim][s] / base)) for s in ("low", "high"))


def _num(value: float) -> str:
    return f"{value:.3g}"


def all_figures(study: dict) -> dict[str, bytes]:
    """Every figure the study has data for: name -> PNG bytes."""
    out = {"speedup": ratios_figure(study), "phases": share_figure(study, "time"),
           "energy": share_figure(study, "energy")}  # fmt: skip
    if (image := first_order_figure(study)) is not None:
        out["first_order"] = image
    if study.get("tornado"):
        out["tornado"] = tornado_figure(study["tornado"])
    for axis, per_network in study.get("sweeps", {}).items():
        info = study.get("sweep_axes", {}).get(axis, {})
        out[f"sweep_{axis}"] = sweep_figure(study, axis, per_network, info)
    return out
