"""Export a parameter card to other crossbar simulators: CrossSim, aihwkit, NeuroSim, MNSIM.

None of these tools simulates the closed-loop INV circuit, so every export carries the device,
array and converter parameters it can express and lists the card fields it cannot (timing,
accuracy, energy, op-amp, ...). Each exporter records that list inside what it writes (a comment,
or a key of a file the tool does not read) and :func:`export_card` returns it.

Targets and the versions whose field names were checked (see docs/parameter-card.md), one
module each with a ``render(mapping, path, source) -> {path: text}`` and its ``SUFFIX``:

- ``crosssim``: CrossSim 3.1+ ``CrossSimParameters.from_json`` tree (checked by loading it in
  CrossSim 3.2.0 when available); unexpressed fields go to a ``.notes.json`` file beside it,
  because ``from_json`` rejects unknown keys.
- ``aihwkit``: a Python snippet building ``InferenceRPUConfig()`` plus a JSON of the same
  keyword arguments beside it (names of aihwkit 1.1.0).
- ``neurosim``: two blocks of assignments for ``Param::Param()`` in DNN_NeuroSim V1.4
  ``Param.cpp`` (user options before the derived section, wire resistances after it) and the
  ``inference.py`` flags, as a comment.
- ``mnsim``: an overlay of MNSIM-2.0 ``SimConfig.ini`` sections and keys.

Each module also has ``LIMITATIONS``: what the target cannot model whatever the card holds,
written into the files and returned in :class:`ExportResult`. Every file is checked before any
is written (never over the card, over an existing file only with ``force``) and written
atomically.

The command line (``rerinv export``) lives in :mod:`rerinv.cli.studies`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from rerinv.card import validate_card
from rerinv.errors import InputError
from rerinv.export import aihwkit, crosssim, mnsim, neurosim
from rerinv.export.common import CardMapping, ExportResult, card_fields, scalar_values
from rerinv.outputs import atomic_write, check_output

_MODULES: dict[str, ModuleType] = {
    "crosssim": crosssim,
    "aihwkit": aihwkit,
    "neurosim": neurosim,
    "mnsim": mnsim,
}
#: Exporter of each target: ``render(mapping, out, source) -> {path: text}``.
EXPORTERS: dict[str, Callable[[CardMapping, Path, str], dict[Path, str]]] = {
    name: module.render for name, module in _MODULES.items()
}
#: Suffix of each target's default main file.
SUFFIXES: dict[str, str] = {name: module.SUFFIX for name, module in _MODULES.items()}
TARGETS = tuple(EXPORTERS)

__all__ = ["EXPORTERS", "SUFFIXES", "TARGETS", "ExportResult", "card_fields", "export_card"]


def export_card(
    card: dict,
    to: str,
    out: Path | None = None,
    *,
    card_path: Path | None = None,
    force: bool = False,
) -> ExportResult:
    """Validate ``card`` and write it in the format of another simulator.

    Parameters
    ----------
    card : dict
        A parameter card (see :mod:`rerinv.card`).
    to : {"crosssim", "aihwkit", "neurosim", "mnsim"}
        Target format.
    out : Path, optional
        Main output file. Default: next to ``card_path`` (or in the current directory),
        named ``<card stem>.<to>.<json|py|cpp|ini>``.
    card_path : Path, optional
        Where the card was read from; names the default output and the files' headers.
    force : bool
        Replace existing files (never the card itself). Each file is written to a temporary
        file and renamed, and none is written unless all can be.

    Returns
    -------
    ExportResult
        The files written and the card fields the format could not express.

    Raises
    ------
    rerinv.errors.InputError
        Invalid card, unknown target or unwritable output.
    """
    if to not in EXPORTERS:
        raise InputError(f"unknown export target {to!r}; choose one of {', '.join(TARGETS)}")
    validate_card(card)
    if out is None:
        base = card_path if card_path is not None else Path("params.json")
        out = base.with_name(f"{base.stem}.{to}.{SUFFIXES[to]}")
    out = Path(out)
    mapping = CardMapping(card)
    files = EXPORTERS[to](mapping, out, card_path.name if card_path else "an in-memory card")
    for file_path in files:
        check_output(file_path, force=force, inputs=[card_path], what="output")
    for file_path, text in files.items():
        atomic_write(file_path, text)
    return ExportResult(
        path=out,
        unexpressed=mapping.unexpressed(),
        approximate=dict(mapping.approximate),
        companions=[p for p in files if p != out],
        values=scalar_values(card, mapping.unexpressed()),
        limitations=list(_MODULES[to].LIMITATIONS),
    )
