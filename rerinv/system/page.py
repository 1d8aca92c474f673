"""The HTML page of ``rerinv timing``: the verdict on RePAST's claims first, then the ratios,
the four machines' breakdowns, the tornado, sweeps, notes and every architecture value.

One column, at most :data:`MAX_WIDTH_PX` wide; figures scale down to it (``max-width:
100%``), table cells wrap, so nothing is wider than the window at any width from a phone's up
(``tests/test_timing_report_browser.py`` checks it in headless Chromium).
"""

from __future__ import annotations

import base64
import html
import re

from rerinv.system.compare import BASELINES, MACHINES
from rerinv.system.tables import LABELS, summary_rows, verdict_rows

MAX_WIDTH_PX = 1100

STYLE = (
    f"body{{font-family:sans-serif;max-width:{MAX_WIDTH_PX}px;margin:auto;padding:0 12px;"
    "line-height:1.35}"
    "figure{margin:12px 0}img{display:block;max-width:100%;height:auto}"
    "figcaption{font-size:13px;color:#333}"
    "table{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}"
    "td,th{border:1px solid #ccc;padding:2px 5px;text-align:right}"
    "td.t{overflow-wrap:anywhere}th{background:#eee;overflow-wrap:break-word}td.t{text-align:left}"
)

CAPTIONS = {
    "speedup": "Speed-up and energy saving to train of ReRAM K-FAC against the three baselines, "
    "per network and for the mean of the large networks; black bars: RePAST's published means "
    "on the baseline they compare with.",
    "phases": "Where each machine's step goes: time per step by phase, normalised to the "
    "machine's own step; above each bar its time to train.",
    "energy": "Energy per step by category, normalised per machine; above each bar its energy "
    "to train.",
    "first_order": "The first-order baseline: ReRAM SGD against GPU SGD, to train, per "
    "network; dashed: PipeLayer's published means against a GPU.",
    "tornado": "One assumption at a time, over its cited range (or x1/2..x2 where none is "
    "cited): the headline ratios' means over the large networks.",
}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    if isinstance(value, list):
        return "<td class='t'>" + "<br>".join(html.escape(str(v)) for v in value) + "</td>"
    text = html.escape(str(value))
    return f"<td class='t'>{text}</td>" if not _numeric(value) else f"<td>{text}</td>"


