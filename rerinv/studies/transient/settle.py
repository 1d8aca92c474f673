"""Transient settling of the INV and VMM crossbars: step response through ngspice, settling
time, and the predictions it is checked against.

The input DAC voltages step from 0 V to their values at ``t = 0`` (a linear ramp of
``STEP_RISE_TIME`` = 10 ps, 16 times shorter than ``1 / (2 pi GBW)`` even at 1 GHz) and
ngspice integrates the single-pole op-amp macro-models (:func:`simulate_step`). Two
predictions are reported:

- the formula ``ln(1/eps) / (2 pi GBW lambda_min(D^-1 G))`` (INV), or
  ``ln(1/eps) / (2 pi GBW beta_min)`` with the smallest TIA feedback factor ``beta`` (VMM);
- ``ln(1/eps) / sigma``, with ``sigma`` the slowest decay rate of the small-signal model of the
  whole circuit (:func:`small_signal_rates`): every row amplifier, inverter and TIA pole.

Both assume the slowest mode starts with the full ADC range as its amplitude. A random ``b``
excites it less, so the measured time is shorter (by ``ln(amplitude / adc_range) / sigma``);
``excite="slowest"`` steps onto the slowest mode, the worst case the formula describes.

The inverters of an INV crossbar lag ``-x`` by their own pole, which makes the negative array
look stronger than it is while the loop decays. The slowest rate drops by about ``1 + 2 nu``,
``nu`` being the share of the row conductance the slowest mode sees in the negative array, and
that holds however much faster the inverter pole is (1-D Laplacian: rate 1.86x lower).
``inverter_pole_matters`` flags when the inverters move the slowest rate by more than 10 %, or
when their pole is within a factor 3 of the loop's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from rerinv.analog.inv import build_inv, input_gain, loop_matrix
from rerinv.analog.vmm import OUTPUT_HEADROOM, build_vmm
from rerinv.analog.vmm import input_gain as vmm_input_gain
from rerinv.config import Config
from rerinv.engines.ngspice import NgspiceEngine
from rerinv.errors import InputError, SaturationError, SimulationError
from rerinv.hw.circuit import Circuit
from rerinv.hw.mapping import CrossbarArrays
from rerinv.matrices import check_matrix, check_vector, kfac_factor, random_rhs
from rerinv.studies.transient.waveforms import (  # noqa: F401  (re-exported: settle's public API)
    POINTS,
    STATUSES,
    STEP_RISE_TIME,
    Waveforms,
    check_dynamic,
    classify_step_response,
    plot_settling,
    settling_time,
    simulate_step,
    write_settle_hdf5,
)

WINDOW = 3.0  #: t_stop = WINDOW * the larger prediction; extended once by WINDOW if needed
INVERTER_SHIFT = 0.1  #: flag the inverters when they move the slowest rate by more than 10 %


def feedback_sensitivity(circuit: Circuit) -> np.ndarray:
    """``S[k, j] = d v(inn_k) / d v(out_j)`` (V/V): how amplifier ``j``'s output moves
    amplifier ``k``'s inverting input through the resistor network (cells, wires, input,
    inverter and feedback resistors), with the inputs held. Amplifiers in the order row
    op-amps, inverters, TIAs."""
    amps, resistors = list(circuit.opamps), list(circuit.resistors)
    for k, (a, out, r1, r2) in enumerate(circuit.inverters):
        resistors += [(a, f"inverter{k}:n", r1), (f"inverter{k}:n", out, r2)]
        amps.append((f"inverter{k}:n", out))
    for a, out, r_f in circuit.tias:
        resistors.append((a, out, r_f))
        amps.append((a, out))
    state = {out: k for k, (_, out) in enumerate(amps)}
    held = set(circuit.inputs) | set(state) | {"0"}
    free = {n: k for k, n in enumerate(sorted({n for r in resistors for n in r[:2]} - held))}
    ff, fs = ([], [], []), ([], [], [])  # (rows, cols, siemens): G_free,free, -G_free,state
    for a, b, ohms in resistors:
        for p, q in ((a, b), (b, a)):
            if p in free:
                entries = [(ff, free[p], 1 / ohms)]
                if q in free:
                    entries.append((ff, free[q], -1 / ohms))
                elif q in state:
                    entries.append((fs, state[q], 1 / ohms))
                for (rows, cols, values), col, g in entries:
                    rows.append(free[p]), cols.append(col), values.append(g)
    shape = (len(free), len(free))
    lu = scipy.sparse.linalg.splu(scipy.sparse.csc_matrix((ff[2], ff[:2]), shape=shape))
    coupling = scipy.sparse.csc_matrix((fs[2], fs[:2]), shape=(len(free), len(amps)))
    inn = [free[node] for node, _ in amps]
    sensitivity = np.empty((len(amps), len(amps)))  # d v(inn_k) / d p_j
    for start in range(0, len(amps), 64):  # bounded memory with wire-resistance networks
        cols = slice(start, start + 64)
        sensitivity[:, cols] = lu.solve(coupling[:, cols].toarray())[inn]
    return sensitivity


def small_signal_rates(circuit: Circuit) -> np.ndarray:
    """Decay rates (1/s, complex) of the linearised circuit, one per amplifier.

    Every amplifier output is a state ``p`` with ``dp/dt = -2 pi GBW (v(inn) + p / gain)`` and
    ``v(inn) = S p`` (:func:`feedback_sensitivity`). Rails and output resistance are ignored. A
    positive real part decays; the smallest real part is the slowest mode (<= 0: unstable).
    """
    check_dynamic(circuit)
    oa, sensitivity = circuit.opamp, feedback_sensitivity(circuit)
    return 2 * np.pi * oa.gbw * np.linalg.eigvals(sensitivity + np.eye(len(sensitivity)) / oa.gain)


def loop_lambda_min(arrays: CrossbarArrays, config: Config) -> float:
    """Real part of the slowest eigenvalue of ``D^-1 G`` (dimensionless; <= 0: unstable)."""
    return float(np.min(np.linalg.eigvals(loop_matrix(arrays, config)).real))


def predicted_settling_time(arrays: CrossbarArrays, config: Config, eps_rel: float) -> float:
    """``ln(1/eps_rel) / (2 pi GBW lambda_min(D^-1 G))`` (s) for the INV crossbar of
    ``arrays``; ``nan`` when ``lambda_min <= 0`` (the loop is unstable)."""
    return _settling(2 * np.pi * config.opamp.gbw * loop_lambda_min(arrays, config), eps_rel)


def tia_feedback_factors(circuit: Circuit) -> np.ndarray:
    """Feedback factor ``beta = d v(in) / d v(out)`` of each TIA (``(1/r_f) / (total
    conductance at its input)`` without wires); a TIA settles like ``exp(-2 pi GBW beta t)``."""
    first = len(circuit.opamps) + len(circuit.inverters)
    return np.diag(feedback_sensitivity(circuit))[first:]


def _settling(rate: float, eps_rel: float) -> float:
    """``ln(1/eps_rel) / rate`` (s) for a decay rate (1/s); ``nan`` unless it decays."""
    return float(np.log(1 / eps_rel) / rate) if rate > 0 else float("nan")


@dataclass(frozen=True, eq=False)
class SettleReport:
    """Outcome of one settling study. Times in s, voltages in V."""

    kind: str  #: inv | vmm
    n: int  #: number of outputs
    status: str  #: one of STATUSES
    settling_time: float  #: measured; nan unless settled
    predicted: float  #: the formula (INV: lambda_min of D^-1 G; VMM: slowest TIA)
    predicted_small_signal: float  #: ln(1/eps) / slowest rate of the whole small-signal model
    lambda_min: float  #: INV: lambda_min(D^-1 G); VMM: smallest TIA feedback factor
    inverter_pole_matters: bool
    eps: float  #: settling band relative to converters.adc_range
    eps_abs: float  #: settling band (V)
    t_stop: float  #: simulated window
    final: np.ndarray  #: outputs at t_stop
    dc: np.ndarray | None  #: DC operating point of the same circuit (None if railed)
    max_deviation: float  #: max |final - dc|
    wall_time: float  #: transient wall time, every window
    message: str
    waveforms: Waveforms | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (``nan`` becomes ``None``; no waveforms)."""
        out = {}
        for f in fields(self)[:-1]:
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, float) and not np.isfinite(value):
                value = None
            out[f.name] = value
        return out


