#!/usr/bin/env python3
"""Regenerate the generated matrices of this folder (the real-matrix suite additions).

Every generated matrix is made deterministically from data that ships with an installed
package (scikit-learn's bundled datasets: ``load_iris``, ``load_wine``, ``load_diabetes``,
``load_linnerud``; never the ``fetch_*`` loaders, which download) or from a Matrix Market
file that sits in this folder as a byte-for-byte copy of a SuiteSparse Matrix Collection file.
Random numbers come from ``numpy.random.RandomState(seed)`` (the legacy generator, whose
streams NumPy keeps stable across versions).

Usage::

    python build_suite.py            # (re)write every generated .npy next to this script
    python build_suite.py --check    # rebuild in memory and compare with the stored .npy files
    python build_suite.py --index    # also print their index.toml entries (conds recomputed)

Needs numpy, scipy and scikit-learn only. See README.md for the recipes and licences.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse
from scipy.spatial.distance import pdist, squareform
from sklearn import datasets

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------


def dataset(name: str) -> np.ndarray:
    """Feature matrix of a scikit-learn bundled dataset (``load_<name>``), float64."""
    return np.asarray(getattr(datasets, f"load_{name}")().data, dtype=np.float64)


def subset(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows drawn without replacement by ``RandomState(seed).choice``, kept in order."""
    if n >= len(x):
        return x
    idx = np.sort(np.random.RandomState(seed).choice(len(x), n, replace=False))
    return x[idx]


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit (population) standard deviation per column; constant columns kept 0."""
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def ridge(k: np.ndarray, rel: float) -> np.ndarray:
    """``K + rel * mean(diag K) * I``."""
    return k + rel * float(np.mean(np.diag(k))) * np.eye(len(k))


def rbf_gram(x: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian kernel ``exp(-|xi - xj|^2 / (2 l^2))``, ``l = scale * median pairwise distance``."""
    d = pdist(x)
    ell = scale * float(np.median(d))
    return np.exp(-(squareform(d) ** 2) / (2.0 * ell**2))


def mtx(name: str) -> np.ndarray:
    """A Matrix Market file of this folder, dense float64 (pattern entries become 1)."""
    a = scipy.io.mmread(HERE / name)
    return a.toarray().astype(np.float64) if scipy.sparse.issparse(a) else np.asarray(a, float)


def graph_weights(a: np.ndarray) -> np.ndarray:
    """Unit-weight adjacency of the symmetrised off-diagonal nonzero pattern of ``a``."""
    w = (a != 0).astype(np.float64)
    np.fill_diagonal(w, 0.0)
    return np.maximum(w, w.T)


def shifted_laplacian(w: np.ndarray, rel_shift: float) -> np.ndarray:
    """``L + s I`` with ``L = diag(W 1) - W`` and ``s = rel_shift * mean degree``."""
    deg = w.sum(axis=1)
    return np.diag(deg) - w + rel_shift * float(deg.mean()) * np.eye(len(w))


def grid_graph(nx: int, ny: int) -> np.ndarray:
    """Adjacency of the ``nx`` x ``ny`` 4-neighbour grid graph (row-major node numbering)."""
    n = nx * ny
    w = np.zeros((n, n))
    for j in range(ny):
        for i in range(nx):
            k = j * nx + i
            if i + 1 < nx:
                w[k, k + 1] = w[k + 1, k] = 1.0
            if j + 1 < ny:
                w[k, k + nx] = w[k + nx, k] = 1.0
    return w


def markov(w: np.ndarray, alpha: float) -> np.ndarray:
    """``I - alpha * P`` with ``P = D^-1 W`` the random-walk matrix of the graph ``W``."""
    p = w / w.sum(axis=1, keepdims=True)
    return np.eye(len(w)) - alpha * p


