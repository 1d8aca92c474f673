"""``python -m rerinv.torch.example`` end to end for a few steps (MNIST-1D made from its seed,
a 1-D CNN, K-FAC with rerinv's inverses against plain SGD), and its one-line errors.

Skips without PyTorch unless ``RERINV_REQUIRE_TORCH=1`` (CI), where a missing torch fails.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

if os.environ.get("RERINV_REQUIRE_TORCH") == "1":
    import torch  # CI: a missing torch fails here instead of skipping
else:
    torch = pytest.importorskip("torch", reason="PyTorch (the extra `torch`) is not installed")

from rerinv.seeds import spawn  # noqa: E402
from rerinv.torch import example  # noqa: E402

FEW = ["--samples", "300", "--batch-size", "20", "--steps", "4", "--every", "2"]


def test_example_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert example.main([*FEW, "--backend", "kbit", "--bits", "6", "--inv-every", "2"]) == 0
    out = capsys.readouterr().out
    assert "MNIST-1D: 240 training and 60 test signals" in out
    assert "6-bit stand-in" in out
    progress = re.findall(r"step +(\d+)/4: K-FAC batch loss ([\d.]+) .*SGD batch loss", out)
    assert [int(step) for step, _ in progress] == [2, 4]
    assert "inverses: 12 made, 0 failed" in out  # 3 layers x 2 factors x 2 updates
    final = re.search(
        r"final test accuracy after 4 steps: K-FAC \(quantised-6\) ([\d.]+), "
        r"SGD ([\d.]+)",
        out,
    )
    assert final is not None and all(0.0 <= float(v) <= 1.0 for v in final.groups())


def test_example_is_reproducible_and_leaves_global_generators_alone() -> None:
    state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    data = example.mnist1d(200, seed=4)
    options = example.parse([*FEW, "--steps", "3", "--every", "3"])
    first = example.compare(data, options, spawn(4, 3))
    again = example.compare(example.mnist1d(200, seed=4), options, spawn(4, 3))
    assert first["kfac"] == again["kfac"] and first["sgd"] == again["sgd"]
    assert np.array_equal(np.random.get_state()[1], state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    other = example.mnist1d(200, seed=5)
    assert not np.array_equal(other.x_train, data.x_train)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--steps", "x"], "--steps takes an integer"),
        (["--lr=0,1"], "--lr takes a number"),
        (["--bogus", "1"], "unknown option '--bogus'"),
        (["--lr"], "--lr needs a value"),
        (["--backend", "magic", "--samples", "100"], "unknown inverse backend 'magic'"),
        (["--backend", "analog", "--engine", "hspice", "--samples", "100"], "unknown engine"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys) -> None:
    assert example.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rerinv: error: ") and message in err and err.count("\n") == 1


def test_help_lists_every_option(capsys) -> None:
    assert example.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"--{name}" in out for name in example.OPTIONS)
