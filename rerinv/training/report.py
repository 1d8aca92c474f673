"""The training report: one self-contained HTML file with embedded PNG plots."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

from rerinv.outputs import atomic_write
from rerinv.training.hardware_time import step_times
from rerinv.training.paired import bits_needed, choice_metric, tuning
from rerinv.training.plots import Plot, make_plots
from rerinv.training.results import TrainingResults, load_training
from rerinv.training.sections import (
    bits_section,
    hardware_section,
    test_section,
    tuning_section,
)
from rerinv.training.summary import (
    setting_rows,
    step_ratio,
    steps_json,
    targets,
    test_once,
)


def write_training_report(results_path: str | Path, out: str | Path) -> Path:
    """Write the HTML report of the training file ``results_path`` to ``out``."""
    return write_training_outputs(results_path, report=out)[0]


def write_training_outputs(
    results_path: str | Path | TrainingResults,
    *,
    report: str | Path | None = None,
    steps: str | Path | None = None,
    setting: str | None = None,
) -> list[Path]:
    """Write the HTML ``report`` and the ``steps`` JSON (either may be None) of the training
    file ``results_path`` (or of results already loaded).

    The file is read once (its checksums verified) and both texts are made before anything
    is written; each is written atomically, and when one cannot be written the files this
    call created are removed, so a failure leaves the folder as it was (an existing file
    replaced before the failure stays replaced).
    """
    if isinstance(results_path, TrainingResults):
        results = results_path
    else:
        results = load_training(results_path)
    texts: dict[Path, str] = {}
    if report is not None:
        texts[Path(report)] = render(results)
    if steps is not None:
        texts[Path(steps)] = steps_json(results, setting)
    created: list[Path] = []
    try:
        for path, text in texts.items():
            existed = path.exists()
            atomic_write(path, text)
            if not existed:
                created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return list(texts)


def _interval(value: tuple[float, float, float], fmt: str = "{:.1f}") -> str:
    mean, lo, hi = value
    if not math.isfinite(mean):
        return "-"
    return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _bits(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "exact" if math.isinf(value) else f"{value:.1f}"


def render(results: TrainingResults) -> str:
    """The report as HTML text."""
    spec, cfg = results.spec, results.config
    rows = setting_rows(results)
    chosen = tuning(results, rows)
    best = {name: chosen[name]["row"] for name in ("sgd", "adam") if name in chosen}
    kfac = [r for r in rows if r["optimizer"] == "kfac"]
    groups = bits_needed(results, rows)
    shown = curve_rows(results, rows, chosen)
    total, done = results.done.size, int(results.done.sum())
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>rerinv training report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
        "collapse;font-size:12px}td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}"
        "td:first-child{text-align:left}pre{background:#f4f4f4;padding:6px;font-size:11px}</style>",
        "</head><body><h1>rerinv training report: K-FAC with analog factor inverses</h1>",
        _p(
            f"{results.path.name}: {done} of {total} runs stored. Data {spec.dataset_name} "
            f"(train / validation / test split by data seed {spec.data_seed}), "
            f"network {spec.network_description()} ({spec.activation}), "
            f"{spec.steps} steps "
            f"of batch {spec.batch_size}, {spec.seeds} seeds per setting (seed i: same initial "
            f"weights and batches in every setting), master seed {spec.master_seed}. K-FAC: lr "
            f"{spec.kfac_lr:g}, KL clip {spec.kl_clip:g}, damping {_values(spec.damping)} "
            f"({'factored pi-' if spec.pi_damping else ''}Tikhonov), factor decay {spec.decay:g}, "
            f"inverses every T_inv = {spec.inverse_every} steps, each factor inverted as N solves "
            f"of unit vectors. Analog engine: {cfg.simulation.engine}. Created "
            f"{results.attrs.get('created', '?')} by: {results.attrs.get('command_line') or '?'}"
        ),
    ]
    if not results.checked:
        parts.append(
            "<p><strong>Unverified file:</strong> "
            + html.escape(
                f"{results.path.name} was written before training files carried checksums "
                "(format version 1), so damage to it cannot be detected: the numbers below are "
                "not verified."
            )
            + "</p>"
        )
    if done < total:
        parts.append(
            _p("Incomplete file: statistics cover the stored runs; complete it with --resume.")
        )
    if any(r["blocks"] > 1 for r in rows):
        parts.append(
            _p(
                f"Block-diagonal split: factors wider than array.max_size = {cfg.array.max_size} "
                "were inverted as independent diagonal blocks (off-diagonal blocks dropped)."
            )
        )
    metric = choice_metric(results)
    parts += hardware_section(results)
    parts += bits_section(results, groups)
    parts += tuning_section(results, chosen)
    parts += test_section(results, test_once(results, rows, chosen))
    headers = ["setting", "seeds"]
    for name, threshold, above in targets(results):
        headers += [
            f"reached {name} {'>=' if above else '<='} {threshold:g}",
            "steps to it: mean [95 % t]",
        ]
    headers += [
        "final train loss [95 % t]",
        "final test acc",
        "median bits",
        "worst bits",
        "INV solves / update",
        "failed inverses",
        "non-descent layer-steps / run",
        "non-descent steps / run",
        "simulator ms / step",
    ]
    table = []
    for row in shown:
        cells = [
            row["label"] + (" (tuned)" if row["optimizer"] != "kfac" else ""),
            str(row["seeds"]),
        ]
        for name, _, _ in targets(results):
            cells += [f"{row[f'reached:{name}']}/{row['seeds']}", _interval(row[f"mean:{name}"])]
        cells += [
            _interval(row["final_loss"], "{:.2e}"),
            _interval(row["final_accuracy"], "{:.3f}"),
            _bits(row["median_bits"]) if row["optimizer"] == "kfac" else "",
            _bits(row["min_bits"]) if row["optimizer"] == "kfac" else "",
            f"{row['inv_solves_per_update']:.0f}" if row["inv_solves_per_update"] > 0 else "",
            str(row["inverse_failures"]) if row["optimizer"] == "kfac" else "",
            _count(row["non_descent"]["layer_steps"]),
            _count(row["non_descent"]["steps"]),
            _interval(row["ms_per_step"], "{:.2f}"),
        ]
        table.append(cells)
    parts += [
        "<h2>Steps to target and final loss per setting</h2>",
        _p(
            "Means over the seeds that reached the target with 95 % Student-t intervals. 'median "
            "bits' / 'worst bits': effective bits of the factor-inverse columns against the "
            "float64 "
            "inverse of the damped factor (median, and worst column of any update). Non-descent: "
            "layer-steps whose preconditioned direction had <V_l, grad_l> <= 0, and steps whose "
            "whole direction had sum_l <V_l, grad_l> <= 0 (mean per run). Simulator ms / step "
            "is how long the simulation took (analog inverses simulated on the engine), not "
            "hardware time (see the hardware-time plot)."
        ),
        _table(headers, table),
    ]
    ratio_rows = []
    for row in kfac:
        cells = [row["label"]]
        for name in ("sgd", "adam"):
            if name in best:
                r = step_ratio(results, row, best[name], metric)
                flag = " (censored)" if r["censored"] else ""
                cells.append(f"{r['ratio']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]{flag}")
        ratio_rows.append(cells)
    parts += [
        f"<h2>Steps ratio to the {metric} target: K-FAC setting / tuned baseline</h2>",
        _p(
            "Paired bootstrap 95 % intervals over seeds. Below 1: K-FAC needs fewer steps. "
            "'censored': some seed did not reach the target and counts as steps + 1."
        ),
        _table(["setting", *[f"vs tuned {k}" for k in ("sgd", "adam") if k in best]], ratio_rows),
        "<h2>Plots</h2>",
    ]
    try:
        step_seconds = step_times(spec, results.settings)
    except Exception:  # the timing model has no machine for this network: steps only
        step_seconds = None
    for plot in make_plots(results, rows, shown, groups, step_seconds):
        parts += [f"<h3>{html.escape(plot.title)}</h3>", _img(plot), _p(plot.caption)]
    parts += _conditions_table(results, rows)
    parts += [
        "<h2>Inverse backends</h2>",
        _table(
            ["setting", "how its factor inverses are made"],
            [
                [s.label, d]
                for s, d in zip(results.settings, results.descriptions, strict=True)
                if d
            ],
        ),
        "<h2>Training spec (JSON, verbatim)</h2>",
        f"<pre>{html.escape(spec.to_json())}</pre>",
        "<h2>Hardware configuration (TOML, verbatim)</h2>",
        f"<pre>{html.escape(cfg.to_toml())}</pre>",
        "<h2>Versions and provenance</h2>",
        _table(["attribute", "value"], [[k, str(v)] for k, v in sorted(results.attrs.items())]),
    ]
    failed = np.flatnonzero(results.status == "failed")
    if failed.size:
        parts += [
            f"<h2>Failed runs ({failed.size})</h2>",
            _table(
                ["setting", "seed", "error"],
                [
                    [
                        results.settings[results.setting_index[r]].label,
                        str(results.seed_index[r]),
                        results.error[r],
                    ]
                    for r in failed[:100]
                ],
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _conditions_table(results: TrainingResults, rows: list[dict]) -> list[str]:
    ev = results.events
    table = []
    sizes = results.spec.factor_sizes()
    for row in rows:
        if row["optimizer"] != "kfac" or not row["runs"].size:
            continue
        for f, label in enumerate(results.factor_labels):
            cond = ev["condition"][row["runs"], :, f]
            cond = cond[np.isfinite(cond)]
            if not cond.size:
                continue
            damping = ev["damping"][row["runs"], :, f]
            size = sizes[f // 2][f % 2]
            table.append(
                [
                    row["label"],
                    label,
                    str(size),
                    f"{np.median(cond):.3g}",
                    f"{np.max(cond):.3g}",
                    f"{np.nanmedian(damping):.3g}",
                ]
            )
    return [
        "<h2>Factor condition numbers seen during training</h2>",
        _p("Damped factors as handed to the inverse backend, over all inverse updates and seeds."),
        _table(
            ["setting", "factor", "size", "median cond", "max cond", "median damping added"], table
        ),
    ]


def curve_rows(results: TrainingResults, rows: list[dict], chosen: dict) -> list[dict]:
    """The rows drawn as curves: the chosen float64 K-FAC, the K-FAC settings at its damping
    (with a cell-bits axis: 6 and 8 bits at every hardware level), and the tuned
    baselines."""
    kfac = [r for r in rows if r["optimizer"] == "kfac"]
    if "kfac" in chosen:
        damping = chosen["kfac"]["row"]["damping"]
        kfac = [r for r in kfac if r["damping"] == damping]
    if any(r["backend"] == "single" and r["bits"] is not None for r in kfac):
        # the cell-bits axis: float64, and 6- and 8-bit cells at every hardware level
        kfac = [r for r in kfac if r["backend"] != "single" or r["bits"] in (None, 6.0, 8.0)]
    out = kfac
    return out + [chosen[k]["row"] for k in ("sgd", "adam") if k in chosen]


def _count(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.1f}"


def _values(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return f"<img alt='{html.escape(plot.name)}' src='data:image/png;base64,{data}'>"
