"""What the settling time should be, without a transient: the formula and the small-signal
model of the whole circuit.

- The formula: ``ln(1/eps) / (2 pi GBW lambda_min(D^-1 G))`` (INV), or
  ``ln(1/eps) / (2 pi GBW beta_min)`` with the smallest TIA feedback factor ``beta`` (VMM).
- ``ln(1/eps) / sigma``, with ``sigma`` the slowest decay rate of the small-signal model of
  the whole circuit (:func:`small_signal_rates`): every row amplifier, inverter and TIA pole.

Both assume the slowest mode starts with the full ADC range as its amplitude.

The inverters of an INV crossbar lag ``-x`` by their own pole, which makes the negative array
look stronger than it is while the loop decays. The slowest rate drops by about ``1 + 2 nu``,
``nu`` being the share of the row conductance the slowest mode sees in the negative array, and
that holds however much faster the inverter pole is (1-D Laplacian: rate 1.86x lower).
``inverter_pole_matters`` flags when the inverters move the slowest rate by more than 10 %, or
when their pole is within a factor 3 of the loop's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from rerinv.analog.inv import loop_matrix
from rerinv.config import Config
from rerinv.hw.circuit import Circuit
from rerinv.hw.mapping import CrossbarArrays
from rerinv.studies.transient.simulate import check_dynamic

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


def tia_feedback_factors(circuit: Circuit) -> np.ndarray:
    """Feedback factor ``beta = d v(in) / d v(out)`` of each TIA (``(1/r_f) / (total
    conductance at its input)`` without wires); a TIA settles like ``exp(-2 pi GBW beta t)``."""
    first = len(circuit.opamps) + len(circuit.inverters)
    return np.diag(feedback_sensitivity(circuit))[first:]


def settling_from_rate(rate: float, eps: float) -> float:
    """``ln(1/eps) / rate`` (s) for a decay rate (1/s); ``nan`` unless it decays."""
    return float(np.log(1 / eps) / rate) if rate > 0 else float("nan")


@dataclass(frozen=True)
class Prediction:
    """The predicted settling times of one circuit (s; ``nan`` when a loop does not decay)."""

    formula: float  #: INV: ln(1/eps) / (2 pi GBW lambda_min); VMM: the slowest TIA
    small_signal: float  #: ln(1/eps) / sigma
    sigma: float  #: slowest decay rate of the whole small-signal model (1/s; <= 0: unstable)
    lambda_min: float  #: INV: lambda_min(D^-1 G); VMM: smallest TIA feedback factor
    inverter_pole_matters: bool


def predict(
    circuit: Circuit, config: Config, eps: float, arrays: CrossbarArrays | None = None
) -> Prediction:
    """Both predictions for a settling band ``eps`` (relative to the ADC range).

    An INV circuit needs its ``arrays`` for the formula (``nan`` without them); a VMM circuit
    (one with TIAs) takes ``beta_min`` from the network itself.
    """
    sigma = float(np.min(small_signal_rates(circuit).real))
    omega = 2 * np.pi * circuit.opamp.gbw
    lam, matters = float("nan"), False
    if circuit.tias:
        lam = float(np.min(tia_feedback_factors(circuit)))
    elif arrays is not None:
        lam = loop_lambda_min(arrays, config)
        if lam > 0 and circuit.inverters:
            inverter_rate = omega * min(r1 / (r1 + r2) for _, _, r1, r2 in circuit.inverters)
            loop_rate = omega * (lam + 1 / circuit.opamp.gain)  # the loop, ideal inverters
            matters = inverter_rate < 3 * loop_rate or abs(loop_rate / sigma - 1) > INVERTER_SHIFT
    return Prediction(
        formula=settling_from_rate(omega * lam, eps),
        small_signal=settling_from_rate(sigma, eps),
        sigma=sigma,
        lambda_min=lam,
        inverter_pole_matters=bool(matters),
    )
