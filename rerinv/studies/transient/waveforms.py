"""Step responses: simulating them (ngspice ``tran``), the record, what is measured on it,
the HDF5 store, the plot and the golden regression set. The predictions and the settling
study that use them are in :mod:`rerinv.studies.transient.settle`.

The golden waveforms (``waveforms/*.h5`` at the top of the checkout) are the default
configuration's step responses of INV and VMM crossbars, N = 4 and 8, seed 0. Regenerate them
after a deliberate change of the circuits or models with::

    .venv/bin/python -m rerinv.studies.transient.waveforms --regenerate-golden

and check the current code against them with ``--check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rerinv.config import Config
from rerinv.engines import RAIL_MARGIN
from rerinv.engines.ngspice import NgspiceEngine
from rerinv.errors import InputError
from rerinv.hw.circuit import Circuit
from rerinv.resources import golden_dir

SETTLED_FRACTION = 2 / 3  #: settled only if inside the band for the last third of the window
STATUSES = ("settled", "not_settled", "oscillating", "unstable")
STEP_RISE_TIME = 1e-11  #: rise time of the input step (s)
POINTS = 400  #: the largest ngspice time step is t_stop / POINTS


@dataclass(frozen=True, eq=False)
class Waveforms:
    """Node voltages (V) over time (s); the circuit's outputs come first."""

    time: np.ndarray  #: (n_times,) s
    nodes: tuple[str, ...]  #: outputs, then the other amplifier outputs (inverters, TIAs)
    values: np.ndarray  #: (n_nodes, n_times) V
    n_outputs: int
    rise_time: float  #: rise time of the input step (s)

    @property
    def outputs(self) -> np.ndarray:
        """(n_outputs, n_times) voltages of the circuit's outputs (V)."""
        return self.values[: self.n_outputs]

    @property
    def output_nodes(self) -> tuple[str, ...]:
        return self.nodes[: self.n_outputs]


def check_dynamic(circuit: Circuit) -> None:
    """Refuse op-amp models without dynamics (a transient needs ``single_pole``)."""
    if circuit.opamp.model != "single_pole":
        raise InputError(
            f"a transient needs opamp.model=single_pole: the {circuit.opamp.model!r} op-amp "
            "model has no dynamics; rerun with --set opamp.model=single_pole"
        )


def simulate_step(
    circuit: Circuit,
    inputs: np.ndarray,
    *,
    t_stop: float | None = None,
    t_step: float | None = None,
    session=None,
) -> Waveforms:
    """Step response of ``circuit`` through ngspice: the inputs step from 0 V to ``inputs``
    (V) at ``t = 0``, rising in :data:`STEP_RISE_TIME`.

    Parameters
    ----------
    circuit : Circuit
        Must use ``opamp.model = "single_pole"`` (the other models have no dynamics).
    inputs : numpy.ndarray
        Final input voltages (V).
    t_stop : float, optional
        End of the simulation (s); default 20 slowest small-signal time constants.
    t_step : float, optional
        Largest time step (s); default ``t_stop / POINTS``.
    session : NgspiceSession, optional
        A loaded session of ``circuit`` to reuse (else one is loaded and closed).
    """
    check_dynamic(circuit)
    if t_stop is None:
        from rerinv.studies.transient.settle import small_signal_rates

        t_stop = 20.0 / abs(np.min(small_signal_rates(circuit).real))
    t_step = t_stop / POINTS if t_step is None else t_step
    own = session is None
    session = NgspiceEngine().load(circuit) if own else session
    try:
        data = session.transient(t_step, t_stop, inputs, STEP_RISE_TIME)
    finally:
        if own:
            session.close()
    nodes = tuple(session.monitored)
    values = np.array([data[node] for node in nodes])
    return Waveforms(data["time"], nodes, values, len(circuit.outputs), STEP_RISE_TIME)


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


