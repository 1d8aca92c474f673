"""``rerinv calibrate``: run the studies that fill a parameter card (``docs/parameter-card.md``).

- timing: INV transient settling over a spread of sizes and ``lambda_min`` (ngspice), fitted to
  ``t = a * ln(1/eps) / (2 pi GBW lambda_min(D^-1 G))``; VMM settling;
- timing versus N: the INV settling time at ``array.r_in`` for each simulated size;
- accuracy: error of one analog INV solve and of one VMM (relative to full scale) over seeded
  trials, and per scheme the bits gained per pass and passes to 16 bits (Monte Carlo trials),
  with each successful trial's passes, INV solves, VMM ops and conversions until it stopped;
- energy: op-amp static power x settling time plus the crossbar's I^2 R at full-scale inputs;
  with transistor-level amplifiers (``opamp.model = sky130``) the power every source delivers
  in ngspice (supply rails and DACs) times the settling time, marked so in the card.
"""

from __future__ import annotations

import math
import time

import numpy as np

from rerinv.analog.machine import AnalogMachine
from rerinv.analog.vmm import build_vmm, read_vmm
from rerinv.card import SETTLE_MODEL, new_card, validate_card
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import vmm_crossbar
from rerinv.provenance import software_versions
from rerinv.schemes import SCHEMES
from rerinv.seeds import seed_sequence, spawn
from rerinv.studies.trial import run_trial, workload_matrix


def _stats(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "n": int(values.size)}


def inv_error(config: Config, n: int, trials: int, seed: int, engine: str) -> dict:
    """Error of one analog INV solve (DAC slices, INV crossbar, ADC) against float64."""
    errors = []
    for child in spawn(seed, trials):
        workload, device = spawn(child, 2)
        a, b = workload_matrix(config, n, workload)
        with AnalogMachine(
            a, config.with_values("simulation", engine=engine), seed=device
        ) as machine:
            x = machine.inv(b)
        x_ref = np.linalg.solve(a, b)
        errors.append(np.max(np.abs(x - x_ref)) / np.max(np.abs(x_ref)))
    return _stats(errors)


def vmm_error(config: Config, n: int, trials: int, seed: int, engine: str) -> dict:
    """Error of one VMM of a ``device.bits`` crossbar (DAC input, ADC output) against float64:
    ``y = A^T v`` (:func:`rerinv.analog.vmm.read_vmm`)."""
    errors = []
    for child in spawn(seed, trials):
        workload, device = spawn(child, 2)
        a, v = workload_matrix(config, n, workload)
        read = read_vmm(build_vmm(a, config, seed=device), v, get_engine(engine))
        errors.append(np.max(np.abs(read.error)) / read.full_scale)
    return _stats(errors)


def scheme_statistics(
    config: Config, n: int, trials: int, seed: int, engine: str, schemes=SCHEMES
) -> dict:
    """Per scheme: average bits per pass up to 16 bits, passes to 16 (median, p90), success,
    and, for every trial that ended with 16 bits or more, what the whole solve cost until the
    scheme stopped (passes, INV solves, VMM ops, conversions): the per-solve costs the system
    timing model (:mod:`rerinv.system`) reads."""
    out = {}
    for scheme in schemes:
        gains, to16 = [], []
        costs: dict[str, list] = {key: [] for key in _COSTS}
        budget = 30 if scheme == "krylov" else 8
        for child in spawn(seed, trials):
            case = config.with_values(
                "simulation", scheme=scheme, engine=engine, n=n, max_passes=budget
            )
            r = run_trial(case, seed=child)
            bits = [b for b in r.history_bits if math.isfinite(b)]
            first = next((k for k, b in enumerate(bits, 1) if b >= 16), None)
            if bits:
                k = first or len(bits)
                gains.append(bits[k - 1] / k)
            if first:
                to16.append(first)
            if r.reached_target:
                for key, attribute in _COSTS.items():
                    costs[key].append(int(getattr(r, attribute)))
        out[scheme] = {
            "bits_per_pass": float(np.median(gains)) if gains else None,
            "passes_to_16_median": float(np.median(to16)) if to16 else None,
            "passes_to_16_p90": float(np.percentile(to16, 90)) if to16 else None,
            "success_rate": len(to16) / trials,
            "n_trials": trials,
            "n": n,
            **costs,
        }
    return out


