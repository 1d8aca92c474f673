"""The pytest plugin of user testbenches (rerinv.testing, docs/testbenches.md): what a
testbench's outcome is, what a failure says, and that a session that does not use the plugin
pays nothing for it. (The shipped examples, run from the built wheel, are in
tests/test_packaging.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rerinv.config import Config
from rerinv.matrices import wishart_factor
from rerinv.testing import Bench, CheckFailed, assert_bits, assert_matches_reference
from rerinv.testing.yields import verdicts

BENCHES = """
import pytest
from rerinv.matrices import wishart_factor
from rerinv.testing import assert_matches_reference

@pytest.mark.rerinv_yield(0.9, trials=12)
@pytest.mark.rerinv_config("device.sigma_rel=0.05", "simulation.engine=nodal")
def test_tight_vmm_spec(rerinv, rerinv_trial):
    read = rerinv.vmm(wishart_factor(16, seed=1), rerinv.rng.uniform(-1, 1, 16))
    assert_matches_reference(read, within=0.5)

@pytest.mark.rerinv_yield(0.5, trials=4)
def test_broken_bench(rerinv, rerinv_trial):
    raise ValueError("a bug in the testbench, not a chip that missed the spec")

@pytest.mark.rerinv_corners("ss")
def test_process_corner_on_macro_models(rerinv):
    pass

@pytest.mark.rerinv_engines("nodal", "spice")
@pytest.mark.rerinv_config("device.bits=10")
def test_engine_and_overrides(rerinv, rerinv_config):
    assert rerinv.engine in ("nodal", "spice") and rerinv_config.device.bits == 10
    assert rerinv.config.simulation.engine == rerinv.engine

def test_seed(rerinv, rerinv_seed):
    print("SEED", rerinv_seed)
