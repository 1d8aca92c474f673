"""Assertions that explain: a failing one says what was measured pass by pass, what the
hardware could resolve, and how to reproduce it, and carries the files that show it (the
netlist, the inputs, a waveform plot), which the pytest plugin writes next to the report.

They take what the ``rerinv`` bench returns (:mod:`rerinv.testing.bench`); ``assert_bits``
also takes a bare :class:`~rerinv.schemes.SolveResult`, ``assert_matches_reference`` arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rerinv.schemes import SolveResult
from rerinv.testing.bench import Settled, Solved, VmmReadout

Writer = Callable[[Path], list[Path]]


class CheckFailed(AssertionError):
    """A failed rerinv check. ``write_artifacts(folder)`` writes the files that show it and
    returns their paths (the pytest plugin does this for every failing test)."""

    def __init__(self, message: str, writer: Writer | None = None) -> None:
        super().__init__(message)
        self._writer = writer

    def write_artifacts(self, folder: str | Path) -> list[Path]:
        if self._writer is None:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return self._writer(folder)
        except Exception as exc:  # the failure is the news; a writer's own error is a note
            note = folder / "artifacts-error.txt"
            note.write_text(f"could not write every artifact: {type(exc).__name__}: {exc}\n")
            return [note]


def assert_bits(result: Solved | SolveResult, bits: float, *, componentwise: bool = False) -> None:
    """The answer's verified bits (against the float64 solution of the intended matrix;
    ``componentwise``: its worst entry's) reach ``bits``."""
    reached = result.componentwise_bits if componentwise else result.effective_bits
    if reached >= bits:
        return
    kind = "worst-entry" if componentwise else "verified"
    lines = [
        f"{bits:g} {kind} bits required, {_bits(reached)} reached (status {result.status} after "
        f"{result.passes} passes; scheme {result.scheme}, engine {result.engine}, "
        f"N = {result.n})",
        *_pass_table(result),
        _route(result),
    ]
    if result.switches:
        lines.append("decisions: " + "; ".join(f"pass {p}: {what}" for p, what in result.switches))
    writer = None
    if isinstance(result, Solved):
        lines.append(_reproduce(result.seed, "rerinv solve --config config.toml --matrix a.npy "
                                f"--rhs b.npy --seed {result.seed}"))  # fmt: skip
        writer = _solve_writer(result)
    raise CheckFailed("\n".join(lines), writer)


def assert_settles(settled: Settled, *, within: float | None = None) -> None:
    """The step settled into its band (``settled.eps_abs`` around the final value), with no
    railed or unstable output, and (``within``, seconds) no later than ``within``."""
    r = settled.result
    ok = r.status == "settled" and (within is None or r.settling_time <= within)
    if ok:
        return
    if r.status == "settled":
        first = f"settled in {_time(r.settling_time)}, later than the {_time(within)} allowed"
    else:
        first = f"did not settle: {r.status}, {r.message}"
    lines = [
        f"{r.kind.upper()} crossbar (N = {r.n}) {first}",
        f"measured {_time(r.settling_time)}; predicted {_time(r.predicted)} (formula), "
        f"{_time(r.predicted_small_signal)} (small-signal model)",
        f"band +-{r.eps_abs:.3g} V ({r.eps:.3g} of the ADC range); simulated {_time(r.t_stop)}; "
        f"largest distance from the DC point at the end {r.max_deviation:.3g} V",
        _reproduce(
            settled.seed,
            f"rerinv settle --config config.toml --kind {r.kind} "
            f"--matrix a.npy --seed {settled.seed}",
        ),  # fmt: skip
    ]
    raise CheckFailed("\n".join(lines), _settle_writer(settled))


def assert_matches_reference(
    measured: VmmReadout | np.ndarray,
    reference: np.ndarray | None = None,
    *,
    within: float | None = None,
    lsb: float | None = None,
) -> None:
    """Every entry of ``measured`` lies within ``within`` of ``reference``.

    With a :class:`~rerinv.testing.bench.VmmReadout` the reference is its float64 product
    ``A^T v_in``, ``lsb`` its ADC step and ``within`` counts ADC steps (default 0.5). With
    arrays, ``within`` counts ``lsb`` when one is given, else it is absolute (required).
    """
    writer, seed = None, None
    if isinstance(measured, VmmReadout):
        readout = measured
        measured, reference = readout.y, readout.exact if reference is None else reference
        lsb = readout.lsb if lsb is None else lsb
        writer, seed = _vmm_writer(readout), readout.seed
    if reference is None or (within is None and lsb is None):
        raise TypeError("assert_matches_reference needs a reference and a tolerance")
    measured, reference = np.asarray(measured, dtype=float), np.asarray(reference, dtype=float)
    if measured.shape != reference.shape:
        raise CheckFailed(f"shape {measured.shape} measured against {reference.shape} expected")
    unit = lsb if lsb is not None else 1.0
    limit = (0.5 if within is None else within) * unit
    error = np.abs(measured - reference)
    bad = np.flatnonzero(~(error <= limit))  # NaN counts as out of tolerance
    if not bad.size:
        return
    worst = int(bad[np.argmax(np.nan_to_num(error[bad], nan=np.inf))])
    units = " ADC steps" if lsb is not None else ""
    lines = [
        f"{bad.size} of {measured.size} entries off by more than {limit / unit:g}{units}; worst "
        f"entry {worst}: {measured[worst]:.6g} against {reference[worst]:.6g} "
        f"(off by {error[worst] / unit:.3g}{units})",
        "largest error relative to the largest reference entry: "
        f"{np.nanmax(error) / max(np.max(np.abs(reference)), np.finfo(float).tiny):.3g}",
    ]
    if seed is not None:
        command = "rerinv netlist --kind vmm --config config.toml --matrix a.npy --rhs v.npy"
        lines.append(_reproduce(seed, f"{command} --seed {seed} --out vmm.cir"))
    raise CheckFailed("\n".join(lines), writer)


