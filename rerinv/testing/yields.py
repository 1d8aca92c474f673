"""Monte Carlo yield of a testbench: the trials' outcomes gathered from every pytest worker,
the share that met the spec with its Wilson interval, and the verdict against the stated
threshold.

A trial's outcome depends only on its seed, never on which worker ran it or in which order,
so ``pytest -n K`` gives the yields of a serial run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

from rerinv.studies.report.stats import wilson_interval


@dataclass(frozen=True)
class Verdict:
    testbench: str  #: the test function (file::name[parameters other than the trial])
    trials: int  #: trials that ran to an outcome
    met: int  #: trials that met the spec
    min_yield: float  #: the stated threshold
    low: float  #: Wilson interval of the yield at ``confidence``
    high: float
    confidence: float
    missed_seeds: tuple[int, ...]  #: seeds of the trials that missed, to reproduce them
    errored: int = 0  #: of the missed: trials whose test failed for another reason (a bug)

    @property
    def value(self) -> float:
        return self.met / self.trials if self.trials else math.nan

    @property
    def passed(self) -> bool:
        """The measured yield reaches the threshold (the interval is reported, not tested)."""
        return self.trials > 0 and self.value >= self.min_yield

    def to_dict(self) -> dict:
        return {**asdict(self), "yield": self.value, "passed": self.passed}


def verdicts(records: list[dict]) -> list[Verdict]:
    """One verdict per testbench, from the trial records (dicts with ``testbench``, ``met``,
    ``seed``, ``min_yield``, ``confidence``), sorted by testbench."""
    grouped: dict[str, list[dict]] = {}
    for record in records:
        grouped.setdefault(record["testbench"], []).append(record)
    out = []
    for name in sorted(grouped):
        group = sorted(grouped[name], key=lambda r: r["trial"])
        met = sum(bool(r["met"]) for r in group)
        confidence = group[0]["confidence"]
        z = NormalDist().inv_cdf((1 + confidence) / 2)
        low, high = wilson_interval(met, len(group), z)
        missed = tuple(r["seed"] for r in group if not r["met"])
        errored = sum(bool(r.get("error")) for r in group)
        out.append(Verdict(name, len(group), met, group[0]["min_yield"], low, high, confidence,
                           missed, errored))  # fmt: skip
    return out


def table(results: list[Verdict]) -> list[str]:
    """The lines of the yield table pytest prints at the end of the session."""
    width = max([len("testbench"), *(len(v.testbench) for v in results)])
    lines = [f"{'testbench':<{width}} {'trials':>6} {'met':>4} {'yield':>6} {'interval':>13} "
             f"{'needed':>6}  verdict"]  # fmt: skip
    for v in results:
        interval = f"[{v.low:.2f}, {v.high:.2f}]"
        verdict = "pass" if v.passed else "FAIL"
        lines.append(
            f"{v.testbench:<{width}} {v.trials:>6} {v.met:>4} {v.value:>6.2f} {interval:>13} "
            f"{v.min_yield:>6.2f}  {verdict}"
        )
        if not v.passed and v.missed_seeds:
            shown = ", ".join(map(str, v.missed_seeds[:8]))
            more = " ..." if len(v.missed_seeds) > 8 else ""
            lines.append(f"    missed by the trials with seeds {shown}{more}")
        if v.errored:
            lines.append(f"    {v.errored} of them failed with an error, not a missed spec "
                         "(see the failures above)")  # fmt: skip
    if results:
        lines.append(f"interval: Wilson score at {results[0].confidence:.0%} confidence")
    return lines
