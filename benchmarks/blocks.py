"""Block solves beyond one crossbar: passes, crossbars and wall time per pass against N.

    .venv/bin/python benchmarks/blocks.py [--nodal 64 128 256 512 1024 2048]
        [--spice 64 128 256 512] [--width 128] [--residual digital|analog] [--json FILE]

K-FAC-like SPD factors (``kfac_factor(N, seed=N)``), 128-wide 8-bit crossbars, the ``auto``
scheme to 16 bits, BlockAMC and block-Jacobi preconditioners. Prints a table, writes JSON
(default results/bench_blocks.json) with the provenance (ngspice version and solver) and
fits ``wall time per pass ~ N^p`` for each engine. The residual VMM is digital by default:
the benchmark measures the block preconditioner, whose analog solves dominate a pass; with
``--residual analog`` the bit-sliced residual tiles are simulated too (much slower to build).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.matrices import kfac_factor, random_rhs
from rerinv.provenance import provenance
from rerinv.schemes import solve


def run(n: int, engine: str, blocks: str, width: int, residual: str) -> dict:
    config = Config().with_overrides(
        [f"array.max_size={width}", f"scheme.blocks={blocks}", f"scheme.residual={residual}"]
    )
    config = config.with_values("simulation", engine=engine, max_passes=40)
    a, b = kfac_factor(n, seed=n), random_rhs(n, seed=n + 1)
    start = time.perf_counter()
    result = solve(a, b, config, seed=0)
    wall = time.perf_counter() - start
    crossbars = sum(level["crossbars"] for level in result.by_level.values())
    return {
        "n": n,
        "engine": engine,
        "blocks": blocks if n > width else "one crossbar",
        "status": result.status,
        "effective_bits": result.effective_bits,
        "passes": result.passes,
        "inv_solves": result.inv_solves,
        "vmm_ops": result.vmm_ops,
        "crossbars": crossbars,
        "levels": len(result.by_level),
        "wall_s": wall,
        "wall_per_pass_s": wall / max(result.passes, 1),
    }


def fit_exponent(rows: list[dict], engine: str) -> float | None:
    points = [(r["n"], r["wall_per_pass_s"]) for r in rows
              if r["engine"] == engine and r["blocks"] == "blockamc"]  # fmt: skip
    if len(points) < 2:
        return None
    n, t = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(n, t, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodal", type=int, nargs="*", default=[256, 512, 1024, 2048])
    parser.add_argument("--spice", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--width", type=int, default=128, help="crossbar size (array.max_size)")
    parser.add_argument("--residual", choices=("digital", "analog"), default="digital")
    parser.add_argument("--json", default="results/bench_blocks.json")
    args = parser.parse_args()
    print(
        f"{'N':>5} {'engine':>6} {'blocks':>12} {'status':>10} {'bits':>5} {'passes':>6} "
        f"{'INV':>7} {'VMM ops':>8} {'xbars':>6} {'s/pass':>8} {'total s':>8}",
        flush=True,
    )
    rows = []
    for engine, sizes in (("nodal", args.nodal), ("spice", args.spice)):
        for n in sizes:
            for blocks in ("blockamc", "jacobi"):
                r = run(n, engine, blocks, args.width, args.residual)
                rows.append(r)
                print(
                    f"{n:>5} {engine:>6} {r['blocks']:>12} {r['status']:>10} "
                    f"{r['effective_bits']:>5.1f} {r['passes']:>6} {r['inv_solves']:>7} "
                    f"{r['vmm_ops']:>8} {r['crossbars']:>6} {r['wall_per_pass_s']:>8.3f} "
                    f"{r['wall_s']:>8.1f}",
                    flush=True,
                )
    fits = {e: fit_exponent(rows, e) for e in ("nodal", "spice")}
    for engine, p in fits.items():
        if p is not None:
            print(f"{engine}: wall time per pass ~ N^{p:.2f} (BlockAMC)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "provenance": provenance("benchmarks/blocks.py", ngspice=bool(args.spice)),
        "width": args.width,
        "residual": args.residual,
        "rows": rows,
        "fitted_exponent": fits,
    }
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
