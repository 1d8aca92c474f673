"""Monte Carlo throughput and the accuracy-map run.

    .venv/bin/python benchmarks/montecarlo.py [--sizes 32 64] [--workers 1 2]
        [--nodal-trials 40] [--spice-trials 8 4] [--map-trials 50] [--skip-map] [--json FILE]

1. Trials per second of ``run_monte_carlo`` (scheme refine, default configuration) per engine
   (nodal, spice) at each N with each worker count; wall time includes starting the worker
   processes. ``--spice-trials`` gives one count per size (an N = 64 spice trial takes ~25-50 s).
2. The accuracy map: device.sigma_rel in {0, 0.005, 0.01, 0.02} x simulation.n in {16, 32, 64}
   x simulation.scheme in {refine, krylov}, ``--map-trials`` per point, nodal engine, all
   cores; its HDF5 file and HTML report go to results/mc_accuracy_map.{h5,html}.

Prints a table; writes JSON with its provenance (default results/bench_montecarlo.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.provenance import provenance
from rerinv.studies.mc import SweepSpec, load_results, parse_sweep, run_monte_carlo
from rerinv.studies.report import point_statistics, write_report

MAP_AXES = [
    "device.sigma_rel=0,0.005,0.01,0.02",
    "simulation.n=16,32,64",
    "simulation.scheme=refine,krylov",
]


def throughput(engine: str, n: int, trials: int, workers: int, folder: Path) -> dict:
    """One timed run of ``trials`` trials at N = ``n`` on ``workers`` local processes."""
    base = Config().with_values("simulation", scheme="refine", engine=engine, n=n)
    spec = SweepSpec(base=base, trials=trials, master_seed=n)
    out = folder / f"{engine}-{n}-{workers}.h5"
    with open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        summary = run_monte_carlo(spec, out, workers=workers, stream=quiet)
        elapsed = time.perf_counter() - start
    results = load_results(out)
    return {
        "engine": engine,
        "n": n,
        "workers": workers,
        "trials": trials,
        "failed": summary.failed,
        "wall_s": elapsed,
        "trials_per_s": trials / elapsed,
        "mean_trial_s": float(np.mean(results.wall_time)),
        "reached_target": float(np.mean(results.reached_target)),
    }


def accuracy_map(trials: int, folder: Path) -> dict:
    """The accuracy-map sweep on all cores, then its report."""
    base = Config().with_values("simulation", engine="nodal")
    spec = SweepSpec(base=base, axes=parse_sweep(MAP_AXES, base), trials=trials, master_seed=0)
    out = folder / "mc_accuracy_map.h5"
    out.unlink(missing_ok=True)
    workers = os.cpu_count() or 1
    start = time.perf_counter()
    summary = run_monte_carlo(spec, out, workers=workers)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    write_report(out, folder / "mc_accuracy_map.html")
    report_s = time.perf_counter() - start
    results = load_results(out)
    return {
        "axes": MAP_AXES,
        "points": results.n_points,
        "trials_per_point": trials,
        "workers": workers,
        "trials": summary.total,
        "failed": summary.failed,
        "wall_s": elapsed,
        "trials_per_s": summary.total / elapsed,
        "report_s": report_s,
        "statistics": [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}
            for row in point_statistics(results)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--nodal-trials", type=int, default=40)
    parser.add_argument("--spice-trials", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--map-trials", type=int, default=50)
    parser.add_argument("--skip-map", action="store_true")
    parser.add_argument("--json", default="results/bench_montecarlo.json")
    args = parser.parse_args()
    spice_trials = dict(zip(args.sizes, args.spice_trials, strict=False))
    rows = []
    print(
        f"{'engine':>6} {'N':>4} {'workers':>7} {'trials':>6} {'wall s':>8} {'trials/s':>9} "
        f"{'s/trial':>8} {'speed-up':>8}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for engine in ("nodal", "spice"):
            for n in args.sizes:
                trials = args.nodal_trials if engine == "nodal" else spice_trials.get(n, 2)
                base = None
                for workers in args.workers:
                    row = throughput(engine, n, trials, workers, Path(folder))
                    base = base or row["trials_per_s"]
                    row["speedup"] = row["trials_per_s"] / base
                    rows.append(row)
                    print(
                        f"{engine:>6} {n:>4} {workers:>7} {trials:>6} {row['wall_s']:>8.2f} "
                        f"{row['trials_per_s']:>9.3f} {row['mean_trial_s']:>8.3f} "
                        f"{row['speedup']:>8.2f}",
                        flush=True,
                    )
    report = {
        "provenance": provenance(shlex.join([sys.executable, *sys.argv])),
        "throughput": rows,
        "cpu_count": os.cpu_count(),
    }
    if not args.skip_map:
        Path("results").mkdir(exist_ok=True)
        run = accuracy_map(args.map_trials, Path("results"))
        report["accuracy_map"] = run
        print(
            f"accuracy map: {run['points']} points x {run['trials_per_point']} trials = "
            f"{run['trials']} trials ({run['failed']} failed) on {run['workers']} workers in "
            f"{run['wall_s']:.1f} s ({run['trials_per_s']:.2f} trials/s); report "
            f"{run['report_s']:.1f} s -> results/mc_accuracy_map.html"
        )
        print(f"{'point':>46} {'median bits':>11} {'reach 16':>8} {'med. passes':>11}")
        for s in run["statistics"]:
            print(
                f"{s['point']:>46} {s['median bits']:>11.2f} {s['reach target']:>8.2f} "
                f"{s['median passes']:>11g}"
            )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