def resample(wf: Waveforms, points: int) -> Waveforms:
    """``wf`` linearly interpolated onto ``points`` evenly spaced times over its window."""
    grid = np.linspace(wf.time[0], wf.time[-1], points)
    values = np.array([np.interp(grid, wf.time, row) for row in wf.values])
    return Waveforms(grid, wf.nodes, values, wf.n_outputs, wf.rise_time)


# -- HDF5 store ----------------------------------------------------------------------------
def write_settle_hdf5(
    path: str | Path,
    report,
    config: Config,
    *,
    seed: int,
    matrix: str,
    excite: str = "random",
    points: int | None = None,
) -> Path:
    """Store the waveforms of a :class:`rerinv.studies.transient.settle.SettleReport` with everything needed to
    reproduce and judge them.

    Datasets: ``time`` (s), ``outputs`` (n_outputs x n_times, V), ``amplifiers`` (the other
    amplifier outputs: inverters or TIAs, V), ``final`` and ``dc_solution`` (V, when the DC
    point exists). Attributes: ``kind``, ``n``, ``seed``, ``matrix`` (its source), ``excite``,
    ``status``, ``settling_time``, ``predicted``, ``predicted_small_signal`` (s, nan if
    none), ``lambda_min``, ``inverter_pole_matters``, ``eps`` (relative to the ADC range),
    ``eps_abs`` (V), ``t_stop``, ``rise_time`` (s), ``output_nodes``, ``amplifier_nodes``,
    ``config`` (the configuration TOML verbatim), ``rerinv_version``, ``ngspice_version``.

    Parameters
    ----------
    points : int, optional
        Resample onto this many evenly spaced times (default: ngspice's own time points).
    """
    import h5py

    from rerinv import __version__
    from rerinv.engines.ngspice import ngspice_version

    wf = report.waveforms if points is None else resample(report.waveforms, points)
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("time", data=wf.time)
        f.create_dataset("outputs", data=wf.outputs)
        f.create_dataset("amplifiers", data=wf.values[wf.n_outputs :])
        f.create_dataset("final", data=report.final)
        if report.dc is not None:
            f.create_dataset("dc_solution", data=report.dc)
        for name in (
            "kind", "n", "status", "settling_time", "predicted", "predicted_small_signal",
            "lambda_min", "inverter_pole_matters", "eps", "eps_abs", "t_stop",
        ):  # fmt: skip
            f.attrs[name] = getattr(report, name)
        f.attrs.update(seed=seed, matrix=matrix, excite=excite, rise_time=wf.rise_time)
        f.attrs["output_nodes"] = list(wf.output_nodes)
        f.attrs["amplifier_nodes"] = list(wf.nodes[wf.n_outputs :])
        f.attrs["config"] = config.to_toml()
        f.attrs["rerinv_version"] = __version__
        f.attrs["ngspice_version"] = ngspice_version()
    return path


def read_waveforms(path: str | Path) -> tuple[Waveforms, dict]:
    """The waveforms and attributes of a file written by :func:`write_settle_hdf5`."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        outputs, amplifiers = f["outputs"][()], f["amplifiers"][()]
        time = f["time"][()]
    nodes = tuple(str(s) for s in attrs["output_nodes"]) + tuple(
        str(s) for s in attrs["amplifier_nodes"]
    )
    values = np.vstack([outputs, amplifiers]) if amplifiers.size else outputs
    return Waveforms(time, nodes, values, outputs.shape[0], attrs["rise_time"]), attrs


# -- plot ----------------------------------------------------------------------------------
def plot_settling(report, path: str | Path) -> Path:
    """PNG of a :class:`rerinv.studies.transient.settle.SettleReport`: the outputs against time, and the
    largest deviation from the DC solution on a log scale with the band ``eps_abs``, the
    measured settling time and the predictions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wf = report.waveforms
    t_us = 1e6 * wf.time
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    for row, name in zip(wf.outputs, wf.output_nodes, strict=True):
        top.plot(t_us, row, lw=1, label=name if wf.n_outputs <= 8 else None)
    final = report.dc if report.dc is not None else report.final
    deviation = np.max(np.abs(wf.outputs - final[:, None]), axis=0)
    bottom.semilogy(t_us, np.maximum(deviation, 1e-12), "k", lw=1, label="max |V - V_dc|")
    bottom.axhline(report.eps_abs, color="tab:gray", ls=":", label=f"eps = {report.eps:.3g}")
    marks = (
        (report.settling_time, "tab:red", "-", "measured"),
        (report.predicted, "tab:blue", "--", "ln(1/eps)/(2 pi GBW lambda_min)"),
        (report.predicted_small_signal, "tab:green", ":", "small-signal model"),
    )
    for seconds, color, style, label in marks:
        if np.isfinite(seconds):
            for ax in (top, bottom):
                ax.axvline(1e6 * seconds, color=color, ls=style, lw=1.2)
            bottom.plot([], [], color=color, ls=style, label=f"{label} {1e6 * seconds:.3g} us")
    top.set_ylabel("output (V)")
    top.set_title(
        f"{report.kind.upper()} N={report.n} step response: {report.status}"
        + (" (inverter pole matters)" if report.inverter_pole_matters else "")
    )
    if wf.n_outputs <= 8:
        top.legend(fontsize=7, ncol=4)
    bottom.set_xlabel("time (us)")
    bottom.set_ylabel("deviation (V)")
    bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


