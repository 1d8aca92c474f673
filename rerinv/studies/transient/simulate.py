"""Step responses through ngspice (``tran``): the record, its resampling and its HDF5 store.

Nothing here predicts or judges a response; :mod:`rerinv.studies.transient.predict` and
:mod:`rerinv.studies.transient.settle` build on this module, never the other way round.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rerinv.engines.ngspice import NgspiceEngine, NgspiceSession
from rerinv.errors import InputError
from rerinv.hw.circuit import Circuit
from rerinv.outputs import atomic_write

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


#: Op-amp models with dynamics: the single-pole macro-model and the transistor-level OTA.
DYNAMIC_MODELS = ("single_pole", "sky130")


def check_dynamic(circuit: Circuit) -> None:
    """Refuse op-amp models without dynamics (a transient needs ``single_pole`` or the
    transistor-level ``sky130``)."""
    if circuit.opamp.model not in DYNAMIC_MODELS:
        raise InputError(
            f"a transient needs opamp.model=single_pole (or sky130): the "
            f"{circuit.opamp.model!r} op-amp model has no dynamics; rerun with --set "
            "opamp.model=single_pole"
        )


def simulate_step(
    circuit: Circuit,
    inputs: np.ndarray,
    *,
    t_stop: float,
    session: NgspiceSession | None = None,
) -> Waveforms:
    """Step response of ``circuit`` through ngspice: the inputs step from 0 V to ``inputs``
    (V) at ``t = 0``, rising in :data:`STEP_RISE_TIME`; the largest time step is
    ``t_stop / POINTS``.

    Parameters
    ----------
    circuit : Circuit
        Must use ``opamp.model = "single_pole"`` or ``"sky130"`` (the others have no
        dynamics).
    inputs : numpy.ndarray
        Final input voltages (V).
    t_stop : float
        End of the simulation (s).
    session : NgspiceSession, optional
        A loaded session of ``circuit`` to reuse (else one is loaded and closed).
    """
    check_dynamic(circuit)
    own = session is None
    session = NgspiceEngine().load(circuit) if own else session
    try:
        data = session.transient(t_stop / POINTS, t_stop, inputs, STEP_RISE_TIME)
    finally:
        if own:
            session.close()
    nodes = tuple(session.monitored)
    values = np.array([data[node] for node in nodes])
    return Waveforms(data["time"], nodes, values, len(circuit.outputs), STEP_RISE_TIME)


def resample(wf: Waveforms, points: int) -> Waveforms:
    """``wf`` linearly interpolated onto ``points`` evenly spaced times over its window."""
    grid = np.linspace(wf.time[0], wf.time[-1], points)
    values = np.array([np.interp(grid, wf.time, row) for row in wf.values])
    return Waveforms(grid, wf.nodes, values, wf.n_outputs, wf.rise_time)


# -- HDF5 store ----------------------------------------------------------------------------
def write_waveforms(
    path: str | Path,
    wf: Waveforms,
    attrs: Mapping[str, Any],
    datasets: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write ``wf`` to an HDF5 file: datasets ``time`` (s), ``outputs`` (n_outputs x
    n_times, V) and ``amplifiers`` (the other amplifier outputs, V), attributes
    ``rise_time``, ``output_nodes``, ``amplifier_nodes`` and ``attrs``; plus ``datasets``.

    Every dataset carries a Fletcher32 checksum and the file uses the HDF5 1.10 format
    (checksummed metadata); it is written to a temporary file that replaces ``path`` only when
    complete (the caller decides whether ``path`` may be replaced: :mod:`rerinv.outputs`).
    HDF5 builds the file in memory and Python writes its bytes: a full disk is an ``OSError``
    of one line with nothing left behind (HDF5 writing to a full disk itself left a file it
    could not close, and crashed the interpreter at exit)."""
    import h5py

    image = io.BytesIO()
    with h5py.File(image, "w", libver=("v110", "latest")) as f:
        arrays = {"time": wf.time, "outputs": wf.outputs, "amplifiers": wf.values[wf.n_outputs :]}
        for name, data in {**arrays, **(datasets or {})}.items():
            data = np.asarray(data)
            f.create_dataset(name, data=data, fletcher32=data.size > 0)
        f.attrs.update(attrs)
        f.attrs["rise_time"] = wf.rise_time
        f.attrs["output_nodes"] = list(wf.output_nodes)
        f.attrs["amplifier_nodes"] = list(wf.nodes[wf.n_outputs :])
    return atomic_write(path, image.getvalue())


def read_waveforms(path: str | Path) -> tuple[Waveforms, dict]:
    """The waveforms and attributes (numpy scalars as Python scalars) of a file written by
    :func:`write_waveforms` (the settling files and the golden set)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            outputs, amplifiers = f["outputs"][()], f["amplifiers"][()]
            time = f["time"][()]
    except (OSError, KeyError, RuntimeError) as exc:
        what = "checksum mismatch" if "filter" in str(exc) or "checksum" in str(exc) else "damaged"
        raise InputError(f"{path}: {what}: cannot read the waveforms ({exc})") from None
    nodes = tuple(str(s) for s in attrs["output_nodes"]) + tuple(
        str(s) for s in attrs["amplifier_nodes"]
    )
    values = np.vstack([outputs, amplifiers]) if amplifiers.size else outputs
    return Waveforms(time, nodes, values, outputs.shape[0], attrs["rise_time"]), attrs
