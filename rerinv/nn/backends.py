"""Inverse backends for K-FAC: one interface, three kinds.

K-FAC needs ``A^-1`` and ``G^-1`` of every damped Kronecker factor once per inverse update.
The hardware (RePAST) inverts a factor by programming it into an INV crossbar once and solving
against the ``N`` unit vectors, one column of the inverse per solve; every backend here
returns the whole inverse and counts what that cost.

- :class:`Float64Inverse`: ``numpy.linalg.inv`` (the reference).
- :class:`AnalogInverse`: the analog machine (:class:`rerinv.analog.machine.AnalogMachine`)
  programmed once per factor, then the configured scheme (``simulation.scheme``: ``single``,
  ``repast``, ``refine``, ``krylov``, and any later loop of :data:`rerinv.schemes.loops.LOOPS`)
  run on each unit vector to ``simulation.target_bits``, on ``simulation.engine``. A factor
  wider than ``array.max_size`` goes whole to the machine, which holds it as
  ``scheme.blocks`` says (``tiled``: one INV loop over crossbar tiles; ``blockamc``;
  ``jacobi``), so every column still converges to the whole factor's inverse. The older
  ``wide="diagonal"`` mode splits it block-diagonally instead (each diagonal block on its
  own crossbar, the off-diagonal blocks dropped: the inverse of an approximation). Either
  way the bits are measured against the float64 inverse of the *whole* factor.
- :class:`QuantisedInverse`: a cheap stand-in for a ``k``-bit INV crossbar (``single`` scheme,
  ``k``-bit cells and ``k``-bit ADC): exact Ruiz equilibration, entries rounded to ``k`` bits
  (with the machine's stabilising diagonal shift when the rounded copy is not positive
  definite), an exact inverse of that, each column rounded to ``k`` bits of an auto-ranged
  ADC. It is no
  model of ``refine``/``krylov`` (whose bits follow their target); it answers "what if the
  crossbar itself had k bits".
  ``tests/test_training.py`` checks its error distribution against the analog path.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.config import Config
from rerinv.errors import ConfigError, InputError, RerinvError
from rerinv.schemes import effective_bits
from rerinv.schemes.loops import LOOPS
from rerinv.schemes.stopping import Run
from rerinv.seeds import Seed, spawn


@dataclass
class InverseOutcome:
    """One factor inverse and what it cost.

    Attributes
    ----------
    inverse : numpy.ndarray or None
        The inverse (None when the backend failed: see ``error``).
    column_bits : numpy.ndarray
        Effective bits of every column against the float64 inverse of the matrix the
        crossbars were asked to invert (``inf`` for the float64 backend).
    inv_solves, vmm_ops, passes : int
        Analog INV solves, residual VMM operations and scheme passes, summed over columns.
    statuses : dict
        Scheme status -> number of columns.
    blocks : int
        Crossbar blocks per side, ``ceil(n / array.max_size)`` (1: one crossbar).
    route : str
        What held the factor (the machine's preconditioner, e.g. ``inv 2x2 tiles``, or
        ``block-diagonal K`` for the ``wide="diagonal"`` mode); "" for digital backends.
    error : str
        ``"ExceptionType: message"`` when the inverse could not be made, else ``""``.
    wall_time : float
        Seconds.
    """

    inverse: np.ndarray | None
    column_bits: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inv_solves: int = 0
    vmm_ops: int = 0
    passes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    blocks: int = 1
    error: str = ""
    wall_time: float = 0.0
    route: str = ""


class InverseBackend:
    """Base class: ``invert(matrix, seed=...)`` returns an :class:`InverseOutcome`."""

    name = "base"

    def invert(self, matrix: np.ndarray, *, seed: Seed = 0) -> InverseOutcome:
        raise NotImplementedError  # pragma: no cover

    def describe(self) -> str:
        """One line for reports."""
        return self.name


class Float64Inverse(InverseBackend):
    """Exact float64 inverse (LAPACK)."""

    name = "float64"

    def invert(self, matrix: np.ndarray, *, seed: Seed = 0) -> InverseOutcome:
        start = time.perf_counter()
        inverse = np.linalg.inv(matrix)
        return InverseOutcome(
            inverse,
            column_bits=np.full(matrix.shape[0], math.inf),
            wall_time=time.perf_counter() - start,
        )


def ruiz_scaling(a: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Exact (not rounded) Ruiz equilibration factors ``r, c``: ``diag(r) A diag(c)`` has
    every row and column max-abs entry close to 1."""
    mag = np.abs(a)
    r, c = np.ones(a.shape[0]), np.ones(a.shape[1])
    for _ in range(iterations):
        scaled = r[:, None] * mag * c[None, :]
        r /= np.sqrt(np.maximum(scaled.max(axis=1), 1e-300))
        c /= np.sqrt(np.maximum(scaled.max(axis=0), 1e-300))
    return r, c


