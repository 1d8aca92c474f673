"""``rerinv timing`` results as data, a JSON file and an HTML page with embedded plots.

:func:`timing_study` evaluates workloads (and optional sweeps) into one JSON-able dict;
:func:`write_report` writes ``timing.json``, the PNG plots (matplotlib, Agg backend) and
``timing.html`` (the PNGs embedded as base64) into a folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from rerinv.outputs import atomic_write, check_output_folder
from rerinv.system.arch import Architecture
from rerinv.system.calibration import inv_timing, settle_exponent_note, solve_cost
from rerinv.system.compare import BASELINES, MACHINES, PAPER, averages, evaluate, sweep
from rerinv.system.model import CATEGORIES, KFAC_PHASES
from rerinv.system.workloads import Workload

LABELS = {
    "reram_kfac": "ReRAM K-FAC (this model)",
    "gpu_kfac": "GPU K-FAC",
    "gpu_sgd": "GPU SGD",
    "reram_sgd": "ReRAM SGD (first-order pipeline)",
    "vs_gpu_kfac": "vs GPU K-FAC",
    "vs_gpu_sgd": "vs GPU SGD",
    "vs_reram_sgd": "vs first-order ReRAM",
}


def plain(tree):
    """numpy scalars and arrays to floats and lists, recursively."""
    if isinstance(tree, dict):
        return {k: plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [plain(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return float(tree) if tree.ndim == 0 else tree.tolist()
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def timing_study(
    arch: Architecture,
    workloads: list[Workload],
    card: dict | None,
    *,
    card_source: str | None = None,
    sweeps: dict | None = None,
    progress=None,
) -> dict:
    """Evaluate ``workloads`` on ``arch`` (and ``sweeps``: ``{axis: values}``).

    Returns
    -------
    dict
        JSON-able: settings, per-network results, averages over the large networks next to
        the paper's, notes, and sweeps (when asked).
    """
    cost, timing = solve_cost(arch, card), inv_timing(arch, card)
    networks = {w.name: evaluate(arch, w, cost, timing) for w in workloads}
    large = [networks[w.name] for w in workloads if w.large]
    notes = [note] if (note := settle_exponent_note(timing, arch["crossbar.size"])) else []
    if cost.success_rate < 1:
        notes.append(f"only {cost.success_rate:.0%} of the card's {cost.scheme} trials reached 16"
                     " bits; the costs are those of the successful solves")  # fmt: skip
    for w in workloads:
        cap = networks[w.name]["machines"]["reram_kfac"]["capacity"]
        for kind in ("vmm", "inv"):
            need, have = cap[f"{kind}_crossbars_needed"], cap[f"{kind}_crossbars"]
            if need > have:
                notes.append(f"{w.name}: weights and factors need {need:.0f} {kind.upper()} "
                             f"crossbars, the chip has {have:.0f}; the rest are rewritten "
                             "every step")  # fmt: skip
    study = {
        "format": "rerinv-timing",
        "version": 1,
        "architecture": {"name": arch.name, "values": arch.to_dict()},
        "card": card_source,
        "decomposition": arch["solve.decomposition"],
        "overlap": arch["model.overlap"],
        "solve_cost": cost.to_dict(),
        "inv_timing": {**timing.to_dict(), "settle_at_crossbar_s": timing.settle(
            arch["crossbar.size"]), "energy_at_crossbar_j": timing.energy(arch["crossbar.size"])},
        "networks": {},
        "averages": averages(large) if large else None,
        "averaged_over": [w.name for w in workloads if w.large],
        "paper": PAPER,
        "notes": notes,
    }  # fmt: skip
    endurance = arch["write.endurance_cycles"]
    for w in workloads:
        r = networks[w.name]
        wear = {}
        for machine, steps in (("reram_kfac", "second_order"), ("reram_sgd", "sgd")):
            per_step = r["machines"][machine]["writes_per_cell_per_step"]
            wear[machine] = endurance / (per_step * r["steps"][steps])
        if wear["reram_kfac"] < 1:
            study["notes"].append(
                f"{w.name}: the most-written cells take {1 / wear['reram_kfac']:.3g}x their "
                f"endurance ({endurance:.3g} writes) in one K-FAC training"
            )
        study["networks"][w.name] = {
            "source": w.source,
            "layers": len(w.layers.names),
            "weights": w.layers.weights(),
            "macs_per_sample": w.layers.macs_per_sample(),
            "training": {k: v for k, v in w.training.__dict__.items()},
            **{k: r[k] for k in ("steps", "machines", "to_train", "speedup", "energy_saving")},
            "speedup_per_step": r["speedup_per_step"],
            "trainings_before_wear_out": wear,
        }
    if sweeps:
        study["sweeps"] = {}
        for axis, values in sweeps.items():
            study["sweeps"][axis] = {
                w.name: sweep(arch, w, card, axis, values, progress=progress) for w in workloads
            }
    return plain(study)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def plots(study: dict) -> dict[str, bytes]:
    """PNG images: ``breakdown`` (stacked time and energy per step), ``speedup`` (bars) and
    ``sweep_<axis>`` (speed-up versus the axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(study["networks"])
    out = {}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    x = np.arange(len(names))
    for ax, key, title, keys in (
        (axes[0], "time_by_phase_s", "time per step by phase (s)", KFAC_PHASES),
        (axes[1], "time_by_category_s", "time per step by limiting resource (s)", CATEGORIES),
        (axes[2], "energy_by_category_j", "energy per step (J)", CATEGORIES),
    ):
        bottom = np.zeros(len(names))
        for k in keys:
            v = np.array([study["networks"][n]["machines"]["reram_kfac"][key].get(k, 0.0)
                          for n in names])  # fmt: skip
            ax.bar(x, v, bottom=bottom, label=k)
            bottom += v
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(f"ReRAM K-FAC: {title}", fontsize=9)
        ax.legend(fontsize=7)
    out["breakdown"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 4.6))
    width = 0.27
    for i, key in enumerate(BASELINES):
        v = [study["networks"][n]["speedup"][key] for n in names]
        ax.bar(x + (i - 1) * width, v, width, label=LABELS[key])
    ax.axhline(PAPER["speedup_vs_gpu"], ls="--", c="k", lw=0.8, label="paper: 115.8x vs GPU")
    ax.axhline(PAPER["speedup_vs_pipelayer"], ls=":", c="k", lw=0.8,
               label="paper: 11.4x vs PipeLayer")  # fmt: skip
    ax.axhline(1.0, c="grey", lw=0.5)
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("speed-up to train (x)")
    ax.legend(fontsize=7)
    out["speedup"] = _png(fig)
    plt.close(fig)
    for axis, per_network in study.get("sweeps", {}).items():
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for i, (name, s) in enumerate(per_network.items()):
            ax.plot(s["values"], s["speedup"]["vs_gpu_kfac"], c=f"C{i}", label=name)
            ax.plot(s["values"], s["speedup"]["vs_reram_sgd"], c=f"C{i}", ls="--")
        ax.set_title("solid: vs GPU K-FAC; dashed: vs first-order ReRAM", fontsize=9)
        ax.set_xscale("log" if axis != "passes" else "linear")
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("speed-up to train (x)")
        ax.legend(fontsize=6)
        out[f"sweep_{axis}"] = _png(fig)
        plt.close(fig)
    return out


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_rows(study: dict) -> list[list]:
    """One row per network: speed-ups and energy savings to train."""
    rows = []
    for name, r in study["networks"].items():
        rows.append(
            [
                name,
                *(r["speedup"][k] for k in BASELINES),
                *(r["energy_saving"][k] for k in BASELINES),
            ]
        )
    return rows


