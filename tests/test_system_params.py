"""Every architecture field is live and sourced (issue 21 item 4): doubling or halving any
numeric field changes some output (time, energy, area, power or wear) of at least one preset;
every field has a citation or derivation and is listed in docs/timing.md; converters scale
with their bits; area and power are reported and the power budget throttles."""

import json
from pathlib import Path

import numpy as np
import pytest

from rerinv.system import evaluate, inv_timing, load_arch, load_workload, solve_cost
from rerinv.system.arch import ARCH_FIELDS, RANGES, SOURCES, preset_path
from rerinv.system.baselines import gpu_check
from rerinv.system.components import chip_budget, tiles_for_area

DOCS = Path(__file__).resolve().parents[1] / "docs" / "timing.md"
CARD = json.loads(preset_path("calibrated_card.json").read_text())
#: fields that only act away from a reference: the context in which they are checked
CONTEXT = {
    "converters.adc_energy_growth_per_bit": {"converters.adc_bits": 10},
    "converters.adc_area_growth_per_bit": {"converters.adc_bits": 10},
}
KINDS = {f"{s}.{k}": kind for s, fields in ARCH_FIELDS.items() for k, kind, *_ in fields}
NUMERIC = [
    f"{s}.{k}" for s, fields in ARCH_FIELDS.items() for k, kind, *_ in fields
    if kind in ("int", "float")
]  # fmt: skip


def _outputs(arch, workloads):
    """Every number evaluate gives, flattened (one vector per architecture)."""
    cost, timing = solve_cost(arch, CARD), inv_timing(arch, CARD)
    values = []

    def walk(tree):
        if isinstance(tree, dict):
            for key in sorted(tree):
                walk(tree[key])
        elif isinstance(tree, (int, float, np.ndarray, np.generic)) and not isinstance(tree, bool):
            values.append(float(np.mean(tree)))

    for w in workloads:
        walk(evaluate(arch, w, cost, timing))
    return np.array(values)


_BASE: dict = {}  # unperturbed outputs per preset and context


@pytest.fixture(scope="module")
def workloads():
    return [load_workload("resnet50"), load_workload("mnist-autoencoder")]


@pytest.mark.parametrize("field", NUMERIC)
def test_every_numeric_field_changes_an_output(field, workloads):
    changed = []
    for preset in ("repast", "calibrated"):
        arch = load_arch(preset, CONTEXT.get(field))
        key = (preset, tuple(sorted((CONTEXT.get(field) or {}).items())))
        if key not in _BASE:
            _BASE[key] = _outputs(arch, workloads)
        base = _BASE[key]
        value = arch[field]
        for new in (value * 2, value / 2) if value else (1.0,):
            if KINDS[field] == "int":
                new = max(1, int(round(new)))
            try:
                other = _outputs(arch.with_values({field: new}), workloads)
            except Exception as exc:  # a perturbation the model refuses still reads the field
                changed.append(f"{preset}: {type(exc).__name__}")
                continue
            if base.shape != other.shape or not np.allclose(base, other, rtol=1e-12, atol=0):
                changed.append(preset)
    assert changed, f"{field}: doubling or halving it changes nothing (unused field)"


def test_every_field_has_a_source_and_is_in_the_docs():
    text = DOCS.read_text()
    for section, fields in ARCH_FIELDS.items():
        for key, *_ in fields:
            name = f"{section}.{key}"
            assert SOURCES.get(name, "").strip(), f"{name} has no citation in sources.SOURCES"
            assert f"`{name}`" in text, f"{name} is missing from docs/timing.md's source table"
    for name, (low, high, why) in RANGES.items():
        assert low <= high and why, name


def test_every_numeric_preset_line_carries_a_comment():
    for preset in ("repast.toml", "calibrated.toml"):
        for line in preset_path(preset).read_text().splitlines():
            code = line.split("#")[0]
            if "=" in code and any(ch.isdigit() for ch in code.split("=", 1)[1]):
                assert "#" in line, f"{preset}: {line!r} has no source comment"


