"""SPICE netlist writer for :class:`rerinv.hw.circuit.Circuit` (ngspice dialect).

The op-amp, inverter and TIA sub-circuits come from ``pyspice_models/*.lib`` and are written
inline, so a netlist stands alone: ``ngspice -b FILE.cir`` runs it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from rerinv.hw.circuit import Circuit
from rerinv.resources import model_text

MODEL_LIBS = ("opamp.lib", "inverter.lib", "tia.lib")

#: Floor on the op-amp output resistance: SPICE rejects a zero-ohm resistor. Every engine
#: uses the same value.
MIN_R_OUT = 1e-6


@cache
def model_library() -> str:
    """Text of the sub-circuit libraries, concatenated."""
    return "\n".join(model_text(name) for name in MODEL_LIBS)


def opamp_params(circuit: Circuit, gbw: float | None = None) -> str:
    """Instance parameters of the amplifiers of ``circuit`` (``gbw`` overrides
    ``opamp.gbw``: a compensated amplifier)."""
    oa = circuit.opamp
    gbw = oa.gbw if gbw is None else gbw
    return (
        f"gain={oa.gain:.17g} gbw={gbw:.17g} vos={oa.offset:.17g} vrail={oa.v_rail:.17g}"
        f" rout={max(oa.r_out, MIN_R_OUT):.17g}"
    )


def source_name(node: str) -> str:
    """Name of the voltage source driving input ``node``."""
    return f"v{node}"


#: Sweep source that selects the input vector of a batch (see ``to_spice(batch=...)``).
BATCH_SELECTOR = "vbatchsel"


def to_spice(
    circuit: Circuit, *, control: str = "", options: str = "", batch: np.ndarray | None = None
) -> str:
    """The netlist text of ``circuit``.

    Parameters
    ----------
    circuit : Circuit
    control : str
        Optional ``.control`` block body (e.g. ``"op\\nprint v(x0)"``).
    options : str
        Optional ``.options`` line content.
    batch : numpy.ndarray, optional
        ``(K, n_inputs)`` input vectors. Each input then follows
        ``pwl(v(batchsel), 0, u_0, 1, u_1, ...)``, so one ``dc`` sweep of ``BATCH_SELECTOR``
        over ``0 .. K-1`` solves all K vectors with a single matrix ordering.
    """
    model = circuit.opamp.model
    params = opamp_params(circuit)
    lines = [f"* {circuit.title}"]
    lines += [f"* {note}" for note in circuit.notes]
    lines.append(model_library())
    if options:
        lines.append(f".options {options}")
    if batch is None:
        lines += [
            f"{source_name(node)} {node} 0 DC {value:.17g}"
            for node, value in zip(circuit.inputs, circuit.input_values, strict=True)
        ]
    else:
        lines.append(f"{BATCH_SELECTOR} batchsel 0 DC 0")
        for k, node in enumerate(circuit.inputs):
            table = ", ".join(f"{t}, {u:.17g}" for t, u in enumerate(batch[:, k]))
            if batch.shape[0] == 1:
                table += f", 1, {batch[0, k]:.17g}"
            lines.append(f"B{source_name(node)} {node} 0 V = pwl(v(batchsel), {table})")
    lines += [f"R{k} {a} {b} {ohms:.17g}" for k, (a, b, ohms) in enumerate(circuit.resistors)]
    lines += [
        f"XA{k} 0 {inn} {out} opamp_{model} {opamp_params(circuit, circuit.gbw_of_opamp(k))}"
        for k, (inn, out) in enumerate(circuit.opamps)
    ]
    lines += [
        f"XI{k} {a} {out} inverter_{model} r1={r1:.17g} r2={r2:.17g} {params}"
        for k, (a, out, r1, r2) in enumerate(circuit.inverters)
    ]
    lines += [
        f"XT{k} {a} {out} tia_{model} rf={rf:.17g} {params}"
        for k, (a, out, rf) in enumerate(circuit.tias)
    ]
    if control:
        lines += [".control", control, ".endc"]
    lines.append(".end")
    return "\n".join(lines) + "\n"


def batch_netlist(circuit: Circuit, header: tuple[str, ...] = ()) -> str:
    """A standalone netlist for ``ngspice -b``: runs the operating point and prints every
    output as ``v(node) = value``."""
    prints = "\n".join(f"print v({node})" for node in circuit.outputs)
    text = to_spice(circuit, control=f"set numdgt=15\nop\n{prints}\nquit")
    return "".join(f"* {line}\n" for line in header) + text
