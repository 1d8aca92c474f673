"""Monte Carlo driver, HDF5 store and report.

These tests are about the driver, the store and the report, not about circuits: they run
:func:`synthetic_trial`, a fake, deterministic stand-in for ``rerinv.studies.trial.run_trial`` defined
at module level so worker processes and Dask workers can import it. One test at the end runs
two real trials through the driver.
"""

from __future__ import annotations

import argparse
import html.parser
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from rerinv.config import Config
from rerinv.errors import ConfigError, InputError, RerinvError
from rerinv.studies.mc import (
    SweepSpec,
    add_mc_command,
    parse_sweep,
    run_monte_carlo,
    trial_seed,
)
from rerinv.studies.report import QUANTILE_METHOD, add_report_command, write_report
from rerinv.studies.mc.store import load_results
from rerinv.studies.trial import TrialResult, run_trial

ROOT = Path(__file__).resolve().parents[1]


# -- fake trial functions (module level: importable by workers) ----------------------------
def synthetic_trial(config, *, scheme, engine, n, seed, target_bits, max_passes) -> TrialResult:
    """FAKE trial for driver/store/report tests: no circuit, no matrix. Draws a plausible
    bits-per-pass history from ``seed`` (gain falls with ``device.sigma_rel`` and ``n``)."""
    rng = np.random.default_rng(seed)
    gain = {"refine": 3.0, "krylov": 4.0}.get(scheme, 2.0) - 150 * config.device.sigma_rel
    gain -= n / 64
    bits, residual, value = [], [], rng.uniform(3.0, 6.0)
    for _ in range(max_passes):
        value += gain + rng.normal(0.0, 0.5)
        bits.append(value)
        residual.append(2.0**-value)
        if value >= target_bits + 2:
            break
    return TrialResult(
        status="converged" if value >= target_bits + 2 else "max_passes",
        reached_target=bool(value >= target_bits),
        effective_bits=value,
        passes=len(bits),
        inv_solves=2 * len(bits) + 1,
        vmm_ops=16 * len(bits),
        conversions=int(rng.integers(100, 200)),
        history_bits=bits,
        history_residual=residual,
    )


def slow_synthetic_trial(config, **kwargs) -> TrialResult:
    """FAKE trial: :func:`synthetic_trial` after 0.1 s, so an interrupt lands mid-run."""
    time.sleep(0.1)
    return synthetic_trial(config, **kwargs)


def raising_synthetic_trial(config, *, seed, **kwargs) -> TrialResult:
    """FAKE trial: raises for trial (0, 1), else :func:`synthetic_trial`."""
    if tuple(seed.spawn_key) == (0, 1):
        raise RuntimeError("synthetic failure of trial (0, 1)")
    return synthetic_trial(config, seed=seed, **kwargs)


def crashing_synthetic_trial(config, *, seed, **kwargs) -> TrialResult:
    """FAKE trial: kills its worker process for trial (1, 0), else :func:`synthetic_trial`."""
    if tuple(seed.spawn_key) == (1, 0):
        os._exit(7)
    return synthetic_trial(config, seed=seed, **kwargs)


# -- helpers --------------------------------------------------------------------------------
def _spec(trials: int = 3, seed: int = 7) -> SweepSpec:
    base = Config()
    axes = parse_sweep(["n=16,32", "scheme=refine,krylov", "device.sigma_rel=0,0.01"], base)
    return SweepSpec(base=base, axes=axes, trials=trials, engine="nodal", master_seed=seed)


