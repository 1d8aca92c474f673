"""Command-line interface: ``rerinv`` and ``python -m rerinv`` are the same program.

The CLI is a thin shell: each sub-command builds a :class:`~rerinv.config.Config` from its
options and calls the API. Domain modules never import this package.
"""

from __future__ import annotations

import argparse
import os
import sys

# One BLAS (OpenMP) thread unless the user sets OMP_NUM_THREADS: rerinv's numpy work is small
# vectors and matrices between ngspice analyses, and the threads OpenBLAS starts for it slowed
# an N = 64 `refine` through ngspice by 16 % on a 2-core machine (docs/benchmarks.md). It must
# be set before numpy loads its BLAS, hence here, before any import that loads numpy.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from rerinv.errors import RerinvError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from rerinv.cli.common import Parser  # one-line argparse errors, exit status 2

    parser = Parser(
        prog="rerinv",
        description="Circuit-level verification of matrix inversion on ReRAM crossbars.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    # imported here, not at the top: `python -m rerinv.cli.mc` must not find its module loaded
    from rerinv.cli import amplifier, mc, solve, studies, timing, train

    solve.register(commands)
    mc.register(commands)
    studies.register(commands)
    train.register(commands)
    timing.register(commands)
    amplifier.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command as typed: resume hints repeat it
    try:
        return args.func(args)
    except RerinvError as exc:
        print(f"rerinv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerinv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        sys.stderr.close()
        return 0
    except MemoryError:
        print("rerinv: error: out of memory; make the run smaller", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment (a file, a folder, a disk), not the input
        where = f": {exc.filename}" if exc.filename else ""
        print(f"rerinv: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
