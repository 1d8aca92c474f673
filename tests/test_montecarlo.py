"""Monte Carlo driver, HDF5 store and report.

These tests are about the driver, the store and the report, not about circuits: they run
:func:`synthetic_trial`, a fake, deterministic stand-in for
``rerinv.studies.trial.run_trial`` defined at module level so worker processes and Dask
workers can import it. Two tests run real trials (nodal engine) through the driver.
"""

from __future__ import annotations

import argparse
import dataclasses
import html.parser
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from rerinv.cli import main as rerinv_main
from rerinv.cli import mc as mc_cli
from rerinv.config import Config
from rerinv.errors import ConfigError, InputError, RerinvError
from rerinv.seeds import trial_seed
from rerinv.studies.mc import (
    READABLE_VERSIONS,
    SweepSpec,
    load_results,
    parse_sweep,
    run_monte_carlo,
)
from rerinv.studies.records import FIELDS, RESULT_FIELDS, markdown_table
from rerinv.studies.report import QUANTILE_METHOD, write_report
from rerinv.studies.trial import TrialResult, run_trial

ROOT = Path(__file__).resolve().parents[1]
#: Written by rerinv 04cf32b (format version 1): ``python -m rerinv.montecarlo --engine nodal
#: --n 4 --sweep scheme=refine,krylov --trials 2 --target-bits 12 --max-passes 4 --workers 1``.
V1_FILE = ROOT / "tests" / "data" / "mc_v1.h5"


# -- fake trial functions (module level: importable by workers) ----------------------------
def synthetic_trial(config, *, seed) -> TrialResult:
    """FAKE trial for driver/store/report tests: no circuit, no matrix. Draws a plausible
    bits-per-pass history from ``seed`` (gain falls with ``device.sigma_rel`` and ``n``);
    reads scheme, size, target and budget from ``config.simulation`` like the real one."""
    sim = config.simulation
    rng = np.random.default_rng(seed)
    gain = {"refine": 3.0, "krylov": 4.0}.get(sim.scheme, 2.0) - 150 * config.device.sigma_rel
    gain -= sim.n / 64
    bits, residual, value = [], [], rng.uniform(3.0, 6.0)
    for _ in range(sim.max_passes):
        value += gain + rng.normal(0.0, 0.5)
        bits.append(value)
        residual.append(2.0**-value)
        if value >= sim.target_bits + 2:
            break
    return TrialResult(
        status="converged" if value >= sim.target_bits + 2 else "max_passes",
        reached_target=bool(value >= sim.target_bits),
        effective_bits=value,
        passes=len(bits),
        inv_solves=2 * len(bits) + 1,
        vmm_ops=16 * len(bits),
        conversions=int(rng.integers(100, 200)),
        history_bits=bits,
        history_residual=residual,
    )


def slow_synthetic_trial(config, *, seed) -> TrialResult:
    """FAKE trial: :func:`synthetic_trial` after 0.1 s, so an interrupt lands mid-run."""
    time.sleep(0.1)
    return synthetic_trial(config, seed=seed)


def raising_synthetic_trial(config, *, seed) -> TrialResult:
    """FAKE trial: raises for trial (0, 1), else :func:`synthetic_trial`."""
    if tuple(seed.spawn_key) == (0, 1):
        raise RuntimeError("synthetic failure of trial (0, 1)")
    return synthetic_trial(config, seed=seed)


def crashing_synthetic_trial(config, *, seed) -> TrialResult:
    """FAKE trial: kills its worker process for trial (1, 0), else :func:`synthetic_trial`."""
    if tuple(seed.spawn_key) == (1, 0):
        os._exit(7)
    return synthetic_trial(config, seed=seed)


# -- helpers --------------------------------------------------------------------------------
def _spec(trials: int = 3, seed: int = 7) -> SweepSpec:
    base = Config().with_values("simulation", engine="nodal")
    axes = parse_sweep(
        ["simulation.n=16,32", "simulation.scheme=refine,krylov", "device.sigma_rel=0,0.01"], base
    )
    return SweepSpec(base=base, axes=axes, trials=trials, master_seed=seed)


