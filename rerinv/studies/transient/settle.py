"""Transient settling of the INV and VMM crossbars: the step, the settling time measured on
the ngspice step response (:mod:`~rerinv.studies.transient.simulate`), and the predictions it
is checked against (:mod:`~rerinv.studies.transient.predict`).

The input DAC voltages step from 0 V to their values at ``t = 0`` (a linear ramp of
``STEP_RISE_TIME`` = 10 ps, 16 times shorter than ``1 / (2 pi GBW)`` even at 1 GHz) and
ngspice integrates the single-pole op-amp macro-models (or, with ``opamp.model = sky130``, the
transistor-level amplifiers, predicted from the single-pole model extracted from them). Both
predictions assume the slowest
mode starts with the full ADC range as its amplitude. A random ``b`` excites it less, so the
measured time is shorter (by ``ln(amplitude / adc_range) / sigma``); ``excite="slowest"``
steps onto the slowest mode, the worst case the formula describes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from rerinv.analog.inv import InvCrossbar, build_inv, input_gain, resolve_scaling, slowest_mode
from rerinv.analog.routes import build_preconditioner
from rerinv.analog.vmm import OUTPUT_HEADROOM, build_vmm
from rerinv.analog.vmm import input_gain as vmm_input_gain
from rerinv.config import Config
from rerinv.engines.amplifier import small_signal_equivalent
from rerinv.engines.ngspice import NgspiceEngine
from rerinv.engines.nodal import NodalEngine
from rerinv.errors import InputError, SaturationError, SimulationError, UnstableMatrixError
from rerinv.hw.circuit import Circuit
from rerinv.hw.mapping import CrossbarArrays
from rerinv.matrices import check_matrix, check_vector, random_rhs, wishart_factor
from rerinv.provenance import provenance
from rerinv.schemes.result import json_number
from rerinv.seeds import spawn
from rerinv.studies.transient.measure import classify_step_response
from rerinv.studies.transient.plot import plot_settling
from rerinv.studies.transient.predict import predict, tia_feedback_factors
from rerinv.studies.transient.simulate import (
    Waveforms,
    check_dynamic,
    resample,
    simulate_step,
    write_waveforms,
)

WINDOW = 3.0  #: t_stop = WINDOW * the larger prediction; extended once by WINDOW if needed


@dataclass(frozen=True, eq=False)
class SettleReport:
    """Outcome of one settling study. Times in s, voltages in V; ``nan`` where a number does
    not exist (``status`` and ``message`` say why)."""

    kind: str  #: inv | vmm
    n: int  #: number of outputs
    status: str  #: one of measure.STATUSES
    message: str  #: why this status
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
    max_deviation: float  #: max |final - dc|; nan without a DC point
    wall_time: float  #: transient wall time, every window
    waveforms: Waveforms | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Strict-JSON summary without the waveforms: a non-finite number is ``None``."""
        out = {}
        for f in fields(self):
            if f.name == "waveforms":
                continue
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = [json_number(v) for v in value.tolist()]
            elif isinstance(value, float):
                value = json_number(value)
            out[f.name] = value
        return out


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
        ``converters`` sets the default ``eps``; ``opamp.model`` must be ``single_pole`` or
        ``sky130`` (transistors simulated, predictions from the single-pole model extracted
        from them: :func:`rerinv.engines.amplifier.small_signal_equivalent`).
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
    # transistor-level amplifiers: predicted from the small-signal model extracted from them
    p = predict(small_signal_equivalent(circuit), config, eps, arrays)
    finite = [t for t in (p.formula, p.small_signal) if np.isfinite(t)]
    t_stop = WINDOW * (max(finite) if finite else np.log(1 / eps) / abs(p.sigma))
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
    if p.sigma <= 0:
        if status != "unstable":
            status, measured = "unstable", float("nan")
            message = "the transient stayed on the DC point, but it is an unstable equilibrium"
        message += f"; small-signal model: slowest rate {p.sigma:.3g} 1/s <= 0"
    final = wf.outputs[:, -1]
    return SettleReport(
        kind="vmm" if circuit.tias and not circuit.opamps else "inv",
        n=len(circuit.outputs),
        status=status,
        message=message,
        settling_time=measured,
        predicted=p.formula,
        predicted_small_signal=p.small_signal,
        lambda_min=p.lambda_min,
        inverter_pole_matters=p.inverter_pole_matters,
        eps=eps,
        eps_abs=eps_abs,
        t_stop=float(wf.time[-1]),
        final=final,
        dc=dc,
        max_deviation=float(np.max(np.abs(final - dc))) if dc is not None else float("nan"),
        wall_time=wall,
        waveforms=wf,
    )


