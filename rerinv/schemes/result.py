"""What a scheme run produces: per-pass records, the result, and how bits are counted."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

#: Final statuses. ``converged`` if and only if the verified bits reach the target;
#: ``unverified``: the loop's residual said converged, the check against float64 disagrees.
STATUSES = ("converged", "unverified", "max_passes", "stalled", "diverged")


def final_status(loop_status: str, reached_target: bool) -> str:
    """The reported status: never contradicts ``reached_target``."""
    if reached_target:
        return "converged"
    return "unverified" if loop_status == "converged" else loop_status


def effective_bits(x: np.ndarray, x_ref: np.ndarray) -> float:
    """``-log2(max|x - x*| / max|x*|)`` against the float64 solution ``x_ref`` of the intended
    system; ``inf`` for an exact match."""
    error = np.max(np.abs(np.asarray(x) - x_ref)) / np.max(np.abs(x_ref))
    return float("inf") if error == 0 else float(-np.log2(error))


def componentwise_bits(x: np.ndarray, x_ref: np.ndarray) -> float:
    """``-log2(max_i |x_i - x*_i| / |x*_i|)`` over the non-zero entries of ``x_ref``: the
    worst entry's relative accuracy (``inf`` for an exact match). Norm-wise bits can hide a
    small entry that is far off; this cannot."""
    x, x_ref = np.asarray(x), np.asarray(x_ref)
    nonzero = x_ref != 0
    if not nonzero.any():
        return float("inf") if not np.any(x) else float("-inf")
    error = np.max(np.abs(x[nonzero] - x_ref[nonzero]) / np.abs(x_ref[nonzero]))
    return float("inf") if error == 0 else float(-np.log2(error))


@dataclass
class PassRecord:
    effective_bits: float  #: norm-wise, against the float64 solution of the intended matrix
    residual_norm: float  #: ``||b~ - A~ y|| / ||b~||`` as the loop measured it (scaled system)
    inv_solves: int  #: so far
    vmm_ops: int  #: so far
    componentwise_bits: float = math.nan  #: worst entry (:func:`componentwise_bits`)
    preconditioner: str = ""  #: what the INV crossbar held during this pass


@dataclass
class SolveResult:
    """Outcome of one scheme run; ``to_dict()`` is the CLI's ``--json`` object."""

    n: int
    scheme: str
    engine: str
    status: str  #: one of STATUSES; ``converged`` if and only if ``reached_target``
    reached_target: bool
    target_bits: float
    effective_bits: float
    passes: int  #: every pass the loop ran (what it cost)
    passes_to_target: int | None  #: the first pass whose verified bits reached the target
    componentwise_bits: float  #: of the answer: its worst entry (``componentwise_bits``)
    inv_solves: int
    vmm_ops: int
    conversions: int
    history: list[PassRecord] = field(default_factory=list)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_time: float = 0.0
    setup_time: float = 0.0  #: of wall_time: programming (Schur complements, kappa) before pass 1
    loop_status: str = ""  #: what the loop itself concluded from hardware-visible residuals
    circuit: str = ""  #: inv | inv_shifted | ginv: what held the preconditioner
    scaling: str = ""  #: the diagonal scaling applied in digital
    shift: float = 0.0  #: diagonal shift of a stabilised INV (relative to the largest entry)
    inv_slices: int = 1  #: pairs of arrays holding the INV crossbar's matrix at the end
    residual_bits: tuple[int, int] = (0, 0)  #: (weight, input) bits of the residual VMM
    condition_estimate: float = math.nan  #: kappa_inf the residual widths followed
    residual_floor_bits: float = math.nan  #: about the bits the residual VMM can resolve
    switches: list = field(default_factory=list)  #: (pass, what changed) decisions of ``auto``
    reprograms: int = 0  #: INV crossbar rewrites (larger stabilising shift)
    by_level: dict = field(default_factory=dict)  #: level -> inv_solves, vmm_ops, crossbars

    def to_dict(self) -> dict:
        data = asdict(self)
        data["x"] = [json_number(v) for v in self.x.tolist()]
        for key in (
            "effective_bits",
            "componentwise_bits",
            "condition_estimate",
            "residual_floor_bits",
        ):
            data[key] = json_number(data[key])
        for record in data["history"]:
            record["effective_bits"] = json_number(record["effective_bits"])
            record["residual_norm"] = json_number(record["residual_norm"])
            record["componentwise_bits"] = json_number(record["componentwise_bits"])
        return data


def json_number(value: float) -> float | None:
    """JSON has no NaN or infinity: a non-finite number is written as null (the status and
    ``reached_target`` say why)."""
    return value if math.isfinite(value) else None
