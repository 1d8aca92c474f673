"""Sections of the training report on the study's questions: the hardware the runs used,
the bits needed per damping and noise level (paired statistics), tuning with equal budgets
on validation, and the test set read once."""

from __future__ import annotations

import html
import math
from typing import Any

from rerinv.training.levels import NOISE_LEVELS, PRESET_LEVELS
from rerinv.training.paired import choice_metric
from rerinv.training.results import TrainingResults


def p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def interval(value, fmt: str = "{:.1f}") -> str:
    mean, lo, hi = value
    if not math.isfinite(mean):
        return "-"
    return f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def hardware_section(results: TrainingResults) -> list[str]:
    """The hardware every analog setting used: the base configuration and each level."""
    cfg = results.config
    base = (
        f"Base hardware (every level starts from it): {cfg.simulation.engine} engine, "
        f"{cfg.device.bits}-bit cells in {cfg.device.g_min:g}-{cfg.device.g_max:g} S (the "
        f"single solve's cell and ADC bits are the bits axis), {cfg.converters.dac_bits}-bit "
        f"DAC, {cfg.converters.adc_bits}-bit ADC, op-amps '{cfg.opamp.model}' (gain "
        f"{cfg.opamp.gain:g}, GBW {cfg.opamp.gbw:g} Hz), programming error sigma_rel "
        f"{cfg.device.sigma_rel:g} / sigma_abs {cfg.device.sigma_abs:g} S, read noise "
        f"{cfg.device.read_noise:g}, wire {cfg.array.r_wire:g} ohm, op-amp offset "
        f"{cfg.opamp.offset:g} V, inverter mismatch {cfg.array.inverter_mismatch:g}. float64 "
        "K-FAC and the baselines use no analog hardware."
    )
    rows = []
    for level in results.spec.noise:
        text, changes = NOISE_LEVELS[level]
        values = ", ".join(f"{s}.{k} = {v:g}" for s, kv in changes.items() for k, v in kv.items())
        if level in PRESET_LEVELS:
            values = f"--preset {PRESET_LEVELS[level]} applied on top"
        rows.append([level, text, values or "(none)"])
    return ["<h2>Hardware of the analog runs</h2>", p(base),
            table(["noise level", "what it is", "configuration changed"], rows)]  # fmt: skip


def bits_section(results: TrainingResults, groups: list[dict]) -> list[str]:
    """Per damping, rule and noise level: float64's steps, each bits' paired comparison,
    and the bits needed."""
    if not groups:
        return []
    metric = choice_metric(results)
    rows = []
    for g in groups:
        ref = g["reference"]
        cells = [
            f"{g['damping']:g}" + (" adaptive" if g["adaptive"] else ""),
            g["noise"],
            interval(ref[f"mean:{metric}"]) + f" ({ref[f'reached:{metric}']}/{ref['seeds']})",
        ]
        for bits, result, row in g["points"]:
            diff = result["diff"]
            mark = "within" if result["within"] else "outside"
            cells.append(
                f"{bits:g} bits ({row['median_bits']:.1f} eff.): {result['mean'][0]:.1f} steps, "
                f"diff {diff[0]:+.1f} [{diff[1]:+.1f}, {diff[2]:+.1f}], "
                f"loss x{result['loss_ratio'][0]:.2f}; {mark}"
            )
        needed = g["bits_needed"]
        if not ref[f"reached:{metric}"]:
            verdict = "unmeasured: float64 never reached the target"
        elif needed is None:
            verdict = f"> {max(g['tested']):g} (none tested is within)"
        elif needed == min(g["tested"]):
            verdict = f"<= {needed:g} (the fewest tested)"
        else:
            verdict = f"{needed:g}"
        rows.append([*cells, verdict])
    width = max(len(r) for r in rows)
    rows = [r[:-1] + [""] * (width - len(r)) + r[-1:] for r in rows]
    headers = ["damping", "noise", f"float64 steps to {metric} [95 % t] (reached)"]
    headers += [f"bits #{k + 1}" for k in range(width - 4)] + ["bits needed"]
    return [
        "<h2>Bits needed to stay within float64</h2>",
        p(
            f"Steps to the {metric} target of the analog single solve against float64 K-FAC at "
            "the same damping, seed by seed (seed i: same initial weights and batches; a seed "
            f"that never reaches the target counts as steps + 1 = {results.spec.steps + 1}). "
            "'diff': mean paired difference of steps with its 95 % t interval; 'loss x': "
            "geometric-mean ratio of final training losses; 'eff.': median effective bits of "
            "the inverse columns. A bits value is within float64 when its mean steps lie in "
            "float64's 95 % t interval and the paired-difference interval contains 0; bits "
            "needed is the smallest bits from which every larger bits tested is within."
        ),
        table(headers, rows),
    ]


def tuning_section(results: TrainingResults, chosen: dict[str, dict[str, Any]]) -> list[str]:
    metric = choice_metric(results)
    budgets = {name: entry["budget"] for name, entry in chosen.items()}
    equal = len(set(budgets.values())) == 1
    rows = [
        [name, str(entry["budget"]), label, f"{steps:.1f}",
         "chosen" if label == entry["row"]["label"] else ""]
        for name, entry in chosen.items()
        for label, steps in entry["candidates"]
    ]  # fmt: skip
    return [
        "<h2>Tuning: equal budgets, chosen on validation</h2>",
        p(
            f"Each optimizer family tried the configurations below on every seed (K-FAC: float64 "
            f"at each damping of the axis, lr {results.spec.kfac_lr:g} and KL clip "
            f"{results.spec.kl_clip:g} fixed; SGD: momentum 0.9 at each lr; Adam: each lr) and "
            f"keeps the one with the fewest mean steps to the {metric} target (seeds that never "
            "reach it count as steps + 1; ties: lower final validation loss). Budgets: "
            + ", ".join(f"{k} {v}" for k, v in budgets.items())
            + (" (equal)." if equal else " (NOT equal).")
        ),
        table(["family", "budget", "configuration", f"mean steps to {metric}", ""], rows),
    ]


def test_section(results: TrainingResults, tested: list[dict]) -> list[str]:
    if results.spec.task != "classify":
        return []
    rows = [
        [
            item["label"],
            f"{item['test_reached']}/{item['seeds']}",
            "-" if item["test_steps_mean"] is None
            else f"{item['test_steps_mean']:.1f} [{item['test_steps_ci95'][0]:.1f}, "
            f"{item['test_steps_ci95'][1]:.1f}]",
            "-" if item["final_test_accuracy"] is None
            else f"{item['final_test_accuracy']:.3f} [{item['final_test_accuracy_ci95'][0]:.3f}, "
            f"{item['final_test_accuracy_ci95'][1]:.3f}]",
        ]
        for item in tested
    ]  # fmt: skip
    return [
        "<h2>Test set, read once</h2>",
        p(
            "The configurations chosen on validation, and the analog single solves at the chosen "
            "damping (their hardware is an axis, not a choice): steps to the test-accuracy "
            "target (mean over the seeds that reached it, 95 % t) and final test accuracy."
        ),
        table(["setting", "reached", "steps to test target", "final test accuracy"], rows),
    ]
