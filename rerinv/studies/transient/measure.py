"""What is measured on a step response: the settling time and the status of a window."""

from __future__ import annotations

import numpy as np

from rerinv.engines import RAIL_MARGIN
from rerinv.studies.transient.simulate import Waveforms

STATUSES = ("settled", "not_settled", "oscillating", "unstable")
SETTLED_FRACTION = 2 / 3  #: settled only if inside the band for the last third of the window


def settling_time(t: np.ndarray, y: np.ndarray, final: np.ndarray, eps_abs: float) -> float:
    """Time (s) after which every output stays within ``|y - final| <= eps_abs``.

    Parameters
    ----------
    t : numpy.ndarray
        (n_times,) increasing times (s).
    y : numpy.ndarray
        (n_times,) or (n_outputs, n_times) waveforms (V).
    final : float or numpy.ndarray
        Final value of each output (V).
    eps_abs : float
        Half-width of the settling band (V).

    Returns
    -------
    float
        The last time any output is outside its band, interpolated linearly between the
        samples around the crossing (the max over outputs); ``t[0]`` if never outside; ``nan``
        if still outside at the last sample (did not settle within the window).
    """
    t = np.asarray(t, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    final = np.broadcast_to(np.asarray(final, dtype=float).reshape(-1, 1), (y.shape[0], 1))
    deviation = np.max(np.abs(y - final), axis=0)
    outside = np.flatnonzero(deviation > eps_abs)
    if outside.size == 0:
        return float(t[0])
    k = outside[-1]
    if k == len(t) - 1:
        return float("nan")
    fraction = (deviation[k] - eps_abs) / (deviation[k] - deviation[k + 1])
    return float(t[k] + fraction * (t[k + 1] - t[k]))


def classify_step_response(
    wf: Waveforms, final: np.ndarray | None, eps_abs: float, v_rail: float
) -> tuple[str, float, str]:
    """Status of one simulated window: ``(status, settling time (s), reason)``.

    ``unstable``: an amplifier output sits at the rails at the end of the window.
    ``settled``: every output is within ``eps_abs`` of ``final`` (V) for the last third of
    the window or longer. ``oscillating``: the largest deviation from ``final`` in the last
    quarter of the window is not 10 % below the one in the quarter before. ``not_settled``:
    still decaying, or no ``final`` value (the DC operating point railed).
    """
    railed = np.flatnonzero(np.abs(wf.values[:, -1]) >= v_rail * (1 - RAIL_MARGIN))
    if railed.size:
        names = ", ".join(wf.nodes[k] for k in railed[:5])
        return "unstable", float("nan"), f"amplifier outputs at the +-{v_rail:g} V rails: {names}"
    if final is None:
        return "not_settled", float("nan"), "no final value (the DC operating point railed)"
    measured = settling_time(wf.time, wf.outputs, final, eps_abs)
    t_end = wf.time[-1]
    if np.isfinite(measured) and measured <= SETTLED_FRACTION * t_end:
        return "settled", measured, "settled within the band"
    deviation = np.max(np.abs(wf.outputs - final[:, None]), axis=0)
    late, before = wf.time >= 0.75 * t_end, (wf.time >= 0.5 * t_end) & (wf.time < 0.75 * t_end)
    if np.max(deviation[late]) >= 0.9 * np.max(deviation[before]):
        return "oscillating", float("nan"), "the deviation from the final value does not decay"
    return "not_settled", float("nan"), "still decaying at the end of the window"
