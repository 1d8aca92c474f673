"""What costs ngspice time and memory on a crossbar, measured on netlist variants.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ngspice_costs.py [--n 256] [--repeats 5]
        [--json results/bench_ngspice_costs.json]

1. Operating point (raw `op` of a loaded INV crossbar of ``wishart_factor(N, seed=N)``, process
   CPU seconds, median and best of ``repeats`` per round, 3 interleaved rounds) of the netlist
   rerinv writes against two variants: the op-amps with a series offset source (the models
   before this change: one more node and branch per amplifier) and the crossbar resistors
   written last first.
2. A railed batch: 2 input vectors that drive a 128 x 128 VMM's amplifiers to the rails,
   against 2 that do not (wall seconds of one `solve_batch`; the railed one raises).
3. Memory: resident-set growth per loaded, solved 128-wide INV circuit (5 loaded, measured
   first, before freed ngspice memory could be reused).
4. Agreement: every crossbar of the N = 256 BlockAMC machine on 128-wide crossbars, driven by
   the DAC voltages of its first read, on ngspice and nodal (largest relative difference).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import rerinv.engines.ngspice as ngm
from rerinv.analog.blocks import crossbar_snapshots
from rerinv.analog.inv import build_inv
from rerinv.analog.vmm import build_vmm
from rerinv.config import Config
from rerinv.engines import get_engine
from rerinv.errors import SaturationError
from rerinv.hw.circuit import inv_crossbar
from rerinv.hw.netlist import to_spice
from rerinv.matrices import random_rhs, wishart_factor
from rerinv.provenance import provenance

SERIES_OFFSET = (  # the single-pole model as it was: offset as a series source
    "Gp 0 p inp inn {gain}\nIos p 0 {gain*vos}",
    "Vos inp ip {vos}\nGp 0 p ip inn {gain}",
)


def _variants(text: str) -> dict[str, str]:
    lines = text.splitlines()
    cell = [k for k, line in enumerate(lines) if re.match(r"R\d+ r\d+ n?x\d+ ", line)]
    backward = [lines[k] for k in cell][::-1]
    reversed_text = "\n".join(lines[: cell[0]] + backward + lines[cell[-1] + 1 :])
    assert SERIES_OFFSET[0] in text
    return {
        "as written": text,
        "series offset source": text.replace(*SERIES_OFFSET),
        "resistors last first": reversed_text,
    }


def operating_points(n: int, repeats: int) -> list[dict]:
    config = Config()
    inv = build_inv(wishart_factor(n, seed=n), config, seed=0, scaling="ruiz")
    variants = _variants(to_spice(inv_crossbar(inv.arrays, config), options="klu"))
    ng = ngm.ngspice()
    times: dict[str, list[float]] = {name: [] for name in variants}
    equations = {}
    for _ in range(3):
        for name, text in variants.items():
            ng.load_circuit(text)
            ng.exec_command("op")
            for _ in range(repeats):
                start = time.process_time()
                ng.exec_command("op")
                times[name].append(time.process_time() - start)
            equations[name] = ng.exec_command("rusage equations").split("=")[-1].strip()
            ng.exec_command("remcirc")
    return [
        {"variant": name, "equations": equations[name], "median_cpu_s": statistics.median(t),
         "best_cpu_s": min(t)}
        for name, t in times.items()
    ]  # fmt: skip


def railed_batch() -> dict:
    rng = np.random.default_rng(0)
    vmm = build_vmm(rng.uniform(-1, 1, (128, 128)), Config(), seed=0)
    out = {}
    for name, scale in (("unrailed", 0.01), ("railed", 1.0)):
        with get_engine("spice").load(vmm.circuit, batches=True) as session:
            session.solve_batch(rng.uniform(-0.01, 0.01, (2, 128)))  # parse the batch variant
            start = time.perf_counter()
            try:
                session.solve_batch(rng.uniform(-1, 1, (2, 128)) * scale)
                out[f"{name}_raised"] = False
            except SaturationError:
                out[f"{name}_raised"] = True
            out[f"{name}_s"] = time.perf_counter() - start
    return out


def memory_per_circuit() -> float:
    def rss_mb():
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6

    inv = build_inv(wishart_factor(128, seed=128), Config(), seed=0, scaling="ruiz")
    engine = get_engine("spice")
    engine.load(inv.circuit).solve(np.zeros(128))
    before, sessions = rss_mb(), []
    for _ in range(5):
        sessions.append(engine.load(inv.circuit))
        sessions[-1].solve(np.zeros(128))
    per = (rss_mb() - before) / 5
    for session in sessions:
        session.close()
    return per


def agreement(n: int = 256, width: int = 128) -> float:
    config = Config().with_overrides([f"array.max_size={width}"])
    worst = 0.0
    for snap in crossbar_snapshots(wishart_factor(n, seed=n), random_rhs(n, seed=n + 1), config):
        with get_engine("spice").load(snap.circuit) as session:
            spice = session.solve()
        nodal = get_engine("nodal").load(snap.circuit).solve()
        worst = max(worst, float(np.max(np.abs(spice - nodal)) / np.max(np.abs(nodal))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="results/bench_ngspice_costs.json")
    args = parser.parse_args()
    ngm.set_ngspice_solver("klu")
    memory = memory_per_circuit()
    print(f"memory per loaded 128-wide INV circuit: {memory:.1f} MB")
    print(f"ngspice {ngm.ngspice_version()} (KLU); N = {args.n} INV operating point, CPU s")
    ops = operating_points(args.n, args.repeats)
    for r in ops:
        print(f"  {r['variant']:<22} {r['equations']:>6} equations  median {r['median_cpu_s']:.4f}"
              f"  best {r['best_cpu_s']:.4f}")  # fmt: skip
    railed = railed_batch()
    print(f"128 x 128 VMM, 2 vectors: unrailed {railed['unrailed_s']:.2f} s, railed "
          f"{railed['railed_s']:.2f} s (raised: {railed['railed_raised']})")  # fmt: skip
    worst = agreement()
    print(f"N = 256 BlockAMC crossbars, ngspice vs nodal: {worst:.1e} (largest relative diff)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "provenance": provenance(shlex.join(["benchmarks/ngspice_costs.py", *sys.argv[1:]])),
        "operating_points": ops, "railed_batch": railed, "memory_mb_per_inv128": memory,
        "blockamc256_agreement": worst,
    }, indent=1) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
