"""``rerinv settle``, ``calibrate`` and ``export``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from rerinv.cli.common import (
    add_config_options,
    add_force_option,
    config_from,
    positive_int,
    seed_value,
)
from rerinv.errors import InputError
from rerinv.export import TARGETS
from rerinv.outputs import atomic_write, check_output


def add_settle_command(subparsers) -> argparse.ArgumentParser:
    """Register ``settle`` on the ``rerinv`` sub-command parsers (``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "settle",
        help="transient settling study: step response through ngspice vs the prediction",
        description="Step the inputs of an INV or VMM crossbar, simulate the transient with "
        "ngspice (single_pole op-amps) and compare the settling time with ln(1/eps) / "
        "(2 pi GBW lambda_min). Exit status 0 if settled, 1 otherwise.",
    )
    add_config_options(parser)
    parser.add_argument("--kind", choices=("inv", "vmm"), default="inv")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--matrix", help=".npy, .csv, .txt or .mtx file")
    source.add_argument(
        "--n", type=int, help="size of a K-FAC-like factor drawn from --seed (default "
        "simulation.n: 16)",
    )  # fmt: skip
    parser.add_argument("--eps", type=float, help="band / ADC range (default half an LSB)")
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="seed of A (with --n), b, devices"
    )
    parser.add_argument(
        "--excite", choices=("random", "slowest"), default="random",
        help="step of a random b, or onto the slowest mode (the formula's worst case)",
    )  # fmt: skip
    parser.add_argument("--out", metavar="FILE.h5", help="write the waveforms (HDF5)")
    parser.add_argument("--plot", metavar="FILE.png", help="plot the waveforms")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_force_option(parser)
    parser.set_defaults(func=cmd_settle)
    return parser


def cmd_settle(args: argparse.Namespace) -> int:
    """Handler of ``rerinv settle``: a summary, or one strict-JSON object with ``--json``
    (``null`` for a number that does not exist, e.g. the settling time of an unstable loop).
    ``--n`` is ``simulation.n``; without ``--matrix`` the matrix has that size."""
    from rerinv.matrices import load_matrix
    from rerinv.studies.transient import settle

    config = config_from(args)
    inputs = [args.matrix, args.config]
    if args.out is not None and args.plot is not None and Path(args.out) == Path(args.plot):
        raise InputError(f"--out and --plot are the same file ({args.out}); give two files")
    for option in ("out", "plot"):
        if getattr(args, option) is not None:
            check_output(getattr(args, option), force=args.force, inputs=inputs,
                         what=f"--{option}")  # fmt: skip
    matrix = config.simulation.n if args.matrix is None else load_matrix(args.matrix)
    r = settle(args.kind, matrix, config, eps=args.eps, seed=args.seed, excite=args.excite,
               out=args.out, plot=args.plot, command_line=_settle_command_line(args))  # fmt: skip
    if args.json:
        print(json.dumps(r.to_dict(), allow_nan=False))
        return 0 if r.status == "settled" else 1
    what = "lambda_min(D^-1 G)" if r.kind == "inv" else "smallest TIA feedback factor"
    lines = [
        f"rerinv settle: {r.kind.upper()} N = {r.n}, {args.excite} step, op-amp GBW "
        f"{config.opamp.gbw:.4g} Hz; status {r.status}: {r.message}",
        f"  band          eps = {r.eps:.4g} of the ADC range = {1e3 * r.eps_abs:.4g} mV",
        f"  measured      {_us(r.settling_time)}  (window {_us(r.t_stop).strip()})",
        f"  predicted     {_us(r.predicted)}  ln(1/eps) / (2 pi GBW {r.lambda_min:.4g}), {what};"
        f" measured / predicted = {r.settling_time / r.predicted:.3f}",
        f"  small-signal  {_us(r.predicted_small_signal)}  slowest mode of every amplifier pole;"
        f" inverter pole matters: {'yes' if r.inverter_pole_matters else 'no'}",
        f"  final vs DC   max |V(t_stop) - V_dc| = {r.max_deviation:.3g} V;"
        f" transient wall time {r.wall_time:.2f} s",
    ]
    print("\n".join(lines))
    return 0 if r.status == "settled" else 1


