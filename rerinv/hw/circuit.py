"""What a crossbar circuit *is*: plain data that every engine and netlist writer reads.

A :class:`Circuit` lists resistors, grounded input voltage sources, op-amps (non-inverting input
grounded), inverter stages and transimpedance amplifiers; it says which nodes are the outputs.
It knows nothing about how a simulator runs it. The generators :func:`inv_crossbar` and
:func:`vmm_crossbar` are pure functions of programmed arrays and configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rerinv.config import ArrayConfig, Config, OpAmpConfig
from rerinv.errors import InputError
from rerinv.hw.mapping import CrossbarArrays

Resistor = tuple[str, str, float]  # node a, node b, ohms


@dataclass(frozen=True, eq=False)
class Circuit:
    """A DC/transient crossbar circuit.

    Attributes
    ----------
    title : str
    opamp : OpAmpConfig
        The op-amp model used by every row amplifier, inverter and TIA.
    resistors : list of (node, node, ohms)
    inputs : tuple of str
        Nodes driven by an ideal voltage source to ground (source ``v<node>``), in input order.
    input_values : numpy.ndarray
        Initial source voltages (V).
    opamps : list of (inverting input, output)
        Bare op-amps with the non-inverting input grounded (their GBW may be lowered per
        amplifier, ``opamp_gbw``: dominant-pole compensation).
    inverters : list of (input, output, r1, r2)
        Inverting amplifiers ``out = -(r2 / r1) in`` (ideally), each with its own op-amp.
    tias : list of (input, output, r_f)
        Transimpedance amplifiers holding ``input`` at virtual ground.
    outputs : tuple of str
        The nodes whose voltages are the circuit's result, in order.
    notes : tuple of str
        Comment lines for the netlist.
    """

    title: str
    opamp: OpAmpConfig
    resistors: list[Resistor]
    inputs: tuple[str, ...]
    input_values: np.ndarray
    opamps: list[tuple[str, str]]
    inverters: list[tuple[str, str, float, float]]
    tias: list[tuple[str, str, float]]
    outputs: tuple[str, ...]
    notes: tuple[str, ...] = ()
    opamp_gbw: tuple[float, ...] = ()  #: per bare op-amp GBW (Hz), when compensated
    #: per amplifier offset trim (V; bare op-amps, then inverters, then TIAs), sky130 only
    amplifier_trims: tuple[float, ...] = ()

    def gbw_of_opamp(self, k: int) -> float:
        """Gain-bandwidth product (Hz) of bare op-amp ``k`` (``opamp.gbw`` unless
        compensated)."""
        return self.opamp_gbw[k] if self.opamp_gbw else self.opamp.gbw

    @property
    def amplifier_outputs(self) -> tuple[str, ...]:
        """Every node an op-amp drives: these are checked against the rails."""
        return (
            tuple(out for _, out in self.opamps)
            + tuple(out for _, out, _, _ in self.inverters)
            + tuple(out for _, out, _ in self.tias)
        )


def _cells(
    g: np.ndarray,
    row_nodes: list[str],
    col_nodes: list[str],
    prefix: str,
    r_wire: float,
    tile: int = 0,
) -> list[Resistor]:
    """Resistors of one array: a cell per (i, j) and, with ``r_wire > 0``, a wire segment
    before every cell along its row line (fed from ``row_nodes[i]``) and its column line
    (fed from ``col_nodes[j]``); each cell then has its own row and column node. With
    ``tile > 0`` the array is made of ``tile``-wide square crossbars whose lines are fed
    separately (a matrix wider than one crossbar: each tile's row and column lines start at
    the shared row node and column driver)."""
    n_rows, n_cols = g.shape
    r = (1.0 / g).tolist()
    if r_wire == 0:
        return [(row_nodes[i], col_nodes[j], r[i][j]) for i in range(n_rows) for j in range(n_cols)]
    tile = tile or max(n_rows, n_cols)
    resistors = []
    for i in range(n_rows):
        for j in range(n_cols):
            row, col = f"{prefix}r{i}_{j}", f"{prefix}c{i}_{j}"
            row_prev = row_nodes[i] if j % tile == 0 else f"{prefix}r{i}_{j - 1}"
            col_prev = col_nodes[j] if i % tile == 0 else f"{prefix}c{i - 1}_{j}"
            resistors += [(row_prev, row, r_wire), (col_prev, col, r_wire), (row, col, r[i][j])]
    return resistors


def _inverter_resistors(
    array: ArrayConfig, n: int, seed: int | np.random.Generator | None
) -> np.ndarray:
    """(n, 2) resistor values of n inverter stages, with seeded mismatch when configured."""
    nominal = np.full((n, 2), array.r_inv)
    if array.inverter_mismatch == 0:
        return nominal
    if seed is None:
        raise InputError("array.inverter_mismatch > 0 needs an explicit seed for its draw")
    rng = np.random.default_rng(seed)
    drawn = nominal * (1 + array.inverter_mismatch * rng.standard_normal((n, 2)))
    if np.any(drawn <= 0):
        raise InputError(
            f"array.inverter_mismatch = {array.inverter_mismatch} drew a non-positive inverter "
            f"resistor ({drawn.min():.4g} ohm): no real circuit has it; lower the mismatch"
        )
    return drawn


def inv_crossbar(
    arrays: CrossbarArrays,
    config: Config,
    inputs: np.ndarray | None = None,
    *,
    seed: int | np.random.Generator | None = None,
) -> Circuit:
    """Closed-loop INV crossbar (Sun et al., PNAS 2019).

    Op-amp ``i`` holds row ``i`` at virtual ground and drives column ``i`` (node ``x<i>``); an
    inverter drives column ``i`` of the negative array with ``-x<i>`` (node ``nx<i>``). Input
    ``k`` is a DAC voltage on node ``in<k>`` through ``array.r_in`` into row ``k``. KCL at the
    rows gives ``x = -G^-1 v_in / r_in`` with ``G = g_pos - g_neg`` for ideal parts.

    Finer slices (``arrays.fine``, see :mod:`rerinv.hw.mapping`): slice ``k`` is another pair
    of arrays on the same rows whose columns are driven by attenuators, inverting amplifiers
    of gain ``-a_k``: ``f<k>p<j> = a_k x<j>`` (from ``nx<j>``) for its positive array and
    ``f<k>n<j> = -a_k x<j>`` (from ``x<j>``) for its negative one, so that ``G`` gains
    ``a_k (F+ - F-)``. A matrix wider than ``array.max_size`` is laid out as square tiles of
    that size on shared row nodes and column drivers (one loop; see :func:`_cells`).

    Parameters
    ----------
    arrays : CrossbarArrays
        Programmed conductances (S).
    config : Config
    inputs : numpy.ndarray, optional
        Initial DAC voltages (V); zeros by default (engines change them per solve).
    seed : int or numpy.random.Generator, optional
        Draws the inverter (and attenuator) resistor mismatch (required when it is non-zero).
    """
    n = arrays.n
    rows = [f"r{i}" for i in range(n)]
    xs = [f"x{j}" for j in range(n)]
    nxs = [f"nx{j}" for j in range(n)]
    ins = [f"in{i}" for i in range(n)]
    r_wire, tile = config.array.r_wire, config.array.max_size
    resistors = [(ins[i], rows[i], config.array.r_in) for i in range(n)]
    resistors += _cells(arrays.g_pos, rows, xs, "p", r_wire, tile)
    resistors += _cells(arrays.g_neg, rows, nxs, "n", r_wire, tile)
    r_inv = _inverter_resistors(config.array, n * (1 + 2 * len(arrays.fine)), seed)
    inverters = [(xs[j], nxs[j], r_inv[j, 0], r_inv[j, 1]) for j in range(n)]
    for k, part in enumerate(arrays.fine, start=1):
        fps, fns = [f"f{k}p{j}" for j in range(n)], [f"f{k}n{j}" for j in range(n)]
        resistors += _cells(part.g_pos, rows, fps, f"f{k}p", r_wire, tile)
        resistors += _cells(part.g_neg, rows, fns, f"f{k}n", r_wire, tile)
        drawn = r_inv[n * (2 * k - 1) : n * (2 * k + 1)]
        for j in range(n):  # out = -(r2 / r1) in with r2 / r1 = a_k (times the mismatch)
            (r1p, r2p), (r1n, r2n) = drawn[j], drawn[n + j]
            inverters.append((nxs[j], fps[j], r1p, r2p * part.attenuation))
            inverters.append((xs[j], fns[j], r1n, r2n * part.attenuation))
    slices = f", {arrays.slices} slices" if arrays.fine else ""
    return Circuit(
        title=f"rerinv INV crossbar {n}x{n}",
        opamp=config.opamp,
        resistors=resistors,
        inputs=tuple(ins),
        input_values=_initial_inputs(inputs, n),
        opamps=list(zip(rows, xs, strict=True)),
        inverters=inverters,
        tias=[],
        outputs=tuple(xs),
        notes=(
            f"INV crossbar, N={n}{slices}, opamp model {config.opamp.model},"
            f" r_in={config.array.r_in:g} ohm, r_wire={r_wire:g} ohm per segment",
            "KCL at row i: (v(in_i)-v(r_i))/r_in"
            " + sum_j Gp_ij (x_j - v(r_i)) + Gn_ij (nx_j - v(r_i))"
            + (
                " + sum_k,j Fp_kij (f<k>p_j - v(r_i)) + Fn_kij (f<k>n_j - v(r_i)) = 0"
                if slices
                else " = 0"
            ),
        ),
    )


def inv_gain_error(arrays: CrossbarArrays, config: Config) -> np.ndarray:
    """``G_eff - G`` (S) of :func:`inv_crossbar` at DC with op-amps of DC gain
    ``opamp.dc_gain`` and nominal resistors (the mismatch draw is the circuit's, not the
    designer's). A row op-amp leaves ``-x_i / gain`` on its row, which adds ``D_i / gain`` to the
    diagonal (``D_i`` every conductance at the row); an inverting stage of ratio ``r`` gives
    ``-r in / (1 + (1 + r) / gain)``: the inverters drive the negative array with
    ``-k1 x`` (``k1 = 1 / (1 + 2 / gain)``), the attenuators of slice ``a`` drive its positive
    array from the inverter with ``a k1 ka x`` and its negative one with ``-a ka x``
    (``ka = 1 / (1 + (1 + a) / gain)``). Exact for the linear DC circuit (output resistance
    aside)."""
    gain = config.opamp.dc_gain
    d = arrays.total_conductance + 1.0 / config.array.r_in
    k1 = 1.0 / (1.0 + 2.0 / gain)
    error = np.diag(d / gain) + (1.0 - k1) * arrays.g_neg
    for part in arrays.fine:
        a = part.attenuation
        ka = 1.0 / (1.0 + (1.0 + a) / gain)
        error = error + a * ((k1 * ka - 1.0) * part.g_pos - (ka - 1.0) * part.g_neg)
    return error


def ginv_crossbar(
    arrays: CrossbarArrays,
    config: Config,
    inputs: np.ndarray | None = None,
    *,
    seed: int | np.random.Generator | None = None,
) -> Circuit:
    """Generalised-inverse crossbar (Sun, Pedretti, Ielmini, Science Advances 2020): the same
    conductances ``G`` twice, as ``G`` and as ``G^T``, in one feedback loop.

    Array 1: input ``k`` (DAC voltage on ``in<k>`` through ``array.r_in``) and the cells of row
    ``i`` meet at TIA input ``t<i>``; cell ``(i, j)`` is driven by ``x<j>`` (positive array) or
    ``nx<j> = -x<j>`` (negative array); TIA ``i`` (feedback ``array.r_f``) outputs
    ``y<i> = -r_f (G x + v_in / r_in)_i`` and an inverter gives ``ny<i> = -y<i>``. Array 2:
    cell ``(i, j)`` joins ``ny<i>`` (positive array) or ``y<i>`` (negative array) to ``s<j>``,
    the inverting input of op-amp ``j`` whose output is ``x<j>``. KCL at ``s<j>`` forces
    ``G^T y = 0``, hence ``x = -(G^T G)^-1 G^T v_in / r_in`` (``= -G^-1 v_in / r_in`` for a
    square, non-singular ``G``, the same read-out as :func:`inv_crossbar`). The loop matrix is
    ``r_f D^-1 G^T G``: stable for *any* full-rank ``G``, symmetric or not, definite or not.

    Parameters are those of :func:`inv_crossbar`; ``seed`` draws the mismatch of the 2N
    inverters.
    """
    if arrays.fine:
        raise InputError("the generalised-inverse crossbar holds its matrix on one slice")
    n = arrays.n
    ts, ys, nys = ([f"{p}{i}" for i in range(n)] for p in ("t", "y", "ny"))
    ss, xs, nxs = ([f"{p}{j}" for j in range(n)] for p in ("s", "x", "nx"))
    ins = [f"in{i}" for i in range(n)]
    r_wire = config.array.r_wire
    resistors = [(ins[i], ts[i], config.array.r_in) for i in range(n)]
    resistors += _cells(arrays.g_pos, ts, xs, "p", r_wire)
    resistors += _cells(arrays.g_neg, ts, nxs, "n", r_wire)
    # array 2 holds the same cells read transposed: rows are driven by -y (positive cells) and
    # y (negative cells) so that the loop through two inverting stages is negative feedback
    resistors += _cells(arrays.g_pos, nys, ss, "q", r_wire)
    resistors += _cells(arrays.g_neg, ys, ss, "m", r_wire)
    r_inv = _inverter_resistors(config.array, 2 * n, seed)
    gbw_x = _ginv_compensation(arrays, config)
    return Circuit(
        title=f"rerinv generalised-inverse crossbar {n}x{n}",
        opamp=config.opamp,
        resistors=resistors,
        inputs=tuple(ins),
        input_values=_initial_inputs(inputs, n),
        opamps=list(zip(ss, xs, strict=True)),
        inverters=[(xs[j], nxs[j], r_inv[j, 0], r_inv[j, 1]) for j in range(n)]
        + [(ys[i], nys[i], r_inv[n + i, 0], r_inv[n + i, 1]) for i in range(n)],
        tias=[(ts[i], ys[i], config.array.r_f) for i in range(n)],
        outputs=tuple(xs),
        opamp_gbw=(gbw_x,) * n,
        notes=(
            f"generalised-inverse crossbar, N={n}, opamp model {config.opamp.model},"
            f" x amplifiers compensated to GBW {gbw_x:.4g} Hz,"
            f" r_in={config.array.r_in:g} ohm, r_f={config.array.r_f:g} ohm,"
            f" r_wire={r_wire:g} ohm per segment",
            "y = -r_f (G x + v_in/r_in); KCL at s_j: (G^T y)_j = 0, x = -(G^T G)^-1 G^T v/r_in",
        ),
    )


#: The x loop of a generalised-inverse crossbar crosses over at this fraction of the slowest
#: inner stage (TIA or inverter) bandwidth: a dominant-pole design.
GINV_CROSSOVER = 0.2


def _ginv_compensation(arrays: CrossbarArrays, config: Config) -> float:
    """GBW (Hz) of the x amplifiers of a generalised-inverse crossbar: low enough that their
    loop, of gain ``2 pi GBW_x * lambda_max(r_f D^-1 G^T G)``, crosses over well below the
    TIAs' (``2 pi GBW beta_TIA``) and the inverters' (``2 pi GBW / 2``) bandwidths. Without it
    the three poles in cascade make the loop oscillate for all but tiny arrays."""
    g_abs = arrays.g_pos + arrays.g_neg
    r_f = config.array.r_f
    beta = (1 / r_f) / (1 / r_f + 1 / config.array.r_in + g_abs.sum(axis=1))
    d = g_abs.sum(axis=0)  # conductance at each x amplifier's input (array 2 column)
    g = arrays.conductance_matrix
    lam = float(np.linalg.norm(g, 2) ** 2 * r_f / np.min(d))  # >= lambda_max(r_f D^-1 G^T G)
    gbw = config.opamp.gbw
    return float(min(gbw, GINV_CROSSOVER * gbw * min(float(np.min(beta)), 0.5) / lam))


def vmm_crossbar(
    arrays: CrossbarArrays, config: Config, inputs: np.ndarray | None = None
) -> Circuit:
    """Open-loop VMM crossbar with differential columns.

    Row ``i`` is driven by a DAC voltage on node ``in<i>``. Column ``j`` of the positive array
    ends in a TIA (feedback ``array.r_f``) whose output is ``y<j>``; column ``j`` of the negative
    array ends in its own TIA (output ``u<j>``), which feeds the positive TIA's input through a
    second ``r_f``. Hence ``y = -r_f (g_pos - g_neg)^T v`` for ideal parts.
    """
    n_rows, n_cols = arrays.g_pos.shape
    ins = [f"in{i}" for i in range(n_rows)]
    cps = [f"cp{j}" for j in range(n_cols)]
    cns = [f"cn{j}" for j in range(n_cols)]
    ys = [f"y{j}" for j in range(n_cols)]
    us = [f"u{j}" for j in range(n_cols)]
    r_f, r_wire = config.array.r_f, config.array.r_wire
    resistors = _cells(arrays.g_pos, ins, cps, "p", r_wire)
    resistors += _cells(arrays.g_neg, ins, cns, "n", r_wire)
    resistors += [(us[j], cps[j], r_f) for j in range(n_cols)]
    return Circuit(
        title=f"rerinv VMM crossbar {n_rows}x{n_cols}",
        opamp=config.opamp,
        resistors=resistors,
        inputs=tuple(ins),
        input_values=_initial_inputs(inputs, n_rows),
        opamps=[],
        inverters=[],
        tias=[(cps[j], ys[j], r_f) for j in range(n_cols)]
        + [(cns[j], us[j], r_f) for j in range(n_cols)],
        outputs=tuple(ys),
        notes=(
            f"VMM crossbar, {n_rows}x{n_cols}, opamp model {config.opamp.model}, r_f={r_f:g} ohm,"
            f" r_wire={r_wire:g} ohm per segment",
            "y_j = -r_f * sum_i (Gp_ij - Gn_ij) v(in_i)",
        ),
    )


def _initial_inputs(inputs: np.ndarray | None, n: int) -> np.ndarray:
    if inputs is None:
        return np.zeros(n)
    inputs = np.asarray(inputs, dtype=float)
    if inputs.shape != (n,):
        raise InputError(f"expected {n} input voltages, got shape {inputs.shape}")
    return inputs


def merge_circuits(circuits: list[Circuit], prefixes: list[str], title: str) -> Circuit:
    """Several circuits side by side in one (disjoint networks, one operating point): every
    node of circuit ``k`` gets the prefix ``prefixes[k]`` (ground stays ground). The op-amp
    model must be the same; per-op-amp compensation is kept."""
    if len({c.opamp for c in circuits}) > 1:
        raise InputError("circuits with different op-amp models cannot share one netlist")

    def rename(prefix: str, node: str) -> str:
        return node if node == "0" else f"{prefix}{node}"

    resistors, inputs, values, opamps, gbw, inverters, tias, outputs, notes = ([] for _ in range(9))
    for circuit, p in zip(circuits, prefixes, strict=True):
        resistors += [(rename(p, a), rename(p, b), ohms) for a, b, ohms in circuit.resistors]
        inputs += [rename(p, node) for node in circuit.inputs]
        values.append(circuit.input_values)
        opamps += [(rename(p, inn), rename(p, out)) for inn, out in circuit.opamps]
        gbw += [circuit.gbw_of_opamp(k) for k in range(len(circuit.opamps))]
        inverters += [(rename(p, a), rename(p, o), r1, r2) for a, o, r1, r2 in circuit.inverters]
        tias += [(rename(p, a), rename(p, o), rf) for a, o, rf in circuit.tias]
        outputs += [rename(p, node) for node in circuit.outputs]
        notes.append(f"{p}*: {circuit.title}")
    return Circuit(
        title=title,
        opamp=circuits[0].opamp,
        resistors=resistors,
        inputs=tuple(inputs),
        input_values=np.concatenate(values) if values else np.zeros(0),
        opamps=opamps,
        inverters=inverters,
        tias=tias,
        outputs=tuple(outputs),
        notes=tuple(notes),
        opamp_gbw=tuple(gbw) if any(g != circuits[0].opamp.gbw for g in gbw) else (),
    )
