"""Precision schemes versus N and engine: passes, INV solves, VMM ops, wall time per pass,
bits reached, on K-FAC-like factors with the default configuration.

    .venv/bin/python benchmarks/schemes.py [--sizes 32 64 128] [--spice-max-n 64] [--json FILE]

ngspice runs are skipped above --spice-max-n; they use the process's ngspice solver (KLU where
available; RERINV_NGSPICE_SOLVER=sparse forces Sparse 1.3, which takes seconds per N = 128
operating point, see docs/benchmarks.md). Prints a table; writes JSON (default
results/bench_schemes.json) with the provenance (ngspice version and solver).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from rerinv.config import Config
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.provenance import provenance
from rerinv.schemes import SCHEMES, solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    parser.add_argument("--spice-max-n", type=int, default=64)
    parser.add_argument("--json", default="results/bench_schemes.json")
    args = parser.parse_args()
    config = Config()
    rows = []
    attrs = provenance(shlex.join([sys.executable, *sys.argv]))
    print(f"ngspice {attrs['ngspice_version']} ({attrs['ngspice_solver']} solver)")
    print(
        f"{'N':>4} {'scheme':>7} {'engine':>6} {'status':>10} {'bits':>6} {'passes':>6} "
        f"{'to 16':>5} {'INV':>5} {'VMM ops':>8} {'s/pass':>8} {'total s':>8}"
    )
    for n in args.sizes:
        a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
        for scheme in args.schemes:
            for engine in ("nodal", "spice"):
                if engine == "spice" and n > args.spice_max_n:
                    continue
                budget = 30 if scheme == "krylov" else 8
                case = config.with_values(
                    "simulation", scheme=scheme, engine=engine, max_passes=budget
                )
                r = solve(a, b, case)
                to16 = next((k for k, h in enumerate(r.history, 1) if h.effective_bits >= 16), None)
                row = {
                    "n": n,
                    "scheme": scheme,
                    "engine": engine,
                    "status": r.status,
                    "effective_bits": r.effective_bits,
                    "passes": r.passes,
                    "passes_to_16": to16,
                    "inv_solves": r.inv_solves,
                    "vmm_ops": r.vmm_ops,
                    "wall_s": r.wall_time,
                    "wall_per_pass_s": r.wall_time / r.passes,
                }
                rows.append(row)
                print(
                    f"{n:>4} {scheme:>7} {engine:>6} {r.status:>10} {r.effective_bits:>6.1f} "
                    f"{r.passes:>6} {to16 or '-':>5} {r.inv_solves:>5} {r.vmm_ops:>8} "
                    f"{row['wall_per_pass_s']:>8.3f} {r.wall_time:>8.2f}",
                    flush=True,
                )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"provenance": attrs, "rows": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
