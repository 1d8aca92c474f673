"""The training study's design: noise levels, the grid's settings, choices on validation with
equal budgets, paired comparisons and the bits-needed rule, hardware time per step."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from rerinv.errors import InputError
from rerinv.training import Setting, TrainingSpec, load_factor_set, training_config
from rerinv.training.levels import NOISE_LEVELS, noise_config, setting_config
from rerinv.training.paired import bits_needed, paired, tuning
from tests.test_training import DEFAULT_SET

pytest.importorskip("sklearn")


# -- hardware ------------------------------------------------------------------------------
def test_noise_levels_change_the_analog_hardware_and_cost_bits():
    config = training_config()
    assert noise_config(config, "ideal") == config == noise_config(config, "")
    harsh = noise_config(config, "harsh")
    assert harsh.device.sigma_rel == 0.05 and harsh.array.r_wire > 0
    moderate = noise_config(config, "moderate")
    assert moderate.device.read_noise > 0 and moderate.device.sigma_rel == 0.01
    sky130 = noise_config(config, "sky130")  # the preset on top, engine kept
    assert sky130.opamp.model == "sky130" and sky130.simulation.engine == "nodal"
    with pytest.raises(InputError, match="unknown noise level"):
        noise_config(config, "awful")
    # the single solve at 8-bit cells loses bits to 5 % programming error on a real factor
    from rerinv.nn.backends import make_backend

    factor = next(m for name, m, _ in load_factor_set(DEFAULT_SET) if name.endswith("1-A"))
    bits = {}
    for level in ("ideal", "harsh"):
        setting = Setting("kfac", "single", 8.0, noise=level)
        backend = make_backend("single", setting_config(config, setting))
        bits[level] = float(np.median(backend.invert(factor, seed=3).column_bits))
    assert bits["harsh"] < bits["ideal"] - 1.5, bits
    # cell bits of the single solve set the cells and the ADC
    four = setting_config(config, Setting("kfac", "single", 4.0))
    assert four.device.bits == 4 and four.converters.adc_bits == 4


def test_default_grid_settings():
    spec = TrainingSpec()
    settings = spec.settings()
    labels = [s.label for s in settings]
    assert len(set(labels)) == len(labels)
    float64 = [s for s in settings if s.backend == "float64"]
    assert [s.damping for s in float64] == list(spec.damping) and all(not s.noise for s in float64)
    noisy = [s for s in settings if s.noise not in ("", "ideal")]
    assert {s.noise for s in noisy} == set(spec.noise) - {"ideal"}
    assert all(s.damping in spec.noise_damping for s in noisy)
    assert {s.bits for s in noisy} == set(map(float, spec.noise_cell_bits))
    ideal = [s for s in settings if s.noise == "ideal"]
    assert len(ideal) == len(spec.damping) * len(spec.cell_bits)
    # equal budgets: as many K-FAC configurations (dampings) as SGD and Adam learning rates
    assert len(spec.damping) == len(spec.sgd_lrs) == len(spec.adam_lrs)
    for level in spec.noise:
        assert level in NOISE_LEVELS
    only = TrainingSpec(analog_damping=(0.01,), noise=("ideal",), cell_bits=(8,))
    assert [s.label for s in only.settings() if s.backend == "single"] == [
        "kfac single-8bit damping=0.01"
    ]
    assert Setting("kfac", "single", 8.0, damping=0.01, noise="harsh").reference == Setting(
        "kfac", "float64", damping=0.01
    )


def test_spec_refuses_bad_study_axes():
    with pytest.raises(InputError, match="unknown noise level"):
        TrainingSpec(noise=("ideal", "loud"))
    with pytest.raises(InputError, match="cell bits"):
        TrainingSpec(cell_bits=(1,))
    with pytest.raises(InputError, match="damping rule"):
        TrainingSpec(damping_rules=("sometimes",))
    with pytest.raises(InputError, match="unknown network"):
        TrainingSpec(network="transformer")
    assert TrainingSpec.from_json(TrainingSpec().to_json()) == TrainingSpec()
    # a spec stored before the study's axes existed keeps its old meaning (one single solve
    # at the configuration's cells, no levels, every damping analog)
    old = '{"backends": ["float64", "single"], "damping": [0.003], "seeds": 2, "steps": 6}'
    labels = [s.label for s in TrainingSpec.from_json(old).settings()]
    assert labels[:2] == ["kfac float64", "kfac single"]


# -- statistics on synthetic results -----------------------------------------------------
def _results(settings, steps_by_setting, val_loss=None, budget_steps=60):
    """A stand-in for TrainingResults: steps to the validation target per setting and seed
    (inf: never), as validation-accuracy curves that cross 0.95 at that step."""
    seeds = len(next(iter(steps_by_setting.values())))
    n_runs = len(settings) * seeds
    val = np.zeros((n_runs, budget_steps + 1))
    loss = np.ones((n_runs, budget_steps + 1))
    for k, setting in enumerate(settings):
        for i, hit in enumerate(steps_by_setting[setting.label]):
            if math.isfinite(hit):
                val[k * seeds + i, int(hit) :] = 1.0
            if val_loss is not None:
                loss[k * seeds + i] = val_loss[setting.label]
    spec = SimpleNamespace(steps=budget_steps, task="classify", noise=("ideal", "harsh"),
                           target_accuracy=0.95)  # fmt: skip
    return SimpleNamespace(
        spec=spec,
        settings=list(settings),
        setting_index=np.repeat(np.arange(len(settings)), seeds),
        seed_index=np.tile(np.arange(seeds), len(settings)),
        steps={
            "val_accuracy": val,
            "val_loss": loss,
            "train_loss": loss,
            "test_accuracy": val,
        },  # fmt: skip
    )


def _rows(results):
    from rerinv.training.summary import steps_to_target, t_interval

    rows = []
    for k, s in enumerate(results.settings):
        runs = np.flatnonzero(results.setting_index == k)
        values = steps_to_target(results, runs, ("val_accuracy", 0.95, True))
        rows.append(
            {"index": k, "label": s.label, "bits": s.bits, "damping": s.damping or 0.003,
             "runs": runs, "seed_indices": results.seed_index[runs], "seeds": runs.size,
             "steps:val_accuracy": values, "reached:val_accuracy": int(np.isfinite(values).sum()),
             "mean:val_accuracy": t_interval(values), "median_bits": 5.0}
        )  # fmt: skip
    return rows


def test_bits_needed_is_the_smallest_bits_from_which_every_larger_one_is_within():
    f64 = Setting("kfac", "float64")
    single = {b: Setting("kfac", "single", float(b), noise="ideal") for b in (4, 6, 8, 10)}
    steps = {
        f64.label: [10, 12, 11, 13, 12],
        single[4].label: [math.inf] * 5,  # never: counts as 61
        single[6].label: [15, 18, 16, 19, 17],  # slower on every seed
        single[8].label: [10, 13, 11, 12, 12],  # within
        single[10].label: [10, 12, 11, 13, 12],  # identical
    }
    results = _results([f64, *single.values()], steps)
    rows = _rows(results)
    (group,) = bits_needed(results, rows)
    assert group["bits_needed"] == 8.0 and group["tested"] == [4.0, 6.0, 8.0, 10.0]
    by_bits = {bits: result for bits, result, _ in group["points"]}
    assert by_bits[4.0]["censored"] and by_bits[4.0]["mean"][0] == 61
    assert by_bits[6.0]["diff"][0] == pytest.approx(5.4) and by_bits[6.0]["diff"][1] > 0
    assert not by_bits[6.0]["within"] and by_bits[8.0]["within"] and by_bits[10.0]["within"]
    assert by_bits[10.0]["diff"] == (0.0, 0.0, 0.0) and by_bits[10.0]["ratio"] == 1.0
    # a larger bits outside float64 breaks the run: nothing below it counts
    steps[single[10].label] = [20, 22, 21, 23, 22]
    results = _results([f64, *single.values()], steps)
    assert bits_needed(results, _rows(results))[0]["bits_needed"] is None
    # when float64 never reaches the target, nothing is "within" it
    steps = {label: [math.inf] * 5 for label in steps}
    results = _results([f64, *single.values()], steps)
    result = paired(results, _rows(results)[4], _rows(results)[0], "val_accuracy")
    assert not result["within"] and result["reference_reached"] == 0


def test_tuning_chooses_on_validation_with_its_budget():
    settings = [
        Setting("kfac", "float64", damping=0.01),
        Setting("kfac", "float64", damping=0.001),
        Setting("kfac", "single", 8.0, damping=0.001),  # not a K-FAC configuration
        Setting("sgd", lr=0.1),
        Setting("sgd", lr=1.0),
        Setting("adam", lr=0.01),
        Setting("adam", lr=0.1),
    ]
    steps = {
        settings[0].label: [12, 12, 12],
        settings[1].label: [10, 11, 10],
        settings[2].label: [2, 2, 2],
        settings[3].label: [30, math.inf, 30],  # never on seed 1: counts as 61
        settings[4].label: [40, 40, 40],
        settings[5].label: [25, 25, 25],
        settings[6].label: [25, 25, 25],  # a tie, broken by the lower validation loss
    }
    losses = {s.label: 1.0 for s in settings}
    losses[settings[6].label] = 0.5
    results = _results(settings, steps, val_loss=losses)
    chosen = tuning(results, _rows(results))
    assert {k: v["row"]["label"] for k, v in chosen.items()} == {
        "kfac": "kfac float64 damping=0.001",
        "sgd": "sgd lr=1",
        "adam": "adam lr=0.1",
    }
    assert {k: v["budget"] for k, v in chosen.items()} == {"kfac": 2, "sgd": 2, "adam": 2}
    assert chosen["sgd"]["candidates"][0] == ("sgd lr=0.1", pytest.approx((30 + 61 + 30) / 3))


# -- hardware time -----------------------------------------------------------------------
def test_hardware_time_per_step_comes_from_the_timing_model():
    from rerinv.training.hardware_time import layer_rows, step_times

    spec = TrainingSpec(noise=("ideal",), cell_bits=(8,), damping=(0.003,), sgd_lrs=(1.0,),
                        adam_lrs=(0.1,))  # fmt: skip
    assert layer_rows(spec) == [
        ("layer1", "fc", 64, 32, 1, 1, 1),
        ("layer2", "fc", 32, 10, 1, 1, 1),
    ]
    times = step_times(spec, spec.settings())
    assert set(times) == {s.label for s in spec.settings()}
    assert all(0 < t < 1 for t in times.values())
    assert times["kfac float64"] > times["sgd lr=1"]  # the second-order machine does more
    cnn = TrainingSpec(network="cnn2d", hidden=())
    kinds = [row[1] for row in layer_rows(cnn)]
    assert kinds == ["conv", "conv", "fc"] and layer_rows(cnn)[0][5] == 64  # 8x8 positions


def test_a_level_states_the_grids_own_non_ideal_values():
    """``--noise ideal --set device.sigma_rel=0.01`` ran with 1 % programming error: the
    description in the steps JSON and the run log says so (it read "no programming error")."""
    from rerinv.training.levels import describe_level

    base = training_config()
    assert "grid's hardware adds" not in describe_level(base, "ideal")
    noisy = base.with_values("device", sigma_rel=0.01)
    assert describe_level(noisy, "ideal").endswith(
        "the grid's hardware adds device.sigma_rel = 0.01"
    )
    assert "adds" not in describe_level(noisy, "harsh")  # harsh sets its own 5 %
    assert describe_level(noisy, "moderate").startswith("1 % programming error")
