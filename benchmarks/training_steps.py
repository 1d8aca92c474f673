"""Milliseconds per optimizer step of each benchmark network (``rerinv.nn.benchmarks``) with
each K-FAC inverse backend and the first-order baselines, training only (the full-set
evaluation excluded), on the nodal engine with the training defaults.

    .venv/bin/python benchmarks/training_steps.py [--steps 20] [--networks mlp,cnn1d,cnn2d]
        [--backends float64,quantised@8,single,refine@16] [--json FILE]

``T_inv = 10`` (``--steps 20``: two inverse updates), batch 256, one BLAS thread, seed 0. For
factors wider than one crossbar (the CNNs' 321-wide A) the table adds the mean seconds per
inverse update and the worst / median bits against the whole factor's inverse. Prints a
table; writes JSON (default results/bench_training_steps.json) with the provenance.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rerinv.provenance import provenance
from rerinv.training.spec import Setting, TrainingSpec, training_config
from rerinv.training.train import limit_threads, run_seed, spec_dataset, train_run


def _setting(name: str, spec: TrainingSpec) -> Setting:
    if name in ("sgd", "adam"):
        return Setting(name, lr={"sgd": 0.3, "adam": 0.01}[name])
    kind, _, bits = name.partition("@")
    return Setting("kfac", kind, float(bits) if bits else None, damping=spec.damping[0])


def measure(network: str, name: str, steps: int) -> dict:
    spec = replace(TrainingSpec(network=network, hidden=() if network != "mlp" else (32,)),
                   steps=steps, eval_every=steps)  # fmt: skip
    data = spec_dataset(spec)
    start = time.perf_counter()
    record = train_run(spec, _setting(name, spec), training_config(), seed=run_seed(0, 0),
                       dataset=data)  # fmt: skip
    wide = [e for e in record.events if e.size > 256]
    return {
        "network": network,
        "setting": name,
        "ms_per_step": 1e3 * float(record.wall_time[-1]) / steps,
        "run_s": time.perf_counter() - start,
        "wide_inverse_s": float(np.mean([e.wall_time for e in wide])) if wide else None,
        "wide_min_bits": float(min(e.min_bits for e in wide)) if wide else None,
        "wide_median_bits": float(np.median([e.median_bits for e in wide])) if wide else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--networks", default="mlp,cnn1d,cnn2d")
    parser.add_argument("--backends", default="float64,quantised@8,single,refine@16,sgd,adam")
    parser.add_argument("--json", default="results/bench_training_steps.json")
    args = parser.parse_args()
    rows = []
    print(f"{'network':8s} {'setting':12s} {'ms/step':>9s} {'wide inv s':>10s} {'bits':>11s}")
    with limit_threads():
        for network in args.networks.split(","):
            for name in args.backends.split(","):
                row = measure(network, name, args.steps)
                rows.append(row)
                wide = ""
                if row["wide_inverse_s"]:
                    wide = (f"{row['wide_inverse_s']:10.2f} {row['wide_min_bits']:5.1f} / "
                            f"{row['wide_median_bits']:4.1f}")  # fmt: skip
                print(f"{network:8s} {name:12s} {row['ms_per_step']:9.1f} {wide}", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(
        {"provenance": provenance(shlex.join([sys.executable, *sys.argv])), "rows": rows},
        indent=2))  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