def convection_diffusion(n: int, peclet: float, wind) -> np.ndarray:
    """First-order upwind finite differences of ``-(1/Pe) Lap u + w . grad u`` on the unit
    square, ``n`` x ``n`` interior nodes, homogeneous Dirichlet boundary, ``h = 1/(n+1)``,
    multiplied through by ``h^2``. ``wind(x, y) -> (w1, w2)``. A nonsingular M-matrix: every
    eigenvalue has a positive real part."""
    h = 1.0 / (n + 1)
    nu = 1.0 / peclet
    a = np.zeros((n * n, n * n))
    for j in range(n):
        for i in range(n):
            k = j * n + i
            w1, w2 = wind((i + 1) * h, (j + 1) * h)
            a[k, k] = 4.0 * nu + h * (abs(w1) + abs(w2))
            west, east = -nu - h * max(w1, 0.0), -nu + h * min(w1, 0.0)
            south, north = -nu - h * max(w2, 0.0), -nu + h * min(w2, 0.0)
            if i > 0:
                a[k, k - 1] = west
            if i < n - 1:
                a[k, k + 1] = east
            if j > 0:
                a[k, k - n] = south
            if j < n - 1:
                a[k, k + n] = north
    return a


def recirculating(x: float, y: float) -> tuple[float, float]:
    """'Double-glazing' wind mapped to the unit square: ``(2Y(1-X^2), -2X(1-Y^2))`` with
    ``X = 2x-1, Y = 2y-1``."""
    xx, yy = 2 * x - 1, 2 * y - 1
    return 2 * yy * (1 - xx**2), -2 * xx * (1 - yy**2)


def scale_rows(a: np.ndarray, seed: int, decades: float = 6.0) -> np.ndarray:
    """``diag(10^u) A`` with ``u ~ U(0, decades)`` from ``RandomState(seed)``."""
    r = 10.0 ** np.random.RandomState(seed).uniform(0.0, decades, len(a))
    return r[:, None] * a


def scale_cols(a: np.ndarray, seed: int, decades: float = 6.0) -> np.ndarray:
    """``A diag(10^u)`` with ``u ~ U(0, decades)`` from ``RandomState(seed)``."""
    c = 10.0 ** np.random.RandomState(seed).uniform(0.0, decades, a.shape[1])
    return a * c[None, :]


# --------------------------------------------------------------------------------------------
# the generated matrices
# --------------------------------------------------------------------------------------------


def kernel_iris_rbf():
    x = standardise(dataset("iris"))
    return ridge(rbf_gram(x, 1.0), 1e-4)


def kernel_wine_rbf():
    x = standardise(subset(dataset("wine"), 120, seed=0))
    return ridge(rbf_gram(x, 2.0), 1e-5)


def gram_diabetes_poly2():
    x = standardise(subset(dataset("diabetes"), 100, seed=1))
    return ridge((x @ x.T / x.shape[1] + 1.0) ** 2, 1e-4)


def gram_linnerud_linear():
    d = datasets.load_linnerud()
    x = standardise(np.hstack([d.data, d.target]).astype(np.float64))
    return ridge(x @ x.T, 1e-3)


def gram_wine_linear():
    x = standardise(subset(dataset("wine"), 60, seed=5))
    return ridge(x @ x.T, 1e-2)


def symmetric(c: np.ndarray) -> np.ndarray:
    """``(C + C^T) / 2``: numpy's corrcoef / cov agree with their transpose only to rounding."""
    return 0.5 * (c + c.T)


def correlation_wine():
    return symmetric(np.corrcoef(dataset("wine"), rowvar=False))


def correlation_diabetes():
    x = datasets.load_diabetes(scaled=False).data.astype(np.float64)
    return symmetric(np.corrcoef(x, rowvar=False))


def covariance_wine_raw():
    return symmetric(np.cov(dataset("wine"), rowvar=False))


def covariance_iris_tanh_features():
    x = standardise(dataset("iris"))
    rs = np.random.RandomState(2)
    w = rs.normal(size=(4, 60))
    b = rs.uniform(-np.pi, np.pi, 60)
    return symmetric(np.cov(np.tanh(x @ w + 0.5 * b), rowvar=False))


def laplacian_dwt66_shift1e3():
    return shifted_laplacian(graph_weights(mtx("sources/dwt_66.mtx")), 1e-3)


def laplacian_grid12_shift1e5():
    return shifted_laplacian(grid_graph(12, 12), 1e-5)


def convection_pe5_n10():
    return convection_diffusion(10, 5.0, lambda x, y: (1.0, 0.5))


def convection_recirc_pe200_n14():
    return convection_diffusion(14, 200.0, recirculating)


def markov_can96_a0999():
    return markov(graph_weights(mtx("sources/can_96.mtx")), 0.999)


