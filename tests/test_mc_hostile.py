"""Hostile cases of the Monte Carlo commands: each ends in one line on stderr and exit status 2
within seconds, and nothing is written or overwritten.

Damaged files that would make HDF5 loop (a zero-filled global heap, a flipped bit in it), a
file whose checksums were removed, impossible matrix sizes, runs whose every trial fails,
malformed ``--scheduler`` addresses, a Dask cluster without workers or whose scheduler or only
worker dies, huge sweeps, a SIGKILLed ``mc --force`` and a full disk. The trials are FAKE
(:func:`quick_trial`, :func:`slow_trial`, :func:`failing_trial`): no circuit is simulated.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rerinv.cli import main
from rerinv.config import Config
from rerinv.errors import InputError, RerinvError
from rerinv.studies.mc import SweepSpec, load_results, parse_sweep, run_monte_carlo
from rerinv.untrusted import DamagedFileError, hdf5_structure_problem, read_untrusted

ROOT = Path(__file__).resolve().parents[1]
V1_FILE = ROOT / "tests" / "data" / "mc_v1.h5"
QUIET = open(os.devnull, "w")  # noqa: SIM115 (progress of runs made inside tests)


# -- fake trials (module level: worker processes import them) -------------------------------
def quick_trial(config, *, seed):
    """FAKE trial: a plausible record drawn from ``seed``."""
    bits = float(np.random.default_rng(seed).uniform(16, 20))
    return {"status": "converged", "reached_target": True, "effective_bits": bits, "passes": 2,
            "inv_solves": 3, "vmm_ops": 4, "conversions": 5, "history_bits": [5.0, bits],
            "history_residual": [1e-2, 1e-6]}  # fmt: skip


def slow_trial(config, *, seed):
    """FAKE trial: :func:`quick_trial` after 0.3 s (a cluster or a driver can die meanwhile)."""
    time.sleep(0.3)
    return quick_trial(config, seed=seed)


def failing_trial(config, *, seed):
    """FAKE trial: always fails."""
    raise MemoryError("Unable to allocate 596. GiB for an array")


# -- helpers ---------------------------------------------------------------------------------
def _spec(trials: int = 3) -> SweepSpec:
    base = Config().with_values("simulation", engine="nodal", max_passes=4)
    return SweepSpec(base=base, axes=parse_sweep(["simulation.scheme=refine,krylov"], base),
                     trials=trials, master_seed=1)  # fmt: skip


def _results(path: Path, trials: int = 3) -> Path:
    run_monte_carlo(_spec(trials), path, workers=1, trial_fn=quick_trial, stream=QUIET)
    return path


def _run(argv: list[str], capsys) -> tuple[int, list[str], float]:
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, lines, time.perf_counter() - start


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _one_line_exit_2(code, lines, seconds, pattern: str, limit: float = 10.0) -> None:
    assert code == 2, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("rerinv") and "error:" in lines[0] and pattern in lines[0], lines
    assert seconds < limit, f"took {seconds:.1f} s"


def _heap_looping(path: Path) -> int:
    """Zero the first object header of the first global heap collection (index 0, size 0:
    HDF5's reader loops on it); return its offset."""
    data = bytearray(path.read_bytes())
    start = data.index(b"GCOL\x01\0\0\0")
    data[start + 16 : start + 32] = bytes(16)
    path.write_bytes(bytes(data))
    return start + 16


# -- 1. a reader that cannot hang --------------------------------------------------------------
@pytest.mark.parametrize(
    "damage", ["zeroed-heap-object", "flipped-index-bit", "zero-filled-middle"]
)
def test_a_file_that_would_hang_hdf5_is_refused_in_seconds(tmp_path, capsys, damage):
    path = _results(tmp_path / "r.h5")
    data = bytearray(path.read_bytes())
    heap = data.index(b"GCOL\x01\0\0\0")
    if damage == "zeroed-heap-object":
        _heap_looping(path)
    elif damage == "flipped-index-bit":  # an object of index 1 and size 0 ... as HDF5 reads it
        objects = heap + 16
        data[objects : objects + 2] = b"\0\0"  # the one-bit flip of index 1 -> 0
        data[objects + 8 : objects + 16] = bytes(8)
        path.write_bytes(bytes(data))
    else:  # a zero-filled stretch from inside the first heap to the middle of the file
        data[heap + 16 : len(data) // 2] = bytes(len(data) // 2 - heap - 16)
        path.write_bytes(bytes(data))
    assert damage == "zero-filled-middle" or hdf5_structure_problem(path)
    before = _snapshot(tmp_path)
    for argv in (
        ["report", str(path), "--out", str(tmp_path / "r.html")],
        ["mc", "--trials", "3", "--sweep", "scheme=refine,krylov", "--engine", "nodal", "--seed",
         "1", "--max-passes", "4", "--workers", "1", "--out", str(path), "--resume"],
    ):  # fmt: skip
        code, lines, seconds = _run(argv, capsys)
        _one_line_exit_2(code, lines, seconds, "damaged")
    assert _snapshot(tmp_path) == before


def _sleep_in_c(path):
    """A reader stuck where no Python signal handler runs (like HDF5's loop)."""
    import ctypes

    ctypes.CDLL(None).sleep(60)


def _crash(path):
    import faulthandler

    faulthandler.disable()  # pytest's handler would print the child's stack
    os.kill(os.getpid(), signal.SIGSEGV)


def _refuse(path):
    raise InputError(f"{path}: not mine")


def test_read_untrusted_returns_raises_and_refuses_what_hangs_or_crashes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"anything")
    assert read_untrusted(path, lambda p, k: (p.name, k, np.arange(3)), 7)[:2] == ("f.bin", 7)
    with pytest.raises(InputError, match="not mine"):
        read_untrusted(path, _refuse)
    start = time.perf_counter()
    with pytest.raises(DamagedFileError, match="did not finish within 1 s"):
        read_untrusted(path, _sleep_in_c, timeout=1)
    assert time.perf_counter() - start < 5
    with pytest.raises(DamagedFileError, match="died .*SIGSEGV"):
        read_untrusted(path, _crash)


def test_the_structure_check_passes_good_files(tmp_path):
    assert hdf5_structure_problem(_results(tmp_path / "r.h5")) is None
    assert hdf5_structure_problem(V1_FILE) is None


# -- 2. checksums that cannot be removed --------------------------------------------------------
def test_a_file_whose_checksums_were_removed_is_refused_not_read_unchecked(tmp_path, capsys):
    path = _results(tmp_path / "r.h5")
    with h5py.File(path, "r+") as f:
        del f.attrs["checksums"]
        f["trials/effective_bits"][0, 0] = 99.0
    code, lines, seconds = _run(["report", str(path), "--out", str(tmp_path / "r.html")], capsys)
    _one_line_exit_2(code, lines, seconds, "checksums were removed")
    with h5py.File(path, "r+") as f:  # every trace it can remove; Fletcher32 stays
        del f.attrs["description_sha256"], f["trials/checksum"], f["timing/checksum"]
        del f["timing"].attrs["sessions_sha256"]
    with pytest.raises(InputError, match="checksums were removed .*Fletcher32"):
        load_results(path)
    assert load_results(V1_FILE).done.all()  # a genuine old file is still read


# -- 3. false successes ------------------------------------------------------------------------
def test_an_impossible_matrix_size_is_refused_before_a_file_exists(tmp_path, capsys):
    out = tmp_path / "r.h5"
    argv = ["mc", "--trials", "2", "--engine", "nodal", "--n", "1000000", "--out", str(out)]
    code, lines, seconds = _run(argv, capsys)
    _one_line_exit_2(code, lines, seconds, "GiB per trial")
    assert "largest n" in lines[0] and not list(tmp_path.iterdir())


def test_a_run_whose_every_trial_failed_exits_2_and_keeps_no_file(tmp_path, capsys):
    out = tmp_path / "r.h5"
    argv = ["--trials", "2", "--engine", "nodal", "--n", "4", "--workers", "1", "--out", str(out),
            "--trial-function", "tests.test_mc_hostile:failing_trial"]  # fmt: skip
    from rerinv.cli.mc import main as mc_main

    assert mc_main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("rerinv mc: error: every trial failed (2 of 2): no file was kept")
    assert "MemoryError" in err[-1] and "Traceback" not in "\n".join(err)
    assert not out.exists() and not list(tmp_path.iterdir())
    _results(out)
    before = out.read_bytes()
    assert mc_main([*argv, "--force"]) == 2 and "is unchanged" in capsys.readouterr().err
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.h5"]


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8786", "", "127.0.0.1:18786/../x", "tcp://host:99999"]
)
def test_a_malformed_scheduler_address_is_one_line(tmp_path, capsys, address):
    argv = ["mc", "--trials", "1", "--engine", "nodal", "--n", "4", "--scheduler", address,
            "--out", str(tmp_path / "r.h5")]  # fmt: skip
    code, lines, seconds = _run(argv, capsys)
    _one_line_exit_2(code, lines, seconds, "is not a Dask scheduler address")
    assert not list(tmp_path.iterdir())


