"""One-at-a-time sensitivity of the headline ratios (a tornado) and what reaching a claim takes.

Every assumption is a number the model takes as given: each numeric architecture field
(:data:`~rerinv.system.arch.ARCH_FIELDS`), the card's per-solve costs, INV settling time and
INV power, and the training's steps ratio and refresh interval. Each is set to its low and its
high value, the others kept, and the four headline ratios of RePAST's claims (speed-up and
energy saving to train, against the GPU running K-FAC and against the first-order ReRAM
accelerator; means over the large networks) are recomputed. The range is the cited one when
the architecture module gives it (``rerinv.system.arch.RANGES``: ``{"section.key": (low,
high, source)}``), else x1/2 .. x2 of the value in use.

All points go through :func:`~rerinv.system.compare.evaluate` in one vectorised call per
network: every varied input is a ``(P, 1)`` array equal to its value except at its own points.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from rerinv.system import arch as arch_module
from rerinv.system.arch import ARCH_FIELDS, Architecture
from rerinv.system.calibration import inv_timing, solve_cost
from rerinv.system.compare import PAPER, evaluate
from rerinv.system.workloads import Workload, with_training

#: headline metric -> (result kind, baseline key, the paper's value, what the paper calls it)
CLAIMS = {
    "speedup_vs_gpu": ("speedup", "vs_gpu_kfac", PAPER["speedup_vs_gpu"], "speed-up vs GPU"),
    "speedup_vs_pipelayer": ("speedup", "vs_reram_sgd", PAPER["speedup_vs_pipelayer"],
                             "speed-up vs PipeLayer (first-order ReRAM)"),
    "energy_saving_vs_gpu": ("energy_saving", "vs_gpu_kfac", PAPER["energy_saving_vs_gpu"],
                             "energy saving vs GPU"),
    "energy_saving_vs_pipelayer": ("energy_saving", "vs_reram_sgd",
                                   PAPER["energy_saving_vs_pipelayer"],
                                   "energy saving vs PipeLayer (first-order ReRAM)"),
}  # fmt: skip

#: inputs that are not architecture fields: name -> meaning
EXTRA = {
    "scale.solve_costs": "per-solve costs: passes, INV solves, VMM ops and conversions together",
    "scale.inv_settle": "INV settling time per solve (energy follows)",
    "scale.inv_power": "INV op-amp and array power (energy per solve at the same settling time)",
    "training.steps_ratio": "second-order / first-order steps to the target",
    "training.t_inv": "steps between factor inversions",
    "training.t_cov": "steps between factor-statistics updates",
}
#: bit widths without a cited range move by this many bits (x2 of a width would square the
#: number of levels)
BITS_STEP = 2
#: largest bit width a requirement scan tries
MAX_BITS = 24
#: fields that are choices, not quantities, or cannot move a ratio
_SKIP = {"solve.percentile", "write.endurance_cycles"}


def assumptions(arch: Architecture, workloads: list[Workload]) -> list[dict]:
    """The assumptions and their ranges: ``name, meaning, base, low, high, range`` each."""
    ranges = getattr(arch_module, "RANGES", {}) or {}
    out = []
    inactive = _inactive(arch)
    for section, fields in ARCH_FIELDS.items():
        for key, kind, _, unit, meaning in fields:
            name = f"{section}.{key}"
            if kind not in ("int", "float") or name in _SKIP or name in inactive:
                continue
            base = float(np.mean(arch[name]))
            out.append(_item(name, meaning, unit, base, kind == "int", ranges.get(name)))
    for name, meaning in EXTRA.items():
        if name.startswith("scale.inv") and arch["inv.source"] != "card":
            continue  # the [inv] fields are the assumption then
        base = 1.0
        if name.startswith("training."):
            base = float(np.mean([getattr(w.training, name.split(".")[1]) for w in workloads]))
        item = _item(name, meaning, "x" if name.startswith("scale.") else "", base,
                     name in ("training.t_inv", "training.t_cov"), ranges.get(name))  # fmt: skip
        if name == "training.steps_ratio":
            item.update(_steps_ratio_ranges(workloads, item))
        out.append(item)
    return out


def _steps_ratio_ranges(workloads: list[Workload], item: dict) -> dict:
    """Each network's own cited steps-ratio range (``networks.STEPS_RATIOS``), where given:
    the item's low and high are then their means, and each network goes to its own ends."""
    try:
        from rerinv.system.networks import STEPS_RATIOS
    except ImportError:
        return {}
    own = {w.name: STEPS_RATIOS[w.name][4:6] for w in workloads if w.name in STEPS_RATIOS}
    if len(own) != len(workloads):
        return {}
    return {"per_network": own, "cited": True, "range": "each network's cited range "
            "(rerinv.system.networks.STEPS_RATIOS)",
            "low": float(np.mean([v[0] for v in own.values()])),
            "high": float(np.mean([v[1] for v in own.values()]))}  # fmt: skip