def test_adc_bits_change_time_and_energy():
    w = load_workload("resnet50")
    results = {}
    for bits in (4, 8, 12):
        arch = load_arch("repast", {"converters.adc_bits": bits})
        r = evaluate(arch, w, solve_cost(arch, None), inv_timing(arch, None))
        results[bits] = r["machines"]["reram_kfac"]
    times = [float(results[b]["time_s"]) for b in (4, 8, 12)]
    energies = [float(results[b]["energy_j"]) for b in (4, 8, 12)]
    assert len(set(times)) == 3 and len(set(energies)) == 3
    # 12 bits: a SAR conversion of 128 columns takes 150 ns > the 100 ns read
    assert results[12]["busy_by_category_s"]["conversions"] > 0.0
    assert chip_budget(load_arch("repast", {"converters.adc_bits": 12}))["area_mm2"] > chip_budget(
        load_arch("repast"))["area_mm2"]  # fmt: skip


def test_area_and_power_are_reported_and_the_budget_throttles():
    arch = load_arch("repast")
    budget = chip_budget(arch)
    assert budget["area_mm2"] <= arch["chip.area_budget_mm2"] and not budget["over_area_budget"]
    assert tiles_for_area(arch, arch["chip.area_budget_mm2"]) == arch["chip.tiles"]
    assert budget["first_order_vmm_crossbars"] > arch["chip.tiles"] * 32  # INV area reused
    w = load_workload("resnet50")
    low = load_arch("repast", {"chip.power_budget_w": 1.0})
    r = evaluate(low, w, solve_cost(low, None), inv_timing(low, None))["machines"]["reram_kfac"]
    assert float(r["power"]["average_w"]) == pytest.approx(1.0)
    assert float(r["power"]["throttle"]) > 1 and float(r["time_by_category_s"]["power"]) > 0
    assert float(r["time_s"]) == pytest.approx(sum(float(v) for v in r["time_by_phase_s"].values()))


def test_the_gpu_roofline_is_checked_against_a_measured_step():
    check = gpu_check(load_arch("repast"), load_workload("resnet50"))
    assert 0.5 < check["ratio"] < 2.0, check  # within 2x of NVIDIA's measured 380 img/s


def test_per_network_steps_ratio_and_what_reaching_the_paper_needs():
    arch = load_arch("repast")
    cost, timing = solve_cost(arch, None), inv_timing(arch, None)
    for name in ("resnet50", "vgg16"):
        w = load_workload(name)
        r = evaluate(arch, w, cost, timing)
        assert r["steps_ratio"]["value"] == w.training.steps_ratio and r["steps_ratio"]["source"]
        need = float(r["steps_ratio"]["needed_for_paper"]["vs_reram_sgd"])
        from rerinv.system.workloads import with_training

        at = evaluate(arch, with_training(w, steps_ratio=need), cost, timing)
        assert float(at["speedup"]["vs_reram_sgd"]) == pytest.approx(11.4)
        assert float(r["first_order"]["speedup_vs_gpu_sgd"]) > 0


def test_the_pipelined_phases_overlap_and_pay_the_fill():
    from rerinv.system.charges import CATEGORIES, schedule

    def busy(**values):
        return {c: values.get(c, 0.0) for c in CATEGORIES}

    times = {
        "forward": busy(vmm=2.0, buffers=3.0),
        "backward": busy(vmm=2.0, buffers=1.0),
        "gradient": busy(vmm=1.0, writes=4.0),
        "update": busy(writes=0.5),
    }
    total = {c: sum(t[c] for t in times.values()) for c in CATEGORIES}
    phase_t, by_cat = schedule(times, total, "phase", fill=1.5)
    # the group: vmm 5, buffers 4, writes 4 -> 5 x 1.5 = 7.5; then the update's 0.5
    assert sum(phase_t[p] for p in ("forward", "backward", "gradient")) == pytest.approx(7.5)
    assert phase_t["update"] == pytest.approx(0.5)
    assert by_cat["vmm"] == pytest.approx(7.5) and by_cat["writes"] == pytest.approx(0.5)


