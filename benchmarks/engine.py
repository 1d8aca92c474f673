"""Engine cost versus N: netlist build, ngspice load, first operating point, re-solve with
`alter`, next to the nodal engine and numpy.linalg.solve of the same conductance system.

    .venv/bin/python benchmarks/engine.py [--sizes 16 32 64 128 256] [--repeats 5] [--json FILE]

Prints a table and writes JSON (default results/bench_engine.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rerinv.hw.circuit import inv_crossbar
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.engines.ngspice import ngspice_version
from rerinv.analog.inv import build_inv
from rerinv.matrices import kfac_factor
from rerinv.hw.netlist import to_spice


def _time(fn, repeats=1):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(n: int, repeats: int, config: Config) -> dict:
    a = kfac_factor(n, seed=n)
    inv = build_inv(a, config, seed=0, equilibrated=True)
    rng = np.random.default_rng(n)
    g = inv.arrays.conductance_matrix

    def inputs():
        v = rng.uniform(-1, 1, n)
        return v * 0.5 / np.max(np.abs(np.linalg.solve(g, v / config.array.r_in)))

    t_build, circuit = _time(lambda: inv_crossbar(inv.arrays, config), repeats)
    t_text, _ = _time(lambda: to_spice(circuit), repeats)
    spice = get_engine("spice")
    t_load, session = _time(lambda: spice.load(circuit))
    t_first, _ = _time(lambda: session.solve(inputs()))
    t_resolve, out = _time(lambda: session.solve(inputs()), repeats)
    session.close()
    t_nodal_load, nodal = _time(lambda: get_engine("nodal").load(circuit))
    t_nodal, _ = _time(lambda: nodal.solve(inputs()), repeats)
    t_numpy, _ = _time(lambda: np.linalg.solve(g, inputs()), repeats)
    return {
        "n": n,
        "resistors": len(circuit.resistors),
        "build_s": t_build,
        "netlist_text_s": t_text,
        "load_s": t_load,
        "first_op_s": t_first,
        "first_solve_total_s": t_build + t_load + t_first,
        "resolve_alter_s": t_resolve,
        "nodal_factorise_s": t_nodal_load,
        "nodal_solve_s": t_nodal,
        "numpy_solve_s": t_numpy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="results/bench_engine.json")
    args = parser.parse_args()
    config = Config()
    rows = []
    header = (
        f"{'N':>4} {'resistors':>9} {'build':>8} {'load':>8} {'1st op':>8} {'1st total':>9} "
        f"{'re-solve':>9} {'nodal LU':>9} {'nodal':>9} {'numpy':>9}   (seconds)"
    )
    print(
        f"ngspice {ngspice_version()}, {platform.processor() or platform.machine()}, "
        f"op-amp {config.opamp.model}, INV crossbar"
    )
    print(header)
    for n in args.sizes:
        r = measure(n, args.repeats, config)
        rows.append(r)
        print(
            f"{n:>4} {r['resistors']:>9} {r['build_s']:>8.4f} {r['load_s']:>8.4f} "
            f"{r['first_op_s']:>8.4f} {r['first_solve_total_s']:>9.4f} "
            f"{r['resolve_alter_s']:>9.4f} "
            f"{r['nodal_factorise_s']:>9.4f} {r['nodal_solve_s']:>9.5f} {r['numpy_solve_s']:>9.5f}",
            flush=True,
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"ngspice": ngspice_version(), "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