def row_scaled_gram_wine():
    return scale_rows(gram_wine_linear(), seed=3)


def row_scaled_convection_pe5():
    return scale_rows(convection_pe5_n10(), seed=6)


def rowcol_scaled_bcsstk05():
    return scale_cols(scale_rows(mtx("bcsstk05.mtx"), seed=4, decades=3.0), seed=5, decades=3.0)


GENERATED = {
    f.__name__: f
    for f in (
        kernel_iris_rbf,
        kernel_wine_rbf,
        gram_diabetes_poly2,
        gram_linnerud_linear,
        gram_wine_linear,
        correlation_wine,
        correlation_diabetes,
        covariance_wine_raw,
        covariance_iris_tanh_features,
        laplacian_dwt66_shift1e3,
        laplacian_grid12_shift1e5,
        convection_pe5_n10,
        convection_recirc_pe200_n14,
        markov_can96_a0999,
        row_scaled_gram_wine,
        row_scaled_convection_pe5,
        rowcol_scaled_bcsstk05,
    )
}

# --------------------------------------------------------------------------------------------
# index metadata: (name, file, kind, source, licence, what makes it interesting)
# --------------------------------------------------------------------------------------------

SKL = "scikit-learn bundled dataset (scikit-learn itself BSD-3-Clause)"
SS = "CC-BY 4.0 (SuiteSparse Matrix Collection; cite Davis & Hu 2011 and the authors in the file header)"
HH = (
    "HirokiHamaguchi/Initial_Placement_for_Fruchterman-Reingold_Force_Model_with_"
    "Coordinate_Newton_Direction@a5d4967363a4a578a61165e810a9a6aacb550677"
)
SSREPO = "DrTimothyAldenDavis/SuiteSparse@038d6635096409538260f71986a8ab4a42e0514e"

