"""Small-signal dynamics of a crossbar circuit: is the loop that is really simulated stable?

Every amplifier (row op-amp, inverter, TIA) is a single pole: its output ``p`` obeys
``dp/dt = -2 pi GBW (v(inn) + p / gain)``, and its inverting input is a linear function of
all amplifier outputs through the resistor network, ``v(inn) = S p``
(:func:`feedback_sensitivity`). The decay rates are the eigenvalues of
``2 pi GBW (S + I / gain)``: a DC operating point is a solution the circuit reaches only if
every rate has a positive real part. Real op-amps always have a dominant pole, so the check
uses ``opamp.gbw`` and the DC gain of every op-amp model (``ideal`` included); rails and
output resistance are ignored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from rerinv.hw.circuit import Circuit

#: The slowest rate must exceed this fraction of the fastest for the loop to count as stable
#: (below it the sign of the slowest rate is lost in rounding).
STABILITY_MARGIN = 1e-12


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


def loop_rates(circuit: Circuit) -> np.ndarray:
    """Decay rates (1/s, complex) of the linearised circuit, one per amplifier; a positive
    real part decays, the smallest real part is the slowest mode (<= 0: unstable)."""
    oa, sensitivity = circuit.opamp, feedback_sensitivity(circuit)
    gbw = np.full(len(sensitivity), oa.gbw)  # amplifiers: bare op-amps first (compensated)
    gbw[: len(circuit.opamps)] = [circuit.gbw_of_opamp(k) for k in range(len(circuit.opamps))]
    loop = sensitivity + np.eye(len(sensitivity)) / oa.dc_gain
    return 2 * np.pi * np.linalg.eigvals(gbw[:, None] * loop)


def slowest_rate(circuit: Circuit) -> tuple[float, float]:
    """``(min Re(rate), max |rate|)`` of :func:`loop_rates` (1/s)."""
    rates = loop_rates(circuit)
    return float(np.min(rates.real)), float(np.max(np.abs(rates)))


def is_stable(circuit: Circuit) -> bool:
    """True when every small-signal mode decays, the slowest at least
    :data:`STABILITY_MARGIN` times the fastest."""
    slowest, fastest = slowest_rate(circuit)
    return slowest > STABILITY_MARGIN * fastest
