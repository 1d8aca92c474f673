"""Command-line interface: ``rerinv`` and ``python -m rerinv`` are the same program.

The CLI is a thin shell: each sub-command builds a :class:`~rerinv.config.Config` from its
options and calls the API. Domain modules never import this package.
"""

from __future__ import annotations

import argparse
import sys

from rerinv.cli import mc, solve, studies
from rerinv.errors import RerinvError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerinv",
        description="Circuit-level verification of matrix inversion on ReRAM crossbars.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    solve.register(commands)
    mc.register(commands)
    studies.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RerinvError as exc:
        print(f"rerinv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerinv: interrupted", file=sys.stderr)
        return 130