def test_replicas_are_chosen_not_maximal():
    arch = load_arch("repast")
    cost, timing = solve_cost(arch, None), inv_timing(arch, None)
    r = evaluate(arch, load_workload("resnet50"), cost, timing)["machines"]["reram_sgd"]
    cap = r["capacity"]
    free = cap["vmm_crossbars"] - cap["vmm_crossbars_needed"] - cap["activation_crossbars"]
    assert 0 < cap["weight_replicas"] < 0.6 * free  # fewer than the free crossbars
    # the replicas bring the crossbars level with the busiest other resource, no further
    assert r["busy_by_category_s"]["vmm"] <= r["busy_by_category_s"]["buffers"] * (1 + 1e-3)


def test_replicas_may_displace_factor_copies_which_are_then_rewritten():
    """VGG-16's weights and factor copies exceed the K-FAC chip's VMM crossbars: its early
    convolutions (few weights, 50,176 positions) still get replicas, in crossbars whose factor
    copies are rewritten before the preconditioning (charged, once per step)."""
    arch = load_arch("repast")
    cost, timing = solve_cost(arch, None), inv_timing(arch, None)
    r = evaluate(arch, load_workload("vgg16"), cost, timing)["machines"]["reram_kfac"]
    cap = r["capacity"]
    assert cap["vmm_crossbars_needed"] > cap["vmm_crossbars"]  # nothing is free
    assert cap["weight_replicas"] > 0
    assert cap["displaced_factor_copies"] == pytest.approx(
        cap["weight_replicas"] + cap["activation_crossbars"]
    )
    rewritten = (
        cap["vmm_crossbars_needed"] - cap["vmm_crossbars"] + cap["weight_replicas"]
        + cap["displaced_factor_copies"]
    )  # fmt: skip
    size = arch["crossbar.size"]
    cells = r["energy_by_phase_j"]["rewrites"] / (
        arch["write.verify_pulses"]
        * (arch["write.energy_per_cell_j"] + arch["crossbar.cell_read_energy_j"])
    )
    assert cells == pytest.approx(rewritten * size**2, rel=1e-6)
    # with room to spare only what exceeds the free crossbars is displaced
    ae = evaluate(arch, load_workload("mnist-autoencoder"), cost, timing)["machines"]
    c = ae["reram_kfac"]["capacity"]
    free = c["vmm_crossbars"] - c["vmm_crossbars_needed"]
    assert c["displaced_factor_copies"] == pytest.approx(
        max(c["weight_replicas"] + c["activation_crossbars"] - free, 0.0)
    )


def test_the_stash_goes_where_the_step_is_fastest():
    """The activations kept for the backward pass: only the samples in flight in the pipeline
    hold them; the buffers keep what they can, memory subarrays (crossbars without weights)
    or the off-chip memory the rest, whichever gives the faster step."""
    from rerinv.system.activations import in_flight
    from rerinv.system.model import _step

    w = load_workload("resnet50")
    lay = w.layers
    life = in_flight(lay, 256)
    assert life[0] == 2 * (len(lay.names) - 1) + 1 and life[-1] == 1  # conv1 .. fc
    arch = load_arch("repast")
    cost, timing = solve_cost(arch, None), inv_timing(arch, None)
    for machine, args in (("reram_sgd", (None, None)), ("reram_kfac", (cost, timing))):
        chosen = evaluate(arch, w, cost, timing)["machines"][machine]
        options = [_step(arch, w, *args, memory) for memory in (False, True)]
        assert chosen["time_s"] == pytest.approx(min(o["time_s"] for o in options))
    # the first-order chip (216k crossbars) keeps the stash on chip, the K-FAC chip cannot
    sgd = evaluate(arch, w, cost, timing)["machines"]["reram_sgd"]["capacity"]
    assert sgd["activations_off_chip"] == 0 and sgd["activation_crossbars"] > 0
