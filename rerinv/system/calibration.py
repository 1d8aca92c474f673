"""What the circuit level hands the timing model: the cost of one 16-bit solve and the INV
crossbar's settling time and energy, from the architecture's ideal values or from a parameter
card (``rerinv calibrate``).

From a card (``solve.source = "card"``) the per-solve costs are the chosen percentile of the
Monte Carlo lists ``accuracy.schemes.<scheme>.{passes,inv_solves,vmm_ops,conversions}_per_solve``
(each percentile taken separately), and the INV settling time at the crossbar size is the
power law ``t = t_ref (N / N_ref)^beta`` fitted to ``timing.inv_settle_vs_n`` (least squares in
log-log; beta = 0 with a single size). The INV energy per solve scales ``energy.inv_op_j``
(op-amps and array, measured at the card's N and ``timing.inv_settle_typical_s``) linearly in
N and in the settling time. Cards without these fields are refused with a one-line error
naming the first missing one; no value is guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rerinv.card import lookup
from rerinv.errors import InputError
from rerinv.system.arch import Architecture

#: card list -> SolveCost field
_LISTS = {
    "passes_per_solve": "passes",
    "inv_solves_per_solve": "inv_solves",
    "vmm_ops_per_solve": "vmm_ops",
    "conversions_per_solve": "conversions_per_row",
}


@dataclass(frozen=True)
class SolveCost:
    """Cost of one 16-bit solve of a system that fits one crossbar (fields may be arrays).

    Attributes
    ----------
    passes : float
        Passes of the precision loop (count).
    inv_solves : float
        Analog INV solves, DAC slices and range retries included (count).
    vmm_ops : float
        VMM crossbar operations: one input bit-plane on one weight slice of one tile (count).
    conversions_per_row : float
        DAC plus ADC samples per row of the system (count).
    scheme, source : str
        The precision scheme, and where the numbers come from.
    success_rate : float
        Fraction of the card's trials that reached 16 bits (1 for ideal costs).
    """

    passes: Any
    inv_solves: Any
    vmm_ops: Any
    conversions_per_row: Any
    scheme: str
    source: str
    success_rate: float = 1.0

    def with_passes(self, passes) -> SolveCost:
        """Every count scaled by ``passes / self.passes`` (the cost of a pass kept)."""
        factor = np.asarray(passes, dtype=float) / self.passes
        return replace(
            self,
            passes=passes,
            inv_solves=self.inv_solves * factor,
            vmm_ops=self.vmm_ops * factor,
            conversions_per_row=self.conversions_per_row * factor,
        )

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class InvTiming:
    """INV settling time and energy per solve versus crossbar size N.

    ``settle(N) = settle_ref_s * (N / n_ref) ** beta``; ``energy(N)`` (op-amps and array,
    converters excluded) ``= energy_ref_j * (N / n_ref) * settle(N) / settle_ref_s``.
    ``settle_override_s`` (a sweep) replaces ``settle(N)`` and scales the energy with it.
    """

    settle_ref_s: float
    n_ref: float
    beta: float
    energy_ref_j: float
    source: str
    settle_override_s: Any = None

    def settle(self, n) -> Any:
        """Settling time of one INV solve on an ``n``-row crossbar (s)."""
        if self.settle_override_s is not None:
            return self.settle_override_s
        return self.settle_ref_s * (np.asarray(n, dtype=float) / self.n_ref) ** self.beta

    def energy(self, n) -> Any:
        """Energy of one INV solve on an ``n``-row crossbar, converters excluded (J)."""
        n = np.asarray(n, dtype=float)
        return self.energy_ref_j * (n / self.n_ref) * self.settle(n) / self.settle_ref_s

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self.__dict__.items()}


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value) if isinstance(value, np.floating) else value


def _need(card: dict, dotted: str, what: str):
    try:
        value = lookup(card, dotted)
    except (KeyError, TypeError):
        value = None
    if value is None or (isinstance(value, list) and not value):
        raise InputError(
            f"parameter card lacks {dotted} ({what}); re-run `rerinv calibrate` with this "
            "version, or use the architecture's own values (--set solve.source=ideal, "
            "--set inv.source=arch)"
        )
    return value


def solve_cost(arch: Architecture, card: dict | None) -> SolveCost:
    """The per-solve costs the model uses: ``[solve]`` ideal values or the card's."""
    s = arch.section("solve")
    if s.source == "ideal":
        # x slicing gains min(ADC, INV cell) bits per pass; the [solve] counts are for
        # s.passes passes and scale with the passes the architecture's parts need
        bits = np.minimum(arch["converters.adc_bits"], arch["crossbar.inv_cell_bits"])
        needed = np.ceil(s.target_bits / np.asarray(bits, dtype=float))
        factor = needed / s.passes
        return SolveCost(
            needed,
            s.inv_solves * factor,
            s.vmm_ops * factor,
            s.conversions_per_row * factor,
            s.scheme,
            f"ideal values of architecture {arch.name} ([solve], scaled to "
            f"ceil(target_bits / min(adc_bits, inv_cell_bits)) passes)",
        )
    if card is None:
        raise InputError("solve.source = card needs a parameter card (--card FILE)")
    base = f"accuracy.schemes.{s.scheme}"
    _need(card, base, f"Monte Carlo statistics of scheme {s.scheme}")
    n = _need(card, f"{base}.n", "matrix size of the trials")
    values = {}
    lengths = set()
    for key, name in _LISTS.items():
        samples = np.asarray(_need(card, f"{base}.{key}", "per-solve costs"), dtype=float)
        lengths.add(samples.size)
        values[name] = float(np.percentile(samples, s.percentile))
    if len(lengths) != 1:
        raise InputError(f"parameter card: the lists of {base} differ in length; re-calibrate")
    values["conversions_per_row"] /= n
    rate = lookup(card, f"{base}.success_rate")
    return SolveCost(
        **values,
        scheme=s.scheme,
        source=f"card: {s.percentile:g}th percentile of {lengths.pop()} solves that reached 16"
        f" bits (scheme {s.scheme}, N = {n})",
        success_rate=rate,
    )