def _mc_parser() -> argparse.ArgumentParser:
    """``rerinv`` with the commands of :mod:`rerinv.cli.mc` (``mc``, ``report``, ``verify``)."""
    parser = argparse.ArgumentParser(prog="rerinv")
    mc_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


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
        "rerinv.cli.mc",
        "--trial-function",
        f"tests.test_montecarlo:{trial_fn}",
        "--engine",
        "nodal",
        "--sweep",
        "simulation.n=16,32",
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
    with pytest.raises(ConfigError, match="simulation.scheme=magic"):
        parse_sweep(["scheme=refine,magic"], base)
    with pytest.raises(InputError, match="twice"):
        parse_sweep(["n=16", "simulation.n=32"], base)
    with pytest.raises(InputError, match="full name 'simulation.n'"):
        SweepSpec(base=base, axes=(("n", ("16",)),))
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
    base = Config().with_values("simulation", engine="nodal")
    spec = SweepSpec(
        base=base,
        axes=parse_sweep(["simulation.n=16,32", "device.sigma_rel=0,0.01"], base),
        trials=10,
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
    assert not (tmp_path / "x.h5").exists()  # nothing stored: no file left to block a rerun


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
    assert [row[0] for row in parser.tables["fields"][1:]] == [f.name for f in FIELDS]

    markdown = write_report(results_path, tmp_path / "md" / "report.md", fmt="md")
    assert markdown.read_text().count("](report-") == 5
    assert len(list(markdown.parent.glob("report-*.png"))) == 5


def test_mc_and_report_commands(tmp_path, capsys):
    parser = _mc_parser()
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
        run_trial(Config().with_values("simulation", engine="nodal", n=4, max_passes=1), seed=0)
    except NotImplementedError:
        pytest.skip("rerinv.studies.trial.run_trial is not implemented yet")
    base = Config().with_values("simulation", scheme="refine", engine="nodal", n=16)
    spec = SweepSpec(base=base, trials=2, master_seed=1)
    summary = run_monte_carlo(spec, tmp_path / "real.h5", workers=1)
    results = load_results(tmp_path / "real.h5")
    assert summary.stored == 2 and results.done.all()
    assert results.attrs["ngspice_version"] == "not used"
    for t in range(2):
        assert results.status[0, t] in ("converged", "max_passes", "stalled", "diverged")
        assert results.passes[0, t] >= 1 and math.isfinite(results.effective_bits[0, t])
        assert results.effective_bits[0, t] == results.history_bits[0, t, results.passes[0, t] - 1]


def test_one_record_schema_for_the_trial_the_store_the_loader_and_the_docs(tmp_path):
    names = [f.name for f in FIELDS]
    assert [f.name for f in dataclasses.fields(TrialResult)] == [f.name for f in RESULT_FIELDS]
    assert set(TrialResult.failed("x").to_dict()) == {f.name for f in RESULT_FIELDS}
    spec = SweepSpec(base=Config().with_values("simulation", engine="nodal"), trials=3)
    path = tmp_path / "schema.h5"
    run_monte_carlo(spec, path, workers=1, trial_fn=raising_synthetic_trial)
    with h5py.File(path, "r+") as f:  # a trial not done holds every fill value
        f["trials/done"][0, 2] = False
        for field in FIELDS:
            dataset = f[field.path]
            assert dataset.dtype == field.dtype, field.name
            assert dataset.shape[:2] == (1, 3), field.name
            assert dataset.ndim == (3 if field.kind == "history" else 2), field.name
            dataset[0, 2] = field.fill
    results = load_results(path)
    assert list(results.fields) == names
    for field in FIELDS:
        assert getattr(results, field.name) is results.fields[field.name]
        empty = results.fields[field.name][0, 2]
        if field.dtype.kind == "f":
            assert np.isnan(empty).all(), field.name
        else:
            assert np.all(empty == field.fill), field.name
    assert results.status[0, 1] == "failed" and results.passes[0, 1] == 0
    assert results.worker[0, 0] and results.finished_at[0, 0] > 0 and results.wall_time[0, 0] > 0
    with pytest.raises(AttributeError, match="no attribute 'bits'"):
        results.bits  # noqa: B018
    doc = (ROOT / "docs" / "hdf5-layout.md").read_text()
    for field in FIELDS:  # every field documented, at its path
        assert f"`{field.path}`" in doc, field.name
    assert markdown_table() in doc, "regenerate the table: rerinv.studies.records.markdown_table()"


def test_sweep_simulation_scheme_equals_its_short_name(tmp_path):
    base = Config()
    long = parse_sweep(["simulation.scheme=refine,krylov"], base)
    assert long == parse_sweep(["scheme=refine,krylov"], base)
    assert long == (("simulation.scheme", ("refine", "krylov")),)
    parser = _mc_parser()
    for name, axis in (
        ("long.h5", "simulation.scheme=refine,krylov"),
        ("short.h5", "scheme=refine,krylov"),
    ):
        argv = ["mc", "--engine", "nodal", "--trials", "3", "--workers", "1", "--sweep", axis]
        args = parser.parse_args([*argv, "--out", str(tmp_path / name)])
        assert args.func(args, trial_fn=synthetic_trial) == 0
    results = load_results(tmp_path / "long.h5")
    points = results.description.points
    assert [p.label for p in points] == ["simulation.scheme=refine", "simulation.scheme=krylov"]
    assert [(p.scheme, p.engine, p.n) for p in points] == [
        ("refine", "nodal", 16),
        ("krylov", "nodal", 16),
    ]
    assert results.done.all() and results.axis_values("simulation.scheme") == ["refine", "krylov"]
    assert_same_results(tmp_path / "long.h5", tmp_path / "short.h5")


def test_a_version_1_file_is_read_and_reported_but_not_resumed(tmp_path, capsys):
    results = load_results(V1_FILE)
    assert results.attrs["format_version"] == 1
    assert results.description.axes == (("simulation.scheme", ("refine", "krylov")),)
    points = results.description.points
    assert [p.config.simulation.scheme for p in points] == ["refine", "krylov"]
    assert [p.label for p in points] == ["simulation.scheme=refine", "simulation.scheme=krylov"]
    for simulation in [p.config.simulation for p in points] + [results.config.simulation]:
        assert (simulation.engine, simulation.n) == ("nodal", 4)
        assert (simulation.target_bits, simulation.max_passes) == (12.0, 4)
    assert results.description.target_bits == 12.0 and results.description.max_passes == 4
    assert results.done.all() and results.history_bits.shape == (2, 2, 4)
    assert set(results.status.ravel()) <= {"converged", "max_passes", "stalled", "diverged"}
    finite = np.isfinite(results.history_bits).sum(axis=2)
    assert (results.passes == finite).all() and (results.wall_time > 0).all()
    assert (results.reached_target == (results.effective_bits >= 12)).all()

    report = write_report(V1_FILE, tmp_path / "v1.html")
    parser = _Tables()
    parser.feed(report.read_text())
    header, *rows = parser.tables["statistics"]
    assert [row[0] for row in rows] == [p.label for p in points]
    assert all(int(dict(zip(header, row, strict=True))["done"]) == 2 for row in rows)
    assert "engine nodal, n 4" in report.read_text()

    copy = tmp_path / "v1.h5"
    shutil.copy(V1_FILE, copy)
    before = copy.read_bytes()
    argv = ["--engine", "nodal", "--n", "4", "--sweep", "scheme=refine,krylov", "--trials", "2"]
    argv += ["--target-bits", "12", "--max-passes", "4", "--workers", "1", "--resume"]
    assert mc_cli.main([*argv, "--out", str(copy)]) == 2
    error = capsys.readouterr().err
    assert "format version 1" in error and "resumes only version 2" in error, error
    assert copy.read_bytes() == before  # not even opened for writing


def test_an_unknown_format_version_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "future.h5"
    shutil.copy(V1_FILE, path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(InputError) as info:
        load_results(path)
    message = str(info.value)
    assert "\n" not in message and "version 99" in message
    assert f"reads versions {', '.join(map(str, READABLE_VERSIONS))}" in message
    assert rerinv_main(["report", str(path), "--out", str(tmp_path / "r.html")]) == 2
    printed = capsys.readouterr().err.strip()
    assert "\n" not in printed and printed.endswith(message)
