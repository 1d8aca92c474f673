import numpy as np
import pytest

from rerinv.config import DeviceConfig
from rerinv.hw.mapping import map_matrix, program_conductances
from rerinv.hw.scaling import equilibrate

from .helpers import spd


def test_quantised_levels_and_sign_split():
    device = DeviceConfig(bits=3)
    a = np.array([[1.0, -0.5], [0.0, 0.3]])
    arrays = map_matrix(a, device)
    step = (device.g_max - device.g_min) / 7
    for g in (arrays.g_pos, arrays.g_neg):
        levels = (g - device.g_min) / step
        assert np.allclose(levels, np.round(levels))
        assert g.min() >= device.g_min and g.max() <= device.g_max * (1 + 1e-12)
    # a zero entry sits at g_min in both arrays, which cancel
    assert arrays.g_pos[1, 0] == arrays.g_neg[1, 0] == device.g_min
    assert arrays.g_neg[0, 1] > device.g_min and arrays.g_pos[0, 1] == device.g_min
    # 3-bit levels: error at most half a step
    assert np.max(np.abs(arrays.implemented_matrix() - a)) <= 0.5 / 7 + 1e-12


def test_fine_quantisation_implements_the_matrix():
    a = spd(16)
    arrays = map_matrix(a, DeviceConfig(bits=30))
    assert np.allclose(arrays.implemented_matrix(), a, rtol=0, atol=1e-8)


def test_equilibration_is_undone_by_implemented_matrix():
    a = spd(8) * np.logspace(0, 3, 8)[:, None]
    r, c = equilibrate(a)
    scaled = r[:, None] * np.abs(a) * c[None, :]
    assert np.all(scaled.max(axis=1) > 0.25) and np.all(scaled.max(axis=1) <= 4)
    arrays = map_matrix(a, DeviceConfig(bits=30), scaling="ruiz_pow2")
    assert np.allclose(arrays.implemented_matrix(), a, rtol=1e-7, atol=1e-9 * np.abs(a).max())


def test_programming_is_seeded():
    device = DeviceConfig(sigma_rel=0.01, sigma_abs=0.001, p_stuck_low=0.01, p_stuck_high=0.01)
    target = map_matrix(spd(16), device)
    one = program_conductances(target, device, seed=7)
    two = program_conductances(target, device, seed=7)
    three = program_conductances(target, device, seed=8)
    assert np.array_equal(one.g_pos, two.g_pos) and np.array_equal(one.g_neg, two.g_neg)
    assert not np.array_equal(one.g_pos, three.g_pos)
    assert not np.array_equal(one.g_pos, target.g_pos)
    for g in (one.g_pos, one.g_neg):
        assert g.min() >= device.g_min and g.max() <= device.g_max


def test_error_free_programming_is_exact():
    device = DeviceConfig()
    target = map_matrix(spd(8), device)
    assert np.array_equal(program_conductances(target, device, seed=0).g_pos, target.g_pos)


@pytest.mark.parametrize("sigma", [0.005, 0.02])
def test_proportional_error_has_the_configured_spread(sigma):
    device = DeviceConfig(sigma_rel=sigma, bits=30)
    a = np.full((64, 64), 0.5)
    a[0, 0] = 1.0  # sets the scale; the other cells sit mid-window, far from clipping
    target = map_matrix(a, device)
    ratio = program_conductances(target, device, seed=3).g_pos / target.g_pos - 1
    assert np.std(ratio[1:]) == pytest.approx(sigma, rel=0.05)
