"""What the transistor-level SKY130 amplifiers cost ngspice, against the macro-model netlist.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sky130.py [--sizes 64 256] [--repeats 3]
        [--chain 64] [--json results/bench_sky130.json]

1. INV operating point (``--sizes``): the INV crossbar of ``wishart_factor(N, seed=N)`` with
   ``--preset sky130`` (2N OTAs, 8 transistors each, compact FET cells) and the same crossbar
   with the single-pole macro-model: parse time (wall, the engine's ``load``) and one solve
   of the loaded circuit at its planned inputs (process CPU: ``op`` and the read-out, median of
   ``repeats`` after a first one), on the loaded ngspice's solver (KLU when it has it), and
   the process's resident memory growth while the circuit is loaded.
2. Corner sweep: ``rerinv amplifier`` (characterisation testbench, 200 mismatch draws) at
   tt, ss, ff, sf, fs (wall seconds each).
3. Full chain (``--chain N``, 0 skips): ``rerinv solve --preset sky130 --engine spice`` on
   ``wishart_factor(N, seed=N)`` (auto scheme, analog residual): bits, passes, wall seconds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import rerinv.engines.ngspice as ngm
from rerinv.analog.inv import build_preconditioner, input_gain
from rerinv.config import Config, load_config
from rerinv.engines import get_engine
from rerinv.engines.amplifier import characterise
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.provenance import provenance


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def operating_point(n: int, repeats: int) -> list[dict]:
    rows = []
    a, b = wishart_factor(n, seed=n), random_rhs(n, seed=n + 1)
    for name, config in (
        ("sky130 transistors", load_config(None, [], preset="sky130")),
        (
            "single-pole macro-model",
            load_config(None, ["opamp.model=single_pole"], preset="sky130"),
        ),
    ):
        inv = build_preconditioner(a, config, seed=0)  # stabilised where 8 bits are not
        inputs = input_gain(inv, b) * b
        before = _rss_mb()
        start = time.perf_counter()
        session = get_engine("spice").load(inv.circuit)
        parse = time.perf_counter() - start
        session.solve(inputs)
        times = []
        for _ in range(repeats):  # same inputs: each solve is one `op` and the read-out
            start = time.process_time()
            session.solve(inputs)
            times.append(time.process_time() - start)
        memory = _rss_mb() - before
        equations = ngm._command("rusage equations").split("=")[-1].strip()
        session.close()
        rows.append(
            {"n": n, "netlist": name, "equations": equations, "parse_s": parse,
             "op_cpu_s": statistics.median(times), "memory_mb": memory}
        )  # fmt: skip
    return rows


def corner_sweep() -> list[dict]:
    rows = []
    for corner in ("tt", "ss", "ff", "sf", "fs"):
        start = time.perf_counter()
        c = characterise(corner, mismatch_trials=200, seed=0)
        rows.append(
            {"corner": corner, "wall_s": time.perf_counter() - start, "dc_gain": c.dc_gain,
             "gbw_hz": c.gbw, "offset_v": c.offset, "offset_sigma_v": c.offset_sigma}
        )  # fmt: skip
    return rows


def chain(n: int) -> dict:
    from rerinv.schemes import solve

    config = load_config(None, ["simulation.engine=spice"], preset="sky130")
    start = time.perf_counter()
    r = solve(wishart_factor(n, seed=n), random_rhs(n, seed=n + 1), config, seed=0)
    return {
        "n": n, "status": r.status, "effective_bits": r.effective_bits, "passes": r.passes,
        "inv_solves": r.inv_solves, "vmm_ops": r.vmm_ops, "wall_s": time.perf_counter() - start,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chain", type=int, default=64, help="N of the full chain; 0 skips")
    parser.add_argument("--json", default="results/bench_sky130.json")
    args = parser.parse_args()
    Config()  # configuration imports fine before ngspice starts
    print(f"ngspice {ngm.ngspice_version()}, solver {ngm.ngspice_solver()}")
    ops = [row for n in args.sizes for row in operating_point(n, args.repeats)]
    print(f"\n{'N':>5} {'netlist':<24} {'equations':>9} {'parse s':>8} {'op CPU s':>9} {'MB':>7}")
    for r in ops:
        print(
            f"{r['n']:>5} {r['netlist']:<24} {r['equations']:>9} {r['parse_s']:>8.3f} "
            f"{r['op_cpu_s']:>9.4f} {r['memory_mb']:>7.0f}"
        )
    for n in args.sizes:
        macro = next(r for r in ops if r["n"] == n and r["netlist"].startswith("single"))
        t = next(r for r in ops if r["n"] == n and r["netlist"].startswith("sky130"))
        ratio = t["op_cpu_s"] / macro["op_cpu_s"]
        print(f"N = {n}: transistor-level op / macro-model op = {ratio:.1f}x")
    corners = corner_sweep()
    print(
        f"\n{'corner':>6} {'wall s':>7} {'gain':>8} {'GBW MHz':>8} {'offset uV':>9} {'sigma mV':>8}"
    )
    for r in corners:
        print(
            f"{r['corner']:>6} {r['wall_s']:>7.2f} {r['dc_gain']:>8.0f} {r['gbw_hz'] / 1e6:>8.2f} "
            f"{r['offset_v'] * 1e6:>9.1f} {r['offset_sigma_v'] * 1e3:>8.3f}"
        )
    full = chain(args.chain) if args.chain else None
    if full:
        print(
            f"\nchain N = {full['n']}: {full['status']}, {full['effective_bits']:.2f} bits in "
            f"{full['passes']} passes ({full['inv_solves']} INV solves, "
            f"{full['vmm_ops']} VMM ops), "
            f"{full['wall_s']:.1f} s"
        )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"operating_point": ops, "corners": corners, "chain": full,
              "provenance": provenance(shlex.join(sys.argv))}  # fmt: skip
    out.write_text(json.dumps(record, indent=2, default=float) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
