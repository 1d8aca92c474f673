"""``rerinv train`` and ``rerinv train-report`` against a hostile user: the guarantees of
``rerinv mc`` (outputs checked before any work and written atomically, checksums verified on
every read, one line and exit status 2 or 130, workers that die with their parent)."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="training needs the `train` extra (scikit-learn)")

from rerinv.cli import main as rerinv_main  # noqa: E402
from rerinv.training import load_training, run_training, training_config  # noqa: E402
from rerinv.training import results as results_module  # noqa: E402
from rerinv.training import run as run_module  # noqa: E402
from tests.test_training import tiny_spec  # noqa: E402

#: The smallest grid of tests/test_training.py (6 steps, 2 seeds, 8 runs), as CLI options.
TINY = ["--steps", "6", "--seeds", "2", "--inverse-every", "3", "--backends", "float64,quantised"]
TINY += ["--damping", "0.003"]
TINY += ["--bits", "8", "--sgd-lrs", "1", "--adam-lrs", "0.1", "--workers", "1"]
#: How progress lines (stderr, not a terminal) start: they are not messages.
PROGRESS = ("rerinv train [", "rerinv train: resuming")


def rerinv(*args: str) -> int:
    try:
        return rerinv_main(list(args))
    except SystemExit as exc:  # argparse's own errors exit from inside
        return int(exc.code)


def one_line(capsys) -> str:
    """The stderr of the command besides progress lines, which must be exactly one line."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(PROGRESS)]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def listing(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` (hidden temporary files included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A complete training file of the tiny grid (made once; tests copy it)."""
    path = tmp_path_factory.mktemp("trained") / "t.h5"
    run_training(tiny_spec(), training_config(), path, workers=1, stream=sys.stderr)
    return path


@pytest.fixture
def grid(tmp_path, trained) -> Path:
    """A private copy of :func:`trained`."""
    path = tmp_path / "t.h5"
    shutil.copy(trained, path)
    return path


# -- data loss -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--out {d}/t.html exists"),  # the default report beside the input
        (["--out", "{d}/t.h5", "--force"], "is also an input"),
        (["--out", "{d}/r.html", "--steps-json", "{d}/t.h5", "--force"], "is also an input"),
        (["--out", "{d}/r.html", "--steps-json", "{d}/r.html"], "is the same file as --out"),
        (["--steps-json", "{d}/t-steps.json"], "exists"),
    ],
)
def test_train_report_never_replaces_what_it_was_not_asked_to(grid, capsys, args, message):
    folder = grid.parent
    (folder / "t.html").write_text("the user's page")
    (folder / "t-steps.json").write_text("{}")
    before = listing(folder)
    args = [a.format(d=folder) for a in args]
    assert rerinv("train-report", str(grid), *args) == 2
    assert message.format(d=folder) in one_line(capsys)
    assert listing(folder) == before


def test_train_report_with_force_replaces_its_outputs_atomically(grid, capsys):
    (grid.parent / "t.html").write_text("old")
    assert rerinv("train-report", str(grid), "--force") == 0
    assert "<img" in (grid.parent / "t.html").read_text()
    steps = json.loads((grid.parent / "t-steps.json").read_text())
    assert steps["checksums_verified"] is True
    assert sorted(p.name for p in grid.parent.iterdir()) == ["t-steps.json", "t.h5", "t.html"]


def test_train_report_interrupted_writes_nothing(grid, capsys, monkeypatch):
    from rerinv.training import report

    def interrupted(results):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render", interrupted)
    before = listing(grid.parent)
    assert rerinv("train-report", str(grid)) == 130
    assert listing(grid.parent) == before


@pytest.mark.parametrize("existing", ["u.html", "u-steps.json"])
def test_train_refuses_to_replace_files_beside_its_output(tmp_path, capsys, existing):
    (tmp_path / existing).write_text("the user's file")
    before = listing(tmp_path)
    assert rerinv("train", "--out", str(tmp_path / "u.h5"), *TINY) == 2
    assert f"{existing} exists" in one_line(capsys)
    assert listing(tmp_path) == before  # no u.h5 either: refused before the first run


