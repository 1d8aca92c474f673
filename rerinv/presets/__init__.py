"""Named configuration presets, shipped as TOML files beside this module.

A preset holds only the values it changes from the built-in default, each with its source.
``rerinv ... --preset NAME`` (or ``load_config(preset=NAME)``) starts from it; ``--config``
and ``--set`` then apply on top.
"""

from __future__ import annotations

from importlib.resources import files


def preset_names() -> tuple[str, ...]:
    """Names of the shipped presets (file names without ``.toml``), sorted."""
    return tuple(
        sorted(
            p.name[: -len(".toml")] for p in files(__name__).iterdir() if p.name.endswith(".toml")
        )
    )


def preset_text(name: str) -> str | None:
    """TOML text of preset ``name``, or None when there is no such preset."""
    if name not in preset_names():
        return None
    return (files(__name__) / f"{name}.toml").read_text()