#: The stand-in's ADC range is ``2**HEADROOM_BITS`` times the power of two just above each
#: column's peak: the machine's auto-ranging keeps outputs between a quarter of the range and
#: all of it, and this one bit of headroom reproduces its measured error distribution
#: (``tests/test_training.py``: medians within 0.3 bits at 6, 8 and 10 bits).
HEADROOM_BITS = 1.0


def stable_levels(mapped: np.ndarray, bits: int) -> np.ndarray:
    """``mapped`` rounded to ``bits``-bit levels over ``[-max, max]``; when that copy is not
    positive definite, the smallest power-of-two diagonal shift ``2**(k - bits) * max`` that
    makes it robustly so (smallest eigenvalue of the symmetric part at least one level of the
    largest) is added first, as the analog machine's ``inv_shifted`` route does."""
    peak = np.max(np.abs(mapped))
    for k in range(-1, bits + 1):
        shifted = mapped if k < 0 else mapped + 2.0 ** (k - bits) * peak * np.eye(len(mapped))
        step = np.max(np.abs(shifted)) / (2**bits - 1)
        held = np.round(shifted / step) * step
        eig = np.linalg.eigvalsh((held + held.T) / 2)
        if eig[0] > (0.0 if k < 0 else 2.0**-bits * np.max(np.abs(eig))):
            return held
    return held


class QuantisedInverse(InverseBackend):
    """Stand-in for one ``bits``-bit analog solve per column (see the module docstring).

    Parameters
    ----------
    bits : int
        Bits of the cells (matrix levels ``2**bits`` over ``[-max, max]`` after equilibration)
        and of the output ADC (``2**(bits-1) - 1`` steps each side, range
        ``2**HEADROOM_BITS`` times the power of two just above each column's peak).
    """

    def __init__(self, bits: int):
        if not 2 <= int(bits) <= 48:
            raise InputError(f"the quantised stand-in needs 2..48 bits, got {bits!r}")
        self.bits = int(bits)
        self.name = f"quantised-{self.bits}"

    def describe(self) -> str:
        return f"{self.bits}-bit stand-in (k-bit cells and ADC, exact inverse in between)"

    def invert(self, matrix: np.ndarray, *, seed: Seed = 0) -> InverseOutcome:
        start = time.perf_counter()
        r, c = ruiz_scaling(matrix)
        held = stable_levels(r[:, None] * matrix * c[None, :], self.bits)
        try:
            y = np.linalg.solve(held, np.diag(r))  # column j: the solve of r_j e_j
        except np.linalg.LinAlgError as exc:
            return InverseOutcome(None, error=f"LinAlgError: quantised factor singular ({exc})")
        peak = np.max(np.abs(y), axis=0)
        full_scale = 2.0 ** (np.ceil(np.log2(np.where(peak > 0, peak, 1.0))) + HEADROOM_BITS)
        lsb = full_scale / (2 ** (self.bits - 1) - 1)
        inverse = c[:, None] * (np.round(y / lsb) * lsb)
        exact = np.linalg.inv(matrix)
        bits = np.array([effective_bits(inverse[:, j], exact[:, j]) for j in range(len(r))])
        return InverseOutcome(
            inverse,
            column_bits=bits,
            inv_solves=len(r),
            passes=len(r),
            statuses={"max_passes": len(r)},
            wall_time=time.perf_counter() - start,
        )


