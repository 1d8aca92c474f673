"""The real-matrix suite: public matrices (and K-FAC factors captured from real training)
solved through the analog machine, with the route each one takes and the bits it reaches.

The matrices are the Matrix Market files of ``tests/data/matrices`` (shipped with rerinv,
:func:`rerinv.resources.matrices_dir`), each with its source and licence in ``index.toml``.
A graph file gives two cases: the matrix as stored and its grounded Laplacian
(``L = diag(W 1) - W`` of the symmetrised off-diagonal pattern, node 0 removed). Optional
matrix sets (``--factors``, the K-FAC factors ``rerinv train`` captures, e.g.
``tests/data/kfac_factors/*.h5``) add real factors.

Every case is solved with :func:`rerinv.schemes.solve` on the given configuration; a singular
matrix is recorded as refused (the CLI's ``solve`` exits 2 on it), an unstable one with the
refusal message.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tomllib

from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.matrices import SINGULAR_CONDITION, load_matrix, load_matrix_set, random_rhs
from rerinv.outputs import atomic_write, replacing
from rerinv.provenance import provenance
from rerinv.resources import matrices_dir
from rerinv.schemes import solve


@dataclass(frozen=True)
class SuiteCase:
    """One matrix of the suite."""

    name: str
    kind: str  #: spd | symmetric_indefinite | nonsymmetric | laplacian | pattern | kfac
    matrix: np.ndarray
    source: str


@dataclass
class SuiteRow:
    """What one case gave (``status`` ``singular`` / ``refused`` when no solve ran)."""

    name: str
    kind: str
    n: int
    cond: float
    status: str
    reached_target: bool = False
    effective_bits: float = math.nan
    passes: int = 0
    passes_to_target: int | None = None  #: first pass whose verified bits reach the target
    inv_solves: int = 0
    vmm_ops: int = 0
    circuit: str = ""
    scaling: str = ""
    shift: float = 0.0
    residual_bits: int = 0
    message: str = ""
    wall_time: float = 0.0


def grounded_laplacian(a: np.ndarray) -> np.ndarray:
    """``L[1:, 1:]`` with ``L = diag(W 1) - W``, ``W`` the symmetrised off-diagonal pattern of
    ``a`` (unit edge weights): SPD when the graph is connected."""
    w = (np.asarray(a) != 0).astype(float)
    np.fill_diagonal(w, 0.0)
    w = np.maximum(w, w.T)
    return (np.diag(w.sum(axis=1)) - w)[1:, 1:]


def suite_cases(folder: Path | None = None, factors: list[Path] = ()) -> Iterator[SuiteCase]:
    """The cases of ``folder/index.toml`` (default: the shipped suite), then the matrices of
    each matrix-set file in ``factors``."""
    folder = matrices_dir() if folder is None else Path(folder)
    index = folder / "index.toml"
    try:
        entries = tomllib.loads(index.read_text())["matrix"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the suite index {index}: {exc}") from exc
    for entry in entries:
        a = load_matrix(folder / entry["file"])
        yield SuiteCase(entry["name"], entry["kind"], a, entry["source"])
        if entry["kind"] == "laplacian":
            yield SuiteCase(f"{entry['name']}_grounded", "laplacian", grounded_laplacian(a),
                            f"grounded Laplacian of {entry['name']}")  # fmt: skip
    for path in factors:
        for name, matrix, _ in load_matrix_set(path):
            yield SuiteCase(f"{Path(path).stem}:{name}", "kfac", matrix, str(path))


def run_case(case: SuiteCase, config: Config, seed: int = 0) -> SuiteRow:
    """Solve ``case`` with a seeded standard-normal right-hand side."""
    a = case.matrix
    with np.errstate(all="ignore"):
        cond = float(np.linalg.cond(a))
    row = SuiteRow(case.name, case.kind, a.shape[0], cond, status="")
    start = time.perf_counter()
    try:
        result = solve(a, random_rhs(a.shape[0], seed=seed), config, seed=seed)
    except RerinvError as exc:
        row.status = "singular" if not cond <= SINGULAR_CONDITION else "refused"
        row.message = str(exc)
    else:
        row.status, row.reached_target = result.status, result.reached_target
        row.effective_bits, row.passes = result.effective_bits, result.passes
        row.passes_to_target = result.passes_to_target
        row.inv_solves, row.vmm_ops = result.inv_solves, result.vmm_ops
        row.circuit, row.scaling, row.shift = result.circuit, result.scaling, result.shift
        row.residual_bits = result.residual_bits[0]
    row.wall_time = time.perf_counter() - start
    return row


def run_suite(
    config: Config,
    *,
    folder: Path | None = None,
    factors: list[Path] = (),
    seed: int = 0,
    progress: Callable[[SuiteRow], None] | None = None,
) -> list[SuiteRow]:
    """Every case of the suite, in order."""
    rows = []
    for case in suite_cases(folder, factors):
        rows.append(run_case(case, config, seed))
        if progress is not None:
            progress(rows[-1])
    return rows


def write_suite(rows: list[SuiteRow], config: Config, out: Path, command_line: str) -> None:
    """``out/suite.json`` (rows, configuration, provenance) and ``out/suite.png``."""
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "format": "rerinv-suite",
        "provenance": provenance(command_line, ngspice=config.simulation.engine == "spice"),
        "config": config.to_toml(),
        "rows": [{k: _plain(v) for k, v in asdict(r).items()} for r in rows],
    }
    atomic_write(out / "suite.json", json.dumps(data, indent=1, allow_nan=False) + "\n")
    plot_suite(rows, config.simulation.target_bits, out / "suite.png")


#: Plot groups of the suite's kinds (the ``kind`` of ``index.toml``; ``kfac``: captured factors).
CATEGORIES = {
    "spd": "sparse SPD / stiffness",
    "stiffness": "sparse SPD / stiffness",
    "laplacian": "graph Laplacians",
    "laplacian_shifted": "graph Laplacians",
    "kernel": "dense kernel / Gram",
    "gram": "dense kernel / Gram",
    "correlation": "correlation / covariance",
    "covariance": "correlation / covariance",
    "kfac": "K-FAC factors (captured)",
    "nonsymmetric": "non-symmetric",
    "convection": "non-symmetric",
    "markov": "non-symmetric",
    "symmetric_indefinite": "non-symmetric",
    "pattern": "non-symmetric",
    "row_scaled": "row / column scaled",
    "row_col_scaled": "row / column scaled",
}


def plot_suite(rows: list[SuiteRow], target: float, path: Path) -> None:
    """Verified bits and passes to the target against the condition number, one marker per
    category of matrix (:data:`CATEGORIES`); a matrix that never reached the target is drawn
    hollow at its pass budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    solved = [r for r in rows if r.circuit]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    groups = sorted({CATEGORIES.get(r.kind, r.kind) for r in solved})
    markers = "osD^v<>pPX*h"
    for k, group in enumerate(groups):
        chosen = [r for r in solved if CATEGORIES.get(r.kind, r.kind) == group]
        style = {"marker": markers[k % len(markers)], "color": f"C{k % 10}"}
        cond = [r.cond for r in chosen]
        bits = [r.effective_bits if math.isfinite(r.effective_bits) else 0 for r in chosen]
        axes[0].scatter(cond, bits, label=group, **style)
        for reached in (True, False):
            part = [r for r in chosen if (r.passes_to_target is not None) == reached]
            passes = [r.passes_to_target if reached else r.passes for r in part]
            face = style["color"] if reached else "none"
            axes[1].scatter([r.cond for r in part], passes, marker=style["marker"],
                            facecolors=face, edgecolors=style["color"])  # fmt: skip
    axes[0].axhline(target, color="grey", ls="--", lw=1)
    labels = ("verified effective bits", f"passes to {target:g} bits (hollow: not reached)")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("cond(A) (2-norm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="category", fontsize=8)
    fig.suptitle("real-matrix suite: what the analog machine reaches, by category")
    with replacing(path) as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
