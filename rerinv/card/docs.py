"""The card schema as Markdown, and the generated blocks of ``docs/parameter-card.md``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rerinv.card.build import example_card
from rerinv.card.schema import CARD_SCHEMA
from rerinv.errors import InputError


def card_schema_markdown() -> str:
    """The card schema as a Markdown table (field, type, unit, meaning)."""
    rows = ["| field | type | unit | meaning |", "|---|---|---|---|"]

    def walk(schema: dict, path: str, required: bool) -> None:
        kinds = schema.get("type", "object")
        kinds = " \\| ".join([kinds] if isinstance(kinds, str) else kinds)
        meaning = schema.get("description", "").removesuffix(f" [{schema.get('unit')}]")
        limits = [
            f"{op} {schema[key]}"
            for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="))
            if key in schema
        ]
        if "enum" in schema:
            limits.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]))
        if limits:
            meaning += " (" + "; ".join(limits) + ")"
        if not required:
            meaning += " — optional"
        if path:
            meaning = meaning.replace("|", "\\|").replace("*", "\\*")
            rows.append(f"| `{path}` | {kinds} | {schema.get('unit', '—')} | {meaning} |")
        props = schema.get("properties", {})
        for key, sub in props.items():
            walk(sub, f"{path}.{key}" if path else key, key in schema.get("required", []))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties"):
            walk(extra, f"{path}.<name>", True)

    walk(CARD_SCHEMA, "", True)
    return "\n".join(rows) + "\n"


_BLOCKS = {
    "card-schema": lambda: card_schema_markdown(),
    "card-example": lambda: "```json\n" + json.dumps(example_card(), indent=2) + "\n```\n",
}


def update_card_docs(path: str | Path = "docs/parameter-card.md") -> None:
    """Regenerate the generated blocks of ``docs/parameter-card.md`` in place."""
    path = Path(path)
    text = path.read_text()
    for name, render in _BLOCKS.items():
        pattern = re.compile(f"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise InputError(f"{path}: marker <!-- BEGIN {name} --> not found")
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + m.group(2), text)
    path.write_text(text)
