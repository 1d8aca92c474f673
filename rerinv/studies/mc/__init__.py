"""Monte Carlo runs: sweep points x trials, fanned out to local processes or a Dask cluster.

A run is a :class:`SweepSpec` (:mod:`~rerinv.studies.mc.spec`): a base configuration, swept
``section.key`` axes and a number of trials per point. :func:`run_monte_carlo`
(:mod:`~rerinv.studies.mc.driver`) runs it on local processes or a Dask cluster
(:mod:`~rerinv.studies.mc.runners`) and stores every trial, by index, in one HDF5 file
(:mod:`~rerinv.studies.mc.store`); :func:`load_results` reads it back. What a trial record
holds is declared once, in :mod:`rerinv.studies.records`.
"""

from rerinv.studies.mc.driver import (
    RunSummary,
    TrialFunction,
    TrialTask,
    execute_trial,
    run_monte_carlo,
)
from rerinv.studies.mc.results import (
    FORMAT_VERSION,
    READABLE_VERSIONS,
    PointRecord,
    Results,
    RunDescription,
    load_results,
)
from rerinv.studies.mc.spec import AXIS_ALIASES, SweepSpec, parse_sweep

__all__ = [
    "AXIS_ALIASES",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "PointRecord",
    "Results",
    "RunDescription",
    "RunSummary",
    "SweepSpec",
    "TrialFunction",
    "TrialTask",
    "execute_trial",
    "load_results",
    "parse_sweep",
    "run_monte_carlo",
]