def diagonal_blocks(n: int, max_size: int) -> list[slice]:
    """Contiguous, near-equal diagonal blocks of at most ``max_size`` rows covering ``n``."""
    count = -(-n // max_size)
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


#: How :class:`AnalogInverse` treats a factor wider than one crossbar.
WIDE_MODES = ("machine", "diagonal")


class AnalogInverse(InverseBackend):
    """The factor inverse through the analog machine, column by column.

    Parameters
    ----------
    config : Config
        ``simulation.scheme``, ``target_bits``, ``max_passes`` and ``engine`` say how each
        column is solved; every other section describes the hardware (``array.max_size``
        and ``scheme.blocks`` for factors wider than one crossbar).
    wide : {"machine", "diagonal"}
        A factor wider than ``array.max_size``: whole to the machine (default), or split
        block-diagonally with the off-diagonal blocks dropped (see the module docstring).
    """

    def __init__(self, config: Config, wide: str = "machine"):
        scheme = config.simulation.scheme
        if scheme not in LOOPS:
            raise ConfigError(
                f"simulation.scheme={scheme!r} has no loop usable column by column; "
                f"choose one of {', '.join(LOOPS)}"
            )
        if wide not in WIDE_MODES:
            raise InputError(f"wide must be one of {', '.join(WIDE_MODES)}, got {wide!r}")
        self.config, self.wide = config, wide
        sim = config.simulation
        bits = "" if scheme == "single" else f"@{sim.target_bits:g}"
        self.name = f"analog-{scheme}{bits}"

    def describe(self) -> str:
        sim, cfg = self.config.simulation, self.config
        target = "one solve" if sim.scheme == "single" else f"target {sim.target_bits:g} bits"
        wide = f"wider than {cfg.array.max_size}: " + (
            cfg.scheme.blocks if self.wide == "machine" else "block-diagonal, dropped"
        )
        return (
            f"analog {sim.scheme} ({target}, at most {sim.max_passes} passes) on the "
            f"{sim.engine} engine: {cfg.device.bits}-bit cells, {cfg.converters.dac_bits}-bit "
            f"DAC x {cfg.scheme.dac_slices or 'auto'} slices, {cfg.converters.adc_bits}-bit ADC, "
            f"{cfg.scheme.residual} residual; {wide}"
        )

    def invert(self, matrix: np.ndarray, *, seed: Seed = 0) -> InverseOutcome:
        start = time.perf_counter()
        n = matrix.shape[0]
        split = diagonal_blocks(n, self.config.array.max_size)
        blocks = split if self.wide == "diagonal" else [slice(0, n)]
        seeds = spawn(seed, len(blocks))
        outcome = InverseOutcome(np.zeros((n, n)), column_bits=np.zeros(n), blocks=len(split))
        statuses: Counter[str] = Counter()
        routes = []
        for rows, block_seed in zip(blocks, seeds, strict=True):
            try:
                routes.append(
                    self._invert_block(matrix[rows, rows], block_seed, rows, outcome, statuses)
                )
            except RerinvError as exc:
                outcome.inverse = None
                outcome.error = f"{type(exc).__name__}: {exc}"
                break
        if outcome.inverse is not None:
            exact = np.linalg.inv(matrix)
            outcome.column_bits = np.array(
                [effective_bits(outcome.inverse[:, j], exact[:, j]) for j in range(n)]
            )
        if len(blocks) > 1:
            outcome.route = f"block-diagonal {len(blocks)}"
        elif routes:
            outcome.route = routes[0]
        outcome.statuses = dict(statuses)
        outcome.wall_time = time.perf_counter() - start
        return outcome

    def _invert_block(self, block, seed, rows, outcome, statuses) -> str:
        sim = self.config.simulation
        loop = LOOPS[sim.scheme]
        exact = np.linalg.inv(block)
        with AnalogMachine(block, self.config, seed=seed) as machine:
            route = machine.preconditioner
            for j in range(block.shape[0]):
                b = np.zeros(block.shape[0])
                b[j] = 1.0
                run = Run(machine, b, exact[:, j], self.config, sim.target_bits, sim.max_passes)
                status = loop(run)
                # what the hardware returns: the best measured iterate; a single solve's own
                # output even when its residual exceeds ||b|| (x = 0 would zero a column of
                # the factor inverse, never a better K-FAC step)
                x = run.x if sim.scheme == "single" else run.answer(status)
                if not np.all(np.isfinite(x)):
                    raise InputError(
                        f"column {j}: the {sim.scheme} scheme produced no finite iterate "
                        f"({status}); the factor is beyond this hardware"
                    )
                statuses[status] += 1
                outcome.passes += len(run.history)
                outcome.inverse[rows, rows.start + j] = x
            outcome.inv_solves += machine.counters.inv_solves
            outcome.vmm_ops += machine.counters.vmm_ops
        return route


def make_backend(kind: str, config: Config, bits: float | None = None) -> InverseBackend:
    """The backend ``kind`` (``float64``, ``quantised``, or a scheme name for the analog path)
    at ``bits`` (target bits for ``refine``/``krylov``/..., stand-in bits for ``quantised``;
    ignored by ``float64`` and ``single``)."""
    if kind == "float64":
        return Float64Inverse()
    if kind == "quantised":
        if bits is None:
            raise InputError("the quantised stand-in needs bits (e.g. 8, 12, 16, 24)")
        return QuantisedInverse(int(bits))
    if kind in LOOPS:
        values = {"scheme": kind}
        if bits is not None and kind != "single":
            values["target_bits"] = float(bits)
        return AnalogInverse(config.with_values("simulation", **values))
    raise InputError(
        f"unknown inverse backend {kind!r}; choose float64, quantised or an analog scheme "
        f"({', '.join(LOOPS)})"
    )
