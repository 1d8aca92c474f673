"""The report documents: HTML (one self-contained file) and Markdown, built from blocks."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from rerinv.errors import InputError
from rerinv.outputs import atomic_write, check_output
from rerinv.studies.mc.results import Results, load_results
from rerinv.studies.records import FIELDS
from rerinv.studies.report.plots import Plot, make_plots
from rerinv.studies.report.stats import STAT_COLUMNS, format_statistic, point_statistics


def write_report(
    results_path: str | Path, out: str | Path, fmt: str = "html", *, force: bool = True
) -> Path:
    """Write the report of ``results_path`` to ``out``.

    Parameters
    ----------
    results_path : str or Path
        HDF5 file written by ``rerinv mc``.
    out : str or Path
        Report file.
    fmt : {"html", "md"}
        ``html``: one self-contained file, plots embedded as base64 PNG. ``md``: Markdown, the
        PNGs written next to it as ``<stem>-<plot>.png``.
    force : bool
        Replace existing files (default); False refuses them. ``results_path`` itself is
        never replaced. Every file is written to a temporary file first and renamed.

    Returns
    -------
    Path
        ``out``.
    """
    if fmt not in ("html", "md"):
        raise InputError(f"report format must be html or md, got {fmt!r}")
    out = check_output(out, force=force, inputs=[results_path])
    results = load_results(results_path)
    blocks = _blocks(results, make_plots(results))
    if fmt == "html":
        atomic_write(out, _html(blocks))
        return out
    pngs = {out.parent / f"{out.stem}-{b[1].name}.png": b[1].png for b in blocks if b[0] == "plot"}
    for path in pngs:
        check_output(path, force=force, inputs=[results_path])
    for path, png in pngs.items():
        atomic_write(path, png)
    atomic_write(out, _markdown(blocks, out.stem))
    return out


def _blocks(results: Results, plots: list[Plot]) -> list[tuple]:
    d, a = results.description, results.attrs
    total, done, failed = results.done.size, int(results.done.sum()), int(results.failed.sum())
    swept = {name for name, _ in d.axes}
    base = results.config.simulation
    fixed = [k for k in ("scheme", "engine", "n") if f"simulation.{k}" not in swept]
    blocks: list[tuple] = [
        ("h1", "rerinv Monte Carlo report"),
        (
            "p",
            f"{results.path.name}: {done} of {total} trials stored ({failed} failed); "
            f"{len(d.points)} points x {d.trials} trials; target {d.target_bits:g} bits, at "
            f"most {d.max_passes} passes; master seed {d.master_seed}; "
            + ", ".join(f"{k} {getattr(base, k)}" for k in fixed)
            + f". Created {a.get('created', '?')} by: {a.get('command_line') or '?'}",
        ),
    ]
    if done < total:
        blocks.append(
            (
                "p",
                "Incomplete run: the statistics cover the stored trials only; "
                "complete it with the same command and --resume.",
            )
        )
    stats = point_statistics(results)
    rows = [[r["point"], *(format_statistic(c, r[c]) for c in STAT_COLUMNS)] for r in stats]
    blocks += [
        ("h2", "Statistics per point"),
        (
            "p",
            "Bits, passes and INV solves over completed trials that did not fail; 'reach "
            "target' is the share of completed trials with effective bits >= the target "
            "(failed trials count as not reaching it), with its 95 % Wilson interval.",
        ),
        ("table", ["point", *STAT_COLUMNS], rows, "statistics"),
        ("h2", "Plots"),
    ]
    for plot in plots:
        blocks += [("h3", plot.title), ("plot", plot), ("p", plot.caption)]
    errors = [
        [d.points[p].label, str(t), str(results.error[p, t])]
        for p, t in zip(*np.nonzero(results.failed), strict=True)
    ]
    if errors:
        blocks += [
            ("h2", f"Failed trials ({len(errors)})"),
            ("table", ["point", "trial", "error"], errors[:100], "failures"),
        ]
    blocks += [
        ("h2", "Configuration"),
        ("table", ["swept axis", "values"], [[n, ", ".join(v)] for n, v in d.axes], "sweep"),
        ("p", "Base configuration (each point applies its swept values on top of it):"),
        ("pre", d.base_config_toml),
        ("h2", "Stored per trial"),
        (
            "table",
            ["field", "unit", "meaning"],
            [[f.name, f.unit or "-", f.meaning] for f in FIELDS],
            "fields",
        ),
        ("h2", "Versions and provenance"),
        ("table", ["attribute", "value"], [[k, str(v)] for k, v in sorted(a.items())], "versions"),
        ("h2", "Driver sessions"),
        (
            "table",
            ["started", "ended", "backend", "trials stored", "interrupted"],
            [
                [s["started"], s["ended"], s["backend"], str(s["stored"]), str(s["interrupted"])]
                for s in results.sessions
            ],
            "sessions",
        ),
    ]
    return blocks


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
    "th,td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "pre{background:#f6f6f6;padding:0.8em;font-size:0.85em}img{max-width:100%}"
)


def _html(blocks: list[tuple]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>rerinv Monte Carlo report</title><style>{_CSS}</style></head><body>",
    ]
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{e(content[0])}</{kind}>")
        elif kind == "pre":
            parts.append(f"<pre>{e(content[0])}</pre>")
        elif kind == "plot":
            data = base64.b64encode(content[0].png).decode()
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{e(content[0].title)}">')
        else:
            headers, rows, ident = content
            parts.append(f'<table id="{ident}"><thead><tr>')
            parts += [f"<th>{e(h)}</th>" for h in headers] + ["</tr></thead><tbody>"]
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
    return "\n".join([*parts, "</body></html>", ""])


def _markdown(blocks: list[tuple], stem: str) -> str:
    parts = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + content[0])
        elif kind == "p":
            parts.append(content[0])
        elif kind == "pre":
            parts.append(f"```toml\n{content[0].rstrip()}\n```")
        elif kind == "plot":
            parts.append(f"![{content[0].title}]({stem}-{content[0].name}.png)")
        else:
            headers, rows, _ = content
            cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