def result_datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset outside ``/timing``: what must be identical between equivalent runs."""
    data = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("timing"):
                data[name] = obj.asstr()[()] if obj.dtype.kind == "O" else obj[()]

        f.visititems(visit)
    return data


def assert_same_results(a: Path, b: Path) -> None:
    left, right = result_datasets(a), result_datasets(b)
    assert sorted(left) == sorted(right)
    for name, value in left.items():
        other = right[name]
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            assert value.dtype == other.dtype and value.tobytes() == other.tobytes(), name
        else:
            assert np.array_equal(value, other), name


def _mc_command(out: Path, trial_fn: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rerinv.studies.mc",
        "--trial-function",
        f"tests.test_montecarlo:{trial_fn}",
        "--engine",
        "nodal",
        "--sweep",
        "n=16,32",
        "--sweep",
        "device.sigma_rel=0,0.01",
        "--trials",
        "10",
        "--seed",
        "3",
        "--out",
        str(out),
        *extra,
    ]


# -- tests ----------------------------------------------------------------------------------
def test_trial_seed_is_the_spawn_tree():
    tree = np.random.SeedSequence(42).spawn(5)[3].spawn(7)[6]
    assert np.array_equal(trial_seed(42, 3, 6).generate_state(4), tree.generate_state(4))


def test_sweep_values_are_validated():
    base = Config()
    with pytest.raises(ConfigError, match="device.sigma_rel=-1"):
        parse_sweep(["device.sigma_rel=0,-1"], base)
    with pytest.raises(ConfigError, match="unknown key"):
        parse_sweep(["device.sigma=0.1"], base)
    with pytest.raises(InputError, match="scheme"):
        parse_sweep(["scheme=refine,magic"], base)
    with pytest.raises(InputError, match="twice"):
        parse_sweep(["n=16", "n=32"], base)
    points = SweepSpec(base=base, axes=parse_sweep(["n=16,32", "device.bits=6,8"], base)).points()
    assert [(p.n, Config.from_toml(p.config_toml).device.bits) for p in points] == [
        (16, 6),
        (16, 8),
        (32, 6),
        (32, 8),
    ]


@pytest.mark.parametrize("trial_fn", [synthetic_trial, run_trial], ids=["synthetic", "real"])
def test_same_seed_same_results_in_process_processes_and_dask(tmp_path, trial_fn):
    """Same master seed, same file, whoever runs the trials (the real trials: nodal engine)."""
    from distributed import LocalCluster

    spec = _spec()
    run_monte_carlo(spec, tmp_path / "w1.h5", workers=1, trial_fn=trial_fn)
    run_monte_carlo(spec, tmp_path / "w2.h5", workers=2, trial_fn=trial_fn)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        summary = run_monte_carlo(
            spec,
            tmp_path / "dask.h5",
            scheduler=cluster.scheduler_address,
            trial_fn=trial_fn,
        )
    assert summary.stored == summary.total == 24 and not summary.interrupted
    assert_same_results(tmp_path / "w1.h5", tmp_path / "w2.h5")
    assert_same_results(tmp_path / "w1.h5", tmp_path / "dask.h5")
    for name in ("w2.h5", "dask.h5"):  # the trials really ran in other processes
        with h5py.File(tmp_path / name) as f:
            workers = set(f["timing/worker"].asstr()[...].ravel())
        assert workers and not any(w.endswith(f":{os.getpid()}") for w in workers)
    run_monte_carlo(_spec(seed=8), tmp_path / "other.h5", workers=1, trial_fn=synthetic_trial)
    other = load_results(tmp_path / "other.h5")
    assert not np.array_equal(other.effective_bits, load_results(tmp_path / "w1.h5").effective_bits)


def test_interrupt_then_resume_equals_uninterrupted(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run.h5"
    driver = subprocess.Popen(
        _mc_command(out, "slow_synthetic_trial", "--workers", "2"),
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in driver.stderr:  # not a TTY: a progress line every 10 %
        lines.append(line)
        progress = re.match(r"rerinv mc: (\d+)/40 trials", line)
        if progress and int(progress.group(1)) >= 10:
            driver.send_signal(signal.SIGINT)
            break
    stdout, rest = driver.communicate(timeout=60)
    stderr = "".join(lines) + rest
    assert driver.returncode == 130, stderr
    assert "Resume with:" in stderr and "--resume" in stderr
    interrupted = load_results(out)  # readable after the interrupt
    stored = int(interrupted.done.sum())
    assert 10 <= stored < 40
    assert (interrupted.status[~interrupted.done] == "").all()
    assert interrupted.sessions[0]["interrupted"]

    resumed = subprocess.run(
        _mc_command(out, "slow_synthetic_trial", "--workers", "2", "--resume"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    reference = tmp_path / "reference.h5"
    spec = SweepSpec(
        base=Config(),
        axes=parse_sweep(["n=16,32", "device.sigma_rel=0,0.01"], Config()),
        trials=10,
        engine="nodal",
        master_seed=3,
    )
    run_monte_carlo(spec, reference, workers=2, trial_fn=slow_synthetic_trial)
    assert_same_results(out, reference)
    assert len(load_results(out).sessions) == 2

    mismatch = subprocess.run(
        [*_mc_command(out, "slow_synthetic_trial", "--resume"), "--set", "device.bits=6"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mismatch.returncode == 2
    assert "cannot be resumed" in mismatch.stderr and "device.bits" in mismatch.stderr


def test_failed_and_crashed_trials_are_stored_and_the_rest_completes(tmp_path):
    spec = _spec(trials=2)
    for trial_fn, name, key, message in (
        (raising_synthetic_trial, "raises.h5", (0, 1), "RuntimeError: synthetic failure"),
        (crashing_synthetic_trial, "crashes.h5", (1, 0), "WorkerCrash"),
    ):
        summary = run_monte_carlo(spec, tmp_path / name, workers=2, trial_fn=trial_fn)
        results = load_results(tmp_path / name)
        assert summary.stored == 16 and summary.failed == 1 and results.done.all()
        assert results.status[key] == "failed" and message in results.error[key]
        assert np.isnan(results.effective_bits[key]) and np.isnan(results.history_bits[key]).all()
        others = np.ones_like(results.done)
        others[key] = False
        assert (results.status[others] != "failed").all()
        assert (results.error[others] == "").all()


def test_workers_that_cannot_import_the_trial_function_stop_the_run(tmp_path, monkeypatch):
    module = types.ModuleType("rerinv_module_workers_lack")  # exists in this process only
    module.synthetic_trial = synthetic_trial
    monkeypatch.setitem(sys.modules, module.__name__, module)
    clone = types.FunctionType(synthetic_trial.__code__, globals(), "synthetic_trial")
    clone.__module__ = module.__name__
    module.synthetic_trial = clone
    with pytest.raises(RerinvError, match="cannot start or import the trial function"):
        run_monte_carlo(_spec(trials=1), tmp_path / "x.h5", workers=2, trial_fn=clone)
    assert not load_results(tmp_path / "x.h5").done.any()


class _Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self._table, self._cell = {}, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs)["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._table[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_report_embeds_every_plot_and_its_table_matches_the_file(tmp_path):
    results_path = tmp_path / "run.h5"
    run_monte_carlo(_spec(trials=6), results_path, workers=1, trial_fn=raising_synthetic_trial)
    report = write_report(results_path, tmp_path / "report.html")
    text = report.read_text()
    # final bits, bits per pass, reach vs n, reach vs sigma_rel, accuracy map
    assert text.count('<img src="data:image/png;base64,') == 5
    parser = _Tables()
    parser.feed(text)
    header, *rows = parser.tables["statistics"]
    with h5py.File(results_path) as f:
        labels = f["points/label"].asstr()[...]
        done, status = f["trials/done"][...], f["trials/status"].asstr()[...]
        bits, reached = f["trials/effective_bits"][...], f["trials/reached_target"][...]
        passes, inv = f["trials/passes"][...], f["trials/inv_solves"][...]
    assert len(rows) == len(labels) == 8
    for p, row in enumerate(rows):
        cell = dict(zip(header, row, strict=True))
        ok = done[p] & (status[p] != "failed")
        q10, q50, q90 = np.quantile(bits[p][ok], [0.1, 0.5, 0.9], method=QUANTILE_METHOD)
        assert cell["point"] == labels[p]
        assert int(cell["trials"]) == 6 and int(cell["done"]) == done[p].sum()
        assert int(cell["failed"]) == (p == 0)
        assert float(cell["median bits"]) == pytest.approx(q50, abs=0.005)
        assert float(cell["p10 bits"]) == pytest.approx(q10, abs=0.005)
        assert float(cell["p90 bits"]) == pytest.approx(q90, abs=0.005)
        share = np.sum(reached[p] & done[p]) / done[p].sum()
        assert float(cell["reach target"]) == pytest.approx(share, abs=0.0005)
        assert float(cell["median passes"]) == np.quantile(
            passes[p][ok], 0.5, method="inverted_cdf"
        )
        assert float(cell["median INV solves"]) == np.quantile(
            inv[p][ok], 0.5, method="inverted_cdf"
        )
    assert "synthetic failure" in text and "[device]" in text and "numpy_version" in text

    markdown = write_report(results_path, tmp_path / "md" / "report.md", fmt="md")
    assert markdown.read_text().count("](report-") == 5
    assert len(list(markdown.parent.glob("report-*.png"))) == 5


def test_mc_and_report_commands(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="rerinv")
    commands = parser.add_subparsers(dest="command", required=True)
    add_mc_command(commands)
    add_report_command(commands)
    out = tmp_path / "cli.h5"
    args = parser.parse_args(
        [
            "mc",
            "--engine",
            "nodal",
            "--n",
            "16",
            "--trials",
            "2",
            "--workers",
            "1",
            "--sweep",
            "device.sigma_rel=0,0.01",
            "--out",
            str(out),
        ]
    )
    assert args.func(args, trial_fn=synthetic_trial) == 0
    assert load_results(out).done.all()
    with pytest.raises(InputError, match="exists"):
        args.func(args, trial_fn=synthetic_trial)
    args = parser.parse_args(["report", str(out), "--out", str(tmp_path / "r.md")])
    assert args.func(args) == 0 and (tmp_path / "r.md").exists()
    with pytest.raises(InputError, match="not both"):
        bad = parser.parse_args(
            [
                "mc",
                "--trials",
                "1",
                "--scheme",
                "refine",
                "--sweep",
                "scheme=refine,krylov",
                "--out",
                str(tmp_path / "x.h5"),
            ]
        )
        bad.func(bad)


def test_real_trials_through_the_driver(tmp_path):
    """Two real trials (nodal engine, N = 16, refine) through the driver."""
    try:
        run_trial(Config(), scheme="refine", engine="nodal", n=4, seed=0, max_passes=1)
    except NotImplementedError:
        pytest.skip("rerinv.studies.trial.run_trial is not implemented yet")
    spec = SweepSpec(trials=2, scheme="refine", engine="nodal", n=16, master_seed=1)
    summary = run_monte_carlo(spec, tmp_path / "real.h5", workers=1)
    results = load_results(tmp_path / "real.h5")
    assert summary.stored == 2 and results.done.all()
    assert results.attrs["ngspice_version"] == "not used"
    for t in range(2):
        assert results.status[0, t] in ("converged", "max_passes", "stalled", "diverged")
        assert results.passes[0, t] >= 1 and math.isfinite(results.effective_bits[0, t])
        assert results.effective_bits[0, t] == results.history_bits[0, t, results.passes[0, t] - 1]