#: Card list (``accuracy.schemes.<name>.*``) -> TrialResult attribute it collects.
_COSTS = {
    "passes_per_solve": "passes",
    "inv_solves_per_solve": "inv_solves",
    "vmm_ops_per_solve": "vmm_ops",
    "conversions_per_solve": "conversions",
}


def settle_timing(
    config: Config, seed: int, sizes=(8, 16, 32), r_ins=(100e3, 25e3, 10e3, 5e3)
) -> dict:
    """INV settling fit over sizes and input resistors (which move lambda_min), plus typical
    INV and VMM settling times, all from ngspice transients."""
    from rerinv.studies.transient.settle import settle

    measured, predicted, skipped = [], [], 0
    vs_n: dict[int, float] = {}  # settled INV times at config.array.r_in, by N
    r_ins = tuple(r_ins) if config.array.r_in in r_ins else (config.array.r_in, *r_ins)
    for n in sizes:
        for r_in in r_ins:
            case = config.with_overrides([f"array.r_in={r_in}"])
            report = settle("inv", n, case, seed=seed)
            if r_in == config.array.r_in and report.status == "settled":
                vs_n[n] = report.settling_time
            if report.status != "settled" or report.inverter_pole_matters:
                skipped += 1  # the single-pole formula does not describe this case
                continue
            measured.append(report.settling_time)
            predicted.append(report.predicted)
    fit = None
    if measured:
        t, p = np.array(measured), np.array(predicted)
        a = float(t @ p / (p @ p))
        fit = {
            "model": SETTLE_MODEL,
            "a": a,
            "a_std": float(np.std(t / p)),
            "gbw_hz": config.opamp.gbw,
            "n_points": int(t.size),
            "max_rel_error": float(np.max(np.abs(t - a * p) / (a * p))),
        }
    typical = settle("inv", max(sizes), config, seed=seed)
    vmm = settle("vmm", max(sizes), config, seed=seed)
    return {
        "inv_settle_fit": fit,
        "inv_settle_typical_s": typical.settling_time if typical.status == "settled" else None,
        "vmm_settle_s": vmm.settling_time if vmm.status == "settled" else None,
        "inv_settle_vs_n": None
        if not vs_n
        else {
            "n": sorted(vs_n),
            "settle_s": [vs_n[k] for k in sorted(vs_n)],
            "r_in_ohm": config.array.r_in,
        },
    }


def energy(config: Config, n: int, timing: dict, seed: int) -> dict:
    """Op-amp static power x settling time, plus the crossbar's I^2 R at full-scale inputs
    (nodal solve of the same circuit); converters excluded."""
    from rerinv.analog import inv as inv_mod
    from rerinv.analog.routes import build_preconditioner

    a, b = workload_matrix(config, n, seed_sequence(seed))
    inv = build_preconditioner(a, config, seed=seed)
    inputs = inv_mod.input_gain(inv, b) * inv.arrays.row_scale * b
    inv_power = get_engine("nodal").load(inv.circuit).dissipated_power(inputs)
    vmm_circuit = vmm_crossbar(inv.arrays, config)  # the same programmed cells, read open-loop
    v = config.converters.dac_range * np.sign(b)
    vmm_power = get_engine("nodal").load(vmm_circuit).dissipated_power(0.1 * v)
    t_inv, t_vmm = timing.get("inv_settle_typical_s"), timing.get("vmm_settle_s")
    if config.opamp.model == "sky130":
        return _transistor_energy(
            config, n, inv.circuit, inputs, vmm_circuit, 0.1 * v, t_inv, t_vmm
        )
    p_amp = config.opamp.power
    return {
        "inv_op_j": None if t_inv is None else (2 * n * p_amp + inv_power) * t_inv,
        "vmm_op_j": None if t_vmm is None else (2 * n * p_amp + vmm_power) * t_vmm,
        "opamp_power_w": p_amp,
        "assumptions": (
            f"N = {n}; each of the 2N op-amps (INV: rows + inverters; VMM: differential TIAs) "
            f"draws opamp.power = {p_amp:g} W for one settling time; crossbar and resistor "
            f"dissipation from a nodal DC solve (INV at the planned input scale, VMM at 10 % "
            f"of the DAC range on every row); DAC/ADC energy excluded"
        ),
    }


