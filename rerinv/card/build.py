"""Make cards: :func:`new_card` from a config and measurements, :func:`example_card` with
placeholder numbers, and :func:`load_card` from a file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from rerinv.card.schema import (
    CARD_FORMAT,
    CARD_VERSION,
    SCHEME_FIELDS,
    SETTLE_MODEL,
    SUMMARY_FIELDS,
    lookup,
)
from rerinv.card.validate import validate_card
from rerinv.config import Config
from rerinv.errors import InputError, not_a_regular_file
from rerinv.provenance import software_versions


def new_card(
    config: Config,
    *,
    timing: dict,
    accuracy: dict,
    energy: dict,
    software: dict | None = None,
    created: str | None = None,
    example: bool = False,
) -> dict:
    """Assemble and validate a card: summaries are taken from ``config``.

    Parameters
    ----------
    config : Config
        The configuration the measurements were made with.
    timing, accuracy, energy : dict
        The measured sections, shaped as in :data:`CARD_SCHEMA`.
    software : dict, optional
        Versions, as :func:`rerinv.provenance.software_versions` gives them; default
        ``software_versions(ngspice=False)`` (ngspice ``"not used"``). Callers whose
        measurements ran ngspice pass ``software_versions()``.
    created : str, optional
        ISO 8601 time; default now (local time with its zone).
    example : bool
        Mark the card as holding placeholder numbers.

    Returns
    -------
    dict
        A valid card.
    """
    tree = config.to_dict()
    card: dict[str, Any] = {"format": CARD_FORMAT, "version": CARD_VERSION}
    if example:
        card["example"] = True
    card["created"] = created or datetime.now().astimezone().isoformat(timespec="seconds")
    card["software"] = software if software is not None else software_versions(ngspice=False)
    card["config"] = tree
    for summary, source in SUMMARY_FIELDS.items():
        section, key = summary.split(".")
        card.setdefault(section, {})[key] = lookup(tree, source)
    card.update(timing=timing, accuracy=accuracy, energy=energy)
    validate_card(card)
    return card


_COST_LISTS = (
    "passes_per_solve",
    "inv_solves_per_solve",
    "vmm_ops_per_solve",
    "conversions_per_solve",
)


def example_card() -> dict:
    """A complete, valid card for ``Config()`` with placeholder numbers (``example: true``)."""
    config = Config()
    # fmt: off
    schemes = {  # bits/pass, passes to 16 (median, p90), success rate, trials
        "single": (7.9, None, None, 0.0, 100), "repast": (2.1, 8, 10, 0.91, 100),
        "refine": (2.8, 6, 7, 0.97, 100), "krylov": (3.4, 5, 6, 1.0, 100),
    }
    timing = {
        "inv_settle_fit": {"model": SETTLE_MODEL, "a": 1.02, "a_std": 0.03,
                           "gbw_hz": config.opamp.gbw, "n_points": 24, "max_rel_error": 0.08},
        "inv_settle_typical_s": 8.8e-7, "vmm_settle_s": 2.0e-8,
        "inv_settle_vs_n": {"n": [8, 16, 32], "settle_s": [4.1e-7, 6.0e-7, 8.8e-7],
                            "r_in_ohm": config.array.r_in},
    }
    costs = {  # per successful trial: passes, INV solves, VMM ops, conversions (N = 32)
        "repast": ([8, 8, 10], [40, 40, 52], [560, 560, 700], [38400, 38400, 48128]),
        "refine": ([6, 6, 7], [12, 12, 14], [420, 420, 490], [27648, 27648, 32256]),
        "krylov": ([5, 5, 6], [10, 10, 12], [350, 350, 420], [23040, 23040, 27648]),
    }
    accuracy = {
        "inv_error_rel_fullscale": {"mean": 0.0041, "std": 0.0015, "n": 200},
        "vmm_error_rel_fullscale": {"mean": 0.0019, "std": 0.0007, "n": 200},
        "schemes": {name: dict(zip(SCHEME_FIELDS, v, strict=True)) for name, v in schemes.items()},
    }
    for name, lists in costs.items():
        accuracy["schemes"][name].update(n=32, **dict(zip(_COST_LISTS, lists, strict=True)))
    energy = {
        "inv_op_j": 5.1e-10, "vmm_op_j": 2.6e-11, "opamp_power_w": 1.0e-3,
        "assumptions": "EXAMPLE placeholder numbers, not a calibration: op-amp static power"
                       " times settling time, times the number of op-amps; converters excluded",
    }
    # fmt: on
    return new_card(
        config,
        timing=timing,
        accuracy=accuracy,
        energy=energy,
        software=software_versions(ngspice=False),
        created="2025-01-01T00:00:00+00:00",
        example=True,
    )


def load_card(path: str | Path) -> dict:
    """Read and validate a card file; :class:`InputError` says what is wrong."""
    path = Path(path)
    if reason := not_a_regular_file(path):
        raise InputError(reason)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read parameter card {path}: {exc}") from exc
    except UnicodeDecodeError:
        raise InputError(f"parameter card {path} is not a UTF-8 JSON text file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"parameter card {path} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise InputError(f"parameter card {path}: expected a JSON object at $")
    try:
        validate_card(card)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return card