def solve_crossbar_seed(seed: int) -> np.random.SeedSequence:
    """The programming seed of the INV crossbar that ``solve(a, b, config, seed=seed)`` uses
    (the first of :class:`~rerinv.analog.machine.AnalogMachine`'s four streams), so that
    ``rerinv settle --seed S`` simulates the circuit ``rerinv solve --seed S`` solves on."""
    return spawn(seed, 4)[0]


def _inv_for_study(a: np.ndarray, config: Config, seed: int) -> InvCrossbar:
    """The crossbar a solve with ``seed`` would use
    (:func:`~rerinv.analog.routes.build_preconditioner`: INV, stabilised INV or generalised
    inverse, programmed from :func:`solve_crossbar_seed`); for a matrix no route holds stably,
    the plain INV crossbar without the stability checks, so that the study shows what its loop
    does (it runs to the rails)."""
    try:
        return build_preconditioner(a, config, seed=solve_crossbar_seed(seed))
    except UnstableMatrixError:  # a fresh seed object: the draw the solve tried first
        scaling = resolve_scaling(a, config)
        return build_inv(
            a, config, seed=solve_crossbar_seed(seed), scaling=scaling, check_stability=False
        )


def _within_rails(circuit: Circuit, inputs: np.ndarray, config: Config) -> np.ndarray:
    """``inputs``, scaled down when the circuit's DC point would put an amplifier (row op-amp
    or inverter, whose gain the mismatch changes) beyond the rails, as the solve's
    auto-ranging does: a step must show settling, not an overload. Transistor-level
    amplifiers with mismatch are planned at their nominal devices (as a designer plans ranges;
    the nodal engine cannot hold per-device draws)."""
    nominal = replace(circuit, opamp=replace(circuit.opamp, mismatch=False))
    volts = NodalEngine().load(nominal).amplifier_voltages(inputs)
    peak = float(np.max(np.abs(volts))) if volts.size else 0.0
    if not np.isfinite(peak) or peak <= OUTPUT_HEADROOM * config.opamp.v_rail:
        return inputs
    limit = OUTPUT_HEADROOM * min(config.converters.adc_range, config.opamp.v_rail)
    return inputs * (limit / peak)


def step_case(
    kind: str,
    matrix_or_n: np.ndarray | int,
    config: Config,
    *,
    seed: int = 0,
    excite: str = "random",
) -> tuple[Circuit, np.ndarray, CrossbarArrays]:
    """The circuit, step inputs (V) and arrays of a settling study.

    The matrix is ``matrix_or_n``, or ``wishart_factor(n, seed=seed)`` for an int. INV:
    the crossbar ``solve(..., seed=seed)`` uses (:func:`rerinv.analog.routes.build_preconditioner`,
    programming and inverter mismatch drawn from :func:`solve_crossbar_seed`); a matrix no
    route holds stably is built as a plain INV crossbar all the same, for the study to report
    ``unstable``. A step whose DC point would put an amplifier beyond the rails is scaled down
    as the solve's auto-ranging would. VMM:
    :func:`rerinv.analog.vmm.build_vmm`, computing ``-r_f G^T v``.

    ``excite="random"``: ``b = random_rhs(n, seed=seed + 1)``, DAC voltages scaled by the
    input gain a solve plans (:func:`rerinv.analog.inv.input_gain`,
    :func:`rerinv.analog.vmm.input_gain`). ``excite="slowest"``, the worst case the formula
    describes: the outputs settle onto the slowest eigenvector of ``D^-1 G`` (INV), or the step
    drives the slowest TIA hardest (VMM); outputs peak at
    :data:`~rerinv.analog.vmm.OUTPUT_HEADROOM` of the ADC range unless the DAC limits.
    """
    if kind not in ("inv", "vmm") or excite not in ("random", "slowest"):
        raise InputError(f"kind is inv or vmm and excite random or slowest; got {kind}, {excite}")
    if isinstance(matrix_or_n, int | np.integer):
        a = wishart_factor(int(matrix_or_n), seed=seed)
    else:
        a = check_matrix(matrix_or_n, max_size=config.array.max_size)
    b = check_vector(random_rhs(a.shape[0], seed=seed + 1), a.shape[0])
    conv = config.converters
    limit = OUTPUT_HEADROOM * min(conv.adc_range, config.opamp.v_rail)
    if kind == "inv":
        inv = _inv_for_study(a, config, seed)
        arrays, circuit = inv.arrays, inv.circuit
        if excite == "random":
            return circuit, _within_rails(circuit, input_gain(inv, b) * arrays.row_scale * b,
                                          config), arrays  # fmt: skip
        mode = slowest_mode(inv)
        inputs = -config.array.r_in * arrays.conductance_matrix @ (limit * mode / max(abs(mode)))
        inputs = _within_rails(circuit, inputs, config)
    else:
        crossbar = build_vmm(a, config, seed=seed)
        arrays, circuit = crossbar.arrays, crossbar.circuit
        if excite == "random":
            return circuit, vmm_input_gain(crossbar, b) * b, arrays
        slowest = np.argmin(tia_feedback_factors(circuit)) % a.shape[1]
        inputs = np.sign(arrays.conductance_matrix[:, slowest])
        inputs *= limit / (config.array.r_f * np.max(np.abs(arrays.conductance_matrix.T @ inputs)))
    return circuit, inputs * min(1.0, conv.dac_range / np.max(np.abs(inputs))), arrays


