"""What two process settings are worth to an ngspice `refine`: BLAS threads and glibc's heap trim.

    .venv/bin/python benchmarks/process_settings.py [--rounds 5] [--n 64]
        [--json results/bench_process_settings.json]

Each run is a fresh interpreter that solves ``wishart_factor(N, seed=N)``,
``random_rhs(N, seed=N+1)`` with ``refine`` through ngspice (the analog residual, one process)
twice and reports the second, warm solve. Settings, interleaved round by round so that a
noisy machine hits them alike:

- ``rerinv``: as rerinv runs (``OMP_NUM_THREADS=1``, as the CLI sets it; glibc keeps the
  heap ngspice frees, see ``rerinv.engines.ngspice_lib``);
- ``blas 2 threads``: ``OMP_NUM_THREADS=2`` (numpy's OpenBLAS starts a second thread);
- ``heap trimmed``: without ``mallopt(M_TRIM_THRESHOLD)``, glibc's default.

Prints the median and the fastest wall time per setting and writes JSON with the provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from rerinv.provenance import provenance

SOLVE = """
import sys, time
import rerinv.engines.ngspice_lib as lib
if {trimmed}:
    lib._keep_freed_memory = lambda: None
from rerinv.config import Config
from rerinv.matrices import wishart_factor, random_rhs
from rerinv.schemes import solve
a, b = wishart_factor({n}, seed={n}), random_rhs({n}, seed={n} + 1)
config = Config().with_values("simulation", engine="spice", scheme="refine")
solve(a, b, config)
start = time.perf_counter()
result = solve(a, b, config)
print("WALL", time.perf_counter() - start, result.status, result.effective_bits)
"""

SETTINGS = {  # name: (OMP_NUM_THREADS, heap trimmed)
    "rerinv": ("1", False),
    "blas 2 threads": ("2", False),
    "heap trimmed": ("1", True),
}


def run(n: int, threads: str, trimmed: bool) -> tuple[float, str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    code = SOLVE.format(n=n, trimmed=trimmed)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    _, wall, status, bits = next(
        line for line in out.splitlines() if line.startswith("WALL")
    ).split()
    return float(wall), status, float(bits)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--json", default="results/bench_process_settings.json")
    args = parser.parse_args()
    walls = {name: [] for name in SETTINGS}
    outcome = {}
    for k in range(args.rounds):
        for name, (threads, trimmed) in SETTINGS.items():
            wall, status, bits = run(args.n, threads, trimmed)
            walls[name].append(wall)
            outcome[name] = (status, bits)
        latest = ", ".join(f"{name} {w[-1]:.2f} s" for name, w in walls.items())
        print(f"round {k + 1}/{args.rounds}: {latest}", flush=True)
    print(f"\nN = {args.n} refine through ngspice, warm solve, {args.rounds} rounds")
    print(f"{'setting':>16} {'median s':>9} {'fastest s':>9}  status, bits")
    rows = []
    for name, w in walls.items():
        status, bits = outcome[name]
        rows.append({"setting": name, "walls": w, "median": statistics.median(w),
                     "fastest": min(w), "status": status, "bits": bits})  # fmt: skip
        print(f"{name:>16} {statistics.median(w):>9.2f} {min(w):>9.2f}  {status}, {bits:.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["benchmarks/process_settings.py", *sys.argv[1:]])
    out.write_text(json.dumps({"provenance": provenance(command), "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