@pytest.mark.parametrize("name", ["x.html", "x", "x-steps.json"])
def test_train_refuses_an_output_that_is_not_hdf5(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr(run_module, "execute_run", _no_run)
    (tmp_path / "x.html").write_text("the user's page")
    before = listing(tmp_path)
    assert rerinv("train", "--out", str(tmp_path / name), *TINY) == 2
    assert "ends in .h5" in one_line(capsys)
    assert listing(tmp_path) == before


def test_train_outputs_may_not_be_the_same_file_or_an_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "execute_run", _no_run)
    out = str(tmp_path / "t.h5")
    assert rerinv("train", "--out", out, *TINY, "--capture-factors", out) == 2
    assert "is the same file as --out" in one_line(capsys)
    assert rerinv("train", "--out", out, *TINY, "--capture-factors", str(tmp_path / "t.html")) == 2
    assert "is the same file as the report" in one_line(capsys)
    config = tmp_path / "hw.h5"
    config.write_text("[device]\n")
    assert rerinv("train", "--out", str(config), *TINY, "--config", str(config), "--force") == 2
    assert "is also an input" in one_line(capsys)
    assert listing(tmp_path) == {"hw.h5": b"[device]\n"}


def test_train_force_replaces_the_old_file_only_when_a_run_succeeded(grid, capsys, monkeypatch):
    old = grid.read_bytes()
    monkeypatch.setattr(run_module, "execute_run", _failed_run)
    assert rerinv("train", "--out", str(grid), *TINY, "--force", "--no-report") == 2
    assert grid.read_bytes() == old
    monkeypatch.undo()
    assert rerinv("train", "--out", str(grid), *TINY, "--force", "--seed", "3") == 0
    assert load_training(grid).spec.master_seed == 3
    assert sorted(p.name for p in grid.parent.iterdir()) == ["t-steps.json", "t.h5", "t.html"]


# -- disk full ---------------------------------------------------------------------------------
def _disk_full_after(monkeypatch, allowed: int) -> list[Path]:
    """From the ``allowed``-th write on, ``Path.write_bytes`` / ``write_text`` write half of
    their data and fail with ENOSPC, as a full file system does; returns the paths tried."""
    tried: list[Path] = []
    real_bytes, real_text = pathlib.Path.write_bytes, pathlib.Path.write_text

    def full(path, data, *args, real, **kwargs):
        tried.append(path)
        if len(tried) <= allowed:
            return real(path, data, *args, **kwargs)
        real(path, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(
        pathlib.Path, "write_bytes", lambda p, d: full(p, d, real=real_bytes)
    )  # fmt: skip
    monkeypatch.setattr(
        pathlib.Path, "write_text", lambda p, d, *a, **k: full(p, d, *a, real=real_text, **k)
    )
    return tried


def test_disk_full_before_the_first_save_leaves_nothing(tmp_path, capsys, monkeypatch):
    """The OSError is injected at the write layer (``Path.write_bytes``)."""
    tried = _disk_full_after(monkeypatch, 0)
    assert rerinv("train", "--out", str(tmp_path / "t.h5"), *TINY) == 2
    err = one_line(capsys)
    assert "No space left on device" in err and "nothing was written" in err
    assert tried and listing(tmp_path) == {}


def test_disk_full_after_a_save_keeps_a_complete_resumable_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "SAVE_INTERVAL", 0.0)  # save after every run
    _disk_full_after(monkeypatch, 3)
    out = tmp_path / "t.h5"
    assert rerinv("train", "--out", str(out), *TINY) == 2
    err = one_line(capsys)
    assert "No space left on device" in err and "--resume" in err
    assert sorted(listing(tmp_path)) == ["t.h5"]  # no temporary file, no report
    assert load_training(out).done.sum() == 3  # the third save, complete and checked
    monkeypatch.undo()  # space freed
    assert rerinv("train", "--out", str(out), *TINY, "--resume") == 0
    assert load_training(out).done.all()


def test_disk_full_while_writing_the_report_removes_what_it_created(grid, capsys, monkeypatch):
    _disk_full_after(monkeypatch, 1)  # the report fits, the steps JSON does not
    before = listing(grid.parent)
    assert rerinv("train-report", str(grid)) == 2
    assert "No space left on device" in one_line(capsys)
    assert listing(grid.parent) == before


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 kB tmpfs (root only): a real full disk, where HDF5 itself fails."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root (the injected disk-full tests still run)")
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_real_full_disk_gives_one_line_and_no_partial_file(tiny_disk):
    cmd = [sys.executable, "-m", "rerinv", "train", "--out", str(tiny_disk / "t.h5"), *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith(PROGRESS)]
    assert len(errors) == 1 and "No space left on device" in errors[0], done.stderr
    assert list(tiny_disk.iterdir()) == []


# -- checksums and damaged files ------------------------------------------------------------------
def _edit(path: Path, edit) -> None:
    with h5py.File(path, "r+") as f:
        edit(f)


def _set(name, index, value):
    def edit(f):
        f[name][index] = value

    return edit


def _del_attr(name):
    def edit(f):
        del f.attrs[name]

    return edit


