"""Transient settling of the INV and VMM crossbars through ngspice.

Modules, each importing only the ones before it:

- :mod:`~rerinv.studies.transient.simulate`: the step response (``tran``), its record
  (:class:`Waveforms`) and HDF5 store;
- :mod:`~rerinv.studies.transient.measure`: the settling time and status of a response;
- :mod:`~rerinv.studies.transient.predict`: the settling-time formula and the small-signal
  model of the whole circuit;
- :mod:`~rerinv.studies.transient.plot`: the plot of one study;
- :mod:`~rerinv.studies.transient.settle`: the step, the study (:func:`settle`,
  :class:`SettleReport`) and its HDF5 file;
- :mod:`~rerinv.studies.transient.golden`: the golden regression set.
"""

from rerinv.studies.transient.golden import (
    GOLDEN_CASES,
    GOLDEN_DIR,
    GOLDEN_POINTS,
    GOLDEN_SEED,
    GOLDEN_TOLERANCE,
    GoldenComparison,
    compare_to_golden,
    golden_path,
    regenerate_golden,
)
from rerinv.studies.transient.measure import STATUSES, classify_step_response, settling_time
from rerinv.studies.transient.plot import plot_settling
from rerinv.studies.transient.predict import (
    Prediction,
    feedback_sensitivity,
    loop_lambda_min,
    predict,
    small_signal_rates,
    tia_feedback_factors,
)
from rerinv.studies.transient.settle import (
    SettleReport,
    settle,
    settle_circuit,
    step_case,
    write_settle_hdf5,
)
from rerinv.studies.transient.simulate import (
    POINTS,
    STEP_RISE_TIME,
    Waveforms,
    read_waveforms,
    resample,
    simulate_step,
    write_waveforms,
)

__all__ = [
    "GOLDEN_CASES",
    "GOLDEN_DIR",
    "GOLDEN_POINTS",
    "GOLDEN_SEED",
    "GOLDEN_TOLERANCE",
    "POINTS",
    "STATUSES",
    "STEP_RISE_TIME",
    "GoldenComparison",
    "Prediction",
    "SettleReport",
    "Waveforms",
    "classify_step_response",
    "compare_to_golden",
    "feedback_sensitivity",
    "golden_path",
    "loop_lambda_min",
    "plot_settling",
    "predict",
    "read_waveforms",
    "regenerate_golden",
    "resample",
    "settle",
    "settle_circuit",
    "settling_time",
    "simulate_step",
    "small_signal_rates",
    "step_case",
    "tia_feedback_factors",
    "write_settle_hdf5",
    "write_waveforms",
]