def write_settle_hdf5(
    path: str | Path,
    report: SettleReport,
    config: Config,
    *,
    seed: int,
    matrix: str,
    excite: str = "random",
    points: int | None = None,
    command_line: str | None = None,
) -> Path:
    """Store the waveforms of ``report`` with everything needed to reproduce and judge them.

    Datasets: ``time`` (s), ``outputs`` (n_outputs x n_times, V), ``amplifiers`` (the other
    amplifier outputs: inverters or TIAs, V), ``final`` and ``dc_solution`` (V, when the DC
    point exists). Attributes: ``kind``, ``n``, ``seed``, ``matrix`` (its source), ``excite``,
    ``status``, ``message``, ``settling_time``, ``predicted``, ``predicted_small_signal`` (s, nan
    if none), ``lambda_min``, ``inverter_pole_matters``, ``eps`` (relative to the ADC range),
    ``eps_abs`` (V), ``t_stop``, ``rise_time`` (s), ``output_nodes``, ``amplifier_nodes``,
    ``config`` (the configuration TOML verbatim) and :func:`rerinv.provenance.provenance`
    (``rerinv_version``, ``ngspice_version``, the other versions, ``created``,
    ``command_line``).

    Parameters
    ----------
    points : int, optional
        Resample onto this many evenly spaced times (default: ngspice's own time points).
    """
    wf = report.waveforms if points is None else resample(report.waveforms, points)
    attrs = provenance(command_line)
    names = ("kind", "n", "status", "message", "settling_time", "predicted",
             "predicted_small_signal", "lambda_min", "inverter_pole_matters", "eps", "eps_abs",
             "t_stop")  # fmt: skip
    attrs.update({name: getattr(report, name) for name in names})
    attrs.update(seed=seed, matrix=matrix, excite=excite, config=config.to_toml())
    datasets = {"final": report.final}
    if report.dc is not None:
        datasets["dc_solution"] = report.dc
    return write_waveforms(path, wf, attrs, datasets)


def settle(
    kind: str,
    matrix_or_n: np.ndarray | int,
    config: Config,
    *,
    eps: float | None = None,
    seed: int = 0,
    excite: str = "random",
    out: str | Path | None = None,
    plot: str | Path | None = None,
    command_line: str | None = None,
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
    out, plot : str or Path, optional
        Write the waveforms to this HDF5 file / plot them to this PNG.
    command_line : str, optional
        Stored with ``out`` as provenance.
    """
    circuit, inputs, arrays = step_case(kind, matrix_or_n, config, seed=seed, excite=excite)
    report = settle_circuit(circuit, inputs, config, eps=eps, arrays=arrays)
    if out is not None:
        source = "wishart_factor" if isinstance(matrix_or_n, int | np.integer) else "given"
        write_settle_hdf5(out, report, config, seed=seed, matrix=source, excite=excite,
                          command_line=command_line)  # fmt: skip
    if plot is not None:
        plot_settling(report, plot)
    return report