def _nested_sessions(f):
    f["timing"].attrs["sessions"] = "[" * 100_000 + "]" * 100_000


TAMPERING = {
    "final test accuracy": (
        _set("steps/test_accuracy", (0, -1), 0.5),
        "checksum mismatch in run 0",
    ),
    "status string": (_set("runs/status", 1, "diverged"), "checksum mismatch in run 1"),
    "inverse error": (_set("inverses/error", (2, 0, 0), "x"), "checksum mismatch in run 2"),
    "wall time": (_set("timing/run_time", 3, 1e9), "checksum mismatch in run 3 (/timing)"),
    "done flag": (_set("runs/done", 4, False), "reads as not done"),
    "spec": (_set("spec", (), '{"steps": 6}'), "checksum mismatch in the grid description"),
    "label": (_set("settings/label", 0, "kfac magic"), "checksum mismatch in the grid"),
    "root attribute": (lambda f: f.attrs.modify("command_line", "x"), "grid description"),
    "sessions": (_nested_sessions, "checksum mismatch in the session log"),
    "checksums attribute": (_del_attr("checksums"), "without its checksums attribute"),
    "missing dataset": (lambda f: f.__delitem__("steps/nu"), "damaged training file"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_an_altered_training_file_is_refused_by_report_and_resume(grid, capsys, case):
    edit, message = TAMPERING[case]
    _edit(grid, edit)
    before = listing(grid.parent)
    assert rerinv("train-report", str(grid)) == 2
    assert message in one_line(capsys)
    assert rerinv("train", "--out", str(grid), *TINY, "--resume", "--no-report") == 2
    assert message in one_line(capsys)
    assert listing(grid.parent) == before


def test_a_flipped_byte_of_stored_numbers_fails_fletcher32(grid, capsys):
    with h5py.File(grid, "r") as f:
        offset = f["steps/test_accuracy"].id.get_chunk_info(0).byte_offset
    data = bytearray(grid.read_bytes())
    data[offset + 20] ^= 0x01
    grid.write_bytes(bytes(data))
    assert rerinv("train-report", str(grid)) == 2
    assert "checksum mismatch in /steps/test_accuracy (Fletcher32)" in one_line(capsys)


def _as_version_1(f):
    """A version 2 file relabelled as version 1, its checksums removed (not its filters)."""
    for name in ("checksums", "description_sha256"):
        del f.attrs[name]
    f.attrs["format_version"] = 1
    del f["runs/checksum"], f["timing/checksum"]
    del f["timing"].attrs["sessions_sha256"]


def _legacy(path: Path) -> None:
    """Rewrite ``path`` as rerinv wrote training files before checksums (format version 1:
    the same layout without checksums, filters or the 1.8 object headers)."""
    copy = path.with_suffix(".v1.h5")
    with h5py.File(path, "r") as src, h5py.File(copy, "w") as dst:
        for key, value in src.attrs.items():
            if key not in ("checksums", "description_sha256"):
                dst.attrs[key] = value
        dst.attrs["format_version"] = 1

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.endswith("checksum"):
                dst.create_dataset(name, data=obj[()], dtype=obj.dtype)
            elif isinstance(obj, h5py.Group):
                dst.require_group(name)
            for key, value in obj.attrs.items():
                if key != "sessions_sha256" and name in dst:
                    dst[name].attrs[key] = value

        src.visititems(visit)
    copy.replace(path)


def test_a_file_without_checksums_is_labelled_and_never_resumed(grid, capsys):
    _legacy(grid)
    assert rerinv("train-report", str(grid)) == 0
    captured = capsys.readouterr()
    assert "carries no checksums" in captured.err and "not verified" in captured.err
    assert "Unverified file" in (grid.parent / "t.html").read_text()
    assert json.loads((grid.parent / "t-steps.json").read_text())["checksums_verified"] is False
    assert rerinv("train", "--out", str(grid), *TINY, "--resume", "--no-report") == 2
    assert "can be reported but not resumed" in one_line(capsys)


def test_checksums_removed_and_relabelled_version_1_is_refused(grid, capsys):
    _edit(grid, _as_version_1)
    _edit(grid, _set("steps/test_accuracy", (0, -1), 0.5))
    assert rerinv("train-report", str(grid)) == 2
    assert "its checksums were removed" in one_line(capsys)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_nested_sessions, "damaged training file (RecursionError"),
        (lambda f: f.__delitem__("runs/status"), "damaged training file"),
        (_set("runs/setting", 0, 99), "damaged training file (datasets disagree"),
        (_set("spec", (), "{"), "damaged training file (JSONDecodeError"),
    ],
)
def test_a_damaged_unchecked_file_is_one_line(grid, capsys, edit, message):
    _legacy(grid)
    _edit(grid, edit)
    assert rerinv("train-report", str(grid), "--out", str(grid.parent / "r.html")) == 2
    assert message in one_line(capsys)
    assert not (grid.parent / "r.html").exists()