def _predictions(
    circuit: Circuit, config: Config, eps: float, sigma: float, arrays: CrossbarArrays | None
) -> tuple[float, float, bool]:
    """(formula prediction (s), its lambda_min or beta_min, inverter_pole_matters)."""
    omega = 2 * np.pi * circuit.opamp.gbw
    if circuit.tias:
        beta = float(np.min(tia_feedback_factors(circuit)))
        return _settling(omega * beta, eps), beta, False
    if arrays is None:
        return float("nan"), float("nan"), False
    lam = loop_lambda_min(arrays, config)
    matters = False
    if lam > 0 and circuit.inverters:
        inverter_rate = omega * min(r1 / (r1 + r2) for _, _, r1, r2 in circuit.inverters)
        loop_rate = omega * (lam + 1 / circuit.opamp.gain)  # the loop with ideal inverters
        matters = inverter_rate < 3 * loop_rate or abs(loop_rate / sigma - 1) > INVERTER_SHIFT
    return _settling(omega * lam, eps), lam, bool(matters)


def settle_circuit(
    circuit: Circuit,
    inputs: np.ndarray,
    config: Config,
    *,
    eps: float | None = None,
    arrays: CrossbarArrays | None = None,
) -> SettleReport:
    """Settling study of a built circuit (it is simulated even if it is unstable).

    The window is :data:`WINDOW` times the larger prediction, extended once by the same
    factor if the outputs are still decaying. The status is ``unstable`` when the outputs run
    to the rails, or when the small-signal model has a non-decaying mode (a noiseless
    simulation can sit on an unstable equilibrium that any noise would leave).

    Parameters
    ----------
    circuit : Circuit
        An INV crossbar (``arrays`` gives the formula's ``lambda_min``) or a VMM crossbar.
    inputs : numpy.ndarray
        Final input voltages of the step (V).
    config : Config
        ``converters`` sets the default ``eps``; ``opamp.model`` must be ``single_pole``.
    eps : float, optional
        Settling band relative to ``converters.adc_range``; default half an ADC LSB,
        ``2**-adc_bits``.
    arrays : CrossbarArrays, optional
        The arrays of an INV circuit.
    """
    check_dynamic(circuit)
    eps = 2.0**-config.converters.adc_bits if eps is None else float(eps)
    if not 0 < eps < 1:
        raise InputError(f"eps is relative to converters.adc_range: 0 < eps < 1, got {eps}")
    eps_abs = eps * config.converters.adc_range
    sigma = float(np.min(small_signal_rates(circuit).real))
    predicted, lam, matters = _predictions(circuit, config, eps, sigma, arrays)
    predicted_ss = _settling(sigma, eps)
    finite = [t for t in (predicted, predicted_ss) if np.isfinite(t)]
    t_stop = WINDOW * (max(finite) if finite else np.log(1 / eps) / abs(sigma))
    wall = 0.0
    with NgspiceEngine().load(circuit) as session:
        try:
            dc = session.solve(inputs)
        except (SaturationError, SimulationError):
            dc = None
        for attempt in range(2):
            start = time.perf_counter()
            wf = simulate_step(circuit, inputs, t_stop=t_stop, session=session)
            wall += time.perf_counter() - start
            status, measured, message = classify_step_response(
                wf, dc, eps_abs, circuit.opamp.v_rail
            )
            if status != "not_settled" or attempt:
                break
            t_stop *= WINDOW
    if sigma <= 0:
        if status != "unstable":
            status, measured = "unstable", float("nan")
            message = "the transient stayed on the DC point, but it is an unstable equilibrium"
        message += f"; small-signal model: slowest rate {sigma:.3g} 1/s <= 0"
    final = wf.outputs[:, -1]
    deviation = float(np.max(np.abs(final - dc))) if dc is not None else float("nan")
    return SettleReport(
        "vmm" if circuit.tias else "inv", len(circuit.outputs), status, measured, predicted,
        predicted_ss, lam, matters, eps, eps_abs, float(wf.time[-1]), final, dc, deviation,
        wall, message, wf,
    )  # fmt: skip


