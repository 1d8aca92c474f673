"""``rerinv amplifier``: characterise the transistor-level SKY130 amplifier by ngspice."""

from __future__ import annotations

import argparse
import json

from rerinv.cli.common import (
    add_config_options,
    add_force_option,
    config_from,
    positive_int,
    seed_value,
    typed_command,
)
from rerinv.config import SKY130_CORNERS
from rerinv.outputs import atomic_write, check_output


def cmd_amplifier(args: argparse.Namespace) -> int:
    from rerinv.studies.amplifier import characterise_corners, report, table

    config = config_from(args)
    out = None
    if args.json:
        out = check_output(args.json, force=args.force, inputs=[args.config], what="--json")
    rows = characterise_corners(
        config, tuple(args.corners), mismatch_trials=args.mismatch_trials, seed=args.seed
    )
    oa = config.opamp
    print(
        f"ota_sky130, SKY130 1.8 V devices, {oa.supply:g} V supply, {oa.temperature:g} C, "
        f"1 pF load; offset sigma over {args.mismatch_trials} seeded mismatch draws "
        f"(seed {args.seed})"
    )
    print(table(rows, markdown=args.markdown))
    if out is not None:
        atomic_write(out, json.dumps(report(rows, config, typed_command(args)), indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "amplifier",
        help="characterise the transistor-level SKY130 op-amp by ngspice (table per corner)",
        description="DC gain, GBW, phase margin, output resistance, offset (nominal and "
        "mismatch sigma), swing, slew and power of ota_sky130 at each corner, at "
        "opamp.temperature and opamp.supply.",
    )
    add_config_options(parser)
    parser.add_argument(
        "--corners",
        nargs="+",
        choices=SKY130_CORNERS,
        default=["tt", "ss", "ff"],
        help="process corners (default: tt ss ff)",
    )
    parser.add_argument(
        "--mismatch-trials",
        type=positive_int,
        default=200,
        help="mismatch Monte Carlo draws per corner for the offset sigma (default 200)",
    )
    parser.add_argument("--seed", type=seed_value, default=0, help="mismatch seed (default 0)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    add_force_option(parser)
    parser.set_defaults(func=cmd_amplifier)
