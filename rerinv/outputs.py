"""Output files that never destroy what the user did not ask to destroy.

Every command that writes a file goes through this module:

- :func:`check_output` (before any long computation): the path is not one of the command's
  inputs (not even with ``--force``), does not exist unless ``force``, is not a folder, and a
  file can really be created in its folder (created and removed, so a read-only or missing
  folder is reported in one line before minutes of work, not after);
- :func:`atomic_write` / :func:`replacing`: the content goes to a temporary file in the same
  folder, which replaces the target with one ``os.replace`` only when it is complete; an error
  or an interruption leaves the old file (or no file) and removes the temporary one.

A temporary file is named ``.<name>.<host>-<pid>.<random>.tmp<suffix>`` (:func:`temporary_sibling`):
a process killed outright (SIGKILL, power loss) cannot remove it, so the next temporary file
made for the same output on the same host removes those whose process is gone
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from rerinv.errors import InputError

PathLike = str | os.PathLike

#: Added to every "exists" message: how to overwrite on purpose.
FORCE_HINT = "pass --force to replace it, or choose another output"


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(
    path: PathLike,
    *,
    force: bool = False,
    inputs: Iterable[PathLike | None] = (),
    what: str = "--out",
) -> Path:
    """Refuse an output the command must not write; return it as a :class:`Path`.

    Parameters
    ----------
    path : str or PathLike
        The file the command will write.
    force : bool
        Allow replacing an existing file (never an input, never a folder).
    inputs : iterable of paths (None entries are skipped)
        Files the command reads: the output may not be one of them.
    what : str
        How the output is named in messages (an option such as ``--out``).

    Raises
    ------
    InputError
        One line: the output is an input, exists (without ``force``), is a folder, or its
        folder cannot be created or written.
    """
    path = Path(path)
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise InputError(
                f"{what} {path} is also an input of this command ({source}); write the output "
                "to another file"
            )
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"{what} {path} exists; {FORCE_HINT}")
    check_writable_folder(path.parent, what=f"{what} {path}")
    return path


def check_writable_folder(folder: PathLike, *, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it (by creating and
    removing one); :class:`InputError` in one line otherwise."""
    folder = Path(folder) if str(folder) else Path(".")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(f"{what}: cannot write into {folder}: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rerinv-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{what}: cannot write into {folder} ({reason})") from None
    return folder


def check_output_folder(
    folder: PathLike,
    names: Iterable[str],
    *,
    force: bool = False,
    inputs: Iterable[PathLike | None] = (),
    what: str = "--out",
) -> Path:
    """:func:`check_output` for each file ``names`` a command writes into ``folder``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file, not a folder; choose a folder")
    inputs = list(inputs)
    for name in names:
        check_output(folder / name, force=force, inputs=inputs, what=f"{what} {folder}:")
    return folder


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def temporary_sibling(path: PathLike, *, create: bool = True) -> Path:
    """A new temporary file beside ``path``, named after it, this host and this process
    (``.<name>.<host>-<pid>.<random>.tmp<suffix>``), after removing the stale temporaries of
    ``path`` (:func:`remove_stale_temporaries`). ``create=False`` returns an unused name
    without the file (for writers that must create it themselves)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, name = tempfile.mkstemp(
            dir=folder,
            prefix=f".{path.name}.{_host()}-{os.getpid()}.",
            suffix=f".tmp{path.suffix}",
        )
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    if not create:
        os.unlink(name)
    return Path(name)


def remove_stale_temporaries(path: PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` left by processes of this host that no longer
    exist (killed before they could clean up); return them. Temporaries of live processes,
    of other hosts and files named otherwise are left alone."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    host = _host()
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.(?P<host>.+)-(?P<pid>[0-9]+)\.[^.]+\.tmp{re.escape(path.suffix)}"
    )
    removed = []
    for candidate in folder.glob(f".{glob.escape(path.name)}.*.tmp*"):
        match = pattern.fullmatch(candidate.name)
        if match is None or match["host"] != host or _process_exists(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def replacing(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same suffix, so tools that infer a format
    from it still work; see :func:`temporary_sibling`); when the block ends without an
    exception it replaces ``path`` atomically, otherwise it is removed and ``path`` is
    untouched."""
    path = Path(path)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        _fsync(temporary)
        with contextlib.suppress(OSError):  # mkstemp made it 0600: give it a new file's mode
            os.chmod(temporary, _mode_of(path))
        os.replace(temporary, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def atomic_write(path: PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through :func:`replacing`."""
    path = Path(path)
    with replacing(path) as temporary:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)
    return path


def _mode_of(path: Path) -> int:
    """The permission bits ``path`` should get: those of the file it replaces, else those of
    a new file under this process's umask (``0o666 & ~umask``)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
