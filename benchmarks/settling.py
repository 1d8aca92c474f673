"""Transient settling versus N and lambda_min: the settling time ngspice measures on a step
response, against ln(1/eps) / (2 pi GBW lambda_min(D^-1 G)) and the small-signal model of
every amplifier pole, with the transient's wall time.

    .venv/bin/python benchmarks/settling.py [--sizes 8 16 32 64 128] [--all-cases-up-to 64]

Cases per N (default configuration, eps = half an 8-bit ADC LSB):

- ``kfac/random``: ``wishart_factor(N, seed=N)`` equilibrated, ``b = random_rhs(N, seed=N+1)``;
- ``kfac/slowest``: the same matrix, step onto the slowest mode of D^-1 G (the worst case);
- ``pos0.3/slowest``, ``pos0.01/slowest``: SPD matrices with positive entries
  ``B B^T / 2N + delta I`` (B uniform in [0, 1], seed N), delta = 0.3 and 0.01;
- ``lap/slowest``: the 1-D Laplacian (``classic_matrix("laplacian_1d", N)``), where the
  inverters' lag slows the loop and the formula fails.

Above ``--all-cases-up-to`` only ``kfac/slowest`` and ``pos0.01/slowest`` run: one transient
at N = 128 takes 80-90 s (Sparse 1.3 refactors the dense crossbar block at every time step),
and the default sweep then takes about 3.5 min on 2 cores.
Prints a table; writes JSON (default results/bench_settling.json) and a plot (default
docs/settling_measured_vs_predicted.png).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.engines.ngspice import ngspice_version
from rerinv.matrices import classic_matrix, wishart_factor
from rerinv.provenance import provenance
from rerinv.studies.transient import settle

CASES = ("kfac/random", "kfac/slowest", "pos0.3/slowest", "pos0.01/slowest", "lap/slowest")
LARGE_CASES = ("kfac/slowest", "pos0.01/slowest")


def positive_spd(n: int, delta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.0, 1.0, (n, 2 * n))
    return b @ b.T / (2 * n) + delta * np.eye(n)


def measure(n: int, case: str, config: Config) -> dict:
    family, excite = case.split("/")
    if family == "kfac":
        a = wishart_factor(n, seed=n)
    elif family == "lap":
        a = classic_matrix("laplacian_1d", n)
    else:
        a = positive_spd(n, float(family.removeprefix("pos")), seed=n)
    start = time.perf_counter()
    r = settle("inv", a, config, seed=n, excite=excite)
    total = time.perf_counter() - start
    return {
        "n": n,
        "case": case,
        "status": r.status,
        "lambda_min": r.lambda_min,
        "predicted_s": r.predicted,
        "predicted_small_signal_s": r.predicted_small_signal,
        "measured_s": r.settling_time,
        "ratio": r.settling_time / r.predicted,
        "ratio_small_signal": r.settling_time / r.predicted_small_signal,
        "inverter_pole_matters": r.inverter_pole_matters,
        "max_final_minus_dc_V": r.max_deviation,
        "time_points": int(r.waveforms.time.size),
        "t_stop_s": r.t_stop,
        "transient_wall_s": r.wall_time,
        "total_wall_s": total,
    }


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    for ax, key, title in (
        (axes[0], "predicted_s", "ln(1/eps) / (2 pi GBW lambda_min)"),
        (axes[1], "predicted_small_signal_s", "small-signal model (every amplifier pole)"),
    ):
        for flagged, color, label in ((False, "tab:blue", "no"), (True, "tab:red", "yes")):
            for excite, marker in (("slowest", "o"), ("random", "^")):
                pick = [
                    r
                    for r in rows
                    if r["inverter_pole_matters"] == flagged and r["case"].endswith(excite)
                ]
                if pick:
                    ax.loglog(
                        [1e6 * r[key] for r in pick],
                        [1e6 * r["measured_s"] for r in pick],
                        marker,
                        color=color,
                        mfc="none" if excite == "random" else color,
                        label=f"{excite} step, inverter pole matters: {label}",
                    )
        low, high = ax.get_xlim()
        grid = np.array([low, high])
        ax.plot(grid, grid, "k-", lw=0.8)
        ax.fill_between(grid, 0.75 * grid, 1.25 * grid, color="0.85", zorder=0, label="+-25 %")
        ax.set_xlabel(f"predicted (us): {title}", fontsize=8)
        ax.set_ylabel("measured settling time (us)")
        ax.legend(fontsize=6)
    sizes = sorted({r["n"] for r in rows})
    wall = [max(r["transient_wall_s"] for r in rows if r["n"] == n) for n in sizes]
    points = [max(r["time_points"] for r in rows if r["n"] == n) for n in sizes]
    axes[2].loglog(sizes, wall, "ko-")
    for n, w, p in zip(sizes, wall, points, strict=True):
        axes[2].annotate(f"{p} pts", (n, w), fontsize=7, textcoords="offset points", xytext=(4, -8))
    axes[2].set_xlabel("N")
    axes[2].set_ylabel(f"transient wall time (s), ngspice {ngspice_version()}")
    axes[2].set_xticks(sizes, [str(n) for n in sizes])
    fig.suptitle("INV crossbar step response, default configuration (GBW 100 MHz, eps 2^-8)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--all-cases-up-to", type=int, default=64, metavar="N")
    parser.add_argument("--json", default="results/bench_settling.json")
    parser.add_argument("--plot", default="docs/settling_measured_vs_predicted.png")
    args = parser.parse_args()
    config = Config()
    print(
        f"ngspice {ngspice_version()}, {platform.processor() or platform.machine()}, "
        f"INV crossbar, op-amp {config.opamp.model} GBW {config.opamp.gbw:g} Hz, "
        f"eps = 2^-{config.converters.adc_bits}"
    )
    print(
        f"{'N':>4} {'case':<16} {'status':<8} {'lam_min':>8} {'pred us':>8} {'ss us':>8} "
        f"{'meas us':>8} {'m/pred':>6} {'m/ss':>6} {'inv':>3} {'points':>6} {'tran s':>7} "
        f"{'total s':>7}"
    )
    rows = []
    start = time.perf_counter()
    for n in args.sizes:
        for case in CASES if n <= args.all_cases_up_to else LARGE_CASES:
            r = measure(n, case, config)
            rows.append(r)
            print(
                f"{n:>4} {case:<16} {r['status']:<8} {r['lambda_min']:>8.3g} "
                f"{1e6 * r['predicted_s']:>8.4g} {1e6 * r['predicted_small_signal_s']:>8.4g} "
                f"{1e6 * r['measured_s']:>8.4g} {r['ratio']:>6.3f} {r['ratio_small_signal']:>6.3f} "
                f"{'yes' if r['inverter_pole_matters'] else 'no':>3} {r['time_points']:>6} "
                f"{r['transient_wall_s']:>7.2f} {r['total_wall_s']:>7.2f}",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    print(f"total {elapsed:.1f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "provenance": provenance(shlex.join([sys.executable, *sys.argv])),
                "machine": platform.machine(),
                "config": config.to_toml(),
                "total_s": elapsed,
                "rows": rows,
            },
            indent=2,
        )
    )
    plot(rows, args.plot)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
