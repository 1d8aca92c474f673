"""``rerinv verify``: the main job (``make demo``).

On the built-in default configuration and workload (generated Wishart factors), every scheme
runs through ngspice in a short Monte Carlo; the results go to ``results/results.h5``, the
report to ``results/report.html``, and a summary table per scheme (median bits, share of trials
reaching the target) to the terminal. Then one real K-FAC factor captured from training
(256 wide, cond 2e3) is solved through ngspice (:func:`large_solve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rerinv.config import SCHEMES, Config
from rerinv.studies.mc import SweepSpec, load_results, run_monte_carlo
from rerinv.studies.report import write_report


def summarise(results_path: str | Path) -> list[dict]:
    """Per scheme: trials done, median and worst final bits, share reaching the target."""
    results = load_results(results_path)
    target = results.description.target_bits
    schemes = np.array([p.scheme for p in results.description.points])
    rows = []
    for scheme in dict.fromkeys(schemes):
        mask = results.done[schemes == scheme]
        bits = results.effective_bits[schemes == scheme][mask]
        reached = results.reached_target[schemes == scheme][mask]
        passes = results.passes[schemes == scheme][mask]
        rows.append(
            {
                "scheme": str(scheme),
                "trials": int(mask.sum()),
                "median_bits": float(np.nanmedian(bits)) if bits.size else float("nan"),
                "min_bits": float(np.nanmin(bits)) if bits.size else float("nan"),
                "reached_share": float(reached.mean()) if reached.size else 0.0,
                "median_passes": float(np.median(passes)) if passes.size else float("nan"),
                "target_bits": target,
            }
        )
    return rows


@dataclass(frozen=True)
class VerifyOutcome:
    """What :func:`verify` did: the per-scheme rows, or ``interrupted`` (no report then)."""

    results: Path
    interrupted: bool = False
    rows: list[dict] = field(default_factory=list)


def verify(
    config: Config,
    out_dir: str | Path = "results",
    *,
    trials: int = 10,
    sizes: tuple[int, ...] = (16, 32),
    workers: int | None = None,
    seed: int = 0,
    resume: bool = False,
    force: bool = False,
    command_line: str = "rerinv verify",
) -> VerifyOutcome:
    """Run the default verification into ``out_dir`` (``results.h5``, ``report.html``).

    An existing ``results.h5`` is completed with ``resume``, replaced with ``force`` (only
    once the new run has stored its trials) and refused otherwise. When the run is
    interrupted, no report is written and the outcome says so (the Monte Carlo driver has
    printed ``command_line --resume``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.h5"
    spec = SweepSpec(
        base=config,
        axes=(
            ("simulation.scheme", tuple(SCHEMES)),
            ("simulation.n", tuple(str(n) for n in sizes)),
        ),
        trials=trials,
        master_seed=seed,
    )
    summary = run_monte_carlo(
        spec, results_path, workers=workers, resume=resume, force=force,
        command_line=command_line,
    )  # fmt: skip
    if summary.interrupted:
        return VerifyOutcome(results_path, interrupted=True)
    write_report(results_path, out_dir / "report.html", force=True)
    return VerifyOutcome(results_path, rows=summarise(results_path))


#: The captured factor set ``rerinv verify`` solves its large case from (shipped with rerinv).
WIDE_FACTORS = "digits_mlp512-256_damping1e-2.h5"


def captured_factor(n: int) -> tuple[str, np.ndarray]:
    """The last captured K-FAC factor of size ``n`` from the 64-512-256-10 digits MLP
    (:data:`WIDE_FACTORS`: sizes 65, 256, 257, 512, 513), with its name; a
    :func:`rerinv.matrices.correlated_factor` of that size when none was captured."""
    from rerinv.matrices import correlated_factor, load_matrix_set
    from rerinv.resources import kfac_factors_dir

    found = [(name, m) for name, m, meta in load_matrix_set(kfac_factors_dir() / WIDE_FACTORS)
             if meta["size"] == n]  # fmt: skip
    if found:
        name, matrix = found[-1]
        return f"captured K-FAC factor {name} (64-512-256-10 MLP)", matrix
    return f"correlated_factor({n}, seed=0) (no factor of that size was captured)", (
        correlated_factor(n, seed=0)
    )


#: Monte Carlo file of the transistor-level (``--preset sky130``) row of ``rerinv verify``.
SKY130_RESULTS = "sky130.h5"


def sky130_row(
    out_dir: str | Path,
    *,
    trials: int = 2,
    n: int = 16,
    workers: int | None = None,
    seed: int = 0,
    resume: bool = False,
    force: bool = False,
    command_line: str = "rerinv verify",
) -> dict | None:
    """The ``sky130`` row of ``rerinv verify``: the ``auto`` scheme on K-FAC-like factors
    through ngspice with the transistor-level SKY130 amplifiers (``--preset sky130``), a short
    Monte Carlo into ``out_dir/sky130.h5``. None when the interrupted run left no summary."""
    from rerinv.config import load_preset

    config = load_preset("sky130").with_values("simulation", engine="spice", scheme="auto")
    path = Path(out_dir) / SKY130_RESULTS
    spec = SweepSpec(
        base=config, axes=(("simulation.n", (str(n),)),), trials=trials, master_seed=seed
    )
    summary = run_monte_carlo(
        spec, path, workers=workers, resume=resume, force=force, command_line=command_line
    )
    if summary.interrupted:
        return None
    row = summarise(path)[0]
    row["scheme"] = f"{row['scheme']}/sky130"
    return row


def large_solve(config: Config, n: int = 256, *, seed: int = 0):
    """One ``n x n`` real K-FAC factor (:func:`captured_factor`) solved through ngspice
    (``auto`` scheme, KLU when available) with a digital residual: the crossbar-size check of
    ``make demo`` (the bit-sliced analog residual of an ``n = 256`` matrix is about 80
    crossbar circuits, minutes of ngspice parsing; its accuracy is what the Monte Carlo
    above measures). Returns ``(description, SolveResult)``."""
    from rerinv.matrices import random_rhs
    from rerinv.schemes import solve

    case = config.with_overrides(["scheme.residual=digital"])
    case = case.with_values("simulation", engine="spice", scheme="auto")
    what, a = captured_factor(n)
    return what, solve(a, random_rhs(n, seed=seed + 1), case, seed=seed)
