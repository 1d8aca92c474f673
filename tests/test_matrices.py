"""Loading, validation and workload generation in rerinv.matrices."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from rerinv.errors import InputError, UnstableMatrixError
from rerinv.matrices import (
    CLASSIC_MATRICES,
    check_matrix,
    check_stable,
    check_vector,
    classic_matrix,
    condition_number,
    load_matrix,
    load_vector,
    random_rhs,
    wishart_factor,
)

A = np.array([[4.0, -1.0, 0.5], [-1.0, 3.0, 0.25], [0.5, 0.25, 2.0]])


def _write(path, array, kind):
    if kind == "npy":
        np.save(path, array)
    elif kind == "csv":
        np.savetxt(path, array, delimiter=",", header="written by test")
    elif kind == "txt-space":
        np.savetxt(path, array, header="a, b, c (commas in comments do not count)")
    elif kind == "txt-comma":
        np.savetxt(path, array, delimiter=",")
    elif kind == "mtx-dense":
        scipy.io.mmwrite(path, array)
    elif kind == "mtx-sparse":
        scipy.io.mmwrite(path, scipy.sparse.coo_matrix(array))


KINDS = {
    "npy": ".npy",
    "csv": ".csv",
    "txt-space": ".txt",
    "txt-comma": ".txt",
    "mtx-dense": ".mtx",
    "mtx-sparse": ".mtx",
}


@pytest.mark.parametrize("kind", KINDS)
def test_matrix_round_trip(tmp_path, kind):
    path = tmp_path / f"a{KINDS[kind]}"
    _write(path, A, kind)
    loaded = load_matrix(str(path))
    assert loaded.dtype == np.float64 and loaded.shape == A.shape
    np.testing.assert_array_equal(loaded, A)
    assert load_matrix(path).shape == (3, 3)  # PathLike too


@pytest.mark.parametrize("kind", ["npy", "csv", "txt-space", "txt-comma"])
def test_one_dimensional_files_load_as_vectors(tmp_path, kind):
    v = np.array([1.5, -2.0, 3.25, 0.0])
    path = tmp_path / f"v{KINDS[kind]}"
    _write(path, v, kind)
    assert load_matrix(path).shape == (4,)
    np.testing.assert_array_equal(load_vector(path), v)


@pytest.mark.parametrize("shape", [(4, 1), (1, 4)])
def test_load_vector_flattens_single_row_or_column(tmp_path, shape):
    v = np.arange(4.0).reshape(shape)
    np.save(tmp_path / "v.npy", v)
    scipy.io.mmwrite(tmp_path / "v.mtx", v)
    np.testing.assert_array_equal(load_vector(tmp_path / "v.npy"), np.arange(4.0))
    np.testing.assert_array_equal(load_vector(tmp_path / "v.mtx"), np.arange(4.0))


def test_load_vector_refuses_a_matrix(tmp_path):
    np.save(tmp_path / "a.npy", A)
    with pytest.raises(InputError, match=r"shape \(3, 3\), not a vector"):
        load_vector(tmp_path / "a.npy")


def test_load_errors(tmp_path):
    (tmp_path / "a.xlsx").write_text("1 2")
    with pytest.raises(InputError, match=r"unknown extension '\.xlsx'.*\.npy.*\.mtx"):
        load_matrix(tmp_path / "a.xlsx")
    with pytest.raises(InputError, match=r"missing\.npy.*no such file.*supported formats"):
        load_matrix(tmp_path / "missing.npy")
    (tmp_path / "bad.csv").write_text("1,2\n3,banana\n")
    with pytest.raises(InputError, match=r"cannot read .*bad\.csv.*supported formats"):
        load_matrix(tmp_path / "bad.csv")
    (tmp_path / "bad.npy").write_text("not numpy")
    with pytest.raises(InputError, match=r"cannot read .*bad\.npy"):
        load_matrix(tmp_path / "bad.npy")
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(InputError, match="holds no numbers"):
        load_matrix(tmp_path / "empty.txt")
    np.save(tmp_path / "c.npy", A + 1j)
    with pytest.raises(InputError, match="complex"):
        load_matrix(tmp_path / "c.npy")


def test_check_matrix_returns_float_copy():
    a = np.eye(3, dtype=int)
    out = check_matrix(a, max_size=3)
    assert out.dtype == np.float64
    out[0, 0] = 7
    assert a[0, 0] == 1


@pytest.mark.parametrize(
    ("a", "message"),
    [
        (np.ones(4), "must be a 2-D array, got 1-D"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.ones((3, 4)), r"square, got shape \(3, 4\)"),
        (np.ones((0, 0)), "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), r"1 NaN and 0 inf.*first at index \(0, 1\)"),
        (np.array([[1.0, 0.0], [np.inf, -np.inf]]), r"0 NaN and 2 inf.*first at index \(1, 0\)"),
        ([[1.0, 2.0], [3.0]], "not a real numeric array"),
        (np.eye(2) * 1j, "complex"),
    ],
)
def test_check_matrix_errors(a, message):
    with pytest.raises(InputError, match=message):
        check_matrix(a)


def test_check_matrix_max_size():
    assert check_matrix(np.eye(8), max_size=8).shape == (8, 8)
    with pytest.raises(InputError, match=r"array\.max_size = 8.*block mode is not available"):
        check_matrix(np.eye(9), max_size=8)


def test_check_vector():
    out = check_vector([1, 2, 3], 3)
    assert out.dtype == np.float64 and out.shape == (3,)
    with pytest.raises(InputError, match=r"shape \(4,\).*got shape \(5,\)"):
        check_vector(np.ones(5), 4)
    with pytest.raises(InputError, match=r"got shape \(3, 1\)"):
        check_vector(np.ones((3, 1)), 3)
    with pytest.raises(InputError, match=r"rhs has 1 NaN.*index \(1,\)"):
        check_vector([0.0, np.nan, 1.0], 3)


def test_kfac_factor_is_spd_and_reproducible():
    a = wishart_factor(16, seed=0)
    assert a.shape == (16, 16) and a.dtype == np.float64
    np.testing.assert_array_equal(a, a.T)
    assert np.linalg.eigvalsh(a).min() > 0
    np.testing.assert_array_equal(a, wishart_factor(16, seed=0))
    np.testing.assert_array_equal(a, wishart_factor(16, seed=np.random.default_rng(0)))
    assert not np.allclose(a, wishart_factor(16, seed=1))
    few = wishart_factor(16, seed=0, samples=4)  # rank-deficient Wishart, damping keeps it SPD
    assert np.linalg.eigvalsh(few).min() > 0


def test_kfac_condition_grows_with_spread_and_shrinks_with_damping():
    conds = [condition_number(wishart_factor(32, seed=0, spread=s)) for s in (1, 1e2, 1e4)]
    assert conds[0] < conds[1] < conds[2]
    assert 1e2 < conds[1] < 1e4  # defaults: ~5e2 at n = 32 (documented)
    damped = [condition_number(wishart_factor(32, seed=0, damping=d)) for d in (1e-4, 1e-2, 1e-1)]
    assert damped[0] > damped[1] > damped[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": 4, "samples": 0}, "samples must be a positive integer"),
        ({"n": 4, "spread": 0.5}, "spread must be >= 1"),
        ({"n": 4, "damping": -1.0}, "damping must be >= 0"),
        ({"n": 4, "damping": 0.0, "samples": 2}, "> 0 when samples < n"),
    ],
)
def test_kfac_factor_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        wishart_factor(seed=0, **kwargs)


@pytest.mark.parametrize("name", CLASSIC_MATRICES)
@pytest.mark.parametrize("n", [1, 2, 7, 32])
def test_classic_matrices_are_stable(name, n):
    a = classic_matrix(name, n, seed=3)
    assert a.shape == (n, n) and np.all(np.isfinite(a))
    eig = np.linalg.eigvals(a)
    assert eig.real.min() > 0
    check_stable(a)
    if name == "nonsymmetric_stable":
        assert eig.real.min() >= 0.1 * np.abs(eig).max()
        assert n == 1 or not np.allclose(a, a.T)
    if name == "diag_dominant":
        off = np.abs(a).sum(axis=1) - np.abs(np.diag(a))
        assert np.all(np.diag(a) > off)


def test_classic_matrix_conditioning():
    assert condition_number(classic_matrix("random_spd", 16)) == pytest.approx(100, rel=1e-8)
    assert condition_number(classic_matrix("laplacian_1d", 200)) < 401
    np.testing.assert_array_equal(classic_matrix("identity", 3), np.eye(3))


def test_classic_matrix_unknown_name():
    with pytest.raises(InputError, match="unknown classic matrix 'hilbert'.*laplacian_1d"):
        classic_matrix("hilbert", 4)


def test_random_rhs():
    b = random_rhs(10, seed=5)
    assert b.shape == (10,)
    np.testing.assert_array_equal(b, random_rhs(10, seed=5))
    assert not np.allclose(b, random_rhs(10, seed=6))


def test_check_stable_refuses_negative_real_eigenvalue():
    with pytest.raises(UnstableMatrixError, match=r"positive real part.*run to the rails"):
        check_stable(np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3 and -1


def test_check_stable_refuses_complex_pair_with_negative_real_part():
    rotation = np.array([[-0.1, 1.0], [-1.0, -0.1]])  # eigenvalues -0.1 +- 1j
    with pytest.raises(UnstableMatrixError, match=r"-0\.1"):
        check_stable(rotation, name="G")
    with pytest.raises(InputError, match="^G has 2 eigenvalue"):
        check_stable(rotation, name="G")


def test_check_stable_refuses_singular_matrix():
    with pytest.raises(InputError, match="singular") as info:
        check_stable(np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert not isinstance(info.value, UnstableMatrixError)


def test_condition_number():
    assert condition_number(np.diag([1.0, 1e-3])) == pytest.approx(1e3)
    assert condition_number(np.ones((2, 2))) > 1e15
