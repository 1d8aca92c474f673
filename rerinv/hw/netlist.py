"""SPICE netlist writer for :class:`rerinv.hw.circuit.Circuit` (ngspice dialect).

The op-amp, inverter and TIA sub-circuits come from ``pyspice_models/*.lib`` and are written
inline, so a netlist stands alone: ``ngspice -b FILE.cir`` runs it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from rerinv.errors import InputError
from rerinv.hw import sky130
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


def batch_gain_name(row: int, node: str) -> str:
    """Name of the VCCS whose gain is the value of input ``node`` in vector ``row`` of a
    batch netlist (``alter NAME gain = VALUE`` loads a new value without re-parsing)."""
    return f"gbatch{row}_{node}"


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
        ``(K, n_inputs)`` input vectors; one ``dc`` sweep of ``BATCH_SELECTOR`` over
        ``0 .. K-1`` then solves all K with a single matrix set-up. Vector ``j`` is selected
        by ``w_j = v(batchw<j>)``, a ``pwl`` of ``v(batchsel)`` that is exactly 1 at ``j`` and
        0 at every other integer; input ``node`` is an ideal buffer (E, gain 1) of node
        ``batcht_<node>``, where a 1 ohm resistor sums the currents ``u_j * w_j`` of one VCCS
        per vector (:func:`batch_gain_name`, gain ``u_j``). The input values are plain
        element values, so ``alter`` loads new vectors into a parsed batch netlist.
    """
    model = circuit.opamp.model
    params = opamp_params(circuit)
    lines = [f"* {circuit.title}"]
    lines += [f"* {note}" for note in circuit.notes]
    if model == "sky130":  # transistor-level amplifiers: rerinv.hw.sky130
        lines += sky130.preamble(circuit.opamp, circuit.title)
    else:
        lines.append(model_library())
    if options:
        lines.append(f".options {options}")
    if batch is None:
        lines += [
            f"{source_name(node)} {node} 0 DC {value:.17g}"
            for node, value in zip(circuit.inputs, circuit.input_values, strict=True)
        ]
    else:
        lines += _batch_sources(circuit, np.atleast_2d(np.asarray(batch, dtype=float)))
    lines += [f"R{k} {a} {b} {ohms:.17g}" for k, (a, b, ohms) in enumerate(circuit.resistors)]
    if model == "sky130":
        slowdown = tuple(circuit.opamp.gbw / g for g in circuit.opamp_gbw)
        lines += sky130.amplifier_lines(
            circuit.opamps, circuit.inverters, circuit.tias, slowdown, circuit.amplifier_trims
        )
    else:
        lines += _macro_amplifier_lines(circuit, model, params)
    if control:
        lines += [".control", control, ".endc"]
    lines.append(".end")
    return "\n".join(lines) + "\n"


def _macro_amplifier_lines(circuit: Circuit, model: str, params: str) -> list[str]:
    """Instance lines of the macro-model amplifiers."""
    lines = []
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
    return lines


def _batch_sources(circuit: Circuit, batch: np.ndarray) -> list[str]:
    """The input sources of a batch netlist (see ``to_spice(batch=...)``)."""
    if batch.ndim != 2 or batch.shape[1] != len(circuit.inputs) or batch.shape[0] < 1:
        raise InputError(
            f"batch must be (K >= 1, {len(circuit.inputs)}) input vectors, got {batch.shape}"
        )
    lines = [f"{BATCH_SELECTOR} batchsel 0 DC 0"]
    lines += [  # flat (slope 0) beyond j +- 2, so no extrapolation leaks into other points
        f"Bbatchw{j} batchw{j} 0 V = pwl(v(batchsel), {j - 2}, 0, {j - 1}, 0, {j}, 1, "
        f"{j + 1}, 0, {j + 2}, 0)"
        for j in range(batch.shape[0])
    ]
    for k, node in enumerate(circuit.inputs):
        lines.append(f"E{source_name(node)} {node} 0 batcht_{node} 0 1")
        lines.append(f"Rbatcht_{node} batcht_{node} 0 1")
        lines += [
            f"{batch_gain_name(j, node)} 0 batcht_{node} batchw{j} 0 {u:.17g}"
            for j, u in enumerate(batch[:, k])
        ]
    return lines


#: ``.options`` of the standalone netlists: KLU on ngspice >= 43 (>= 42 built with it);
#: older ngspice ignores the option and keeps Sparse 1.3, with the same result, slower.
STANDALONE_OPTIONS = "klu"


def batch_netlist(circuit: Circuit, header: tuple[str, ...] = ()) -> str:
    """A standalone netlist for ``ngspice -b``: runs the operating point and prints every
    output as ``v(node) = value``. It selects the KLU solver (:data:`STANDALONE_OPTIONS`),
    which older ngspice releases ignore."""
    prints = "\n".join(f"print v({node})" for node in circuit.outputs)
    text = to_spice(
        circuit,
        control=f"set numdgt=15\nop\n{prints}\nquit",
        options=STANDALONE_OPTIONS,
    )
    note = ".options klu: KLU solver on ngspice >= 43; older ngspice ignores it (Sparse 1.3)"
    return "".join(f"* {line}\n" for line in (*header, note)) + text