def test_a_huge_sweep_is_refused_up_front_with_its_size(tmp_path, capsys):
    values = ",".join(f"{i}e-6" for i in range(1, 1001))
    argv = ["mc", "--trials", "1", "--engine", "nodal", "--sweep", f"device.sigma_rel={values}",
            "--sweep", f"workload.damping={values}", "--out", str(tmp_path / "r.h5")]  # fmt: skip
    code, lines, seconds = _run(argv, capsys)
    _one_line_exit_2(code, lines, seconds, "1,000,000 points (1000 x 1000 values) x 1 trials")
    assert "split the sweep" in lines[0] and not list(tmp_path.iterdir())


# -- Dask: a scheduler without workers, a scheduler or worker that dies ------------------------
def _dask(*words: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + words[0], *words[1:]],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


@pytest.fixture
def scheduler(tmp_path):
    """A ``dask scheduler`` process; yields (its address, its process)."""
    file = tmp_path / "scheduler.json"
    process = _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(file))  # fmt: skip
    deadline = time.monotonic() + 30
    while not file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    import json

    address = json.loads(file.read_text())["address"]
    file.unlink()
    yield address, process
    for child in (process,):
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@pytest.fixture
def fast_dask(monkeypatch):
    import rerinv.studies.mc.runners as runners

    monkeypatch.setattr(runners, "SCHEDULER_TIMEOUT", "2s")
    monkeypatch.setattr(runners, "WORKER_TIMEOUT", 2.0)