def render_html(study: dict, images: dict[str, bytes]) -> str:
    """The HTML page: settings, tables, plots (embedded), notes, architecture values."""
    cost, timing = study["solve_cost"], study["inv_timing"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>rerinv timing</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
        "collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#eee}</style>",
        "<h1>rerinv timing: second-order training on a ReRAM accelerator</h1>",
        f"<p>architecture <b>{html.escape(study['architecture']['name'])}</b>; card "
        f"<b>{html.escape(str(study['card']))}</b>; decomposition <b>{study['decomposition']}"
        f"</b>; overlap <b>{study['overlap']}</b>; scheme <b>{cost['scheme']}</b></p>",
        f"<p>16-bit solve ({html.escape(cost['source'])}): {cost['passes']:.3g} passes, "
        f"{cost['inv_solves']:.3g} INV solves, {cost['vmm_ops']:.3g} VMM ops, "
        f"{cost['conversions_per_row']:.3g} conversions per row. INV: "
        f"{timing['settle_at_crossbar_s']:.3g} s and {timing['energy_at_crossbar_j']:.3g} J per"
        f" solve ({html.escape(timing['source'])}).</p>",
        "<h2>Speed-up and energy saving to train</h2>",
        _table(
            ["network", *(f"speed-up {LABELS[k]}" for k in BASELINES),
             *(f"energy {LABELS[k]}" for k in BASELINES)],
            summary_rows(study),
        ),
    ]  # fmt: skip
    if study["averages"]:
        a = study["averages"]
        parts.append(
            f"<p>Mean over {', '.join(study['averaged_over'])}: speed-up "
            f"{a['speedup_vs_gpu_kfac']['mean']:.3g}x vs GPU K-FAC (paper 115.8x vs GPU), "
            f"{a['speedup_vs_reram_sgd']['mean']:.3g}x vs first-order ReRAM (paper 11.4x vs "
            f"PipeLayer); energy {a['energy_saving_vs_gpu_kfac']['mean']:.3g}x (paper 41.9x), "
            f"{a['energy_saving_vs_reram_sgd']['mean']:.3g}x (paper 12.8x).</p>"
        )
    rows = []
    for name, r in study["networks"].items():
        for machine in MACHINES:
            m, t = r["machines"][machine], r["to_train"][machine]
            rows.append([name, LABELS[machine], m["time_s"], m["energy_j"], t["time_s"] / 3600,
                         t["energy_j"] / 3.6e6])  # fmt: skip
    parts += [
        "<h2>Per step and to train</h2>",
        _table(["network", "machine", "s/step", "J/step", "h to train", "kWh to train"], rows),
        "<h2>ReRAM K-FAC breakdown per step</h2>",
        _table(
            ["network", *(f"{c} s" for c in CATEGORIES), *(f"{c} J" for c in CATEGORIES)],
            [[n, *(r["machines"]["reram_kfac"]["time_by_category_s"][c] for c in CATEGORIES),
              *(r["machines"]["reram_kfac"]["energy_by_category_j"][c] for c in CATEGORIES)]
             for n, r in study["networks"].items()],
        ),
    ]  # fmt: skip
    for key, image in images.items():
        data = base64.b64encode(image).decode()
        parts.append(f"<h3>{key}</h3><img alt='{key}' src='data:image/png;base64,{data}'>")
    if study["notes"]:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in study["notes"]]
        parts.append("</ul>")
    rows = [[f"{s}.{k}", v] for s, values in study["architecture"]["values"].items()
            for k, v in values.items()]  # fmt: skip
    parts += ["<h2>Architecture values</h2>", _table(["key", "value"], rows)]
    return "\n".join(parts) + "\n"


def write_report(
    study: dict, out: str | Path, *, with_plots: bool = True, force: bool = True
) -> dict[str, Path]:
    """Write ``timing.json``, ``*.png`` and ``timing.html`` into ``out``; returns the paths.
    Without ``force`` an existing file is refused before any is written; each file is written
    to a temporary file and renamed (:mod:`rerinv.outputs`)."""
    out = Path(out)
    images = plots(study) if with_plots else {}
    paths = {"json": out / "timing.json", "html": out / "timing.html"}
    paths.update({key: out / f"{key}.png" for key in images})
    check_output_folder(out, [p.name for p in paths.values()], force=force)
    atomic_write(paths["json"], json.dumps(study, indent=1) + "\n")
    for key, image in images.items():
        atomic_write(paths[key], image)
    atomic_write(paths["html"], render_html(study, images))
    return paths