def _inactive(arch: Architecture) -> set[str]:
    """Fields the model does not read with this architecture's sources."""
    out = set()
    if arch["solve.source"] != "ideal":
        out |= {f"solve.{k}" for k in ("passes", "inv_solves", "vmm_ops", "conversions_per_row")}
    if arch["inv.source"] != "arch":
        out |= {"inv.settle_s", "inv.opamp_power_w", "inv.crossbar_power_w"}
    return out


def _item(name, meaning, unit, base, whole, cited) -> dict:
    if cited is not None:
        low, high, source = float(cited[0]), float(cited[1]), str(cited[2])
    elif unit == "bits":
        low, high = max(1.0, base - BITS_STEP), base + BITS_STEP
        source = f"+-{BITS_STEP} bits (no cited range)"
    else:
        low, high, source = base / 2, base * 2, "x1/2 .. x2 (no cited range)"
    if name.endswith("efficiency"):  # a fraction of peak
        high = min(high, 1.0)
    if unit == "count" and cited is None and base >= 1:  # at least one of a thing
        low = max(low, 1.0)
    if whole:
        low, high = max(1.0, round(low)), max(1.0, round(high))
    if base == 0:
        low, high, source = 0.0, 0.0, "zero in use: not varied"
    return {"name": name, "meaning": meaning, "unit": unit, "base": base, "low": low,
            "high": high, "range": source, "cited": cited is not None}  # fmt: skip


def _evaluate_points(arch, workloads, card, items, points) -> dict:
    """Evaluate points ``[{item index: value}]`` (items not named keep their value in use):
    per workload, every claim's metric."""
    size = len(points)
    cols = {it["name"]: np.full((size, 1), it["base"]) for it in items}
    for p, changes in enumerate(points):
        for index, value in changes.items():
            cols[items[index]["name"]][p, 0] = value
    changes = {k: v for k, v in cols.items() if "." in k and k.split(".")[0] in ARCH_FIELDS}
    a = arch.with_values(changes, where="tornado")
    cost, timing = solve_cost(a, card), inv_timing(a, card)
    if "scale.solve_costs" in cols:
        cost = cost.with_passes(cost.passes * cols["scale.solve_costs"])
    if "scale.inv_settle" in cols or "scale.inv_power" in cols:
        settle = cols.get("scale.inv_settle", 1.0)
        power = cols.get("scale.inv_power", 1.0)
        timing = replace(timing, settle_ref_s=timing.settle_ref_s * settle,
                         energy_ref_j=timing.energy_ref_j * settle * power)  # fmt: skip
    out = {}
    for w in workloads:
        changes = {}
        for key in ("steps_ratio", "t_inv", "t_cov"):
            name = f"training.{key}"
            if name not in cols:
                continue
            item = next(it for it in items if it["name"] == name)
            own = float(np.mean(getattr(w.training, key)))
            mine = np.array([[any(items[i]["name"] == name for i in pt)] for pt in points])
            col = cols[name]
            # a cited range is absolute, for every network; x1/2..x2 scales each one's own;
            # per-network ranges send each network to its own ends (other values: scaled)
            varied = col if item["cited"] else own * col / item["base"]
            if w.name in item.get("per_network", {}):
                low, high = item["per_network"][w.name]
                varied = np.where(col == item["low"], low, np.where(
                    col == item["high"], high, own * col / item["base"]))  # fmt: skip
            value = np.where(mine, varied, own)
            if key != "steps_ratio":  # intervals of at least one step
                value = np.maximum(value, 1.0)
            # steps_ratio multiplies the (P,) step results: a flat array, not a column
            changes[key] = value[:, 0] if key == "steps_ratio" else value
        r = evaluate(a, with_training(w, **changes) if changes else w, cost, timing)
        out[w.name] = {
            claim: np.broadcast_to(np.reshape(np.asarray(r[kind][key], float), -1), (size,))
            for claim, (kind, key, _, _) in CLAIMS.items()
        }
    return out


def _means(per_network: dict, names: list[str]) -> dict:
    return {c: np.mean([per_network[n][c] for n in names], axis=0) for c in CLAIMS}