# --- messages -----------------------------------------------------------------------------


def _bits(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else str(value)


def _time(seconds: float) -> str:
    return f"{seconds * 1e9:.4g} ns" if math.isfinite(seconds) else "n/a"


def _pass_table(result) -> list[str]:
    rows = [" pass   bits  worst-entry   residual  INV solves  VMM ops  preconditioner"]
    for k, h in enumerate(result.history, 1):
        rows.append(
            f" {k:4d} {_bits(h.effective_bits):>6} {_bits(h.componentwise_bits):>12} "
            f"{h.residual_norm:10.2e} {h.inv_solves:11d} {h.vmm_ops:8d}  {h.preconditioner}"
        )
    return rows if result.history else [" (no pass ran)"]


def _route(result) -> str:
    weight, inputs = result.residual_bits
    return (
        f"route: {result.circuit or 'n/a'} (scaling {result.scaling or 'none'}, shift "
        f"{result.shift:.3g}, {result.inv_slices} INV slice(s)); residual VMM {weight} x {inputs}"
        f" bits, resolves about {_bits(result.residual_floor_bits)} bits; condition estimate "
        f"{result.condition_estimate:.3g}"
    )


def _reproduce(seed: int, command: str) -> str:
    return (
        f"seed {seed}: the test gives the same numbers when run again; the same circuit "
        f"outside pytest, from the artifacts folder: {command}"
    )


# --- artifacts ----------------------------------------------------------------------------


def _common(folder: Path, config, arrays: dict[str, np.ndarray], summary: dict) -> list[Path]:
    paths = [folder / "config.toml", folder / "summary.json"]
    paths[0].write_text(config.to_toml())
    paths[1].write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    for name, value in arrays.items():
        paths.append(folder / f"{name}.npy")
        np.save(paths[-1], value)
    return paths


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _netlist(folder: Path, circuit, header: tuple[str, ...]) -> Path:
    from rerinv.engines.amplifier import trimmed  # sky130 offset trims, as the engine sets them
    from rerinv.hw.netlist import batch_netlist

    path = folder / "netlist.cir"
    path.write_text(batch_netlist(trimmed(circuit), header))
    return path


def _solve_writer(solved: Solved) -> Writer:
    def write(folder: Path) -> list[Path]:
        from rerinv.analog.blocks import machine_circuit
        from rerinv.studies.transient.settle import solve_crossbar_seed

        paths = _common(folder, solved.config, {"a": solved.a, "b": solved.b},
                        solved.result.to_dict())  # fmt: skip
        config, note = solved.config, "as programmed before pass 1"
        if config.opamp.model == "sky130" and config.opamp.mismatch:
            # ngspice draws mismatch per netlist: a merged one could not be the solve's chip
            config = config.with_values("opamp", mismatch=False)
            note += "; amplifiers at their nominal devices (the solve drew device mismatch)"
        circuit, header = machine_circuit(
            solved.a, solved.b, config, seed=solve_crossbar_seed(solved.seed)
        )
        return [*paths, _netlist(folder, circuit, (*header, note))]

    return write


def _settle_writer(settled: Settled) -> Writer:
    def write(folder: Path) -> list[Path]:
        from rerinv.studies.transient.plot import plot_settling

        r = settled.result
        paths = _common(folder, settled.config, {"a": settled.a}, r.to_dict())
        paths.append(_netlist(folder, settled.circuit, ("DC point of the step's final inputs",)))
        if r.waveforms is not None:
            paths.append(plot_settling(r, folder / "settling.png"))
        return paths

    return write


def _vmm_writer(readout: VmmReadout) -> Writer:
    def write(folder: Path) -> list[Path]:
        read = readout.result
        summary = {"y": read.y, "exact": read.exact, "lsb": read.lsb, "seed": readout.seed}
        arrays = {"a": readout.a, "v": read.v_in}
        paths = _common(folder, readout.config, arrays, summary)
        return [*paths, _netlist(folder, readout.circuit, ("y = A^T v: outputs yK",))]

    return write
