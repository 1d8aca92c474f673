"""``rerinv verify``: the main job (``make demo``).

On the built-in default configuration and workload (K-FAC-like factors), every scheme runs
through ngspice in a short Monte Carlo; the results go to ``results/results.h5``, the report to
``results/report.html``, and a summary table per scheme (median bits, share of trials reaching
the target) to the terminal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.montecarlo import SweepSpec, run_monte_carlo
from rerinv.report import write_report
from rerinv.schemes import SCHEMES
from rerinv.store import load_results


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


def verify(
    config: Config,
    out_dir: str | Path = "results",
    *,
    trials: int = 10,
    sizes: tuple[int, ...] = (16, 32),
    engine: str = "spice",
    workers: int | None = None,
    seed: int = 0,
    resume: bool = False,
) -> list[dict]:
    """Run the default verification; returns the per-scheme summary rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.h5"
    if results_path.exists() and not resume:
        results_path.unlink()
    spec = SweepSpec(
        base=config,
        axes=(("scheme", tuple(SCHEMES)), ("n", tuple(str(n) for n in sizes))),
        trials=trials,
        engine=engine,
        master_seed=seed,
    )
    run_monte_carlo(
        spec, results_path, workers=workers, resume=resume, command_line="rerinv verify"
    )
    write_report(results_path, out_dir / "report.html")
    return summarise(results_path)


def cmd_verify(args: argparse.Namespace) -> int:
    from rerinv.cli import _config

    config = _config(args)
    sizes = tuple(args.n)
    print(
        f"rerinv verify: schemes {', '.join(SCHEMES)} x N = {', '.join(map(str, sizes))}, "
        f"{args.trials} trials each, engine {args.engine}, K-FAC-like factors; "
        f"{config.device.bits}-bit INV cells, {config.converters.dac_bits}-bit DAC, "
        f"{config.converters.adc_bits}-bit ADC, op-amp {config.opamp.model}",
        flush=True,
    )
    rows = verify(
        config,
        args.out,
        trials=args.trials,
        sizes=sizes,
        engine=args.engine,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
    )
    target = rows[0]["target_bits"] if rows else 16
    print(
        f"\n{'scheme':>8} {'trials':>6} {'median bits':>11} {'min bits':>8} "
        f"{'reached ' + format(target, 'g'):>11} {'median passes':>13}"
    )
    for r in rows:
        print(
            f"{r['scheme']:>8} {r['trials']:>6} {r['median_bits']:>11.2f} {r['min_bits']:>8.2f} "
            f"{r['reached_share']:>10.0%} {r['median_passes']:>13.1f}"
        )
    out = Path(args.out)
    print(f"\nreport: {out / 'report.html'}   results: {out / 'results.h5'}")
    return 0


def add_verify_command(subparsers) -> argparse.ArgumentParser:
    from rerinv.cli import _common

    parser = subparsers.add_parser(
        "verify", help="the main job: every scheme through ngspice, short Monte Carlo, report"
    )
    _common(parser)
    parser.add_argument("--out", default="results", help="output folder (default results/)")
    parser.add_argument("--trials", type=int, default=10, help="trials per scheme and size")
    parser.add_argument("--n", type=int, nargs="+", default=[16, 32], help="matrix sizes")
    parser.add_argument("--engine", choices=("spice", "nodal"), default="spice")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    parser.add_argument("--seed", type=int, default=0, help="master seed")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted run")
    parser.set_defaults(func=cmd_verify)
    return parser


if __name__ == "__main__":  # pragma: no cover
    from rerinv.cli import main

    sys.exit(main(["verify", *sys.argv[1:]]))
