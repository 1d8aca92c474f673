"""System-level timing and energy model: from circuit-verified solve costs to training time.

Pure functions of an architecture (:mod:`~rerinv.system.arch`, TOML presets ``repast`` and
``calibrated`` in ``presets/``), a workload (:mod:`~rerinv.system.workloads`, built-in layer
tables in :mod:`~rerinv.system.networks`) and a parameter card (``rerinv calibrate``), which
supplies the INV settling time versus N and the per-solve costs
(:mod:`~rerinv.system.calibration`). :mod:`~rerinv.system.model` counts the accelerator's
operations (:mod:`~rerinv.system.activations`: where the activations kept for the backward
pass live), :mod:`~rerinv.system.baselines` the GPU's, :mod:`~rerinv.system.compare` puts the
four machines side by side and sweeps one input at a time, :mod:`~rerinv.system.published`
holds RePAST/STAMP's and PipeLayer's published numbers and checks the model's per-network
ratios against them, :mod:`~rerinv.system.report` writes JSON, plots and an HTML page.
Everything is numpy arithmetic: any input may be an array.

This package reads :mod:`rerinv.card` and :mod:`rerinv.errors` only; it never runs a circuit.
See ``docs/timing.md``.
"""

from rerinv.system.arch import ARCH_FIELDS, Architecture, arch_names, load_arch
from rerinv.system.calibration import InvTiming, SolveCost, inv_timing, solve_cost
from rerinv.system.compare import MACHINES, PAPER, SWEEP_AXES, averages, evaluate, sweep
from rerinv.system.workloads import (
    Training,
    Workload,
    large_workloads,
    load_steps_ratio,
    load_workload,
    workload_names,
)

__all__ = [
    "ARCH_FIELDS",
    "Architecture",
    "InvTiming",
    "MACHINES",
    "PAPER",
    "SWEEP_AXES",
    "SolveCost",
    "Training",
    "Workload",
    "arch_names",
    "averages",
    "evaluate",
    "inv_timing",
    "large_workloads",
    "load_arch",
    "load_steps_ratio",
    "load_workload",
    "solve_cost",
    "sweep",
    "workload_names",
]