def test_a_scheduler_without_workers_times_out_with_a_message(tmp_path, scheduler, fast_dask):
    out = tmp_path / "r.h5"
    start = time.perf_counter()
    with pytest.raises(InputError, match="has no worker .*start one with: dask worker"):
        run_monte_carlo(_spec(), out, scheduler=scheduler[0], trial_fn=slow_trial, stream=QUIET)
    assert time.perf_counter() - start < 10 and not out.exists()


@pytest.mark.parametrize("victim", ["scheduler", "worker"])
def test_a_lost_cluster_exits_2_and_the_run_resumes(tmp_path, scheduler, fast_dask, victim):
    address, scheduler_process = scheduler
    worker = _dask("worker", address, "--nthreads", "1", "--no-dashboard")
    try:
        out = tmp_path / "r.h5"
        stored = threading.Event()

        class Progress:  # the driver's progress lines: the first comes after 4 of 40 trials
            def write(self, text):
                if "/40 trials" in text:
                    stored.set()

            def flush(self):
                pass

        def kill_after_some_trials():
            if stored.wait(30):
                target = scheduler_process if victim == "scheduler" else worker
                os.killpg(target.pid, signal.SIGKILL)

        spec = _spec(trials=20)
        start = time.perf_counter()
        threading.Thread(target=kill_after_some_trials, daemon=True).start()
        with pytest.raises(RerinvError) as info:
            run_monte_carlo(spec, out, scheduler=address, trial_fn=slow_trial, stream=Progress(),
                            command_line="rerinv mc ...")  # fmt: skip
        stored.set()
        message = str(info.value)
        assert "\n" not in message and "resume with: rerinv mc ... --resume" in message
        assert time.perf_counter() - start < 40
        results = load_results(out)  # closed cleanly, resumable
        assert 0 < results.done.sum() < results.done.size
        assert results.sessions[-1]["interrupted"]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    summary = run_monte_carlo(spec, out, workers=1, resume=True, trial_fn=slow_trial, stream=QUIET)
    assert summary.stored == summary.total


