"""What the rerinv pytest plugin costs a test session that does not use it: the same session
of plain tests (no rerinv fixture or marker), run with the plugin (it loads from the
``pytest11`` entry point wherever rerinv is installed) and without it (``-p no:rerinv``),
alternating, each in a fresh process.

    .venv/bin/python benchmarks/plugin_overhead.py [--tests 500] [--runs 15] [--json FILE]

Prints min / median / max wall time of both and their paired median difference, next to the
run-to-run spread of one kind of session; writes JSON
(default results/bench_plugin_overhead.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("k", range({count}))
def test_plain(k):
    assert k * k >= 0
"""


def _session(folder: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500, help="plain tests in the session")
    parser.add_argument("--runs", type=int, default=15, help="sessions of each kind")
    parser.add_argument("--json", default="results/bench_plugin_overhead.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text(PLAIN_TESTS.format(count=args.tests))
        _session(folder, [])  # warm the file cache
        times: dict[str, list[float]] = {"with plugin": [], "without (-p no:rerinv)": []}
        for run in range(args.runs):  # alternating which goes first: no position bias
            order = [("with plugin", []), ("without (-p no:rerinv)", ["-p", "no:rerinv"])]
            for name, extra in order[:: 1 if run % 2 else -1]:
                times[name].append(_session(folder, extra))
    with_, without = times.values()
    paired = [a - b for a, b in zip(with_, without, strict=True)]
    print(f"{args.tests} plain tests, {args.runs} sessions each, wall time (s)")
    print(f"{'session':<26} {'min':>7} {'median':>7} {'max':>7}")
    for name, values in times.items():
        print(f"{name:<26} {min(values):7.3f} {statistics.median(values):7.3f} {max(values):7.3f}")
    spread = statistics.median(abs(w - statistics.median(without)) for w in without)
    difference = statistics.median(paired) * 1e3
    print(f"paired difference (with - without): median {difference:+.1f} ms; run-to-run spread "
          f"of a session (median |deviation|) {spread * 1e3:.1f} ms")  # fmt: skip
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "tests": args.tests, "runs": args.runs, "times": times,
        "paired_median_difference": statistics.median(paired), "spread": spread,
        "python": platform.python_version(), "command": " ".join(sys.argv),
    }, indent=1) + "\n")  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
