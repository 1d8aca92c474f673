"""The verdict table of docs/timing.md, generated from the model at HEAD.

:func:`markdown` is the Markdown table (RePAST's four claims beside the ``calibrated`` and
``repast`` presets' means over the large networks, the best case with every assumption at its
favourable end, the deciding assumptions and what reaching each claim would need);
:func:`refresh` writes it into docs/timing.md between ``<!-- BEGIN verdict -->`` and
``<!-- END verdict -->``::

    .venv/bin/python -c "from rerinv.system.verdict import refresh; refresh('docs/timing.md')"
"""

from __future__ import annotations

import json
from pathlib import Path

from rerinv.system.arch import load_arch, preset_path
from rerinv.system.report import timing_study
from rerinv.system.tables import verdict_rows
from rerinv.system.workloads import load_workload, workload_names

BEGIN, END = "<!-- BEGIN verdict -->", "<!-- END verdict -->"


def studies() -> dict[str, dict]:
    """``calibrated`` (the shipped card) and ``repast`` studies of every built-in network."""
    card = json.loads(preset_path("calibrated_card.json").read_text())
    workloads = [load_workload(name) for name in workload_names()]
    return {
        preset: timing_study(load_arch(preset), workloads, card if preset == "calibrated" else None)
        for preset in ("calibrated", "repast")
    }


def _x(value) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}x" if value >= 1000 else f"{value:.3g}x"


def _deciding(text: str) -> str:
    """``chip.tiles 73..925: 0.52x..5.6x`` -> ``chip.tiles (73..925: 0.52x..5.6x)``."""
    name, _, rest = text.partition(" ")
    return f"`{name}` ({rest})"


def _need(text: str) -> str:
    name, _, rest = text.partition(" ")
    return f"`{name.rstrip(':')}` {rest}" if "." in name else text


def markdown(by_preset: dict[str, dict]) -> str:
    """The verdict table."""
    cal = verdict_rows(by_preset["calibrated"])
    rep = verdict_rows(by_preset["repast"])
    lines = [
        "| claim | RePAST | `calibrated` (shipped SKY130 card) | best case | `repast` (the "
        "paper's assumptions, ideal solve) | best case | decided by (tornado, `calibrated`) "
        "| what reaching it would need (`calibrated`, one assumption alone) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, r in zip(cal, rep, strict=True):
        needs = [_need(n) for n in c["needs"][:3]]
        if c["steps_ratio_needed"] is not None:
            needs.insert(0, f"K-FAC in {c['steps_ratio_needed']:.2g} of SGD's steps")
        lines.append(
            f"| {c['label']} | {c['paper']:g}x | **{_x(c['model'])}** | {_x(c['corner'])} | "
            f"{_x(r['model'])} | {_x(r['corner'])} | "
            f"{'; '.join(_deciding(d) for d in c['deciding'])} | {'; '.join(needs)} |"
        )
    return "\n".join(lines)


def update(path: Path, table: str) -> None:
    """Replace the text between the verdict markers of ``path`` by ``table``."""
    text = path.read_text()
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"{path}: no {BEGIN} ... {END} block")
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


def refresh(path: str | Path) -> str:
    """Regenerate the table from the model and write it into ``path``; returns it."""
    table = markdown(studies())
    update(Path(path), table)
    return table
