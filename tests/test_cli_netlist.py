"""`rerinv netlist` writes netlists that stock `ngspice -b` runs."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rerinv.analog.inv import solve_inv
from rerinv.cli import main
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.hw.circuit import vmm_crossbar
from rerinv.hw.mapping import map_matrix

from .helpers import nonsymmetric, rel_err

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs the ngspice program")


def _run_batch(path):
    out = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    values = dict(re.findall(r"^v\((\w+)\)\s*=\s*(\S+)", out.stdout, flags=re.M))
    return {k: float(v) for k, v in values.items()}


@pytest.mark.parametrize("fmt", ["npy", "csv", "mtx"])
def test_inv_netlist_runs_in_stock_ngspice(tmp_path, fmt):
    import scipy.io

    a = nonsymmetric(6, seed=9)
    b = np.random.default_rng(9).standard_normal(6)
    matrix = tmp_path / f"a.{fmt}"
    if fmt == "npy":
        np.save(matrix, a)
    elif fmt == "csv":
        np.savetxt(matrix, a, delimiter=",")
    else:
        scipy.io.mmwrite(matrix, a)
    np.save(tmp_path / "b.npy", b)
    netlist = tmp_path / "inv.cir"
    assert (
        main(
            [
                "netlist",
                "--matrix",
                str(matrix),
                "--rhs",
                str(tmp_path / "b.npy"),
                "--kind",
                "inv",
                "--out",
                str(netlist),
                "--set",
                "opamp.model=ideal",
                "--set",
                "device.bits=24",
            ]
        )
        == 0
    )
    printed = _run_batch(netlist)
    volts = np.array([printed[f"x{k}"] for k in range(6)])
    config = Config().with_overrides(["opamp.model=ideal", "device.bits=24"])
    engine = solve_inv(a, b, config)
    assert rel_err(volts, engine.outputs) < 1e-9
    factor = float(re.search(r"^\* x = (\S+) \* v\(xK\)", netlist.read_text(), re.M).group(1))
    assert rel_err(factor * volts, np.linalg.solve(a, b)) < 1e-6


def test_vmm_netlist_runs_in_stock_ngspice(tmp_path):
    rng = np.random.default_rng(3)
    a, v = rng.uniform(-1, 1, (5, 5)), rng.standard_normal(5)
    np.savetxt(tmp_path / "a.txt", a)
    np.savetxt(tmp_path / "v.txt", v)
    netlist = tmp_path / "vmm.cir"
    assert (
        main(
            [
                "netlist",
                "--matrix",
                str(tmp_path / "a.txt"),
                "--rhs",
                str(tmp_path / "v.txt"),
                "--kind",
                "vmm",
                "--out",
                str(netlist),
                "--set",
                "opamp.model=ideal",
                "--set",
                "device.bits=24",
            ]
        )
        == 0
    )
    printed = _run_batch(netlist)
    volts = np.array([printed[f"y{k}"] for k in range(5)])
    factor = float(re.search(r"^\* A\^T b = (\S+) \* v\(yK\)", netlist.read_text(), re.M).group(1))
    assert rel_err(factor * volts, a.T @ v) < 1e-6
    config = Config().with_overrides(["opamp.model=ideal", "device.bits=24"])
    circuit = vmm_crossbar(map_matrix(a, config.device), config)
    engine = get_engine("spice").load(circuit).solve(_inputs(netlist))
    assert rel_err(volts, engine) < 1e-9


def _inputs(netlist):
    sources = re.findall(r"^vin(\d+) in\d+ 0 DC (\S+)", netlist.read_text(), re.M)
    return np.array([float(v) for _, v in sorted(sources, key=lambda s: int(s[0]))])


def test_netlist_cli_reports_bad_input(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.save(tmp_path / "b.npy", np.ones(2))
    assert (
        main(
            [
                "netlist",
                "--matrix",
                str(tmp_path / "a.npy"),
                "--rhs",
                str(tmp_path / "b.npy"),
                "--out",
                str(tmp_path / "x.cir"),
            ]
        )
        == 2
    )
    assert "square" in capsys.readouterr().err


CIRCUITS = Path(__file__).resolve().parent.parent / "circuits"


@pytest.mark.parametrize(("name", "tolerance"), [("inv4_ideal", 1e-6), ("inv4_default", 0.05)])
def test_reference_inv_netlists(name, tolerance):
    a, b = np.loadtxt(CIRCUITS / "a4.txt"), np.loadtxt(CIRCUITS / "b4.txt")
    path = CIRCUITS / f"{name}.cir"
    printed = _run_batch(path)
    factor = float(re.search(r"^\* x = (\S+) \* v\(xK\)", path.read_text(), re.M).group(1))
    x = factor * np.array([printed[f"x{k}"] for k in range(4)])
    assert rel_err(x, np.linalg.solve(a, b)) < tolerance


def test_reference_vmm_netlist():
    a, b = np.loadtxt(CIRCUITS / "a4.txt"), np.loadtxt(CIRCUITS / "b4.txt")
    path = CIRCUITS / "vmm4_ideal.cir"
    printed = _run_batch(path)
    factor = float(re.search(r"^\* A\^T b = (\S+) \* v\(yK\)", path.read_text(), re.M).group(1))
    assert rel_err(factor * np.array([printed[f"y{k}"] for k in range(4)]), a.T @ b) < 1e-6
