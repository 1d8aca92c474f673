"""Plot of one settling study (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rerinv.outputs import replacing


def plot_settling(report, path: str | Path) -> Path:
    """PNG of a :class:`~rerinv.studies.transient.settle.SettleReport`: the outputs against
    time, and the largest deviation from the DC solution on a log scale with the band
    ``eps_abs``, the measured settling time and the predictions marked."""
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
    with replacing(path) as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)
    return Path(path)