def _numeric(value) -> bool:
    """Numbers, and short texts that are one (``11.4x``), are not broken across lines."""
    if isinstance(value, str):
        return re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?x?", value) is not None
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(header: list[str], rows: list[list]) -> str:
    """An HTML table; floats to 4 significant digits, lists one item per line."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(key: str, image: bytes, caption: str) -> str:
    data = base64.b64encode(image).decode()
    return (f"<figure><img alt='{html.escape(key)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip


def _verdict(study: dict) -> list[str]:
    rows = []
    for r in verdict_rows(study):
        needs = list(r["needs"])
        if r["steps_ratio_needed"] is not None:
            needs.insert(
                0,
                f"K-FAC in {r['steps_ratio_needed']:.3g} of SGD's steps (mean "
                "over the networks; the model's steps_ratio.needed_for_paper)",
            )
        rows.append([r["label"], f"{r['paper']:g}x", _x(r["model"]), _x(r["geomean"]),
                     _x(r["corner"]), r["deciding"], needs])  # fmt: skip
    over = ", ".join(study.get("averaged_over") or []) or "no large network"
    return [
        "<h2>Verdict on RePAST's claims</h2>",
        f"<p>Means over {html.escape(over)}. Best case: every assumption at the end of its "
        "range that favours the claim, all at once. Deciding: the three assumptions that move "
        "the mean most over their range. To reach: the value one assumption alone would "
        "need.</p>",
        table(["claim", "RePAST", "this model, mean", "geometric mean", "best case",
               "deciding assumptions (range: result)", "to reach the claim"], rows),
    ]  # fmt: skip


def _x(value) -> str:
    return "—" if value is None else f"{value:.3g}x"


def _tornado_table(t: dict) -> str:
    claims = list(t["claims"])
    header = ["assumption", "range", "source of the range",
              *(t["claims"][c]["label"] for c in claims)]  # fmt: skip
    rows = [[r["name"], f"{r['low']:.3g} .. {r['high']:.3g} {r['unit']}".strip(), r["range"],
             *(f"{r['results'][c]['low']:.3g} .. {r['results'][c]['high']:.3g}"
               for c in claims)] for r in t["assumptions"]]  # fmt: skip
    return table(header, rows)


def render_html(study: dict, images: dict[str, bytes]) -> str:
    """The whole page (figures embedded as base64 PNG)."""
    cost, timing = study["solve_cost"], study["inv_timing"]
    images = dict(images)
    parts = [
        "<!doctype html><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>rerinv timing</title><style>{STYLE}</style>",
        "<h1>rerinv timing: second-order training on a ReRAM accelerator</h1>",
        f"<p>architecture <b>{html.escape(study['architecture']['name'])}</b>; card "
        f"<b>{html.escape(str(study['card']))}</b>; decomposition <b>{study['decomposition']}"
        f"</b>; overlap <b>{study['overlap']}</b>; scheme <b>{cost['scheme']}</b></p>",
        f"<p>16-bit solve ({html.escape(cost['source'])}): {cost['passes']:.3g} passes, "
        f"{cost['inv_solves']:.3g} INV solves, {cost['vmm_ops']:.3g} VMM ops, "
        f"{cost['conversions_per_row']:.3g} conversions per row. INV: "
        f"{timing['settle_at_crossbar_s']:.3g} s and {timing['energy_at_crossbar_j']:.3g} J per"
        f" solve ({html.escape(timing['source'])}).</p>",
        *_verdict(study),
    ]  # fmt: skip
    if "speedup" in images:
        parts.append(_figure("speedup", images.pop("speedup"), CAPTIONS["speedup"]))
    parts += [
        "<h2>Speed-up and energy saving to train</h2>",
        table(["network", *(f"speed-up {LABELS[k]}" for k in BASELINES),
               *(f"energy {LABELS[k]}" for k in BASELINES)], summary_rows(study)),
        "<h2>The four machines</h2>",
    ]  # fmt: skip
    for key in ("phases", "energy", "first_order"):
        if key in images:
            parts.append(_figure(key, images.pop(key), CAPTIONS[key]))
    if study.get("first_order_ranking"):
        ranking = ", ".join(f"{n} {v:.3g}x" for n, v in study["first_order_ranking"])
        parts.append(f"<p>First-order ReRAM against GPU SGD, speed-up to train, best first: "
                     f"{html.escape(ranking)}.</p>")  # fmt: skip
    rows = [[name, LABELS[m], r["machines"][m]["time_s"], r["machines"][m]["energy_j"],
             r["to_train"][m]["time_s"] / 3600, r["to_train"][m]["energy_j"] / 3.6e6]
            for name, r in study["networks"].items() for m in MACHINES]  # fmt: skip
    parts.append(table(["network", "machine", "s/step", "J/step", "h to train",
                        "kWh to train"], rows))  # fmt: skip
    for what, key, unit in (("time", "time_by_category_s", "s"),
                            ("energy", "energy_by_category_j", "J")):  # fmt: skip
        cats = list(next(iter(study["networks"].values()))["machines"]["reram_kfac"][key])
        parts += [f"<h3>ReRAM K-FAC {what} per step by resource ({unit})</h3>",
                  table(["network", *cats], [[n, *(r["machines"]["reram_kfac"][key][c]
                                                    for c in cats)]
                                             for n, r in study["networks"].items()])]  # fmt: skip
    if study.get("tornado"):
        t = study["tornado"]
        parts.append("<h2>Sensitivity: every assumption over its range</h2>")
        if "tornado" in images:
            parts.append(_figure("tornado", images.pop("tornado"), CAPTIONS["tornado"]))
        parts.append(f"<p>{len(t['assumptions'])} assumptions move a claim; no effect: "
                     f"{html.escape(', '.join(t['no_effect']) or 'none')}.</p>")  # fmt: skip
        parts.append(_tornado_table(t))
    for key, image in images.items():  # sweeps
        axis = key.removeprefix("sweep_")
        info = study.get("sweep_axes", {}).get(axis, {})
        point = info.get("operating_point")
        caption = f"Sweep of {info.get('meaning', axis)}; dotted line: the operating point" + (
            f" ({point:.3g} {info.get('unit', '')})" if point is not None else ""
        )
        parts.append(_figure(key, image, caption.strip()))
    if study["notes"]:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in study["notes"]]
        parts.append("</ul>")
    rows = [[f"{s}.{k}", v] for s, values in study["architecture"]["values"].items()
            for k, v in values.items()]  # fmt: skip
    parts += ["<h2>Architecture values</h2>", table(["key", "value"], rows)]
    return "\n".join(parts) + "\n"
