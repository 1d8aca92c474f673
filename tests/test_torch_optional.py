"""PyTorch is optional: without it rerinv imports and works, ``rerinv.torch``'s names say how
to install it, and its example exits 2 with one line. Runs with or without PyTorch installed
(a child interpreter blocks the ``torch`` import)."""

from __future__ import annotations

import subprocess
import sys

BLOCK = "import sys; sys.modules['torch'] = None\n"


def child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120
    )


def test_rerinv_imports_without_torch() -> None:
    done = child(
        "import rerinv, rerinv.nn, rerinv.torch, rerinv.torch.backend\n"
        "from rerinv.torch import inverse_backend\n"
        "print(inverse_backend('kbit', bits=8).name)\n"
        "try:\n"
        "    from rerinv.torch import KfacPreconditioner\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "quantised-8"
    assert lines[1].startswith("ImportError: rerinv.torch needs PyTorch")
    assert "pip install 'rerinv[torch]'" in lines[1]


def test_example_without_torch_is_one_line_exit_2() -> None:
    done = child(
        "import runpy\n"
        "sys.argv = ['example', '--steps', '1']\n"
        "runpy.run_module('rerinv.torch.example', run_name='__main__')\n"
    )
    assert done.returncode == 2
    assert done.stderr.startswith("rerinv: error: rerinv.torch needs PyTorch")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
