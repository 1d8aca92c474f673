"""Block solves beyond one crossbar: passes, crossbars, set-up and wall time per pass against N.

    .venv/bin/python benchmarks/blocks.py [--nodal 64 128 256 512 1024 2048 4096]
        [--spice 64 128 256 512] [--blocks blockamc jacobi] [--width 128]
        [--residual digital|analog] [--max-passes 40] [--workers K] [--json FILE]
    .venv/bin/python benchmarks/blocks.py --plot docs/blocks_scaling.png FILE.json [FILE.json ...]

K-FAC-like SPD factors (``wishart_factor(N, seed=N)``), 128-wide 8-bit crossbars, the ``auto``
scheme to 16 bits, BlockAMC and block-Jacobi preconditioners (one crossbar when N <= width).
Prints a row per run as it finishes, writes JSON (default results/bench_blocks.json) with the
provenance (ngspice version and solver) and fits ``wall time per pass ~ N^p`` per engine.

Times: ``set-up`` is programming the machine (every crossbar, BlockAMC's Schur complements
formed by the hardware, the condition estimate), ``s/pass`` the rest of the run divided by its
passes. The residual VMM is digital by default: the benchmark measures the block
preconditioner, whose analog solves make a pass; ``--residual analog`` simulates the bit-sliced
residual tiles too (much slower to build). ``--plot`` draws wall time per pass (and set-up)
against N from one or more JSON files of this script, with the fitted exponents.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.analog.units import InvUnit, VmmUnit
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.provenance import provenance
from rerinv.schemes import solve
from rerinv.schemes.loops import LOOPS
from rerinv.schemes.stopping import Run

ENGINES = ("nodal", "spice")


def run(
    n: int, engine: str, blocks: str, width: int, residual: str, max_passes: int, workers: int = 1
) -> dict:
    config = Config().with_overrides(
        [f"array.max_size={width}", f"scheme.blocks={blocks}", f"scheme.residual={residual}"]
    )
    config = config.with_values("simulation", engine=engine, max_passes=max_passes, workers=workers)
    a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
    start = time.perf_counter()
    result = solve(a, b, config, seed=0)
    wall = time.perf_counter() - start
    to_16 = next((k + 1 for k, h in enumerate(result.history) if h.effective_bits >= 16), None)
    return {
        "n": n,
        "engine": engine,
        "blocks": blocks if n > width else "one crossbar",
        "workers": workers,
        "status": result.status,
        "effective_bits": result.effective_bits,
        "passes": result.passes,
        "passes_to_16": to_16,
        "inv_solves": result.inv_solves,
        "vmm_ops": result.vmm_ops,
        "crossbars": sum(level["crossbars"] for level in result.by_level.values()),
        "levels": len(result.by_level),
        "by_level": result.by_level,
        "wall_s": wall,
        "setup_s": result.setup_time,
        "wall_per_pass_s": (wall - result.setup_time) / max(result.passes, 1),
    }


def _to_engine(unit, engine) -> None:
    """Load every crossbar of a programmed preconditioner into ``engine`` (same circuits)."""
    if isinstance(unit, InvUnit):
        unit._session.close()
        unit._session, unit.engine = engine.load(unit.crossbar.circuit), engine
    elif isinstance(unit, VmmUnit):
        for tile in unit.tiles:
            tile[3].close()
            tile[3] = engine.load(tile[2].circuit, batches=True)
    else:  # BlockInverse or BlockJacobi
        parts = getattr(unit, "units", None) or (unit.a11, unit.v12, unit.v21, unit.s)
        for part in parts:
            _to_engine(part, engine)


class _ColdEngine:
    """ngspice, parsing a crossbar for every read and removing it afterwards: one circuit in
    memory at a time (where keeping every crossbar loaded does not fit), parse time included."""

    name = "spice"

    def __init__(self):
        self.spice = get_engine("spice")

    def load(self, circuit, *, batches: bool = False):
        spice = self.spice

        class Session:
            def solve(self, inputs=None):
                with spice.load(circuit) as session:
                    return session.solve(inputs)

            def solve_batch(self, inputs):
                with spice.load(circuit, batches=True) as session:
                    return session.solve_batch(inputs)

            def close(self):
                pass

        return Session()


def run_hybrid(n: int, width: int, max_passes: int, cold: bool = False) -> dict:
    """BlockAMC programmed on the nodal engine (Schur complements and all), then every crossbar
    loaded into ngspice and the passes run there: ngspice's time per pass where its own set-up
    would take hours. The circuits are the same; both engines agree on each to ~1e-15."""
    config = Config().with_overrides(
        [f"array.max_size={width}", "scheme.blocks=blockamc", "scheme.residual=digital"]
    )
    config = config.with_values("simulation", engine="nodal", max_passes=max_passes)
    a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
    start = time.perf_counter()
    with AnalogMachine(a, config, seed=0) as machine:
        programmed = time.perf_counter()
        _to_engine(machine.unit, _ColdEngine() if cold else get_engine("spice"))
        loaded = time.perf_counter()
        run = Run(machine, b, np.linalg.solve(a, b), config, 16.0, max_passes)
        LOOPS[config.simulation.scheme](run)
        passes = len(run.history)
        end = time.perf_counter()
        counters = machine.counters
    return {
        "n": n,
        "engine": "spice",
        "blocks": "blockamc",
        "hybrid": "set-up on nodal, crossbars then loaded into ngspice, passes on ngspice"
        + (" (cold: every read parses its crossbar)" if cold else ""),
        "status": "max_passes" if passes == max_passes else "stopped",
        "effective_bits": run.history[-1].effective_bits,
        "passes": passes,
        "passes_to_16": None,
        "inv_solves": counters.inv_solves,
        "vmm_ops": counters.vmm_ops,
        "crossbars": sum(level["crossbars"] for level in counters.by_level.values()),
        "levels": len(counters.by_level),
        "by_level": {int(k): dict(v) for k, v in counters.by_level.items()},
        "wall_s": end - start,
        "setup_s": programmed - start,
        "ngspice_load_s": loaded - programmed,
        "wall_per_pass_s": (end - loaded) / max(passes, 1),
        "bits_by_pass": [h.effective_bits for h in run.history],
    }


def _points(rows: list[dict], engine: str, key: str, blocks=("blockamc",)) -> list[tuple]:
    """(N, time) of the engine's rows; a hybrid row (set-up on nodal) gives only its time per
    pass, and only at an N no full run measured."""
    full = {r["n"] for r in rows if r["engine"] == engine and "hybrid" not in r}

    def wanted(r: dict) -> bool:
        if r["engine"] != engine or r["blocks"] not in blocks:
            return False
        if "cold" in r.get("hybrid", ""):
            return False  # parse time included: not the warm machine's time per pass
        return "hybrid" not in r or (key == "wall_per_pass_s" and r["n"] not in full)

    return sorted((r["n"], r[key]) for r in rows if wanted(r))


def fit_exponent(rows: list[dict], engine: str, key: str = "wall_per_pass_s") -> float | None:
    """Slope of log(time) against log(N) over the engine's BlockAMC rows (N > width)."""
    points = _points(rows, engine, key)
    if len({n for n, _ in points}) < 2:
        return None
    n, t = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(n, t, 1)[0])