def inv_timing(arch: Architecture, card: dict | None) -> InvTiming:
    """INV settling and energy: ``[inv]`` values, or the card's measurements."""
    inv, size = arch.section("inv"), arch["crossbar.size"]
    if inv.source == "arch":
        power = inv.opamps_per_row * size * inv.opamp_power_w + inv.crossbar_power_w
        return InvTiming(
            inv.settle_s,
            size,
            0.0,
            power * inv.settle_s,
            f"architecture {arch.name} ([inv]): settle_s at every N, "
            f"{inv.opamps_per_row} op-amps per row",
        )
    if card is None:
        raise InputError("inv.source = card needs a parameter card (--card FILE)")
    points = _need(card, "timing.inv_settle_vs_n", "INV settling time versus N")
    n = np.asarray(_need(card, "timing.inv_settle_vs_n.n", "sizes"), dtype=float)
    t = np.asarray(_need(card, "timing.inv_settle_vs_n.settle_s", "settling times"), dtype=float)
    if n.size != t.size:
        raise InputError("parameter card: timing.inv_settle_vs_n.n and .settle_s differ in length")
    beta = float(np.polyfit(np.log(n), np.log(t), 1)[0]) if np.unique(n).size > 1 else 0.0
    n_ref = float(n.max())
    t_ref = float(np.exp(np.mean(np.log(t) - beta * np.log(n / n_ref))))
    energy = _need(card, "energy.inv_op_j", "energy of one INV solve")
    typical = _need(card, "timing.inv_settle_typical_s", "the settling time inv_op_j assumes")
    schemes = _need(card, "accuracy.schemes", "Monte Carlo statistics")
    sizes = [s["n"] for s in schemes.values() if s.get("n")]
    if not sizes:
        _need(card, f"accuracy.schemes.{next(iter(schemes))}.n", "the N inv_op_j was measured at")
    n_card = sizes[0]
    # energy_ref at (n_ref, t_ref): inv_op_j was measured at (n_card, typical)
    energy_ref = energy * (n_ref / n_card) * (t_ref / typical)
    return InvTiming(
        t_ref,
        n_ref,
        beta,
        energy_ref,
        f"card: t = {t_ref:.3g} s x (N/{n_ref:g})^{beta:.2f} fitted to {n.size} ngspice "
        f"transients at r_in = {points['r_in_ohm']:g} ohm (N = {', '.join(f'{v:g}' for v in n)}"
        f"), extrapolated to the crossbar size; energy from energy.inv_op_j at N = {n_card}",
    )


def settle_exponent_note(timing: InvTiming, size: float) -> str | None:
    """A warning when the crossbar is far beyond the sizes the card simulated."""
    if timing.source.startswith("card") and size > 4 * timing.n_ref:
        return (
            f"INV settling extrapolated from N <= {timing.n_ref:g} to N = {size:g} "
            f"(factor {math.pow(size / timing.n_ref, timing.beta):.2g}); calibrate larger N to "
            "confirm"
        )
    return None