def test_not_a_training_file_is_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    assert rerinv("train-report", str(junk)) == 2
    assert "cannot open as HDF5" in one_line(capsys)
    assert rerinv("train-report", str(tmp_path)) == 2
    assert "is a folder" in one_line(capsys)


# -- false success ---------------------------------------------------------------------------------
def _no_run(task):
    raise AssertionError("a run started although the command should have been refused")


def _failed_run(task):
    return {"status": "failed", "error": "RuntimeError: broken", "run_time": 0.0, "worker": "w"}


def test_an_impossible_batch_size_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "execute_run", _no_run)
    assert rerinv("train", "--out", str(tmp_path / "t.h5"), *TINY, "--batch-size", "100000000") == 2
    assert "exceeds the 1078 training samples" in one_line(capsys)
    assert listing(tmp_path) == {}


def test_a_grid_whose_every_run_failed_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "execute_run", _failed_run)
    assert rerinv("train", "--out", str(tmp_path / "t.h5"), *TINY) == 2
    err = capsys.readouterr().err.splitlines()
    errors = [line for line in err if line.startswith("rerinv: error")]
    assert errors == [
        f"rerinv: error: every one of the 8 runs failed (the first: RuntimeError: broken); "
        f"nothing was written to {tmp_path / 't.h5'}"
    ]
    assert listing(tmp_path) == {}


# -- workers die with their parent ------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in "ZX"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigkill_of_the_parent_kills_its_workers(tmp_path):
    cmd = [sys.executable, "-m", "rerinv", "train", "--out", str(tmp_path / "t.h5")]
    cmd += ["--steps", "40", "--seeds", "2", "--backends", "single", "--sgd-lrs", "1"]
    cmd += ["--adam-lrs", "0.1", "--workers", "2", "--no-report"]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, workers = time.time() + 60, []
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = [p for p in _children(parent.pid) if "spawn_main" in _cmdline(p)]
        assert len(workers) == 2, "the two workers did not start"
        time.sleep(1.0)  # running a run, not starting up
        parent.kill()
        parent.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        survivors = [p for p in workers if _alive(p)]
    finally:
        parent.kill()
    for pid in survivors:  # leave no process behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- help -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, words", [("train", "Train a small"), ("train-report", "Make")])
def test_help_has_a_description(capsys, command, words):
    assert rerinv(command, "--help") == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert description.startswith(words) and len(description) > 100


def test_checksums_cover_every_stored_dataset(grid):
    """Every dataset of a training file is in a run checksum or the description digest, or is
    a checksum itself (a new dataset must be added to one of them)."""
    covered = {*results_module.CHECKED_FIELDS["runs"], *results_module.CHECKED_FIELDS["timing"]}
    covered |= {*results_module.integrity.DESCRIPTION_DATASETS, "runs/done"}
    covered |= {"runs/checksum", "timing/checksum"}
    names: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            names.append(name)

    with h5py.File(grid) as f:
        f.visititems(visit)
        numeric = [n for n in names if not h5py.check_string_dtype(f[n].dtype)]
        assert all(f[n].fletcher32 for n in numeric)
    assert sorted(names) == sorted(covered)
    assert np.all(load_training(grid).done)


# -- a damaged file that would make HDF5 loop ------------------------------------------------
@pytest.mark.parametrize("command", ["train-report", "train --resume"])
def test_a_training_file_that_would_hang_hdf5_is_refused_in_seconds(grid, capsys, command):
    """Zero the first object of the first global heap (index 0, size 0: HDF5 2.0's reader
    loops on it forever); the file is checked before HDF5 reads it (rerinv.untrusted)."""
    data = bytearray(grid.read_bytes())
    start = data.index(b"GCOL\x01\0\0\0")
    data[start + 16 : start + 32] = bytes(16)
    grid.write_bytes(bytes(data))
    before = listing(grid.parent)
    if command == "train-report":
        argv = ["train-report", str(grid), "--out", str(grid.parent / "r.html")]
    else:
        argv = ["train", "--out", str(grid), "--resume", *TINY]
    started = time.monotonic()
    code = rerinv(*argv)
    assert code == 2 and "damaged training file" in one_line(capsys)
    assert time.monotonic() - started < 10
    assert listing(grid.parent) == before
