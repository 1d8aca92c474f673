"""What each part of the precision route does, measured on real matrices: the error of the
matrix the programmed INV loop holds and ``rho(I - P^-1 A)`` on 1, 2 and 3 slices (from the
programmed conductances and the loop's exact finite-gain error, what the circuit solves), and
the default ``auto`` solve with one part switched off at a time (summed DAC slices, finite-gain
compensation, finer slices).

    .venv/bin/python benchmarks/precision_parts.py [--json FILE]

Matrices: the captured 512-wide K-FAC factor (step 140, layer 0, G) and the suite's RBF kernel
matrix of the wine data set (cond 3.8e6). Nodal engine. Prints two tables; writes JSON (default
results/bench_precision_parts.json) with the provenance.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from rerinv.analog.routes import build_preconditioner
from rerinv.config import Config
from rerinv.hw.circuit import inv_gain_error
from rerinv.matrices import load_matrix, load_matrix_set, random_rhs
from rerinv.provenance import provenance
from rerinv.resources import kfac_factors_dir, matrices_dir
from rerinv.schemes import solve

VARIANTS = {
    "default": [],
    "separate DAC slices (RePAST)": ["scheme.dac_slicing=separate"],
    "no gain compensation": ["scheme.compensate_gain=false"],
    "one slice": ["scheme.inv_slices=1"],
}


def matrices() -> dict[str, np.ndarray]:
    factors = load_matrix_set(kfac_factors_dir() / "digits_mlp512-256_damping1e-2.h5")
    factor = next(m for name, m, _ in factors if name == "step00140-layer0-G")
    return {
        "kfac step140 layer0-G (512)": factor,
        "kernel_wine_rbf (120)": load_matrix(matrices_dir() / "kernel_wine_rbf.npy"),
    }


def held(a: np.ndarray, slices: int) -> dict:
    """Error of what the loop holds and the refinement contraction it allows."""
    config = Config().with_values("scheme", inv_slices=slices)
    inv = build_preconditioner(a, config, seed=0, tiled=True)
    arrays = inv.arrays
    scaled = arrays.row_scale[:, None] * a * arrays.col_scale[None, :]
    loop = (arrays.conductance_matrix + inv_gain_error(arrays, config)) / arrays.scale
    error = loop - inv.sign * (scaled + arrays.shift * np.max(np.abs(scaled)) * np.eye(len(a)))
    contraction = np.linalg.eigvals(np.eye(len(a)) - np.linalg.solve(loop, inv.sign * scaled))
    return {
        "slices": slices,
        "route": inv.label,
        "held_error_2norm": float(np.linalg.norm(error, 2)),
        "smallest_eigenvalue": float(np.linalg.eigvalsh((scaled + scaled.T) / 2)[0]),
        "rho": float(np.max(np.abs(contraction))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="results/bench_precision_parts.json")
    args = parser.parse_args()
    attrs = provenance(shlex.join([sys.executable, *sys.argv]), ngspice=False)
    data = {"provenance": attrs, "held": [], "solves": []}
    print(f"{'matrix':<28} {'slices':>6} {'route':<24} {'||E||':>9} {'lam_min':>9} {'rho':>9}")
    for name, a in matrices().items():
        for slices in (1, 2, 3):
            row = {"matrix": name, **held(a, slices)}
            data["held"].append(row)
            print(
                f"{name:<28} {slices:>6} {row['route']:<24} {row['held_error_2norm']:>9.2e} "
                f"{row['smallest_eigenvalue']:>9.2e} {row['rho']:>9.3g}",
                flush=True,
            )
    print(f"\n{'matrix':<28} {'variant':<30} {'status':>10} {'bits':>6} {'passes':>6} {'to 16':>5}")
    for name, a in matrices().items():
        b = random_rhs(a.shape[0], seed=0)
        for variant, overrides in VARIANTS.items():
            config = Config().with_values("simulation", engine="nodal").with_overrides(overrides)
            r = solve(a, b, config)
            row = {
                "matrix": name,
                "variant": variant,
                "status": r.status,
                "effective_bits": r.effective_bits,
                "passes": r.passes,
                "passes_to_16": r.passes_to_target,
                "preconditioner": r.history[-1].preconditioner,
            }
            data["solves"].append(row)
            print(
                f"{name:<28} {variant:<30} {r.status:>10} {r.effective_bits:>6.1f} "
                f"{r.passes:>6} {r.passes_to_target or '-':>5}",
                flush=True,
            )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
