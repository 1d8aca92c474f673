"""``python -m rerinv.cli.golden --regenerate-golden | --check``: the golden step-response
waveforms in ``waveforms/`` (see ``waveforms/README.md``)."""

from __future__ import annotations

import argparse
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    """``python -m rerinv.cli.golden``: regenerate or check the golden waveforms."""
    from rerinv.studies.transient import (
        GOLDEN_CASES,
        GOLDEN_DIR,
        compare_to_golden,
        golden_path,
        read_waveforms,
        regenerate_golden,
    )

    parser = argparse.ArgumentParser(
        prog="python -m rerinv.cli.golden", description="Golden step-response waveforms."
    )
    parser.add_argument("--dir", default=str(GOLDEN_DIR), help="folder of the golden files")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--regenerate-golden", action="store_true", help="simulate and write")
    action.add_argument("--check", action="store_true", help="compare the code with the files")
    args = parser.parse_args(argv)
    if args.regenerate_golden:
        command = shlex.join(["python", "-m", "rerinv.cli.golden", "--regenerate-golden",
                              "--dir", args.dir])  # fmt: skip
        for path in regenerate_golden(args.dir, command_line=command):
            _, attrs = read_waveforms(path)
            print(
                f"wrote {path} ({path.stat().st_size} bytes): {attrs['status']}, settling"
                f" {1e6 * attrs['settling_time']:.4g} us, predicted"
                f" {1e6 * attrs['predicted']:.4g} us"
            )
        return 0
    failed = 0
    for kind, n in GOLDEN_CASES:
        result = compare_to_golden(golden_path(kind, n, args.dir))
        failed += not result.passed
        print(
            f"{result.path.name}: max deviation {result.max_deviation:.3g} V at "
            f"{result.worst_node} (tolerance {result.tolerance:g} V) "
            f"{'ok' if result.passed else 'FAILED'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