META = [
    (
        "kernel_iris_rbf",
        "kernel",
        "build_suite.py: load_iris() all 150 samples, standardised; Gaussian RBF kernel, length "
        "scale = 1.0 x median pairwise distance; + 1e-4 x mean(diag) x I",
        f"iris: UCI (Fisher 1936), CC-BY 4.0; {SKL}",
        "iris holds duplicate samples, so K alone is singular: the ridge sets the smallest eigenvalue (1e-4), cond = lambda_max / 1e-4",
    ),
    (
        "kernel_wine_rbf",
        "kernel",
        "build_suite.py: load_wine() 120 rows by RandomState(0).choice(178, 120, replace=False) "
        "(sorted), standardised; RBF length scale = 2.0 x median pairwise distance; + 1e-5 x mean(diag) x I",
        f"wine: UCI (Forina et al.), CC-BY 4.0; {SKL}",
        "wide kernel on 13 features: smooth, fast-decaying spectrum down to the ridge",
    ),
    (
        "gram_diabetes_poly2",
        "gram",
        "build_suite.py: load_diabetes() (scaled) 100 rows by RandomState(1), standardised; "
        "polynomial kernel (x.y/10 + 1)^2 (rank <= 66 < 100); + 1e-4 x mean(diag) x I",
        f"diabetes: Efron, Hastie, Johnstone & Tibshirani (2004), as shipped by scikit-learn; {SKL}",
        "degree-2 polynomial kernel: 66 data eigenvalues then a 34-fold cluster at the ridge",
    ),
    (
        "gram_linnerud_linear",
        "gram",
        "build_suite.py: load_linnerud() data and targets stacked (20 x 6), standardised; "
        "X X^T (rank 6) + 1e-3 x mean(diag) x I",
        f"linnerud: Tenenhaus (1998), as shipped by scikit-learn; {SKL}",
        "tiny N = 20 linear Gram: 6 large eigenvalues, 14 at the ridge",
    ),
    (
        "gram_wine_linear",
        "gram",
        "build_suite.py: load_wine() 60 rows by RandomState(5), standardised; X X^T (rank 13) "
        "+ 1e-2 x mean(diag) x I",
        f"wine: UCI, CC-BY 4.0; {SKL}",
        "linear Gram: 13 data eigenvalues then a 47-fold cluster at the ridge",
    ),
    (
        "correlation_wine",
        "correlation",
        "build_suite.py: numpy.corrcoef of the 13 load_wine() features (all 178 samples)",
        f"wine: UCI, CC-BY 4.0; {SKL}",
        "small well-conditioned real correlation matrix",
    ),
    (
        "correlation_diabetes",
        "correlation",
        "build_suite.py: numpy.corrcoef of the 10 raw load_diabetes(scaled=False) features (442 samples)",
        f"diabetes: Efron et al. (2004), as shipped by scikit-learn; {SKL}",
        "serum features s1, s2 (total / LDL cholesterol) nearly collinear",
    ),
    (
        "covariance_wine_raw",
        "covariance",
        "build_suite.py: numpy.cov of the 13 unstandardised load_wine() features (178 samples)",
        f"wine: UCI, CC-BY 4.0; {SKL}",
        "raw units (proline ~ 1e3, hue ~ 1): badly scaled SPD covariance",
    ),
    (
        "covariance_iris_tanh_features",
        "covariance",
        "build_suite.py: load_iris() standardised (150 x 4); H = tanh(X W + 0.5 b), "
        "W = RandomState(2).normal(size=(4, 60)), then b = same stream .uniform(-pi, pi, 60); numpy.cov(H) 60 x 60",
        f"iris: UCI, CC-BY 4.0; {SKL}",
        "hidden-layer activation covariance: 60 smooth features of 4 inputs, smoothly decaying spectrum",
    ),
    (
        "bcsstk05",
        "stiffness",
        f"{HH}:data/bcsstk05.mtx (SuiteSparse HB/bcsstk05, byte-for-byte copy)",
        SS + "; intermediate repository MIT",
        "structural stiffness (transmission tower), SPD",
    ),
    (
        "bcsstk22",
        "stiffness",
        f"{HH}:data/bcsstk22.mtx (SuiteSparse HB/bcsstk22, byte-for-byte copy)",
        SS + "; intermediate repository MIT",
        "structural stiffness (textile loom frame), SPD",
    ),
    (
        "laplacian_dwt66_shift1e3",
        "laplacian_shifted",
        f"build_suite.py: graph of sources/dwt_66.mtx ({HH}:data/dwt_66.mtx, SuiteSparse HB/dwt_66 "
        "pattern), unit weights on the symmetrised off-diagonal pattern; L = D - W; + 1e-3 x mean degree x I",
        SS + "; intermediate repository MIT",
        "structural connection graph Laplacian, smallest eigenvalue set by the shift",
    ),
    (
        "laplacian_grid12_shift1e5",
        "laplacian_shifted",
        "build_suite.py: 12 x 12 4-neighbour grid graph (no data); L = D - W; + 1e-5 x mean degree x I",
        "generated, no data (public domain)",
        "mesh Laplacian with a tiny shift: one eigenvalue ~ 3.7e-5, the rest >= 0.068",
    ),
    (
        "convection_pe5_n10",
        "convection",
        "build_suite.py: 2-D convection-diffusion -(1/Pe) Lap u + w.grad u, Pe = 5, constant wind "
        "w = (1, 0.5), first-order upwind, 10 x 10 interior nodes, Dirichlet, times h^2",
        "generated, no data (public domain)",
        "nonsymmetric M-matrix, all eigenvalues with positive real part, mild",
    ),
    (
        "convection_recirc_pe200_n14",
        "convection",
        "build_suite.py: as convection_pe5_n10 but Pe = 200, recirculating 'double-glazing' wind "
        "(2Y(1-X^2), -2X(1-Y^2)), X = 2x-1, Y = 2y-1, 14 x 14 interior nodes",
        "generated, no data (public domain)",
        "convection-dominated (mesh Peclet number up to ~13), nonsymmetric M-matrix, positive real parts",
    ),
    (
        "markov_can96_a0999",
        "markov",
        f"build_suite.py: I - 0.999 P, P = D^-1 W the random walk of the graph of sources/can_96.mtx "
        f"({HH}:data/can_96.mtx, SuiteSparse HB/can_96 pattern, symmetrised off-diagonal, unit weights)",
        SS + "; intermediate repository MIT",
        "nonsymmetric, real eigenvalues in [0.001, 1.999] (P is similar to a symmetric matrix)",
    ),
    (
        "west0067",
        "nonsymmetric",
        f"{SSREPO}:ParU/Matrix/west0067.mtx (SuiteSparse HB/west0067, byte-for-byte copy)",
        SS,
        "chemical process simulation (Cavett problem), eigenvalues on both sides of the imaginary axis",
    ),
    (
        "impcol_a",
        "nonsymmetric",
        f"{SSREPO}:KLU/Matrix/impcol_a.mtx (SuiteSparse HB/impcol_a, byte-for-byte copy)",
        SS,
        "heat-exchanger network, very sparse, eigenvalues on both sides of the imaginary axis",
    ),
    (
        "row_scaled_gram_wine",
        "row_scaled",
        "build_suite.py: diag(10^u) x gram_wine_linear, u ~ RandomState(3).uniform(0, 6, 60)",
        f"wine: UCI, CC-BY 4.0; {SKL}",
        "SPD Gram matrix made nonsymmetric by six decades of row scaling (eigenvalues stay real, positive)",
    ),
    (
        "row_scaled_convection_pe5",
        "row_scaled",
        "build_suite.py: diag(10^u) x convection_pe5_n10, u ~ RandomState(6).uniform(0, 6, 100)",
        "generated, no data (public domain)",
        "mild convection matrix, rows scaled over six decades",
    ),
    (
        "rowcol_scaled_bcsstk05",
        "row_col_scaled",
        "build_suite.py: diag(10^u) x bcsstk05.mtx x diag(10^v), u ~ RandomState(4).uniform(0, 3, 153), "
        "v ~ RandomState(5).uniform(0, 3, 153) (three decades each side, six in all)",
        SS + "; intermediate repository MIT",
        "stiffness matrix with rows and columns each scaled over three decades (symmetry lost, eigenvalues stay real, positive)",
    ),
]


