"""The built wheel works on its own: installed into a fresh venv and run from outside the
repository, the ``rerinv`` command solves through ngspice, writes a netlist ngspice runs, and
finds its SPICE models and golden waveforms as installed package data.

How, and why (fast enough for ``make test``, no network once pip has cached setuptools):

* The wheel is built (``pip wheel --no-deps``, isolated build) from a snapshot copy of the
  checkout in a temporary folder, so the repository gets no ``build/`` or ``*.egg-info`` (a
  stale ``build/lib`` could smuggle deleted modules into later wheels) and concurrent edits
  cannot change the tree half-way through the build.
* The fresh venv is created ``--without-pip`` and the wheel installed into it with
  ``pip --python <fresh> install --no-deps --no-index``. Installing the real dependencies
  (numpy, scipy, h5py, matplotlib, distributed, PySpice, ...) took ~45 s and 410 MB per run
  even from pip's cache, so instead, *after* the install (pip must not see them), a ``.pth``
  file appends the site-packages folders holding the dependencies of the running environment.
  A path line in a ``.pth`` file does not execute the ``.pth`` files of the folder it adds,
  so the running environment's editable rerinv (``__editable__.rerinv-*.pth`` and its finder)
  stays inactive: ``import rerinv`` can only find the wheel's copy, which the test asserts.
* Every command runs with ``cwd`` a temporary folder, without ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.spice

ROOT = Path(__file__).resolve().parent.parent
# Top-level modules of rerinv's dependencies; the folders holding them go on the fresh venv's path.
DEPENDENCIES = ("numpy", "scipy", "h5py", "matplotlib", "distributed", "PySpice")
NOT_COPIED = {".git", ".venv", "build", "dist", "results", "__pycache__", ".pytest_cache"}
NOT_COPIED |= {".ruff_cache", ".import_linter_cache", ".mypy_cache"}


def _ngspice_missing() -> str | None:
    if shutil.which("ngspice") is None:
        return "the ngspice program is not installed (make setup)"
    try:
        from rerinv.engines.ngspice import find_ngspice_library

        find_ngspice_library()
    except Exception as exc:  # NgspiceMissingError
        return f"the ngspice shared library is not installed (make setup): {exc}"
    return None


def _run(args: list, cwd: Path, env: dict | None = None, timeout: float = 300):
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in NOT_COPIED or n.endswith(".egg-info")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(source snapshot, wheel, fresh venv python, environment for the venv's commands)``."""
    reason = _ngspice_missing()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_ignore)

    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", source, "-w", dist], base)
    (wheel,) = dist.glob("rerinv-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
          "--no-index", wheel], base)  # fmt: skip

    folders = []
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"dependency {name} is not importable"
        folder = Path(spec.origin).parent.parent
        assert not (folder / "rerinv").exists() and folder != ROOT, folder
        if folder not in folders:
            folders.append(folder)
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   base).stdout.strip()  # fmt: skip
    (Path(purelib) / "zz_rerinv_test_dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in folders)
    )

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    return source, wheel, python, env


def test_wheel_contents(installed) -> None:
    source, wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"rerinv", wheel.name.split("-py")[0] + ".dist-info"}

    modules = {p.relative_to(source).as_posix() for p in (source / "rerinv").rglob("*.py")}
    assert modules - names == set(), "modules missing from the wheel"

    data = {
        "pyspice_models": sorted((source / "pyspice_models").glob("*.lib")),
        "waveforms": sorted((source / "waveforms").glob("*.h5")),
    }
    for folder, files in data.items():
        assert files, f"no package data in {folder}/"
        for path in files:
            assert f"rerinv/resources/{folder}/{path.name}" in names, f"{path.name} not shipped"
    presets = [p.relative_to(source).as_posix() for p in (source / "rerinv/presets").glob("*")]
    assert set(presets) - names == set(), "presets missing from the wheel"