# -- 4. leaks and files ------------------------------------------------------------------------
def test_a_killed_mc_force_leaves_a_temporary_file_the_next_run_removes(tmp_path):
    out = _results(tmp_path / "r.h5")
    before = out.read_bytes()
    argv = [sys.executable, "-m", "rerinv.cli.mc", "--trial-function",
            "tests.test_mc_hostile:slow_trial", "--trials", "50", "--engine", "nodal", "--n", "4",
            "--workers", "1", "--out", str(out), "--force"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".r.h5.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    driver.kill()
    driver.wait()
    (temporary,) = tmp_path.glob(".r.h5.*")
    assert f"-{driver.pid}." in temporary.name and out.read_bytes() == before
    run_monte_carlo(_spec(2), out, workers=1, force=True, trial_fn=quick_trial, stream=QUIET)
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"] and out.read_bytes() != before


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """The free-space check of the store finds the disk full after the first trial (the
    device's free space is injected; a real full disk is the tmpfs test below)."""
    import rerinv.studies.mc.store as store
    from rerinv.cli.mc import main as mc_main

    free = iter([10 * store.ROOM, 10 * store.ROOM, 1024])
    statvfs = os.statvfs

    def shrinking(path):
        statvfs(path)  # the folder exists
        return type("S", (), {"f_bavail": next(free, 1024), "f_frsize": 1})

    monkeypatch.setattr(store.os, "statvfs", shrinking)
    out = tmp_path / "r.h5"
    argv = ["--trials", "4", "--engine", "nodal", "--n", "4", "--workers", "1", "--out", str(out),
            "--trial-function", "tests.test_mc_hostile:quick_trial"]  # fmt: skip
    assert mc_main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"rerinv mc: error: cannot write {out}: no space left on device (1 KiB free); nothing was "
        "kept"
    )
    assert "Traceback" not in err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("room", ["kept", "none"])
def test_a_full_tmpfs_is_one_line_and_leaves_nothing(tmp_path, room):
    """A real full disk: a tmpfs of 1.2 MiB (needs root; skipped otherwise). ``kept``: the
    store refuses to write once less than ``ROOM`` (1 MiB) is free; ``none`` (ROOM = 0): HDF5
    itself runs into the full disk, and the command exits at once."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1224k", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        old = disk / "r.h5"
        old.write_bytes(b"an earlier run")
        argv = ["--trial-function", "tests.test_mc_hostile:quick_trial", "--trials", "3000",
                "--engine", "nodal", "--n", "4", "--max-passes", "30", "--workers", "1",
                "--out", str(old), "--force"]  # fmt: skip
        code = (
            "import sys, rerinv.studies.mc.store as store; store.ROOM = 0 if sys.argv[1] == "
            "'none' else store.ROOM; from rerinv.cli.mc import main; sys.exit(main(sys.argv[2:]))"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", code, room, *argv], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        lines = [line for line in run.stderr.splitlines() if "trials/s" not in line]
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
        start = f"rerinv mc: error: cannot write {old}: no space left on device"
        assert len(lines) == 1 and lines[0].startswith(start), lines
        assert lines[0].endswith(f"nothing was kept ({old} is unchanged)"), lines
        assert [p.name for p in disk.iterdir()] == [
            "r.h5"
        ] and old.read_bytes() == b"an earlier run"
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# -- 5. help -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["mc", "report"])
def test_help_has_a_description(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: rerinv {command}") and len(description.split()) > 10