def step_case(
    kind: str,
    matrix_or_n: np.ndarray | int,
    config: Config,
    *,
    seed: int = 0,
    excite: str = "random",
) -> tuple[Circuit, np.ndarray, CrossbarArrays]:
    """The circuit, step inputs (V) and arrays of a settling study.

    The matrix is ``matrix_or_n``, or ``kfac_factor(n, seed=seed)`` for an int. INV:
    :func:`rerinv.analog.inv.build_inv` (equilibrated as ``scheme.equilibrate``, programming drawn
    from ``seed``). VMM: the programmed arrays of ``A`` compute ``-r_f G^T v``.

    ``excite="random"``: ``b = random_rhs(n, seed=seed + 1)``, DAC voltages scaled as
    :func:`rerinv.analog.inv.input_gain` does (INV) or as large as the DAC range and 80 % of the ADC
    range allow (VMM). ``excite="slowest"``, the worst case the formula describes: the
    outputs settle onto the slowest eigenvector of ``D^-1 G`` (INV), or the step drives the
    slowest TIA hardest (VMM); outputs peak at 80 % of the ADC range unless the DAC limits.
    """
    if kind not in ("inv", "vmm") or excite not in ("random", "slowest"):
        raise InputError(f"kind is inv or vmm and excite random or slowest; got {kind}, {excite}")
    if isinstance(matrix_or_n, int | np.integer):
        a = kfac_factor(int(matrix_or_n), seed=seed)
    else:
        a = check_matrix(matrix_or_n, max_size=config.array.max_size)
    b = check_vector(random_rhs(a.shape[0], seed=seed + 1), a.shape[0])
    conv = config.converters
    limit = OUTPUT_HEADROOM * min(conv.adc_range, config.opamp.v_rail)
    if kind == "inv":
        inv = build_inv(a, config, seed=seed, equilibrated=config.scheme.equilibrate)
        arrays, circuit = inv.arrays, inv.circuit
        if excite == "random":
            return circuit, input_gain(inv, b) * arrays.row_scale * b, arrays
        eigenvalues, vectors = np.linalg.eig(loop_matrix(arrays, config))
        mode = vectors[:, np.argmin(eigenvalues.real)].real
        inputs = -config.array.r_in * arrays.conductance_matrix @ (limit * mode / max(abs(mode)))
    else:
        crossbar = build_vmm(a, config, seed=seed)
        arrays, circuit = crossbar.arrays, crossbar.circuit
        if excite == "random":
            return circuit, vmm_input_gain(crossbar, b) * b, arrays
        slowest = np.argmin(tia_feedback_factors(circuit)) % a.shape[1]
        inputs = np.sign(arrays.conductance_matrix[:, slowest])
        inputs *= limit / (config.array.r_f * np.max(np.abs(arrays.conductance_matrix.T @ inputs)))
    return circuit, inputs * min(1.0, conv.dac_range / np.max(np.abs(inputs))), arrays


