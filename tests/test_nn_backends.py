"""The analog inverse backend on factors wider than one crossbar (rerinv.nn.backends)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

from rerinv.errors import InputError  # noqa: E402
from rerinv.nn.backends import AnalogInverse  # noqa: E402
from rerinv.schemes import effective_bits  # noqa: E402
from rerinv.training import load_factor_set, training_config  # noqa: E402

FACTOR = Path(__file__).parent / "data" / "kfac_factors" / "digits_mlp_damping3e-3.h5"


def _factor():
    return next(m for n, m, _ in load_factor_set(FACTOR) if n == "step00000-layer1-A")  # 33


def _bits_against_the_whole_inverse(inverse, a):
    exact = np.linalg.inv(a)
    return np.array([effective_bits(inverse[:, j], exact[:, j]) for j in range(len(a))])


def test_a_wide_factor_goes_whole_to_the_tiled_machine():
    a = _factor()
    config = training_config().with_values("array", max_size=16)
    refine = config.with_values("simulation", scheme="refine", target_bits=16)
    outcome = AnalogInverse(refine).invert(a, seed=0)
    assert outcome.error == "" and outcome.blocks == 3 and "tiles" in outcome.route
    np.testing.assert_allclose(
        outcome.column_bits, _bits_against_the_whole_inverse(outcome.inverse, a)
    )
    assert outcome.column_bits.min() >= 16
    assert np.all(outcome.inverse != 0)  # no block dropped


def test_the_block_diagonal_mode_reports_bits_against_the_whole_factor():
    a = _factor()
    config = training_config().with_values("array", max_size=16)
    refine = config.with_values("simulation", scheme="refine", target_bits=16)
    split = AnalogInverse(refine, wide="diagonal").invert(a, seed=0)
    assert split.route == "block-diagonal 3" and split.error == ""
    np.testing.assert_allclose(split.column_bits, _bits_against_the_whole_inverse(split.inverse, a))
    assert np.median(split.column_bits) < 12  # the dropped blocks cost bits, and it shows
    with pytest.raises(InputError, match="wide must be"):
        AnalogInverse(refine, wide="rows")


def test_training_records_the_bits_and_route_of_factors_wider_than_a_crossbar():
    from types import SimpleNamespace

    from rerinv.nn.kfac import KfacSettings
    from rerinv.training.spec import Setting
    from rerinv.training.train import train_run

    settings = KfacSettings(inverse_every=2)
    spec = SimpleNamespace(
        task="classify",
        network="mlp",
        hidden=(16,),
        activation="tanh",
        pool=1,
        data_seed=0,
        steps=3,
        batch_size=64,
        kfac_settings_for=lambda setting: settings,
    )
    config = training_config().with_values("array", max_size=40)  # A of layer 0 is 65 wide
    record = train_run(spec, Setting("kfac", "single"), config, seed=0)
    wide = [e for e in record.events if e.size > 40]
    assert [(e.layer, e.kind, e.step) for e in wide] == [(0, "A", 0), (0, "A", 2)]
    for event in wide:
        assert event.error == "" and event.blocks == 2 and "tiles" in event.route
        assert 2 < event.min_bits <= event.median_bits < 12  # one 8-bit solve per column
    narrow = [e for e in record.events if e.size <= 40]
    assert all(e.blocks == 1 and "tiles" not in e.route for e in narrow)


@pytest.mark.parametrize("blocks", ["tiled", "blockamc"])
def test_every_block_structure_of_the_machine_serves_k_fac(blocks):
    a = _factor()
    config = (
        training_config().with_values("array", max_size=16).with_values("scheme", blocks=blocks)
    )
    refine = config.with_values("simulation", scheme="refine", target_bits=16)
    outcome = AnalogInverse(refine).invert(a, seed=1)
    assert outcome.error == "" and outcome.column_bits.min() >= 16
    assert outcome.route == ("inv 3x3 tiles" if blocks == "tiled" else "blockamc")
    failed = AnalogInverse(refine.with_values("simulation", scheme="repast")).invert(a, seed=1)
    if blocks == "blockamc":  # RePAST's A slicing needs one crossbar: a recorded failure
        assert failed.inverse is None and "A slicing" in failed.error and failed.route == ""