def tornado(arch: Architecture, workloads: list[Workload], card: dict | None) -> dict:
    """Every assumption at its low and high value; the claims' means over the large networks
    (all given networks when none is large).

    Returns
    -------
    dict
        ``claims`` (base value and the paper's, per claim), ``assumptions`` (each with its
        range and ``low``/``high`` results per claim, sorted by the largest swing of any
        claim in log terms), ``averaged_over``, ``no_effect`` (assumptions that move no
        claim by 0.1 %), ``favourable_corner`` (per claim, every assumption at the end of
        its range that favours it, evaluated together) and ``seconds``.
    """
    start = time.perf_counter()
    names = [w.name for w in workloads if w.large] or [w.name for w in workloads]
    items = [it for it in assumptions(arch, workloads) if it["low"] != it["high"]]
    points = [{i: it[side]} for i, it in enumerate(items) for side in ("low", "high")]
    points.append({})  # the operating point itself
    means = _means(_evaluate_points(arch, workloads, card, items, points), names)
    base = {c: float(means[c][-1]) for c in CLAIMS}
    rows, flat = [], []
    for i, it in enumerate(items):
        res = {c: {"low": float(means[c][2 * i]), "high": float(means[c][2 * i + 1])}
               for c in CLAIMS}  # fmt: skip
        logs = [abs(np.log(res[c][s] / base[c])) for c in CLAIMS for s in ("low", "high")]
        swing = float(np.nanmax(logs)) if np.isfinite(logs).any() else float("nan")
        row = {**it, "results": res, "swing_log": swing}
        (rows if not swing <= 1e-3 else flat).append(row)
    rows.sort(key=lambda r: -np.nan_to_num(r["swing_log"], nan=np.inf))
    corner = _corner(arch, workloads, card, items, rows, names)
    return {
        "claims": {c: {"base": base[c], "paper": paper, "label": label, "kind": kind,
                       "baseline": key} for c, (kind, key, paper, label) in CLAIMS.items()},
        "averaged_over": names,
        "assumptions": rows,
        "no_effect": [r["name"] for r in flat],
        "favourable_corner": corner,
        "seconds": time.perf_counter() - start,
    }  # fmt: skip


def _corner(arch, workloads, card, items, rows, names) -> dict:
    """Per claim: every assumption at the end of its range that favours the claim, all at
    once (one point each), and the claim's mean there."""
    index = {it["name"]: i for i, it in enumerate(items)}
    points, settings = [], {}
    for claim in CLAIMS:
        ends = {r["name"]: max(("low", "high"), key=lambda s, r=r: np.nan_to_num(
            r["results"][claim][s], nan=-np.inf)) for r in rows}  # fmt: skip
        settings[claim] = {name: items[index[name]][end] for name, end in ends.items()}
        points.append({index[name]: value for name, value in settings[claim].items()})
    if not points[0]:
        return {}
    means = _means(_evaluate_points(arch, workloads, card, items, points), names)
    return {c: {"value": float(means[c][k]), "settings": settings[c]}
            for k, c in enumerate(CLAIMS)}  # fmt: skip


def requirements(
    arch: Architecture,
    workloads: list[Workload],
    card: dict | None,
    study: dict,
    *,
    top: int = 4,
    factors=None,
) -> dict:
    """For each claim, the value each of its ``top`` deciding assumptions would need, alone,
    for the model to reach the paper's number (scanned over ``factors`` x the value in use;
    ``None`` when no factor in the scan reaches it; default x1/256 .. x256)."""
    factors = np.geomspace(1 / 256, 256, 65) if factors is None else factors
    items = {it["name"]: it for it in assumptions(arch, workloads)}
    names = study["averaged_over"]
    chosen: dict[str, list[str]] = {}
    for claim in CLAIMS:
        ranked = sorted(study["assumptions"], key=lambda r: -max(
            abs(np.log(r["results"][claim][s] / study["claims"][claim]["base"]))
            for s in ("low", "high")))  # fmt: skip
        chosen[claim] = [r["name"] for r in ranked[:top]]
    needed = sorted({n for v in chosen.values() for n in v})
    scan = [items[n] for n in needed]
    points = []
    for i, it in enumerate(scan):
        values = it["base"] * np.asarray(factors, float)
        if it["name"] in ("training.t_inv", "training.t_cov") or _is_int(it["name"]):
            values = np.maximum(1.0, np.round(values))
        if it["unit"] == "bits":
            values = np.clip(values, 1.0, MAX_BITS)
        if it["name"].endswith("efficiency"):
            values = np.minimum(values, 1.0)
        points += [{i: float(v)} for v in values]
    means = _means(_evaluate_points(arch, workloads, card, scan, points), names)
    k = len(factors)
    out: dict = {}
    for claim, (_, _, paper, _) in CLAIMS.items():
        out[claim] = []
        for name in chosen[claim]:
            i = needed.index(name)
            values = np.array([pt[i] for pt in points[i * k : (i + 1) * k]])
            metric = means[claim][i * k : (i + 1) * k]
            ok = np.flatnonzero(np.nan_to_num(metric, nan=-np.inf) >= paper)
            best = None
            if ok.size:
                j = ok[np.argmin(np.abs(np.log(values[ok] / scan[i]["base"])))]
                best = {"value": float(values[j]), "factor": float(values[j] / scan[i]["base"]),
                        "metric": float(metric[j])}  # fmt: skip
            out[claim].append({"name": name, "base": scan[i]["base"], "unit": scan[i]["unit"],
                               "reaches": best,
                               "best_in_scan": float(np.nanmax(metric))})  # fmt: skip
    return out


def _is_int(name: str) -> bool:
    section, _, key = name.partition(".")
    return any(f[0] == key and f[1] == "int" for f in ARCH_FIELDS.get(section, []))