def plot(rows: list[dict], out: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    styles = {"nodal": ("tab:blue", "o"), "spice": ("tab:red", "s")}
    for engine, (color, marker) in styles.items():
        name = "ngspice" if engine == "spice" else engine
        for key, dash, what in (("wall_per_pass_s", "-", "per pass"), ("setup_s", ":", "set-up")):
            pts = _points(rows, engine, key, blocks=("blockamc", "one crossbar"))
            if not pts:
                continue
            p = fit_exponent(rows, engine, key)
            label = f"{name}, {what}" + (f" (~N^{p:.2f} for N > 128)" if p is not None else "")
            ax.loglog(*zip(*pts, strict=True), dash, color=color, marker=marker, label=label,
                      markerfacecolor="white" if key == "setup_s" else color)  # fmt: skip
        kinds = ((False, "D", "set-up formed on nodal"),
                 (True, "v", "cold: parsed per read, set-up on nodal"))  # fmt: skip
        for cold, shape, what in kinds:
            hybrid = sorted((r["n"], r["wall_per_pass_s"]) for r in rows
                            if r["engine"] == engine and "hybrid" in r
                            and ("cold" in r["hybrid"]) == cold)  # fmt: skip
            if hybrid:
                ax.loglog(*zip(*hybrid, strict=True), shape, color=color, markerfacecolor="none",
                          markersize=9, label=f"{name}, per pass, {what}")  # fmt: skip
        jacobi = _points(rows, engine, "wall_per_pass_s", blocks=("jacobi",))
        if jacobi:
            ax.loglog(*zip(*jacobi, strict=True), "x", color=color, alpha=0.6,
                      label=f"{name}, block-Jacobi, per pass")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (matrix size; 128-wide crossbars)")
    ax.set_ylabel("wall time (s)")
    ax.set_title("Solve to 16 bits on 128-wide crossbars: time per pass and set-up")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.text(0.01, 0.01, note, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def _print_row(r: dict) -> None:
    print(
        f"{r['n']:>5} {r['engine']:>6} {r['blocks']:>12} {r['status']:>10} "
        f"{r['effective_bits']:>5.1f} {r['passes']:>6} {r['passes_to_16'] or '-':>5} "
        f"{r['inv_solves']:>7} {r['vmm_ops']:>8} {r['crossbars']:>6} {r['setup_s']:>8.2f} "
        f"{r['wall_per_pass_s']:>8.3f} {r['wall_s']:>8.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodal", type=int, nargs="*", default=[256, 512, 1024, 2048])
    parser.add_argument("--spice", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--blocks", nargs="+", default=["blockamc", "jacobi"],
                        choices=("blockamc", "jacobi"))  # fmt: skip
    parser.add_argument("--width", type=int, default=128, help="crossbar size (array.max_size)")
    parser.add_argument("--residual", choices=("digital", "analog"), default="digital")
    parser.add_argument("--max-passes", type=int, default=40)
    parser.add_argument(
        "--spice-passes", type=int, nargs="*", default=[], metavar="N",
        help="program on nodal, then run --hybrid-passes passes on ngspice",
    )  # fmt: skip
    parser.add_argument("--hybrid-passes", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="--spice-passes parse every read")
    parser.add_argument("--workers", type=int, default=1, help="simulation.workers of the runs")
    parser.add_argument("--json", default="results/bench_blocks.json")
    parser.add_argument("--plot", metavar="PNG", help="plot the JSON files given, run nothing")
    parser.add_argument("files", nargs="*", help="JSON files of this script (with --plot)")
    args = parser.parse_args()
    if args.plot:
        data = [json.loads(Path(f).read_text()) for f in args.files]
        rows = [r for d in data for r in d["rows"]]
        versions = {d["provenance"].get("ngspice_version") for d in data}
        versions -= {None, "not used"}
        note = (f"benchmarks/blocks.py; wishart_factor(N, seed=N), auto scheme, digital residual; "
                f"ngspice {', '.join(sorted(versions)) or '-'} (KLU)")  # fmt: skip
        plot(rows, Path(args.plot), note)
        for engine in ENGINES:
            p = fit_exponent(rows, engine)
            if p is not None:
                print(f"{engine}: wall time per pass ~ N^{p:.2f}")
        return
    print(
        f"{'N':>5} {'engine':>6} {'blocks':>12} {'status':>10} {'bits':>5} {'passes':>6} "
        f"{'to16':>5} {'INV':>7} {'VMM ops':>8} {'xbars':>6} {'set-up':>8} {'s/pass':>8} "
        f"{'total s':>8}",
        flush=True,
    )
    rows = []
    for engine, sizes in zip(ENGINES, (args.nodal, args.spice), strict=True):
        for n in sizes:
            for blocks in args.blocks if n > args.width else args.blocks[:1]:
                rows.append(
                    run(n, engine, blocks, args.width, args.residual, args.max_passes, args.workers)
                )
                _print_row(rows[-1])
    for n in args.spice_passes:
        rows.append(run_hybrid(n, args.width, args.hybrid_passes, args.cold))
        r = rows[-1]
        bits = ", ".join(f"{b:.2f}" for b in r["bits_by_pass"])
        print(f"{n:>5}  spice passes only (set-up on nodal {r['setup_s']:.1f} s, ngspice load "
              f"{r['ngspice_load_s']:.1f} s): {r['passes']} passes, {r['wall_per_pass_s']:.2f} "
              f"s/pass, bits {bits}", flush=True)  # fmt: skip
    fits = {e: fit_exponent(rows, e) for e in ENGINES}
    for engine, p in fits.items():
        if p is not None:
            print(f"{engine}: wall time per pass ~ N^{p:.2f} (BlockAMC)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "provenance": provenance(
            shlex.join(["benchmarks/blocks.py", *sys.argv[1:]]),
            ngspice=bool(args.spice or args.spice_passes),
        ),  # fmt: skip
        "width": args.width,
        "residual": args.residual,
        "rows": rows,
        "fitted_exponent": fits,
    }
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