def _transistor_energy(config, n, inv_circuit, inv_inputs, vmm_circuit, vmm_inputs, t_inv, t_vmm):
    """Energy per INV solve and per VMM op of transistor-level (sky130) circuits: the power
    every source delivers at the DC operating point (ngspice source currents: both supply
    rails and the DACs) times the transient settling time of the same kind of crossbar."""
    from rerinv.engines.amplifier import characterise, supply_power

    oa = config.opamp
    amp = characterise(oa.corner, oa.temperature, oa.supply)
    p_inv = supply_power(inv_circuit, inv_inputs)
    p_vmm = supply_power(vmm_circuit, vmm_inputs)
    return {
        "inv_op_j": None if t_inv is None else p_inv["total_w"] * t_inv,
        "vmm_op_j": None if t_vmm is None else p_vmm["total_w"] * t_vmm,
        "opamp_power_w": amp.power,
        "assumptions": (
            f"N = {n}; {amp.source}: power from ngspice's source currents at the DC operating "
            f"point (INV at the planned input scale: {p_inv['total_w']:.4g} W, of which the "
            f"DACs {p_inv['dacs_w']:.3g} W; VMM at 10 % of the DAC range on every row: "
            f"{p_vmm['total_w']:.4g} W), times the transient settling time; class-A amplifiers "
            "draw about their quiescent current throughout; DAC/ADC circuits excluded"
        ),
        "source": f"{amp.source}, supply currents simulated",
    }


def calibrate(
    config: Config,
    *,
    n: int = 32,
    trials: int = 20,
    seed: int = 0,
    settle_sizes=(8, 16, 32),
    log=print,
) -> dict:
    """Run every study and return a validated parameter card; ``settle_sizes`` are the N of
    the INV settling transients (``timing.inv_settle_vs_n``, which the timing model
    extrapolates to the crossbar size)."""
    start = time.perf_counter()
    log("calibrate: transient settling (ngspice) ...")
    timing = settle_timing(config, seed, sizes=tuple(settle_sizes))
    log(f"  done in {time.perf_counter() - start:.0f} s; INV/VMM error per solve (ngspice) ...")
    accuracy = {
        "inv_error_rel_fullscale": inv_error(config, n, max(3, trials // 4), seed, "spice"),
        "vmm_error_rel_fullscale": vmm_error(config, n, max(3, trials // 4), seed, "spice"),
    }
    log(f"  done in {time.perf_counter() - start:.0f} s; schemes, {trials} trials each (nodal) ...")
    accuracy["schemes"] = scheme_statistics(config, n, trials, seed, "nodal")
    log(f"  done in {time.perf_counter() - start:.0f} s; energy ...")
    if config.opamp.model == "sky130":
        timing["source"] = (
            f"transistor-level, SKY130 {config.opamp.corner}: ngspice transients of the "
            "transistor circuits; fit against the single-pole model extracted from them"
        )
    card = new_card(
        config,
        timing=timing,
        accuracy=accuracy,
        energy=energy(config, n, timing, seed),
        software=software_versions(ngspice=True),
    )
    if config.opamp.model == "sky130":
        card["amplifier"] = amplifier_section(config, seed)
        validate_card(card)
    return card


#: Mismatch draws of the amplifier's offset sigma in a calibrated card.
CARD_MISMATCH_TRIALS = 100


def amplifier_section(config: Config, seed: int) -> dict:
    """The card's ``amplifier`` section: the transistor-level characterisation at the
    configured corner, temperature and supply, with its source."""
    from rerinv.engines.amplifier import characterise

    oa = config.opamp
    c = characterise(
        oa.corner, oa.temperature, oa.supply, mismatch_trials=CARD_MISMATCH_TRIALS, seed=seed
    )
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in c.to_dict().items()}  # fmt: skip
