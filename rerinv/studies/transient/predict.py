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

from rerinv.analog.dynamics import feedback_sensitivity, loop_rates
from rerinv.analog.inv import loop_matrix
from rerinv.config import Config
from rerinv.hw.circuit import Circuit
from rerinv.hw.mapping import CrossbarArrays
from rerinv.studies.transient.simulate import check_dynamic

INVERTER_SHIFT = 0.1  #: flag the inverters when they move the slowest rate by more than 10 %


def small_signal_rates(circuit: Circuit) -> np.ndarray:
    """Decay rates (1/s, complex) of the linearised circuit, one per amplifier
    (:func:`rerinv.analog.dynamics.loop_rates`); needs the ``single_pole`` op-amp model."""
    check_dynamic(circuit)
    return loop_rates(circuit)


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
    if circuit.tias and not circuit.opamps:  # a VMM crossbar
        lam = float(np.min(tia_feedback_factors(circuit)))
    elif arrays is not None and not circuit.tias:  # an INV crossbar (no formula for GINV)
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
