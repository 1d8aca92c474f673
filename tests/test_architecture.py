"""The package's shape: the import-linter layers contract (``[tool.importlinter]`` in
pyproject.toml), module size, and the command line kept in ``rerinv.cli``.

Pure Python, no ngspice: the import graph comes from import-linter and the source's AST.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rerinv"
CLI = PACKAGE / "cli"
GLUE = {PACKAGE / "__main__.py"}  # ``python -m rerinv`` is the command line: it imports rerinv.cli

MAX_LINES = 400  # a longer module is split by role, not waived


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path`` (function-level ones too), relative
    imports resolved against the module's package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(path.relative_to(ROOT).parent.parts)  # also right for __init__.py
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def lint_imports() -> list[str]:
    script = Path(sys.executable).with_name("lint-imports")
    if script.exists():
        return [str(script)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return [found]


def test_import_layers_contract() -> None:
    """``lint-imports`` keeps the layers contract; its report is the failure message."""
    done = subprocess.run(
        [*lint_imports(), "--no-logo", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"import-linter:\n{done.stdout}\n{done.stderr}"


def test_modules_are_short() -> None:
    too_long = []
    for path in modules():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long.append(f"{relative(path)}: {lines} lines")
    assert not too_long, f"modules over {MAX_LINES} lines; split them:\n" + "\n".join(too_long)


def test_argparse_only_in_cli() -> None:
    offenders = [
        f"{relative(path)}:{line}"
        for path in modules()
        if CLI not in path.parents
        for line, name in imported_modules(path)
        if name == "argparse" or name.startswith("argparse.")
    ]
    assert not offenders, "argparse belongs in rerinv/cli/ only:\n" + "\n".join(offenders)


def test_nothing_imports_the_cli() -> None:
    offenders = [
        f"{relative(path)}:{line} imports {name}"
        for path in modules()
        if CLI not in path.parents and path not in GLUE
        for line, name in imported_modules(path)
        if name == "rerinv.cli" or name.startswith("rerinv.cli.")
    ]
    assert not offenders, "only rerinv/cli (and __main__) may import rerinv.cli:\n" + "\n".join(
        offenders
    )


def test_import_scanner_sees_known_imports() -> None:
    """The AST scan is not vacuous: it finds the CLI's own argparse and __main__'s import."""
    assert any(name == "argparse" for _, name in imported_modules(CLI / "__init__.py"))
    assert any(name == "rerinv.cli" for _, name in imported_modules(PACKAGE / "__main__.py"))
