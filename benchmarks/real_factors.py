"""K-FAC factors captured from real training (the 64-512-256-10 digits MLP, damping 0.01 tr/n,
cond 1.5e3-3.7e4): passes, INV solves, VMM ops, bits and time of the default ``auto`` solve,
on the nodal engine and (up to --spice-max-n) through ngspice; with --blocks, the factors wider
than one crossbar also with BlockAMC and block-Jacobi instead of one tiled loop.

    .venv/bin/python benchmarks/real_factors.py [--spice-max-n 256] [--blocks] [--last]
        [--sizes 256 513] [--json FILE]

Prints a table; writes JSON (default results/bench_real_factors.json) with the provenance
(ngspice version and solver).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from rerinv.config import Config
from rerinv.matrices import load_matrix_set, random_rhs
from rerinv.provenance import provenance
from rerinv.resources import kfac_factors_dir
from rerinv.schemes import solve

FACTORS = "digits_mlp512-256_damping1e-2.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spice-max-n", type=int, default=256)
    parser.add_argument("--blocks", action="store_true", help="also BlockAMC and block-Jacobi")
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help="only these sizes")
    parser.add_argument("--last", action="store_true", help="only the last captured update")
    parser.add_argument("--json", default="results/bench_real_factors.json")
    args = parser.parse_args()
    attrs = provenance(shlex.join([sys.executable, *sys.argv]))
    print(f"ngspice {attrs['ngspice_version']} ({attrs['ngspice_solver']} solver)")
    print(
        f"{'factor':<22} {'N':>4} {'cond':>8} {'engine':>6} {'blocks':>8} {'status':>10} "
        f"{'bits':>6} {'passes':>6} {'to 16':>5} {'INV':>5} {'VMM ops':>8} {'s':>7}  "
        "preconditioner"
    )
    rows = []
    factors = load_matrix_set(kfac_factors_dir() / FACTORS)
    last = max(meta["step"] for _, _, meta in factors)
    for name, a, meta in factors:
        n = a.shape[0]
        if (args.sizes and n not in args.sizes) or (args.last and meta["step"] != last):
            continue
        b = random_rhs(n, seed=0)
        cases = [("nodal", "tiled")]
        if n <= args.spice_max_n:
            cases.append(("spice", "tiled"))
        if args.blocks and n > Config().array.max_size:
            cases += [("nodal", "blockamc"), ("nodal", "jacobi")]
        for engine, blocks in cases:
            config = Config().with_values("simulation", engine=engine)
            config = config.with_values("scheme", blocks=blocks)
            r = solve(a, b, config)
            row = {
                "factor": name,
                "n": n,
                "cond": meta["condition"],
                "engine": engine,
                "blocks": blocks if n > config.array.max_size else "-",
                "status": r.status,
                "effective_bits": r.effective_bits,
                "passes": r.passes,
                "passes_to_16": r.passes_to_target,
                "inv_solves": r.inv_solves,
                "vmm_ops": r.vmm_ops,
                "wall_time_s": r.wall_time,
                "preconditioner": r.history[-1].preconditioner,
            }
            rows.append(row)
            print(
                f"{name:<22} {n:>4} {row['cond']:>8.2g} {engine:>6} {row['blocks']:>8} "
                f"{r.status:>10} {r.effective_bits:>6.1f} {r.passes:>6} "
                f"{r.passes_to_target or '-':>5} {r.inv_solves:>5} {r.vmm_ops:>8} "
                f"{r.wall_time:>7.1f}  {row['preconditioner']}",
                flush=True,
            )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": attrs, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