def load_entry(name: str, file: str) -> np.ndarray:
    if file.endswith(".mtx"):
        return mtx(file)
    return np.load(HERE / file, allow_pickle=False)


def describe(a: np.ndarray) -> tuple[float, bool, str]:
    with np.errstate(all="ignore"):
        cond = float(np.linalg.cond(a))
    sym = bool(np.array_equal(a, a.T))
    if sym:
        lo = float(np.linalg.eigvalsh(a)[0])
        cls = "SPD" if lo > 0 else "symmetric indefinite"
    else:
        re = np.linalg.eigvals(a).real
        cls = "all Re(eig) > 0" if re.min() > 0 else "eigenvalues with Re < 0 and > 0"
    return cond, sym, cls


def print_index() -> None:
    """The index.toml entries of the additions (paste them over the additions' part)."""
    out = []
    for name, kind, source, licence, why in META:
        file = (
            f"{name}.mtx"
            if name in ("bcsstk05", "bcsstk22", "west0067", "impcol_a")
            else f"{name}.npy"
        )
        a = load_entry(name, file)
        cond, sym, cls = describe(a)
        q = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
        out += [
            "[[matrix]]",
            f"name = {q(name)}",
            f"file = {q(file)}",
            f"n = {a.shape[0]}",
            f"kind = {q(kind)}",
            f"source = {q(source)}",
            f"licence = {q(licence)}",
            f"note = {q(f'cond {cond:.3g}, symmetric {str(sym).lower()}, {cls}; {why}')}",
            "",
        ]
    print("\n".join(out))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the stored .npy files")
    ap.add_argument("--index", action="store_true", help="print the additions' index.toml entries")
    args = ap.parse_args(argv)
    bad = 0
    for name, make in GENERATED.items():
        a = np.ascontiguousarray(make(), dtype=np.float64)
        assert a.ndim == 2 and a.shape[0] == a.shape[1] and np.isfinite(a).all(), name
        path = HERE / f"{name}.npy"
        if args.check:
            same = path.is_file() and np.array_equal(np.load(path), a)
            close = path.is_file() and np.allclose(np.load(path), a, rtol=1e-12, atol=0)
            print(
                f"{name:32s} {'identical' if same else 'close (rtol 1e-12)' if close else 'DIFFERENT'}"
            )
            bad += not close
        else:
            np.save(path, a)
            print(f"wrote {path.name} ({a.shape[0]} x {a.shape[1]})")
    if args.index and not args.check:
        print_index()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
