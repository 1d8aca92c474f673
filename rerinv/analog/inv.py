"""One programmed crossbar holding the preconditioner, and one analog solve on it.

``x = A^-1 b`` is recovered from the op-amp outputs ``V`` as ``x = factor * diag(col_scale) V``
with ``factor = -scale * r_in / k``, where ``k`` (V per unit of b) sets the DAC voltages
``v_in = k * diag(row_scale) b``.

The crossbar holds a *preconditioner*; the high-precision residual holds ``A``. Three routes
(``scheme.circuit``; ``auto`` picks the first that works):

- ``inv``: the INV crossbar (Sun et al., PNAS 2019) holding ``A`` itself, when the programmed
  loop is stable;
- ``inv_shifted``: the INV crossbar holding ``diag(r) A diag(c) + s I`` with the smallest
  diagonal shift ``s`` (a power of two, from one cell level up) that makes the *programmed*
  loop stable, for matrices whose eigenvalues have positive real parts but whose quantised
  copy does not (stiff SPD matrices); the outer loop corrects the shift;
- ``ginv``: the generalised-inverse crossbar (Sun, Pedretti, Ielmini, Science Advances
  2020), stable for any full-rank matrix: the analog route for symmetric indefinite and
  non-symmetric matrices with eigenvalues off the right half-plane.

Stability is decided on the circuit that is simulated (programmed cells, inverter mismatch,
op-amp and inverter poles: :mod:`rerinv.analog.dynamics`), not only on ``D^-1 G``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rerinv.analog.dynamics import STABILITY_MARGIN, slowest_rate
from rerinv.analog.vmm import OUTPUT_HEADROOM
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import InputError, UnstableMatrixError
from rerinv.hw.circuit import Circuit, ginv_crossbar, inv_crossbar, inv_gain_error
from rerinv.hw.mapping import CrossbarArrays, map_matrix, program_conductances
from rerinv.hw.scaling import choose_scaling
from rerinv.matrices import check_matrix, check_stable, check_vector
from rerinv.seeds import spawn

#: The routes of :func:`build_preconditioner`.
ROUTES = ("inv", "inv_shifted", "ginv")


def row_conductance(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """Total conductance at each row node (S): every array (all slices) plus the input
    resistor."""
    return arrays.total_conductance + 1.0 / config.array.r_in


def loop_matrix(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """``M = D^-1 G``: the closed loop's modes decay like ``exp(-2 pi GBW lambda_k(M) t)``."""
    return arrays.conductance_matrix / row_conductance(arrays, config)[:, None]