def _us(seconds: float) -> str:
    return f"{1e6 * seconds:9.4f} us"


def _settle_command_line(args: argparse.Namespace) -> str:
    """The ``settle`` command line of ``args``, stored as provenance with ``--out``."""
    words = ["rerinv", "settle", "--kind", args.kind]
    for flag in ("preset", "config"):
        if getattr(args, flag, None):
            words += [f"--{flag}", getattr(args, flag)]
    for value in args.overrides:
        words += ["--set", value]
    for flag in ("matrix", "n", "eps"):
        if getattr(args, flag) is not None:
            words += [f"--{flag}", str(getattr(args, flag))]
    words += ["--seed", str(args.seed), "--excite", args.excite]
    for flag in ("out", "plot"):
        if getattr(args, flag) is not None:
            words += [f"--{flag}", getattr(args, flag)]
    return shlex.join(words + ["--json"] * args.json)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Handler of ``rerinv calibrate``: run the studies, write the card, print a summary."""
    from rerinv.studies.calibrate import calibrate

    config = config_from(args)
    out = check_output(args.out, force=args.force, inputs=[args.config])  # before minutes of work
    card = calibrate(config, n=args.n, trials=args.trials, seed=args.seed)
    atomic_write(out, json.dumps(card, indent=2) + "\n")
    fit = card["timing"]["inv_settle_fit"]
    if fit:
        print(
            f"INV settling: t = {fit['a']:.3f} x formula (+-{fit['a_std']:.3f}, "
            f"{fit['n_points']} cases, worst {fit['max_rel_error']:.1%})"
        )
    for name, s in card["accuracy"]["schemes"].items():
        print(
            f"{name:>8}: {s['bits_per_pass'] or 0:.2f} bits/pass, passes to 16: "
            f"{s['passes_to_16_median']}, success {s['success_rate']:.0%}"
        )
    print(f"wrote {args.out}")
    return 0


def add_calibrate_command(subparsers) -> argparse.ArgumentParser:
    """Register ``calibrate`` on the ``rerinv`` sub-command parsers; returns the new parser."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fill a parameter card from simulations",
        description="Fill a parameter card (docs/parameter-card.md) from simulations: "
        "settling times through ngspice, the accuracy of one INV solve and one VMM, per scheme "
        "the passes and costs to 16 bits, and energy; read by `rerinv timing --card` and "
        "`rerinv export`.",
    )
    add_config_options(parser)
    parser.add_argument("--out", default="params.json", help="card to write (JSON)")
    parser.add_argument(
        "--n", type=positive_int, default=32, help="matrix size of the accuracy studies"
    )
    parser.add_argument(
        "--trials", type=positive_int, default=20, help="Monte Carlo trials per scheme"
    )
    parser.add_argument("--seed", type=seed_value, default=0)
    add_force_option(parser)
    parser.set_defaults(func=cmd_calibrate)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    """Handler of ``rerinv export PARAMS.json --to TARGET [--out PATH]``."""
    from rerinv.card import load_card
    from rerinv.export import export_card

    card_path = Path(args.card)
    card = load_card(card_path)
    out = Path(args.out) if args.out else None
    result = export_card(card, args.to, out, card_path=card_path, force=args.force)
    print(result.summary())
    return 0


def add_export_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` on the ``rerinv`` subcommand parser; returns the new parser."""
    parser = subparsers.add_parser(
        "export",
        help="export a parameter card to CrossSim, aihwkit, NeuroSim or MNSIM",
        description="Write a calibrated parameter card in another simulator's format and list"
        " the card fields that format cannot express.",
    )
    parser.add_argument("card", metavar="PARAMS.json", help="parameter card (rerinv calibrate)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="target format")
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="output file (default: next to the card, e.g. params.crosssim.json)",
    )
    add_force_option(parser)
    parser.set_defaults(func=cmd_export)
    return parser


def register(commands: argparse._SubParsersAction) -> None:
    add_settle_command(commands)
    add_calibrate_command(commands)
    add_export_command(commands)
