"""The tables of a ``rerinv timing`` study: labels of the machines and baselines, RePAST's
claims beside the model's means (:func:`verdict_rows`), one row of ratios per network
(:func:`summary_rows`). Shared by the terminal, the HTML page and ``docs/timing.md``.
"""

from __future__ import annotations

import numpy as np

from rerinv.system.compare import BASELINES
from rerinv.system.tornado import CLAIMS

LABELS = {
    "reram_kfac": "ReRAM K-FAC (this model)",
    "gpu_kfac": "GPU K-FAC",
    "gpu_sgd": "GPU SGD",
    "reram_sgd": "ReRAM SGD (first-order pipeline)",
    "vs_gpu_kfac": "vs GPU K-FAC",
    "vs_gpu_sgd": "vs GPU SGD",
    "vs_reram_sgd": "vs first-order ReRAM",
}


def verdict_rows(study: dict) -> list[dict]:
    """RePAST's four claims beside the model's means over the large networks, the assumptions
    that decide each (largest swing in the tornado) and what reaching it would take."""
    rows = []
    a, t = study.get("averages"), study.get("tornado")
    for claim, (kind, key, paper, label) in CLAIMS.items():
        row = {
            "claim": claim,
            "label": label,
            "paper": paper,
            "model": a[f"{kind}_{key}"]["mean"] if a else None,
            "geomean": a[f"{kind}_{key}"]["geomean"] if a else None,
            "deciding": [],
            "needs": [],
            "corner": None,
            "steps_ratio_needed": None,
        }
        # fmt: skip
        if t and t.get("favourable_corner"):
            row["corner"] = t["favourable_corner"][claim]["value"]
        needed = [
            n["steps_ratio"]["needed_for_paper"]["vs_reram_sgd"]
            for name, n in study["networks"].items()
            if name in (study.get("averaged_over") or []) and "steps_ratio" in n
        ]
        if key == "vs_reram_sgd" and kind == "speedup" and needed:
            row["steps_ratio_needed"] = float(np.mean(needed))
        if t:
            base = t["claims"][claim]["base"]
            ranked = sorted(t["assumptions"], key=lambda r: -max(
                abs(np.log(r["results"][claim][s] / base)) for s in ("low", "high")))  # fmt: skip
            for r in ranked[:3]:
                lo, hi = r["results"][claim]["low"], r["results"][claim]["high"]
                row["deciding"].append(f"{r['name']} {r['low']:.3g}..{r['high']:.3g}: "
                                       f"{lo:.3g}x..{hi:.3g}x")  # fmt: skip
        for need in (study.get("requirements") or {}).get(claim, []):
            reach = need["reaches"]
            if reach is None:
                text = f"{need['name']} alone cannot (best {need['best_in_scan']:.3g}x)"
            elif abs(np.log(reach["factor"])) < 1e-9:
                text = f"{need['name']}: reached as is"
            else:
                text = (f"{need['name']} {need['base']:.3g} -> {reach['value']:.3g} "
                        f"(x{reach['factor']:.3g})")  # fmt: skip
            row["needs"].append(text)
        rows.append(row)
    return rows


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
