"""What one read of a residual-VMM tile costs ngspice, by tile layout, merging and solver.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/residual_tiles.py [--repeats 10]
        [--json results/bench_residual_tiles.json]

The tiles are those rerinv programs for the 26-bit residual of ``wishart_factor(64, seed=64)``:
64 rows of 1-bit cells (``scheme.vmm_cell_bits=1``) or 32 rows of 2-bit cells (the tile plan's
choice). Per row of the table: wall milliseconds of one warm ``solve_batch`` of 26 fresh random
bit planes (its ``alter``s and its ``dc`` sweep), of a bare 26-point and 1-point ``dc`` sweep
(the difference is the per-point cost, the 1-point sweep mostly ngspice's per-analysis set-up),
and of 832 ``alter``s. "merged k" puts k tiles of one row block side by side in one circuit
(shared inputs: one set of ``alter``s and one analysis for k tiles).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import rerinv.engines.ngspice as ngm
from rerinv.analog.bitsliced import BitSlicedVMM
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.netlist import BATCH_SELECTOR, batch_gain_name
from rerinv.matrices import wishart_factor
from rerinv.provenance import provenance

PLANES = 26


def tiles(cell_bits: int) -> list:
    config = Config().with_overrides([f"scheme.vmm_cell_bits={cell_bits}"])
    w = wishart_factor(64, seed=64)
    vmm = BitSlicedVMM(w, config, get_engine("nodal"), np.random.SeedSequence(0),
                       weight_bits=26, input_bits=26)  # fmt: skip
    first_block = [t.arrays for t in vmm.tiles if t.rows.start == 0]
    vmm.close()
    return first_block


def merged(arrays: list):
    return replace(
        arrays[0],
        g_pos=np.hstack([a.g_pos for a in arrays]),
        g_neg=np.hstack([a.g_neg for a in arrays]),
        col_scale=np.concatenate([a.col_scale for a in arrays]),
    )


def _ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def measure(arrays, solver: str, repeats: int, rng) -> dict:
    ngm.set_ngspice_solver(solver)
    circuit = vmm_crossbar(arrays, Config())
    session = get_engine("spice").load(circuit, batches=True)
    rows = len(circuit.inputs)

    def planes():
        return rng.integers(-1, 2, (PLANES, rows)) * 1e-3

    session.solve_batch(planes())
    monitored = session.monitored

    def sweep(points):
        ngm._select(session.batch_id)
        ngm._analysis(f"dc {BATCH_SELECTOR} 0 {points - 1} 1", "dc", circuit, monitored)

    alters = [  # 832 distinct gains: all 26 planes of a 32-row tile, 13 of a 64-row one
        f"alter {batch_gain_name(j // rows, circuit.inputs[j % rows])} gain = {j + 1}e-6"
        for j in range(832)
    ]

    def alter():
        ngm._select(session.batch_id)
        for line in ngm._joined(alters):
            ngm._command(line)

    row = {
        "rows": rows,
        "columns": len(circuit.outputs),
        "resistors": len(circuit.resistors),
        "solver": solver,
        "read_ms": _ms(lambda: session.solve_batch(planes()), repeats),
        "sweep26_ms": _ms(lambda: sweep(PLANES), repeats),
        "sweep1_ms": _ms(lambda: sweep(1), repeats),
        "alter832_ms": _ms(alter, repeats),
    }
    session.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10, help="best of")
    parser.add_argument("--json", default="results/bench_residual_tiles.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    one_bit, two_bit = tiles(1), tiles(0)
    solvers = ["klu", "sparse"] if ngm.ngspice_has_klu() else ["sparse"]
    cases = [("64 rows, 1-bit cells", one_bit[0], solvers)]
    cases += [("32 rows, 2-bit cells", two_bit[0], solvers)]
    cases += [(f"32 rows, 2-bit, merged {k}", merged(two_bit[:k]), solvers[:1]) for k in (2, 4, 7)]
    print(f"ngspice {ngm.ngspice_version()}; best of {args.repeats}; milliseconds")
    print(f"{'tile':>26} {'solver':>6} {'resistors':>9} {'read':>7} {'per tile':>8} "
          f"{'dc 26':>7} {'dc 1':>7} {'832 alters':>10}")  # fmt: skip
    rows = []
    for name, arrays, names in cases:
        for solver in names:
            r = {"tile": name, **measure(arrays, solver, args.repeats, rng)}
            r["per_tile_ms"] = r["read_ms"] * 64 / r["columns"]
            rows.append(r)
            print(f"{name:>26} {solver:>6} {r['resistors']:>9} {r['read_ms']:>7.2f} "
                  f"{r['per_tile_ms']:>8.2f} {r['sweep26_ms']:>7.2f} {r['sweep1_ms']:>7.2f} "
                  f"{r['alter832_ms']:>10.2f}", flush=True)  # fmt: skip
    ngm.set_ngspice_solver(None)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"provenance": provenance(shlex.join(["benchmarks/residual_tiles.py", *sys.argv[1:]])),
            "rows": rows}  # fmt: skip
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
