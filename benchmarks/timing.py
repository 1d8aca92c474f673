"""Speed of the system timing model (rerinv.system): the ``rerinv timing`` command on every
built-in network (a fresh process, imports and plots included) and 1000-point sweeps.

    .venv/bin/python benchmarks/timing.py [--json FILE] [--repeat 3]
    .venv/bin/python benchmarks/timing.py --tables   # the tables of docs/timing.md

Prints a table; writes JSON (default results/bench_timing.json). Targets (issue): the command
for all built-in networks under 5 s, a 1000-point sweep under 30 s. ``--tables`` prints the
Markdown tables of docs/timing.md instead (speed-ups per network for both presets, and the
calibrated preset with one circuit-level input at a time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rerinv.system import (
    SWEEP_AXES,
    averages,
    evaluate,
    inv_timing,
    large_workloads,
    load_arch,
    load_workload,
    solve_cost,
    sweep,
    workload_names,
)
from rerinv.system.arch import preset_path
from rerinv.system.compare import axis_values

#: docs/timing.md's second table: the calibrated preset, one card input at a time
VARIANTS = {
    "repast preset (ideal)": ("repast", {}),
    "calibrated: card INV settling and energy only": ("calibrated", {"solve.source": "ideal"}),
    "calibrated: card solve costs only": ("calibrated", {"inv.source": "arch"}),
    "calibrated preset (repast scheme, median)": ("calibrated", {}),
    "calibrated, 90th percentile": ("calibrated", {"solve.percentile": 90.0}),
    "calibrated, refine scheme": ("calibrated", {"solve.scheme": "refine"}),
    "calibrated, krylov scheme": ("calibrated", {"solve.scheme": "krylov"}),
    "calibrated, block-diagonal factors": ("calibrated", {"solve.decomposition": "block_diagonal"}),
}


def tables() -> None:
    """Print the Markdown tables of docs/timing.md."""
    card = json.loads(preset_path("calibrated_card.json").read_text())
    workloads = [load_workload(name) for name in workload_names()]
    keys = ("vs_gpu_kfac", "vs_gpu_sgd", "vs_reram_sgd")
    for preset in ("repast", "calibrated"):
        arch = load_arch(preset)
        cost, timing = solve_cost(arch, card), inv_timing(arch, card)
        results = [evaluate(arch, w, cost, timing) for w in workloads]
        print(f"\n`{preset}` preset\n\n| network | s/step ReRAM K-FAC | s/step GPU K-FAC | "
              "speed-up vs GPU K-FAC | vs GPU SGD | vs first-order ReRAM | energy vs GPU K-FAC | "
              "energy vs first-order ReRAM |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
        for w, r in zip(workloads, results, strict=True):
            m = r["machines"]
            cells = [
                f"{float(m['reram_kfac']['time_s']):.3g}",
                f"{float(m['gpu_kfac']['time_s']):.3g}",
            ]
            cells += [f"{float(r['speedup'][k]):.3g}x" for k in keys]
            cells += [
                f"{float(r['energy_saving'][k]):.3g}x" for k in ("vs_gpu_kfac", "vs_reram_sgd")
            ]
            print(f"| {w.name} | " + " | ".join(cells) + " |")
        a = averages([r for w, r in zip(workloads, results, strict=True) if w.large])
        print("| **mean of the 6 large** | | | " + " | ".join(
            f"**{a[f'speedup_{k}']['mean']:.3g}x**" for k in keys) + " | " + " | ".join(
            f"**{a[f'energy_saving_{k}']['mean']:.3g}x**" for k in ("vs_gpu_kfac", "vs_reram_sgd")
        ) + " |")  # fmt: skip
    print("\n| variant | mean speed-up vs GPU K-FAC | vs first-order ReRAM | energy vs GPU K-FAC |"
          " energy vs first-order ReRAM |\n|---|---|---|---|---|")  # fmt: skip
    large = [w for w in workloads if w.name in large_workloads()]
    for label, (preset, changes) in VARIANTS.items():
        arch = load_arch(preset, changes)
        cost, timing = solve_cost(arch, card), inv_timing(arch, card)
        a = averages([evaluate(arch, w, cost, timing) for w in large])
        print(f"| {label} | {a['speedup_vs_gpu_kfac']['mean']:.3g}x | "
              f"{a['speedup_vs_reram_sgd']['mean']:.3g}x | "
              f"{a['energy_saving_vs_gpu_kfac']['mean']:.3g}x | "
              f"{a['energy_saving_vs_reram_sgd']['mean']:.3g}x |")  # fmt: skip


def _command(args: list[str], repeat: int) -> float:
    """Best wall time of ``python -m rerinv timing ...`` in a fresh process (s)."""
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "rerinv", "timing", *args, "--out", out],
                check=True,
                capture_output=True,
            )
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="results/bench_timing.json")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tables", action="store_true", help="print docs/timing.md's tables")
    args = parser.parse_args()
    if args.tables:
        tables()
        return
    rows = []
    for preset in ("repast", "calibrated"):
        for plots in (True, False):
            extra = [] if plots else ["--no-plots"]
            seconds = _command(["--arch", preset, *extra], args.repeat)
            label = f"rerinv timing --arch {preset} (all {len(workload_names())} networks"
            rows.append({"case": label + (", plots)" if plots else ", no plots)"), "s": seconds})
    card = json.loads(preset_path("calibrated_card.json").read_text())
    arch = load_arch("calibrated")
    workloads = [load_workload(name) for name in workload_names()]
    for name in ("resnet50", "vgg16"):
        w = next(x for x in workloads if x.name == name)
        values = axis_values(SWEEP_AXES["inv_settle"][1], 1000)
        start = time.perf_counter()
        sweep(arch, w, card, "inv_settle", values)
        rows.append({"case": f"1000-point sweep, inv_settle, {name}",
                     "s": time.perf_counter() - start})  # fmt: skip
    start = time.perf_counter()
    points = 0
    for w in workloads:
        for axis in SWEEP_AXES:
            spec = "log2:8:1024" if axis == "crossbar_size" else SWEEP_AXES[axis][1]
            values = axis_values(spec, 200)
            if axis == "crossbar_size":  # 8 powers of two, repeated to 200 points
                values = np.resize(values, 200)
            sweep(arch, w, card, axis, values)
            points += values.size
    rows.append({"case": f"{points}-point sweep: 5 axes x 200 points x {len(workloads)} networks",
                 "s": time.perf_counter() - start})  # fmt: skip
    print(f"{'case':<72} {'seconds':>8}")
    for row in rows:
        print(f"{row['case']:<72} {row['s']:>8.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
