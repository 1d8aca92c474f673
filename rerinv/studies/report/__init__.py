"""Monte Carlo report: statistics per point, plots, configuration and versions.

``write_report(results.h5, out)`` writes one self-contained HTML file (PNG plots embedded as
base64) or Markdown with the PNGs next to it. Statistics: :mod:`~rerinv.studies.report.stats`;
plots: :mod:`~rerinv.studies.report.plots`; documents: :mod:`~rerinv.studies.report.html`.
"""

from rerinv.studies.report.html import write_report
from rerinv.studies.report.plots import Plot, make_plots
from rerinv.studies.report.stats import (
    QUANTILE_METHOD,
    STAT_COLUMNS,
    format_statistic,
    point_statistics,
    quantiles,
    wilson_interval,
)

__all__ = [
    "QUANTILE_METHOD",
    "STAT_COLUMNS",
    "Plot",
    "format_statistic",
    "make_plots",
    "point_statistics",
    "quantiles",
    "wilson_interval",
    "write_report",
]