def test_installed_package_is_used(installed, tmp_path) -> None:
    _, _, python, env = installed
    venv = python.parent.parent
    code = (
        "import sys, rerinv, rerinv.resources as r; "
        "print(rerinv.__file__); print(r.golden_dir()); print(len(r.model_text('opamp.lib'))); "
        "print('\\n'.join(sys.path))"
    )
    lines = _run([python, "-c", code], tmp_path, env).stdout.splitlines()
    package, golden, model_chars, path = Path(lines[0]), Path(lines[1]), int(lines[2]), lines[3:]
    assert package.is_relative_to(venv), f"rerinv imported from {package}, not the fresh venv"
    assert golden.is_relative_to(venv) and sorted(golden.glob("*.h5")), golden
    assert model_chars > 0
    assert not [p for p in path if p and Path(p).resolve() == ROOT], "the repository is on sys.path"
    _run([python, "-m", "rerinv", "--help"], tmp_path, env)


def test_demo_through_ngspice(installed, tmp_path) -> None:
    _, _, python, env = installed
    out = _run([python.parent / "rerinv", "demo", "--engine", "spice"], tmp_path, env).stdout
    assert "effective bits:" in out, out


def test_netlist_runs_in_ngspice(installed, tmp_path) -> None:
    _, _, python, env = installed
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    a, b = m @ m.T / 4 + np.eye(4), rng.uniform(-1.0, 1.0, 4)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "b.npy", b)
    _run([python.parent / "rerinv", "netlist", "--matrix", "A.npy", "--rhs", "b.npy",
          "--kind", "inv", "--out", "inv.cir"], tmp_path, env)  # fmt: skip
    text = (tmp_path / "inv.cir").read_text()
    out = _run(["ngspice", "-b", "inv.cir"], tmp_path, env, timeout=120).stdout
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.strip().startswith("v(x"):
            values[name.strip()] = float(value)
    assert "v(x0)" in values, out
    # the header says x = factor * v(xK); the default (8-bit) circuit solves to about 1 %
    factor = float(text.split("=", 1)[1].split("*", 1)[0])
    x = factor * np.array([values[f"v(x{i})"] for i in range(4)])
    x_ref = np.linalg.solve(a, b)
    assert np.max(np.abs(x - x_ref)) < 0.05 * np.max(np.abs(x_ref)), (x, x_ref)


def test_settle(installed, tmp_path) -> None:
    _, _, python, env = installed
    out = _run([python.parent / "rerinv", "settle", "--n", "4"], tmp_path, env).stdout
    assert "status settled" in out, out


def _pytest(python, args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_example_testbenches_from_the_wheel(installed, tmp_path) -> None:
    """The designer's view (docs/testbenches.md): the three example testbenches, copied out of
    the repository, pass with nothing but the installed wheel's plugin; under ``pytest -n 2``
    their Monte Carlo yields are the serial run's; a copy with 1-bit cells fails and says
    why, pass by pass, and leaves a netlist stock ngspice runs."""
    source, _, python, env = installed
    benches = tmp_path / "benches"
    shutil.copytree(source / "circuits" / "testbenches", benches)
    serial = _pytest(python, ["--rerinv-yield-json", "serial.json"], benches, env)
    assert serial.returncode == 0, serial.stdout + serial.stderr
    assert "rerinv yield" in serial.stdout and " passed" in serial.stdout, serial.stdout
    parallel = _pytest(python, ["-n", "2", "--rerinv-yield-json", "parallel.json"], benches, env)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    yields = [json.loads((benches / f"{run}.json").read_text()) for run in ("serial", "parallel")]
    assert len(yields[0]) == 2 and yields[0] == yields[1]

    broken = benches / "test_broken.py"
    text = (benches / "test_inv_corners.py").read_text()
    broken.write_text(text.replace("@pytest.mark.rerinv_corners(**CORNERS)",
                                   '@pytest.mark.rerinv_config("device.bits=1")'))  # fmt: skip
    done = _pytest(python, [broken.name, "--rerinv-artifacts", "failed"], benches, env)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "16 verified bits required" in out and " pass   bits  worst-entry" in out, out
    rows = [line for line in out.splitlines() if re.match(r"E\s+\d+\s+-?[\d.]+\s", line)]
    assert len(rows) == 8, out  # one row per pass of the 8-pass budget
    assert "route: " in out and "seed " in out, out
    (netlist,) = (benches / "failed").glob("*/netlist.cir")
    spice = subprocess.run(["ngspice", "-b", netlist.name], cwd=netlist.parent,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "v(inv000_x0) =" in spice.stdout, spice.stdout + spice.stderr