# -- golden regression set -----------------------------------------------------------------
GOLDEN_DIR = golden_dir()
GOLDEN_CASES = (("inv", 4), ("inv", 8), ("vmm", 4), ("vmm", 8))  #: (kind, N), seed 0
GOLDEN_SEED = 0
GOLDEN_POINTS = 401
#: Largest allowed |V_new(t) - V_golden(t)| over every stored node and time (V): a quarter
#: of the default settling band (half an 8-bit LSB of 1 V = 3.9 mV).
GOLDEN_TOLERANCE = 1e-3


def golden_path(kind: str, n: int, directory: str | Path = GOLDEN_DIR) -> Path:
    return Path(directory) / f"{kind}_n{n}.h5"


def regenerate_golden(directory: str | Path = GOLDEN_DIR) -> list[Path]:
    """Simulate every :data:`GOLDEN_CASES` with the default configuration and store it,
    resampled to :data:`GOLDEN_POINTS` times."""
    from rerinv.studies.transient.settle import settle

    config = Config()
    Path(directory).mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, n in GOLDEN_CASES:
        report = settle(kind, n, config, seed=GOLDEN_SEED)
        paths.append(
            write_settle_hdf5(
                golden_path(kind, n, directory),
                report,
                config,
                seed=GOLDEN_SEED,
                matrix="kfac_factor",
                points=GOLDEN_POINTS,
            )
        )
    return paths


@dataclass(frozen=True)
class GoldenComparison:
    path: Path
    max_deviation: float  #: V
    worst_node: str
    tolerance: float  #: V

    @property
    def passed(self) -> bool:
        return self.max_deviation <= self.tolerance


def compare_to_golden(
    path: str | Path, config: Config | None = None, tolerance: float = GOLDEN_TOLERANCE
) -> GoldenComparison:
    """Re-simulate a golden case (with its stored configuration, or ``config``) over the
    stored window and compare every node at the stored times (linear interpolation)."""
    from rerinv.studies.transient.settle import simulate_step, step_case

    golden, attrs = read_waveforms(path)
    if config is None:
        config = Config.from_toml(attrs["config"], source=str(path))
    circuit, inputs, _ = step_case(
        attrs["kind"], int(attrs["n"]), config, seed=int(attrs["seed"]), excite=attrs["excite"]
    )
    wf = simulate_step(circuit, inputs, t_stop=float(attrs["t_stop"]))
    now = np.array([np.interp(golden.time, wf.time, wf.values[wf.nodes.index(node)])
                    for node in golden.nodes])  # fmt: skip
    error = np.max(np.abs(now - golden.values), axis=1)
    worst = int(np.argmax(error))
    return GoldenComparison(Path(path), float(error[worst]), golden.nodes[worst], tolerance)
