"""Four machines on one workload, to the target accuracy: the accelerator running K-FAC with
circuit-level solve costs, the GPU running the same K-FAC, the GPU running SGD, and the
first-order ReRAM pipeline (SGD on the same crossbars); and one-at-a-time sensitivity sweeps.

Time (energy) to train = time (energy) per step x steps, with ``steps = epochs x
ceil(dataset / batch)`` for first-order training and ``steps x training.steps_ratio`` for
second-order training. Speed-ups and energy savings are ratios of these totals.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rerinv.system import published
from rerinv.system.arch import Architecture
from rerinv.system.baselines import gpu_step
from rerinv.system.calibration import InvTiming, SolveCost, inv_timing, solve_cost
from rerinv.system.model import reram_step
from rerinv.system.workloads import Workload, with_training

MACHINES = ("reram_kfac", "gpu_kfac", "gpu_sgd", "reram_sgd")
BASELINES = {"vs_gpu_kfac": "gpu_kfac", "vs_gpu_sgd": "gpu_sgd", "vs_reram_sgd": "reram_sgd"}

#: RePAST's reported averages over its large DNNs (arXiv 2210.15255, abstract)
PAPER = {
    "speedup_vs_gpu": 115.8,
    "speedup_vs_pipelayer": 11.4,
    "energy_saving_vs_gpu": 41.9,
    "energy_saving_vs_pipelayer": 12.8,
    # PipeLayer (Song et al., HPCA 2017, abstract): first-order ReRAM training vs a GPU
    "pipelayer_speedup_vs_gpu": 42.45,
    "pipelayer_energy_saving_vs_gpu": 7.17,
}


def evaluate(
    arch: Architecture,
    workload: Workload,
    cost: SolveCost,
    timing: InvTiming,
) -> dict:
    """Per-step and to-train time and energy of the four machines, and their ratios.

    Every number may be an array when an input is (a sweep).
    """
    steps_sgd = workload.training.sgd_steps
    steps = {"sgd": steps_sgd, "second_order": steps_sgd * workload.training.steps_ratio}
    machines = {
        "reram_kfac": reram_step(arch, workload, cost, timing),
        "gpu_kfac": gpu_step(arch, workload, kfac=True),
        "gpu_sgd": gpu_step(arch, workload, kfac=False),
        "reram_sgd": reram_step(arch, workload, None, None),
    }
    to_train = {}
    for name, result in machines.items():
        n = steps["second_order"] if name.endswith("kfac") else steps["sgd"]
        to_train[name] = {"time_s": result["time_s"] * n, "energy_j": result["energy_j"] * n}
    mine = to_train["reram_kfac"]
    t = {name: r["time_s"] for name, r in machines.items()}
    endurance = arch["write.endurance_cycles"]
    return {
        "workload": workload.name,
        "steps": steps,
        "machines": machines,
        "to_train": to_train,
        "speedup": {k: to_train[b]["time_s"] / mine["time_s"] for k, b in BASELINES.items()},
        "energy_saving": {
            k: to_train[b]["energy_j"] / mine["energy_j"] for k, b in BASELINES.items()
        },
        "speedup_per_step": {
            k: machines[b]["time_s"] / machines["reram_kfac"]["time_s"]
            for k, b in BASELINES.items()
        },
        # the first-order ReRAM baseline against the GPU (PipeLayer reports 42.45x on average)
        "first_order": {
            "speedup_vs_gpu_sgd": to_train["gpu_sgd"]["time_s"] / to_train["reram_sgd"]["time_s"],
            "energy_saving_vs_gpu_sgd": to_train["gpu_sgd"]["energy_j"]
            / to_train["reram_sgd"]["energy_j"],
        },
        "steps_ratio": {
            "value": workload.training.steps_ratio,
            "source": workload.training.steps_ratio_source,
            # the ratio at which K-FAC on the accelerator would reach the paper's claims
            "needed_for_paper": {
                "vs_reram_sgd": t["reram_sgd"] / (t["reram_kfac"] * PAPER["speedup_vs_pipelayer"]),
                "vs_gpu_sgd": t["gpu_sgd"] / (t["reram_kfac"] * PAPER["speedup_vs_gpu"]),
            },
        },
        "trainings_before_wear_out": {
            m: endurance / (machines[m]["writes_per_cell_per_step"] * steps[k])
            for m, k in (("reram_kfac", "second_order"), ("reram_sgd", "sgd"))
        },
    }


def first_order_ranking(results: dict[str, dict]) -> list[tuple[str, float]]:
    """Networks ordered by the first-order ReRAM baseline's speed-up to train over GPU SGD
    (largest first): ``[(network, speed-up), ...]``."""
    pairs = [(n, float(r["first_order"]["speedup_vs_gpu_sgd"])) for n, r in results.items()]
    return sorted(pairs, key=lambda pair: -pair[1])


def averages(results: list[dict]) -> dict:
    """Arithmetic and geometric means of the speed-ups and energy savings over ``results``,
    and ``published_check``: the per-network ratios against STAMP's published bars
    (:func:`rerinv.system.published.check`: rank correlation and model / published)."""
    out: dict = {"published_check": published.check(results)}
    for kind in ("speedup", "energy_saving", "speedup_per_step"):
        for key in BASELINES:
            values = np.array([float(r[kind][key]) for r in results])
            out[f"{kind}_{key}"] = {
                "mean": float(values.mean()),
                "geomean": float(np.exp(np.mean(np.log(values)))),
            }
    return out


#: sweep axis -> (what it changes, default values, unit)
SWEEP_AXES = {
    "passes": ("passes per 16-bit solve (every per-solve count scaled with it)", "lin:1:24", ""),
    "inv_settle": ("INV settling time per solve", "log:1e-8:1e-5", "s"),
    "crossbar_size": ("crossbar size S", "log2:32:1024", ""),
    "t_inv": ("steps between factor refreshes", "log:1:1000", ""),
    "adc_energy": ("energy of one ADC conversion", "log:1e-13:1e-10", "J"),
}


def axis_values(spec: str, points: int) -> np.ndarray:
    """``lin:a:b``, ``log:a:b`` (``points`` values) or ``log2:a:b`` (powers of two), or a
    comma list."""
    kind, _, rest = spec.partition(":")
    if kind in ("lin", "log", "log2"):
        low, high = (float(v) for v in rest.split(":"))
        if kind == "lin":
            return np.linspace(low, high, points)
        if kind == "log2":
            return 2.0 ** np.arange(np.log2(low), np.log2(high) + 0.5)
        return np.geomspace(low, high, points)
    return np.array([float(v) for v in spec.split(",")])


def _points(value, n: int) -> np.ndarray:
    """One value per sweep point (a result that does not depend on the axis is repeated)."""
    return np.broadcast_to(np.reshape(np.asarray(value, dtype=float), -1), (n,))


def sweep(
    arch: Architecture,
    workload: Workload,
    card: dict | None,
    axis: str,
    values: np.ndarray,
    *,
    chunk: int = 250,
    progress=None,
) -> dict:
    """Speed-ups to train versus one axis, the others at their values (vectorised).

    Parameters
    ----------
    axis : str
        One of :data:`SWEEP_AXES`.
    values : numpy.ndarray
        The axis values (units of :data:`SWEEP_AXES`).
    chunk : int
        Points evaluated per numpy call; ``progress(points)`` is called after each chunk
        with the number of points it held.

    Returns
    -------
    dict
        ``values`` and, per point, ``speedup`` and ``energy_saving`` (keys of
        :data:`BASELINES`) and ``reram_kfac_step_s``.
    """
    values = np.asarray(values, dtype=float)
    cost, timing = solve_cost(arch, card), inv_timing(arch, card)
    out = {"axis": axis, "values": values.tolist(), "speedup": {}, "energy_saving": {}}
    parts: dict[str, list] = {k: [] for k in ("speedup", "energy_saving", "step")}
    for start in range(0, values.size, chunk):
        v = values[start : start + chunk, None]
        a, w, c, t = arch, workload, cost, timing
        if axis == "passes":
            c = cost.with_passes(v)
        elif axis == "inv_settle":
            t = replace(timing, settle_override_s=v)
        elif axis == "crossbar_size":
            a = arch.with_values({"crossbar.size": np.round(v)}, where="sweep")
            t = inv_timing(a, card)
        elif axis == "t_inv":
            w = with_training(workload, t_inv=v)
        elif axis == "adc_energy":
            a = arch.with_values({"converters.adc_energy_j": v}, where="sweep")
        else:
            raise ValueError(f"unknown sweep axis {axis!r}; choose {sorted(SWEEP_AXES)}")
        r = evaluate(a, w, c, t)
        n = v.shape[0]
        for kind in ("speedup", "energy_saving"):
            parts[kind].append({k: _points(x, n) for k, x in r[kind].items()})
        parts["step"].append(_points(r["machines"]["reram_kfac"]["time_s"], n))
        if progress is not None:
            progress(n)
    for kind in ("speedup", "energy_saving"):
        out[kind] = {
            k: np.concatenate([p[k] for p in parts[kind]]).tolist() for k in BASELINES
        }  # fmt: skip
    out["reram_kfac_step_s"] = np.concatenate(parts["step"]).tolist()
    return out
