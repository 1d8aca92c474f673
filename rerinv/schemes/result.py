"""What a scheme run produces: per-pass records, the result, and how bits are counted."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

STATUSES = ("converged", "max_passes", "stalled", "diverged")


def effective_bits(x: np.ndarray, x_ref: np.ndarray) -> float:
    """``-log2(max|x - x*| / max|x*|)`` against the float64 solution ``x_ref`` of the intended
    system; ``inf`` for an exact match."""
    error = np.max(np.abs(np.asarray(x) - x_ref)) / np.max(np.abs(x_ref))
    return float("inf") if error == 0 else float(-np.log2(error))


@dataclass
class PassRecord:
    effective_bits: float
    residual_norm: float
    inv_solves: int
    vmm_ops: int


@dataclass
class SolveResult:
    """Outcome of one scheme run; ``to_dict()`` is the CLI's ``--json`` object."""

    n: int
    scheme: str
    engine: str
    status: str
    reached_target: bool
    target_bits: float
    effective_bits: float
    passes: int
    inv_solves: int
    vmm_ops: int
    conversions: int
    history: list[PassRecord] = field(default_factory=list)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["x"] = [json_number(v) for v in self.x.tolist()]
        data["effective_bits"] = json_number(data["effective_bits"])
        for record in data["history"]:
            record["effective_bits"] = json_number(record["effective_bits"])
            record["residual_norm"] = json_number(record["residual_norm"])
        return data


def json_number(value: float) -> float | None:
    """JSON has no NaN or infinity: a non-finite number is written as null (the status and
    ``reached_target`` say why)."""
    return value if math.isfinite(value) else None
