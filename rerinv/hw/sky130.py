"""The netlist lines of transistor-level SKY130 amplifiers (``opamp.model = "sky130"``).

Every signal of a crossbar circuit is referenced to node 0, which is the common-mode level
``VCM`` of the real chip: the amplifiers' supply pins go to ``vdd`` and ``vss`` at
``+-supply / 2`` from it (a chip supplied with 0 V and ``supply`` whose signals sit around
``VCM = supply / 2``, written with ``VCM`` as SPICE's reference). The cells then see the same
voltages as in the macro-model circuits, and every engine and read-out stays unchanged.

The amplifiers are the sub-circuits of ``pyspice_models/sky130_amplifiers.lib`` on SkyWater's
1.8 V FETs (:mod:`rerinv.hw.pdk`). With ``opamp.mismatch`` each device's threshold gets the
PDK's own mismatch draw (``AGAUSS`` at parse time), from ngspice's random generator seeded by
``.options seed`` (:func:`mismatch_seed`): the same configuration gives the same chip.
"""

from __future__ import annotations

import hashlib
from functools import cache

from rerinv.config import OpAmpConfig
from rerinv.errors import InputError
from rerinv.hw.pdk import compile_cells, model_header
from rerinv.resources import model_text

AMPLIFIER_LIB = "sky130_amplifiers.lib"
#: Supply nodes of the amplifiers (positive, negative rail).
SUPPLY_NODES = ("vdd", "vss")
#: Voltage sources of the supply rails: ``i(vdd)`` is the current the positive rail delivers.
SUPPLY_SOURCES = ("vdd", "vss")


def ngspice_seed(*keys: object) -> int:
    """A seed for ngspice's random generator (``.options seed``, 1 .. 2**31 - 1) hashed from
    ``keys``: any integer seed of rerinv's seed tree maps to one, always the same."""
    digest = hashlib.sha256(":".join(map(str, keys)).encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1) + 1


def mismatch_seed(opamp: OpAmpConfig, title: str) -> int:
    """ngspice's random seed for the amplifiers of circuit ``title``: a hash of
    ``opamp.mismatch_seed`` and the title, so that two crossbars of one machine get different
    draws and the same configuration always the same ones."""
    return ngspice_seed(opamp.mismatch_seed, title)


@cache
def amplifier_library(compact: bool = True) -> str:
    """The amplifier sub-circuits (``pyspice_models/sky130_amplifiers.lib``); ``compact``:
    on the compiled FET cells of :func:`rerinv.hw.pdk.compile_cells` (written first), else
    on the PDK's own cells (which need ``models_fet.spice``: ``model_header(compact=False)``)."""
    library = model_text(AMPLIFIER_LIB)
    if not compact:
        return library
    renamed, cells = compile_cells(library)
    return cells + renamed


def models(corner: str, temperature: float, *, mismatch: bool = False, compact: bool = True) -> str:
    """SKY130 model lines and the amplifier sub-circuits, ready for a netlist."""
    header = model_header(corner, temperature, mismatch=mismatch, compact=compact)
    return header + "\n" + amplifier_library(compact)


def preamble(opamp: OpAmpConfig, title: str) -> list[str]:
    """Models, amplifier sub-circuits and supply rails of a SKY130 circuit."""
    lines = []
    if opamp.mismatch:
        lines.append(f".options seed={mismatch_seed(opamp, title)}")
    lines.append(models(opamp.corner, opamp.temperature, mismatch=opamp.mismatch))
    half = opamp.supply / 2
    lines.append(f"* supply {opamp.supply:g} V: node 0 is the common-mode level VCM")
    lines.append(f"V{SUPPLY_NODES[0]} {SUPPLY_NODES[0]} 0 DC {half:.17g}")
    lines.append(f"V{SUPPLY_NODES[1]} {SUPPLY_NODES[1]} 0 DC {-half:.17g}")
    return lines


#: Miller capacitance of ``ota_sky130`` (F); a compensated op-amp gets a larger one.
MILLER_CAP = 1e-12


def amplifier_lines(
    opamps: list[tuple[str, str]],
    inverters: list[tuple[str, str, float, float]],
    tias: list[tuple[str, str, float]],
    slowdown: tuple[float, ...] = (),
    trims: tuple[float, ...] = (),
) -> list[str]:
    """Instance lines of the bare op-amps, inverters and TIAs (same names as the macro-model
    netlist: ``XA<k>``, ``XI<k>``, ``XT<k>``). ``slowdown[k]`` >= 1 divides the GBW of bare
    op-amp ``k`` by scaling its Miller capacitance (dominant-pole compensation); ``trims``
    (V, one per amplifier in that order) are their offset trims."""
    for node in {n for pair in opamps for n in pair} & set(SUPPLY_NODES):
        raise InputError(f"circuit node {node!r} is a supply node of the sky130 amplifiers")
    vdd, vss = SUPPLY_NODES
    lines = [
        f"XA{k} 0 {inn} {out} {vdd} {vss} opamp_sky130"
        + (f" cc={MILLER_CAP * slowdown[k]:.17g}" if slowdown and slowdown[k] != 1 else "")
        for k, (inn, out) in enumerate(opamps)
    ]
    lines += [
        f"XI{k} {a} {out} {vdd} {vss} inverter_sky130 r1={r1:.17g} r2={r2:.17g}"
        for k, (a, out, r1, r2) in enumerate(inverters)
    ]
    lines += [
        f"XT{k} {a} {out} {vdd} {vss} tia_sky130 rf={rf:.17g}"
        for k, (a, out, rf) in enumerate(tias)
    ]
    if trims:
        if len(trims) != len(lines):
            raise InputError(f"{len(trims)} offset trims for {len(lines)} amplifiers")
        lines = [f"{line} vtrim={t:.17g}" for line, t in zip(lines, trims, strict=True)]
    return lines


def buffer_testbench(opamp: OpAmpConfig, title: str, count: int) -> str:
    """A netlist whose ``count`` unity-gain buffers (outputs ``o<k>``) are the amplifiers of
    circuit ``title`` in its instance order (bare op-amps, inverters, TIAs): the same models,
    the same ngspice seed and the same parse order give every buffer the devices, and so the
    mismatch draws, of the amplifier it stands for. ``v(o<k>)`` is minus its input offset."""
    vdd, vss = SUPPLY_NODES
    lines = [f"* offsets of the amplifiers of {title}", *preamble(opamp, title)]
    lines += [f"XB{k} 0 o{k} o{k} {vdd} {vss} ota_sky130" for k in range(count)]
    return "\n".join([*lines, ".end"]) + "\n"


def trim_codes(offsets, opamp: OpAmpConfig):
    """Trim voltages (V) that cancel ``offsets`` (V) with a ``opamp.trim_bits`` DAC over
    ``+-opamp.trim_range``: the nearest step, clipped to the DAC's range."""
    import numpy as np

    step = 2 * opamp.trim_range / 2**opamp.trim_bits
    top = 2 ** (opamp.trim_bits - 1)
    codes = np.clip(np.round(np.asarray(offsets, dtype=float) / step), -top, top - 1)
    return codes * step