def settle(
    kind: str,
    matrix_or_n: np.ndarray | int,
    config: Config,
    *,
    eps: float | None = None,
    seed: int = 0,
    excite: str = "random",
    out: str | None = None,
    plot: str | None = None,
) -> SettleReport:
    """Settling study of the INV or VMM crossbar of :func:`step_case`.

    Parameters
    ----------
    kind : {"inv", "vmm"}
    matrix_or_n : numpy.ndarray or int
        The matrix, or the size of a K-FAC-like factor drawn from ``seed``.
    config : Config
        ``opamp.model`` must be ``single_pole``.
    eps : float, optional
        Settling band relative to ``converters.adc_range`` (default half an ADC LSB).
    seed : int
        Seeds the matrix (for an int), ``b`` and the programming draw.
    excite : {"random", "slowest"}
        A random ``b``, or the worst case (see :func:`step_case`).
    out, plot : str, optional
        Write the waveforms to this HDF5 file / plot them to this PNG.
    """
    circuit, inputs, arrays = step_case(kind, matrix_or_n, config, seed=seed, excite=excite)
    report = settle_circuit(circuit, inputs, config, eps=eps, arrays=arrays)
    if out is not None:
        source = "kfac_factor" if isinstance(matrix_or_n, int | np.integer) else "given"
        write_settle_hdf5(out, report, config, seed=seed, matrix=source, excite=excite)
    if plot is not None:
        plot_settling(report, plot)
    return report
