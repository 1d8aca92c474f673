"""Engine cost versus N and ngspice matrix solver (KLU, Sparse 1.3): netlist build, ngspice
parse, first operating point, re-solve with `alter`, batch solves (a warm batch variant whose
gains are altered, against one `alter` + `op` per vector), next to the nodal engine and
numpy.linalg.solve of the same conductance system; then a `refine` solve to 16 bits through
ngspice, with the analog bit-sliced residual VMM (the default) and with a digital one.

    .venv/bin/python benchmarks/engine.py [--sizes 64 128 256] [--solvers klu sparse]
        [--repeats 3] [--sparse-max-n 128] [--batch 24] [--loop-max-n 64] [--refine-n 64]
        [--refine-residual analog digital] [--refine-workers 1 2] [--json FILE]

Per (solver, N) the ngspice counters (`rusage`) split an operating point into matrix set-up
(every ngspice analysis rebuilds the matrix), load (device stamping), re-order (first
factorisation, with pivoting), factor (re-factorisations) and solve. Prints tables and writes
JSON (default results/bench_engine.json) with the provenance (ngspice version and solver).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

import rerinv.engines.ngspice as ngm
from rerinv.analog.inv import build_inv
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import inv_crossbar
from rerinv.hw.netlist import to_spice
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.provenance import provenance
from rerinv.schemes import solve

_CPU: dict[str, float] = {}  # best process CPU time of the last _time call (shared machine)


def _time(fn, repeats=1):
    best, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    _CPU["last"] = cpu
    return best, result


def _split(stats: dict[str, float], before: dict[str, float] | None = None) -> dict[str, float]:
    """Parse and analysis times from ngspice's counters (differences to ``before``)."""
    before = before or {}

    def d(key):
        return stats.get(key, 0.0) - before.get(key, 0.0)

    parts = {
        "reorder": d("Matrix reorder time"),
        "factor": d("Matrix factor time"),
        "solve": d("Matrix solve time"),
        "load": d("Matrix load time"),
    }
    analysis = d("Total analysis time (seconds)")
    return {
        "parse_s": d("Netlist loading time")
        + d("Subckt and Param expansion time")
        + d("Netlist parsing time"),
        "analysis_s": analysis,
        "setup_s": analysis - sum(parts.values()),
        **{f"{k}_s": v for k, v in parts.items()},
        "iterations": d("Total iterations"),
    }


def measure(n: int, solver: str, args, config: Config) -> dict:
    ngm.set_ngspice_solver(solver)
    a = wishart_factor(n, seed=n)
    inv = build_inv(a, config, seed=0, scaling="ruiz")
    rng = np.random.default_rng(n)
    g = inv.arrays.conductance_matrix
    repeats = args.repeats if solver == "klu" else 1

    def inputs(k=None):
        v = rng.uniform(-1, 1, n if k is None else (k, n))
        return v * 0.5 / np.max(np.abs(np.linalg.solve(g, np.atleast_2d(v).T / config.array.r_in)))

    t_build, circuit = _time(lambda: inv_crossbar(inv.arrays, config), repeats)
    t_text, _ = _time(lambda: to_spice(circuit), repeats)
    spice = get_engine("spice")
    t_load, session = _time(lambda: spice.load(circuit))
    parsed = session.statistics()
    t_first, _ = _time(lambda: session.solve(inputs()))
    first = session.statistics()
    t_resolve, _ = _time(lambda: session.solve(inputs()), repeats)
    cpu_resolve = _CPU["last"]
    again = session.statistics()
    solves = repeats
    k = args.batch
    t_batch_first, _ = _time(lambda: session.solve_batch(inputs(k)))
    batch_first = session.statistics(batch=True)
    t_batch_warm, _ = _time(lambda: session.solve_batch(inputs(k)), repeats)
    cpu_batch_warm = _CPU["last"]
    batch_warm = session.statistics(batch=True)
    t_loop = None
    if n <= args.loop_max_n:
        t_loop, _ = _time(lambda: [session.solve(u) for u in inputs(k)])
    session.close()
    t_nodal_load, nodal = _time(lambda: get_engine("nodal").load(circuit))
    t_nodal, _ = _time(lambda: nodal.solve(inputs()), repeats)
    t_numpy, _ = _time(lambda: np.linalg.solve(g, inputs()), repeats)
    resolve = _split(again, first)
    return {
        "n": n,
        "solver": solver,
        "resistors": len(circuit.resistors),
        "equations": first.get("Circuit Equations"),
        "build_s": t_build,
        "netlist_text_s": t_text,
        "load_s": t_load,
        "parse": _split(parsed),
        "first_op_s": t_first,
        "first_op": _split(first, parsed),
        "first_solve_total_s": t_build + t_load + t_first,
        "resolve_alter_s": t_resolve,
        "resolve_alter_cpu_s": cpu_resolve,
        "resolve": {key: value / solves for key, value in resolve.items()},
        "batch_k": k,
        "batch_first_s": t_batch_first,
        "batch_first": _split(batch_first),
        "batch_warm_s": t_batch_warm,
        "batch_warm_cpu_s": cpu_batch_warm,
        "batch_warm": {
            key: value / repeats for key, value in _split(batch_warm, batch_first).items()
        },
        "batch_loop_s": t_loop,
        "nodal_factorise_s": t_nodal_load,
        "nodal_solve_s": t_nodal,
        "numpy_solve_s": t_numpy,
    }


