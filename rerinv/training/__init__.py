"""Second-order training with the analog inverse in the loop.

The study: the networks, K-FAC and inverse backends live in :mod:`rerinv.nn`; this room has
a driver that runs a grid {backend x bits x hardware level x damping x seed} (plus SGD and
Adam, tuned with the same budget on validation) into an HDF5 file; the paired statistics
(:mod:`rerinv.training.paired`: bits needed against float64); a report with hardware time
from the timing model; the step-ratio JSON for the timing model; factor capture.
See ``docs/training.md``.
"""

from rerinv.nn.backends import (
    AnalogInverse,
    Float64Inverse,
    InverseBackend,
    InverseOutcome,
    QuantisedInverse,
    make_backend,
)
from rerinv.training.factors import capture_factors, load_factor_set, save_factor_set
from rerinv.training.report import write_training_outputs, write_training_report
from rerinv.training.results import TrainingResults, load_training
from rerinv.training.run import TrainingSummary, run_training
from rerinv.training.spec import BACKENDS, Setting, TrainingSpec, training_config
from rerinv.training.summary import steps_summary, write_steps_json
from rerinv.training.train import RunRecord, run_seed, train_run

__all__ = [
    "BACKENDS",
    "AnalogInverse",
    "Float64Inverse",
    "InverseBackend",
    "InverseOutcome",
    "QuantisedInverse",
    "RunRecord",
    "Setting",
    "TrainingResults",
    "TrainingSpec",
    "TrainingSummary",
    "capture_factors",
    "load_factor_set",
    "load_training",
    "make_backend",
    "run_seed",
    "run_training",
    "save_factor_set",
    "steps_summary",
    "train_run",
    "training_config",
    "write_steps_json",
    "write_training_outputs",
    "write_training_report",
]
