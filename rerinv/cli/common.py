"""Options every sub-command shares, and how they become a :class:`~rerinv.config.Config`."""

from __future__ import annotations

import argparse
import shlex

from rerinv.config import ENGINES, SCHEMES, Config, load_config
from rerinv.presets import preset_names

#: Largest seed: numpy's SeedSequence takes any non-negative int; 2**63 - 1 fits every store.
MAX_SEED = 2**63 - 1


class Parser(argparse.ArgumentParser):
    """``argparse`` with a one-line error (``rerinv solve: error: ...``), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def seed_value(text: str) -> int:
    """argparse type of ``--seed``: an integer in ``[0, 2**63)``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a seed is a non-negative integer, got {text!r}"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is an integer in [0, 2**63), got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type of counts (``--trials``, ``--workers``, sizes): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def add_force_option(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace existing outputs (never an input of the same command)."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (an input of the command is never replaced)",
    )


def typed_command(args: argparse.Namespace, prog: str = "rerinv") -> str | None:
    """The command line the user typed (``args.argv``, kept by :func:`rerinv.cli.main`)
    without ``--force`` and ``--resume``: with ``--resume`` appended it completes an
    interrupted run. None when the arguments were not parsed by ``main``."""
    argv = getattr(args, "argv", None)
    if argv is None:
        return None
    return shlex.join([*prog.split(), *(w for w in argv if w not in ("--force", "--resume"))])


#: ``--flag`` -> ``simulation.<key>``: shorthands for ``--set simulation.<key>=...``.
SIMULATION_FLAGS = {
    "engine": "engine",
    "scheme": "scheme",
    "target_bits": "target_bits",
    "max_passes": "max_passes",
    "n": "n",
    "engine_workers": "workers",  # not "workers": rerinv mc/train --workers are their own
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeatable ``--set section.key=value``."""
    parser.add_argument(
        "--preset",
        choices=preset_names(),
        help="start from a shipped preset instead of the built-in default",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration (default: built-in)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override one configuration value; repeatable (e.g. device.sigma_rel=0.01)",
    )


def add_simulation_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """Shorthand flags for ``simulation.*`` (default: the configuration's value)."""
    add = parser.add_argument
    for name in names:
        if name == "engine":
            add("--engine", choices=ENGINES, help="engine (default simulation.engine: spice)")
        elif name == "scheme":
            add("--scheme", choices=SCHEMES, help="scheme (default simulation.scheme: auto)")
        elif name == "target_bits":
            add("--target-bits", type=float, help="bits to reach (default 16)")
        elif name == "max_passes":
            add("--max-passes", type=int, help="pass budget (default 40)")
        elif name == "n":
            add("--n", type=int, help="size of the generated matrix (default 16)")
        elif name == "workers":
            add(
                "--workers",
                dest="engine_workers",
                type=int,
                help="engine processes for independent solves (default 1: in-process; 0: one "
                "per CPU)",
            )
        else:  # pragma: no cover - programming error
            raise ValueError(name)


def simulation_overrides(args: argparse.Namespace) -> list[str]:
    """The ``simulation.*`` assignments the shorthand flags of ``args`` make."""
    return [
        f"simulation.{key}={getattr(args, flag)}"
        for flag, key in SIMULATION_FLAGS.items()
        if getattr(args, flag, None) is not None
    ]


def config_from(args: argparse.Namespace) -> Config:
    """The configuration of parsed arguments: file (or built-in), ``--set``, then flags."""
    return load_config(
        args.config,
        [*args.overrides, *simulation_overrides(args)],
        preset=getattr(args, "preset", None),
    )