def refine(n: int, solver: str, residual: str, workers: int = 1) -> dict:
    """``refine`` to 16 bits through ngspice, with the analog bit-sliced residual VMM (the
    default) or a digital one (float64, as in Le Gallo et al.'s mixed-precision refinement);
    time in parsing and in analyses (in this process: none with ``workers`` > 1, whose pool is
    started apart, timed in 'pool s'). The same solve runs twice: the first in a process (and
    workers) that has not yet run circuits of this size ('1st s'), the second warm."""
    ngm.set_ngspice_solver(solver)
    pool_start = 0.0
    if workers > 1:
        get_engine("spice", workers).shutdown()  # workers with this solver
        start = time.perf_counter()
        warm = Config().with_values("simulation", engine="spice", scheme="refine", workers=workers)
        solve(wishart_factor(8, seed=1), random_rhs(8, seed=2), warm)
        pool_start = time.perf_counter() - start
    spent = {"load": [0, 0.0], "op": [0, 0.0], "dc": [0, 0.0]}
    real_load, real_analysis = ngm._load, ngm._analysis

    def load(*a):
        start = time.perf_counter()
        try:
            return real_load(*a)
        finally:
            spent["load"][0] += 1
            spent["load"][1] += time.perf_counter() - start

    def analysis(command, kind, *a):
        start = time.perf_counter()
        try:
            return real_analysis(command, kind, *a)
        finally:
            spent[kind][0] += 1
            spent[kind][1] += time.perf_counter() - start

    ngm._load, ngm._analysis = load, analysis
    try:
        a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
        config = Config().with_overrides([f"scheme.residual={residual}"])
        config = config.with_values("simulation", engine="spice", scheme="refine", workers=workers)
        start = time.perf_counter()
        solve(a, b, config)
        first = time.perf_counter() - start
        for entry in spent.values():
            entry[:] = [0, 0.0]
        start, start_cpu = time.perf_counter(), time.process_time()
        r = solve(a, b, config)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    finally:
        ngm._load, ngm._analysis = real_load, real_analysis
    return {
        "n": n,
        "solver": solver,
        "residual": residual,
        "workers": workers,
        "pool_start_s": pool_start,
        "first_s": first,
        "status": r.status,
        "effective_bits": r.effective_bits,
        "passes": r.passes,
        "inv_solves": r.inv_solves,
        "vmm_ops": r.vmm_ops,
        "wall_s": wall,
        "cpu_s": cpu,
        "setup_s": r.setup_time,
        "parses": spent["load"][0],
        "parse_s": spent["load"][1],
        "ops": spent["op"][0],
        "op_s": spent["op"][1],
        "dc_sweeps": spent["dc"][0],
        "dc_s": spent["dc"][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--solvers", nargs="+", default=["klu", "sparse"], choices=ngm.SOLVERS)
    parser.add_argument("--repeats", type=int, default=3, help="best of (KLU; Sparse runs once)")
    parser.add_argument("--sparse-max-n", type=int, default=128)
    parser.add_argument("--batch", type=int, default=24, help="vectors per batch solve")
    parser.add_argument("--loop-max-n", type=int, default=64, help="largest N for the loop")
    parser.add_argument("--refine-n", type=int, nargs="*", default=[64])
    parser.add_argument("--refine-residual", nargs="+", default=["analog", "digital"],
                        choices=("analog", "digital"))  # fmt: skip
    parser.add_argument("--refine-workers", type=int, nargs="+", default=[1, 2],
                        help="simulation.workers of the refine runs")  # fmt: skip
    parser.add_argument("--json", default="results/bench_engine.json")
    args = parser.parse_args()
    solvers = [s for s in args.solvers if s == "sparse" or ngm.ngspice_has_klu()]
    if solvers != args.solvers:
        print(f"ngspice {ngm.ngspice_version()} has no KLU: measuring Sparse only")
    config = Config()
    print(
        f"ngspice {ngm.ngspice_version()}, {platform.processor() or platform.machine()}, "
        f"op-amp {config.opamp.model}, INV crossbar; times in seconds (best of {args.repeats} "
        "for KLU, one run for Sparse)"
    )
    print(
        f"{'solver':>6} {'N':>4} {'eqs':>5} {'parse':>7} {'1st op':>8} {'re-solve':>9} "
        f"{'(CPU)':>7} {'setup':>7} {'reorder':>8} {'factor':>7} {'solve':>7} "
        f"{'batch 1st':>9} {'batch':>7} {'loop':>7} {'nodal':>8} {'numpy':>8}"
    )
    rows = []
    for solver in solvers:
        for n in args.sizes:
            if solver == "sparse" and n > args.sparse_max_n:
                continue
            r = measure(n, solver, args, config)
            rows.append(r)
            op = r["resolve"]
            loop = f"{r['batch_loop_s']:>7.3f}" if r["batch_loop_s"] is not None else f"{'-':>7}"
            print(
                f"{solver:>6} {n:>4} {r['equations'] or 0:>5.0f} {r['load_s']:>7.3f} "
                f"{r['first_op_s']:>8.3f} {r['resolve_alter_s']:>9.4f} "
                f"{r['resolve_alter_cpu_s']:>7.4f} {op['setup_s']:>7.4f} "
                f"{op['reorder_s']:>8.4f} {op['factor_s']:>7.4f} {op['solve_s']:>7.4f} "
                f"{r['batch_first_s']:>9.3f} {r['batch_warm_s']:>7.3f} {loop} "
                f"{r['nodal_solve_s']:>8.5f} {r['numpy_solve_s']:>8.5f}",
                flush=True,
            )
    refines = []
    if args.refine_n:
        print(
            f"\nrefine to 16 bits through ngspice (wishart_factor(N, seed=N), random_rhs(N, "
            f"seed=N+1)); with workers > 1 ngspice runs in those processes (its parses and "
            f"analyses are not split out; the pool starts apart, in 'pool s'; '1st s' is "
            f"the first solve, the rest the second, warm)\n"
            f"{'solver':>6} {'N':>4} {'residual':>8} {'workers':>7} {'pool s':>6} "
            f"{'status':>10} {'bits':>5} "
            f"{'passes':>6} "
            f"{'INV':>4} {'VMM ops':>7} {'parses':>6} {'parse s':>7} {'ops':>4} {'op s':>6} "
            f"{'sweeps':>6} {'sweep s':>7} {'1st s':>6} {'total s':>7} {'(CPU)':>7}"
        )
    for solver in solvers:
        runs = [
            (n, res, w)
            for n in args.refine_n
            for res in args.refine_residual
            for w in args.refine_workers
        ]
        for n, residual, workers in runs:
            r = refine(n, solver, residual, workers)
            refines.append(r)
            print(
                f"{solver:>6} {n:>4} {residual:>8} {workers:>7} {r['pool_start_s']:>6.2f} "
                f"{r['status']:>10} {r['effective_bits']:>5.1f} "
                f"{r['passes']:>6} {r['inv_solves']:>4} {r['vmm_ops']:>7} {r['parses']:>6} "
                f"{r['parse_s']:>7.2f} {r['ops']:>4} {r['op_s']:>6.2f} {r['dc_sweeps']:>6} "
                f"{r['dc_s']:>7.2f} {r['first_s']:>6.2f} {r['wall_s']:>7.2f} {r['cpu_s']:>7.2f}",
                flush=True,
            )
    ngm.set_ngspice_solver(None)
    out = {
        "provenance": provenance(shlex.join([sys.executable, *sys.argv])),
        "ngspice": ngm.ngspice_version(),
        "solvers": solvers,
        "rows": rows,
        "refine": refines,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
