"""``rerinv timing`` results as data, a JSON file and an HTML page with embedded plots.

:func:`timing_study` evaluates workloads (and optional sweeps, and the tornado of
:mod:`rerinv.system.tornado`) into one JSON-able dict (its tables:
:mod:`rerinv.system.tables`); :func:`write_report` writes ``timing.json``, the PNG figures
(:mod:`rerinv.system.plots`) and ``timing.html`` (:mod:`rerinv.system.page`) into a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rerinv.outputs import atomic_write, check_output_folder
from rerinv.system import compare
from rerinv.system.arch import Architecture
from rerinv.system.calibration import inv_timing, settle_exponent_note, solve_cost
from rerinv.system.compare import PAPER, SWEEP_AXES, averages, evaluate, sweep
from rerinv.system.tornado import requirements, tornado
from rerinv.system.workloads import Workload


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
    with_tornado: bool = True,
) -> dict:
    """Evaluate ``workloads`` on ``arch`` (and ``sweeps``: ``{axis: values}``).

    Returns
    -------
    dict
        JSON-able: settings, per-network results, averages over the large networks next to
        the paper's, notes, sweeps (when asked, with each axis's operating point and unit),
        and the tornado with what each claim would need (``with_tornado``).
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
            **{
                k: r[k]
                for k in (
                    "steps",
                    "machines",
                    "to_train",
                    "speedup",
                    "energy_saving",
                    "first_order",
                    "steps_ratio",
                )
                if k in r
            },
            "speedup_per_step": r["speedup_per_step"],
            "trainings_before_wear_out": wear,
        }
    if ranking := getattr(compare, "first_order_ranking", None):
        study["first_order_ranking"] = ranking(networks)
    if sweeps:
        study["sweeps"], study["sweep_axes"] = {}, {}
        for axis, values in sweeps.items():
            study["sweeps"][axis] = {
                w.name: sweep(arch, w, card, axis, values, progress=progress) for w in workloads
            }
            study["sweep_axes"][axis] = axis_info(axis, arch, workloads, cost, timing)
    if with_tornado:
        study["tornado"] = tornado(arch, workloads, card)
        study["requirements"] = requirements(arch, workloads, card, study["tornado"])
    return plain(study)


def axis_info(axis: str, arch: Architecture, workloads, cost, timing) -> dict:
    """What a sweep axis changes, its unit, scale and the value in use (operating point)."""
    meaning, spec, unit = SWEEP_AXES[axis][:3]
    point = {
        "passes": lambda: cost.passes,
        "inv_settle": lambda: timing.settle(arch["crossbar.size"]),
        "crossbar_size": lambda: arch["crossbar.size"],
        "t_inv": lambda: np.mean([w.training.t_inv for w in workloads]),
        "adc_energy": lambda: arch["converters.adc_energy_j"],
    }.get(axis)
    if point is None and axis in getattr(arch, "values", {}):
        point = lambda: arch[axis]  # noqa: E731 (an architecture field swept by name)
    value = None if point is None else float(np.mean(point()))
    scale = "linear" if spec.startswith("lin") else "log"
    return {"meaning": meaning, "unit": unit, "scale": scale, "operating_point": value}


def write_report(
    study: dict, out: str | Path, *, with_plots: bool = True, force: bool = True
) -> dict[str, Path]:
    """Write ``timing.json``, ``*.png`` and ``timing.html`` into ``out``; returns the paths.
    Without ``force`` an existing file is refused before any is written; each file is written
    to a temporary file and renamed (:mod:`rerinv.outputs`)."""
    from rerinv.system.page import render_html
    from rerinv.system.plots import all_figures

    out = Path(out)
    images = all_figures(study) if with_plots else {}
    paths = {"json": out / "timing.json", "html": out / "timing.html"}
    paths.update({key: out / f"{key}.png" for key in images})
    check_output_folder(out, [p.name for p in paths.values()], force=force)
    atomic_write(paths["json"], json.dumps(study, indent=1) + "\n")
    for key, image in images.items():
        atomic_write(paths[key], image)
    atomic_write(paths["html"], render_html(study, images))
    return paths