def _loop_eigenvalues(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """Eigenvalues of ``D^-1 (G + E)``, ``E`` the loop's finite-gain error at DC (what the
    loop really holds; :func:`rerinv.hw.circuit.inv_gain_error`)."""
    held = arrays.conductance_matrix + inv_gain_error(arrays, config)
    return np.linalg.eigvals(held / row_conductance(arrays, config)[:, None])


def unstable_reason(inv: InvCrossbar, margin: float = 1e-12) -> str | None:
    """Why the programmed crossbar's loop would not settle, or None when it does."""
    if inv.route != "ginv":
        eigenvalues = _loop_eigenvalues(inv.arrays, inv.config)
        worst = eigenvalues[np.argmin(eigenvalues.real)]
        if worst.real <= margin * np.max(np.abs(eigenvalues)):
            return f"D^-1 G of the programmed loop has eigenvalue {worst:.4g}"
    slowest, fastest = slowest_rate(inv.circuit)
    if not slowest > STABILITY_MARGIN * fastest:
        return (
            f"the small-signal model of the circuit (op-amp and inverter poles, inverter "
            f"mismatch) has a mode with decay rate {slowest:.4g}/s"
        )
    return None


@dataclass(frozen=True, eq=False)
class InvCrossbar:
    """A programmed crossbar holding the preconditioner, and its circuit."""

    matrix: np.ndarray  #: the intended matrix A
    arrays: CrossbarArrays  #: programmed conductances (their ``scaling`` and ``shift`` too)
    circuit: Circuit
    config: Config
    route: str = "inv"  #: one of :data:`ROUTES`
    mismatch_seed: np.random.SeedSequence | None = None  #: draws the inverter mismatch
    sign: float = 1.0  #: the crossbar holds ``sign * A`` (-1: every eigenvalue of A is < 0)

    def circuit_for(self, arrays: CrossbarArrays) -> Circuit:
        """The same circuit (route, inverter mismatch draw) holding other conductances: one
        read of the arrays with read noise."""
        build = ginv_crossbar if self.route == "ginv" else inv_crossbar
        return build(arrays, self.config, seed=np.random.default_rng(self.mismatch_seed))

    def settling_time(self, eps: float | None = None) -> float:
        """Small-signal settling time (s) to ``eps`` of full scale (default half an ADC
        LSB): ``ln(1/eps) / slowest decay rate`` of the circuit (:mod:`rerinv.analog.dynamics`)."""
        eps = eps or 0.5 / (2 ** (self.config.converters.adc_bits - 1) - 1)
        slowest, _ = slowest_rate(self.circuit)
        return float(np.log(1 / eps) / slowest) if slowest > 0 else float("inf")

    @property
    def label(self) -> str:
        """A few words: route, slices, shift, tiles (``inv_shifted x2 s=0.0039``)."""
        words = [self.route]
        if self.arrays.fine:
            words.append(f"x{self.arrays.slices}")
        if self.arrays.shift:
            words.append(f"s={self.arrays.shift:.2g}")
        tiles = math.ceil(self.arrays.n / self.config.array.max_size)
        if tiles > 1:
            words.append(f"{tiles}x{tiles} tiles")
        return " ".join(words)

    @property
    def description(self) -> str:
        """One line: route, slices, tiles, scaling and shift."""
        tiles = math.ceil(self.arrays.n / self.config.array.max_size)
        slices = f", {self.arrays.slices} slices" if self.arrays.fine else ""
        slices += f", {tiles} x {tiles} tiles" if tiles > 1 else ""
        shift = f", diagonal shift {self.arrays.shift:g}" if self.arrays.shift else ""
        negated = ", holding -A" if self.sign < 0 else ""
        return f"{self.route} circuit{slices}, {self.arrays.scaling} scaling{shift}{negated}"


def resolve_scaling(a: np.ndarray, config: Config) -> str:
    """The scaling method ``config.scheme`` asks for (``auto`` resolved for ``a``)."""
    scheme = config.scheme
    if not scheme.equilibrate:
        return "none"
    return choose_scaling(a) if scheme.scaling == "auto" else scheme.scaling


#: Fixed-point steps of the finite-gain compensation (:func:`program_crossbar`).
GAIN_COMPENSATION_STEPS = 3

#: Finer slices whose attenuation times the op-amp gain is below this are balanced pairs when
#: the finite gain is compensated (:func:`program_crossbar`).
BALANCE_LOOP_GAIN = 64.0


def program_crossbar(
    a,
    config,
    seed,
    *,
    scaling: str,
    shift: float = 0.0,
    route: str,
    sign: float = 1.0,
    slices: int = 1,
) -> InvCrossbar:
    """Map ``sign * a`` (on ``slices`` pairs of arrays), program it (from ``seed``) and build
    the circuit of one route; no checks."""
    programming, mismatch = spawn(seed, 2)

    compensate = route == "inv" and config.scheme.compensate_gain
    # the host knows the amplifiers' DC gain (to scheme.gain_tolerance) and what it programmed
    # (write-verify): the arrays hold A minus the loop's finite-gain error as it would be with
    # the gain at the top of its tolerance, so the loop holds A plus a small positive diagonal
    # at worst, never less than A. The error depends on the row conductances, and a change c
    # of what a slice at attenuation a holds moves them by c / a: slices with a * gain below
    # BALANCE_LOOP_GAIN are balanced pairs, whose row load does not depend on what they hold,
    # so that a few fixed-point steps settle the correction
    planned = config.with_values(
        "opamp", gain=config.opamp.gain * (1 + config.scheme.gain_tolerance)
    )
    balance_below = BALANCE_LOOP_GAIN / planned.opamp.dc_gain if compensate else 0.0

    def program(correction=None):
        target = map_matrix(
            sign * a,
            config.device,
            scaling=scaling,
            shift=shift,
            slices=slices,
            correction=correction,
            balance_below=balance_below,
        )
        return program_conductances(target, config.device, np.random.default_rng(programming))

    arrays = program()
    for _ in range(GAIN_COMPENSATION_STEPS if compensate else 0):
        arrays = program(inv_gain_error(arrays, planned))
    build = ginv_crossbar if route == "ginv" else inv_crossbar
    circuit = build(arrays, config, seed=np.random.default_rng(mismatch))
    return InvCrossbar(a, arrays, circuit, config, route, mismatch, sign)


def build_inv(
    a: np.ndarray,
    config: Config,
    *,
    seed: int | np.random.SeedSequence = 0,
    scaling: str = "none",
    check_stability: bool = True,
) -> InvCrossbar:
    """Check ``a``, map it (``scaling``), program the arrays from ``seed`` and build the INV
    circuit holding ``a`` itself.

    Raises
    ------
    UnstableMatrixError
        ``a`` has an eigenvalue without a positive real part, or (``check_stability``) the
        programmed loop would not settle; the message names the cause and what to change.
    """
    a = check_matrix(a, max_size=config.array.max_size)
    if check_stability:
        check_stable(a)
    inv = program_crossbar(a, config, seed, scaling=scaling, route="inv")
    if check_stability and (reason := unstable_reason(inv)):
        raise UnstableMatrixError(
            f"the programmed INV crossbar is unstable: {reason}, so the op-amp outputs would "
            "run to the rails. The intended matrix is stable, but its quantised/programmed "
            "form is not: let rerinv stabilise it (--set scheme.circuit=auto), or use more "
            "bits per cell (--set device.bits=12)"
        )
    return inv


def slowest_mode(inv: InvCrossbar) -> np.ndarray:
    """The output direction that decays slowest with ideal inverters: the eigenvector of
    ``D^-1 G`` (INV) or of ``D2^-1 G^T G`` (generalised inverse, ``D2`` the conductance at the
    x amplifiers' inputs) with the smallest real eigenvalue; unit max-norm, real part."""
    g = inv.arrays.conductance_matrix
    if inv.route == "ginv":
        d2 = (inv.arrays.g_pos + inv.arrays.g_neg).sum(axis=0)
        operator = (g.T @ g) / d2[:, None]
    else:
        operator = loop_matrix(inv.arrays, inv.config)
    eigenvalues, vectors = np.linalg.eig(operator)
    mode = vectors[:, np.argmin(eigenvalues.real)].real
    return mode / np.max(np.abs(mode))


def input_gain(inv: InvCrossbar, b: np.ndarray) -> float:
    """``k`` (V per unit of b): full DAC scale, reduced when the planned outputs (from the
    *target* mapping, as a designer would plan ranges) would exceed the ADC range or rails."""
    cfg = inv.config
    rb = inv.arrays.row_scale * b
    peak_in = np.max(np.abs(rb))
    if peak_in == 0:
        return 1.0
    k = cfg.converters.dac_range / peak_in
    try:
        planned = np.linalg.solve(inv.arrays.conductance_matrix, k * rb / cfg.array.r_in)
    except np.linalg.LinAlgError:
        raise InputError(
            "the programmed INV crossbar holds a singular matrix (are its cells stuck? "
            f"device.p_stuck_low = {cfg.device.p_stuck_low:g}, device.p_stuck_high = "
            f"{cfg.device.p_stuck_high:g}): no input can be planned for its loop"
        ) from None
    limit = OUTPUT_HEADROOM * min(cfg.converters.adc_range, cfg.opamp.v_rail)
    peak_out = np.max(np.abs(planned))
    return k * min(1.0, limit / peak_out) if peak_out > 0 else k


def output_factor(inv: InvCrossbar, k: float) -> np.ndarray:
    """Per-output factor turning op-amp output volts into ``x`` (of ``A x = b``, also when the
    crossbar holds ``-A``)."""
    return -inv.sign * inv.arrays.scale * inv.config.array.r_in / k * inv.arrays.col_scale


@dataclass(frozen=True)
class InvSolution:
    x: np.ndarray  # solution estimate, user units
    outputs: np.ndarray  # op-amp output voltages (V)
    inputs: np.ndarray  # DAC voltages (V)
    factor: np.ndarray  # x = factor * outputs


def solve_inv(
    a: np.ndarray,
    b: np.ndarray,
    config: Config,
    *,
    seed: int = 0,
    scaling: str = "none",
) -> InvSolution:
    """One analog solve of ``a x = b`` on the INV crossbar (exact DAC voltages, no ADC), on
    the engine ``config.simulation.engine``."""
    inv = build_inv(a, config, seed=seed, scaling=scaling)
    b = check_vector(b, inv.arrays.n)
    k = input_gain(inv, b)
    inputs = k * inv.arrays.row_scale * b
    session = get_engine(config.simulation.engine).load(inv.circuit)
    try:
        outputs = session.solve(inputs)
    finally:
        session.close()
    factor = output_factor(inv, k)
    return InvSolution(factor * outputs, outputs, inputs, factor)
