"""The golden regression set: stored step responses that the current code must reproduce.

The golden waveforms (``waveforms/*.h5`` at the top of the checkout, found through
:func:`rerinv.resources.golden_dir`) are the default configuration's step responses of INV
and VMM crossbars, N = 4 and 8, seed 0. Regenerate them after a deliberate change of the
circuits or models with::

    .venv/bin/python -m rerinv.cli.studies --regenerate-golden

and check the current code against them with ``--check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.resources import golden_dir
from rerinv.studies.transient.settle import settle, step_case, write_settle_hdf5
from rerinv.studies.transient.simulate import read_waveforms, simulate_step

GOLDEN_DIR = golden_dir()
GOLDEN_CASES = (("inv", 4), ("inv", 8), ("vmm", 4), ("vmm", 8))  #: (kind, N), seed 0
GOLDEN_SEED = 0
GOLDEN_POINTS = 401
#: Largest allowed |V_new(t) - V_golden(t)| over every stored node and time (V): a quarter
#: of the default settling band (half an 8-bit LSB of 1 V = 3.9 mV).
GOLDEN_TOLERANCE = 1e-3


def golden_path(kind: str, n: int, directory: str | Path = GOLDEN_DIR) -> Path:
    """The file of the golden case ``(kind, n)``."""
    return Path(directory) / f"{kind}_n{n}.h5"


def regenerate_golden(
    directory: str | Path = GOLDEN_DIR, command_line: str | None = None
) -> list[Path]:
    """Simulate every :data:`GOLDEN_CASES` with the default configuration and store it,
    resampled to :data:`GOLDEN_POINTS` times."""
    config = Config()
    Path(directory).mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, n in GOLDEN_CASES:
        report = settle(kind, n, config, seed=GOLDEN_SEED)
        path = golden_path(kind, n, directory)
        write_settle_hdf5(path, report, config, seed=GOLDEN_SEED, matrix="wishart_factor",
                          points=GOLDEN_POINTS, command_line=command_line)  # fmt: skip
        paths.append(path)
    return paths


@dataclass(frozen=True)
class GoldenComparison:
    path: Path
    max_deviation: float  #: V
    worst_node: str
    tolerance: float  #: V

    @property
    def passed(self) -> bool:
        return self.max_deviation <= self.tolerance


def compare_to_golden(
    path: str | Path, config: Config | None = None, tolerance: float = GOLDEN_TOLERANCE
) -> GoldenComparison:
    """Re-simulate a golden case (with its stored configuration, or ``config``) over the
    stored window and compare every node at the stored times (linear interpolation)."""
    golden, attrs = read_waveforms(path)
    if config is None:
        config = Config.from_toml(attrs["config"], source=str(path))
    circuit, inputs, _ = step_case(
        attrs["kind"], int(attrs["n"]), config, seed=int(attrs["seed"]), excite=attrs["excite"]
    )
    wf = simulate_step(circuit, inputs, t_stop=float(attrs["t_stop"]))
    now = np.array([np.interp(golden.time, wf.time, wf.values[wf.nodes.index(node)])
                    for node in golden.nodes])  # fmt: skip
    error = np.max(np.abs(now - golden.values), axis=1)
    worst = int(np.argmax(error))
    return GoldenComparison(Path(path), float(error[worst]), golden.nodes[worst], tolerance)
