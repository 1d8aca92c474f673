"""What a Monte Carlo run computes: a base configuration, swept axes and trials per point.

Every axis is a configuration key ``section.key`` (``simulation.scheme``, ``device.sigma_rel``,
...); each point's configuration is the base with that point's values applied, and its
``[simulation]`` section says what its trials run.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.studies.mc.results import PointRecord, RunDescription

#: Short axis names accepted by :func:`parse_sweep` (and ``--sweep``) for ``simulation.*``.
AXIS_ALIASES = {
    "n": "simulation.n",
    "scheme": "simulation.scheme",
    "engine": "simulation.engine",
    "target_bits": "simulation.target_bits",
    "max_passes": "simulation.max_passes",
}
#: Most trials one run may hold (points x trials): the store keeps per-trial arrays in memory
#: (about 40 bytes a trial plus the histories), and 10 million trials of even the nodal engine
#: take days.
MAX_TRIALS = 10_000_000
#: Most sweep points one run may hold: each point's configuration is built, checked and stored
#: as TOML before the first trial (about 1 ms a point), so 10,000 points start in about 10 s.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class SweepSpec:
    """What a Monte Carlo run computes (everything that defines its stored results).

    Parameters
    ----------
    base : Config
        Configuration every point starts from (``base.simulation`` gives the scheme, engine,
        matrix size, target bits and pass budget where no axis sweeps them).
    axes : tuple of (name, values)
        Swept axes in order; ``name`` is ``section.key`` (``simulation.scheme`` included) and
        ``values`` are the texts given on the command line. Build with :func:`parse_sweep`.
    trials : int
        Trials per point.
    master_seed : int
        Root of every trial's seed, in ``[0, 2**63)``.
    """

    base: Config = field(default_factory=Config)
    axes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    trials: int = 1
    master_seed: int = 0

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise InputError(f"trials must be at least 1, got {self.trials}")
        if self.trials > MAX_TRIALS:
            raise InputError(
                f"{self.trials} trials per point: at most {MAX_TRIALS:,} trials in one run; "
                "split the study into several runs"
            )
        if not 0 <= self.master_seed < 2**63:
            raise InputError(f"the master seed must be in [0, 2**63), got {self.master_seed}")
        for name, _ in self.axes:
            if name in AXIS_ALIASES:
                raise InputError(f"axis {name!r}: use its full name {AXIS_ALIASES[name]!r}")
        points = self.n_points
        shape = " x ".join(str(len(values)) for _, values in self.axes) or "1"
        if points > MAX_POINTS:
            raise InputError(
                f"the sweep has {points:,} points ({shape} values) x {self.trials} trials = "
                f"{points * self.trials:,} trials: at most {MAX_POINTS:,} points in one run "
                "(each point's configuration is built and stored first); sweep fewer values, or "
                "split the sweep into several runs (one --out per value of an axis)"
            )
        if points * self.trials > MAX_TRIALS:
            raise InputError(
                f"{points:,} points ({shape} values) x {self.trials:,} trials = "
                f"{points * self.trials:,} trials: at most {MAX_TRIALS:,} in one run; split the "
                "study into several runs"
            )

    @property
    def n_points(self) -> int:
        """Number of sweep points (the product of the axes' lengths)."""
        return math.prod(len(values) for _, values in self.axes)

    def points(self) -> list[PointRecord]:
        """The cartesian product of the axes, first axis slowest."""
        names = [name for name, _ in self.axes]
        records = []
        for index in itertools.product(*(range(len(values)) for _, values in self.axes)):
            chosen = {name: values[i] for (name, values), i in zip(self.axes, index, strict=True)}
            config = self.base.with_overrides([f"{k}={v}" for k, v in chosen.items()])
            records.append(
                PointRecord(
                    index=tuple(index),
                    label=", ".join(f"{k}={chosen[k]}" for k in names) or "base",
                    config_toml=config.to_toml(),
                )
            )
        return records

    def description(self) -> RunDescription:
        return RunDescription(
            base_config_toml=self.base.to_toml(),
            axes=self.axes,
            points=tuple(self.points()),
            trials=self.trials,
            master_seed=self.master_seed,
        )


def parse_sweep(
    assignments: list[str] | tuple[str, ...], base: Config
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse ``--sweep name=v1,v2,...`` texts into axes, validating every value.

    ``name`` is ``section.key``; the short names of :data:`AXIS_ALIASES` (``n``, ``scheme``,
    ``engine``, ...) stand for their ``simulation.*`` keys.

    Raises
    ------
    InputError, ConfigError
        Malformed text, a repeated axis or value, or a value the configuration rejects.
    """
    axes: list[tuple[str, tuple[str, ...]]] = []
    for text in assignments:
        name, sep, raw = text.partition("=")
        name = AXIS_ALIASES.get(name.strip(), name.strip())
        values = tuple(v.strip() for v in raw.split(","))
        if not sep or not name or not all(values):
            raise InputError(
                f"--sweep {text!r}: expected name=v1,v2,... (e.g. device.sigma_rel=0,0.01)"
            )
        if name in (a for a, _ in axes):
            raise InputError(f"--sweep {name} is given twice; put all its values in one --sweep")
        if len(set(values)) != len(values):
            raise InputError(f"--sweep {text!r}: a value is repeated")
        for value in values:
            try:
                base.with_overrides([f"{name}={value}"])
            except RerinvError as exc:
                raise type(exc)(f"--sweep {name}={value}: {exc}") from exc
        axes.append((name, values))
    return tuple(axes)


def describe_mismatch(stored: RunDescription, given: RunDescription) -> list[str]:
    """What differs between the run a file was written for and ``given`` (empty if nothing)."""
    problems = []
    if stored.base_config_toml != given.base_config_toml:
        old = Config.from_toml(stored.base_config_toml).to_dict()
        new = Config.from_toml(given.base_config_toml).to_dict()
        problems += [
            f"configuration {section}.{key}: stored {old[section][key]!r}, given {value!r}"
            for section, values in new.items()
            for key, value in values.items()
            if old[section][key] != value
        ] or ["base configuration text differs"]
    for key in ("axes", "trials", "master_seed", "trial_function"):
        if getattr(stored, key) != getattr(given, key):
            problems.append(f"{key}: stored {getattr(stored, key)}, given {getattr(given, key)}")
    if not problems and stored.points != given.points:
        problems.append("the per-point configurations differ (written by another rerinv version?)")
    return problems