"""


def _session(tmp_path: Path, *args: str, env: dict | None = None):
    (tmp_path / "test_benches.py").write_text(BENCHES)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_benches.py", "-rA",
         "--junitxml=report.xml", "--rerinv-yield-json=yields.json", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    outcomes = {}
    for case in ET.parse(tmp_path / "report.xml").getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return done, outcomes


@pytest.mark.spice
def test_yields_trials_corners_engines_and_seeds(tmp_path) -> None:
    done, outcomes = _session(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    # 5 % programming error cannot read within half an ADC step: trials miss the spec, which
    # is data (xfail), and the yield below 0.9 fails the session with the table
    tight = [v for k, v in outcomes.items() if k.startswith("test_tight_vmm_spec")]
    assert len(tight) == 12 and "failure" not in tight and tight.count("skipped") >= 2, outcomes
    (result,) = [v for v in json.loads((tmp_path / "yields.json").read_text())
                 if v["testbench"].endswith("test_tight_vmm_spec")]  # fmt: skip
    assert result["trials"] == 12 and not result["passed"] and result["yield"] < 0.9
    assert (
        result["met"] == tight.count("passed") and len(result["missed_seeds"]) == 12 - result["met"]
    )
    assert "rerinv yield" in out and "FAIL" in out and "missed by the trials with seeds" in out
    # an exception that is not a missed spec stays a failed test
    broken = [v for k, v in outcomes.items() if k.startswith("test_broken_bench")]
    assert broken == ["failure"] * 4, outcomes
    assert "4 of them failed with an error, not a missed spec" in out, out
    # a SKY130 process corner on macro-model amplifiers is refused, saying why
    assert outcomes["test_process_corner_on_macro_models[ss]"] in ("failure", "error")
    assert "only transistor-level amplifiers have" in out, out
    assert outcomes["test_engine_and_overrides[nodal]"] == "passed"
    assert outcomes["test_engine_and_overrides[spice]"] == "passed"
    # seeds depend on the master seed and the test's name, never on the run
    seed = [line for line in out.splitlines() if line.startswith("SEED")]
    again = _session(tmp_path, "-k", "test_seed")[0].stdout
    other = _session(tmp_path, "-k", "test_seed", "--rerinv-seed", "1")[0].stdout
    assert seed and seed == [line for line in again.splitlines() if line.startswith("SEED")]
    assert seed != [line for line in other.splitlines() if line.startswith("SEED")]


def test_ngspice_missing_skips_with_the_reason(tmp_path) -> None:
    env = {**os.environ, "NGSPICE_LIBRARY_PATH": str(tmp_path / "no-libngspice.so")}
    done, outcomes = _session(tmp_path, "-k", "engine_and", env=env)
    assert outcomes["test_engine_and_overrides[nodal]"] == "passed", done.stdout
    assert outcomes["test_engine_and_overrides[spice]"] == "skipped", done.stdout
    assert "needs ngspice: NGSPICE_LIBRARY_PATH=" in done.stdout, done.stdout


def test_loading_the_plugin_loads_nothing_of_rerinv() -> None:
    """What every pytest session where rerinv is installed pays: the plugin module itself,
    no numpy, no rerinv module (benchmarks/plugin_overhead.py times whole sessions)."""
    code = (
        "import sys; before = set(sys.modules); import rerinv.testing.plugin; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(('rerinv', 'numpy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rerinv', 'rerinv.testing', 'rerinv.testing.plugin']", out


def test_assert_bits_explains_pass_by_pass() -> None:
    a = wishart_factor(8, seed=2)
    b = np.random.default_rng(0).standard_normal(8)
    config = Config().with_overrides(["device.bits=1", "simulation.engine=nodal"])
    solved = Bench(config, seed=5).solve(a, b, max_passes=3)
    assert solved.effective_bits < 16 and solved.seed == 5
    with pytest.raises(CheckFailed) as failed:
        assert_bits(solved, 16)
    lines = str(failed.value).splitlines()
    assert lines[0].startswith(f"16 verified bits required, {solved.effective_bits:.1f} reached")
    assert len([line for line in lines if line[:5].strip().isdigit()]) == solved.passes == 3
    assert any(line.startswith("route: ") for line in lines)
    assert "--seed 5" in lines[-1]
    assert_bits(solved.result, solved.effective_bits - 0.1)  # a bare SolveResult is fine too


def test_assert_matches_reference_names_the_worst_entry(tmp_path) -> None:
    expected = np.array([1.0, 2.0, 3.0])
    assert_matches_reference(expected + 0.04, expected, within=0.05)
    message = r"1 of 3 entries off by more than 0.5 ADC steps; worst entry 2: 3.2 against 3 \(off"
    with pytest.raises(CheckFailed, match=message):
        assert_matches_reference(np.array([1.0, 2.0, 3.2]), expected, lsb=0.1)
    with pytest.raises(CheckFailed, match="1 of 3 entries"):  # NaN is never within tolerance
        assert_matches_reference(np.array([1.0, np.nan, 3.0]), expected, within=1.0)
    read = Bench(Config().with_overrides(["simulation.engine=nodal"]), seed=3).vmm(
        wishart_factor(8, seed=1), np.linspace(-1, 1, 8)
    )
    with pytest.raises(CheckFailed) as failed:
        assert_matches_reference(read, within=0.0)
    written = {p.name for p in failed.value.write_artifacts(tmp_path)}
    assert written == {"config.toml", "summary.json", "a.npy", "v.npy", "netlist.cir"}
    assert "--seed 3" in str(failed.value)


def test_yield_verdicts_from_trial_records() -> None:
    records = [{"testbench": "t", "trial": k, "met": k != 2, "seed": 10 + k, "min_yield": 0.8,
                "confidence": 0.95} for k in (3, 0, 2, 1)]  # fmt: skip
    (v,) = verdicts(records)
    assert (v.trials, v.met, v.missed_seeds, v.passed) == (4, 3, (12,), False)
    assert v.low < 0.75 < v.high
