"""``rerinv timing``: the system-level timing and energy model (:mod:`rerinv.system`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rerinv.errors import InputError


def register(commands) -> argparse.ArgumentParser:
    """Register ``timing`` on the ``rerinv`` sub-command parsers; returns its parser."""
    from rerinv.system import SWEEP_AXES, arch_names, workload_names

    parser = commands.add_parser(
        "timing",
        help="time and energy of K-FAC training on a ReRAM accelerator vs a GPU and SGD",
        description="Evaluate K-FAC training steps and time-to-train on a ReRAM accelerator "
        "whose INV settling and per-solve costs come from a parameter card, against a GPU "
        "(roofline) running the same K-FAC and SGD, and a first-order ReRAM pipeline. "
        "Writes timing.json and timing.html (with plots) into --out. See docs/timing.md.",
    )
    add = parser.add_argument
    add(
        "--workload",
        action="append",
        metavar="NAME|FILE",
        help=f"built-in ({', '.join(workload_names())}), 'all', 'large', or a layer table "
        ".csv/.toml; repeatable (default: all)",
    )
    add(
        "--arch",
        default="repast",
        metavar="PRESET|FILE",
        help=f"architecture preset ({', '.join(arch_names())}) or TOML file (default repast)",
    )
    add(
        "--card",
        metavar="FILE",
        help="parameter card (default for --arch calibrated: the "
        "shipped card rerinv/system/presets/calibrated_card.json)",
    )
    add(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override an architecture value, e.g. crossbar.size=128; repeatable",
    )
    add("--scheme", help="precision scheme whose costs are used (solve.scheme)")
    add("--percentile", type=float, help="percentile of the card's per-solve costs")
    add(
        "--decomposition",
        choices=("blockamc", "block_diagonal"),
        help="matrices larger than a crossbar (solve.decomposition)",
    )
    add("--batch", type=int, help="samples per step (default: the workload's)")
    add("--t-inv", type=int, help="steps between factor inversions / refreshes (default 20)")
    add("--t-cov", type=int, help="steps between factor-statistics updates (default 1)")
    add("--epochs", type=float, help="epochs of the first-order reference training")
    add(
        "--steps-ratio",
        metavar="X|repast|FILE.json",
        help="second-order / SGD steps to the target: a number, 'repast' (the paper's own "
        "per-network epoch ratios) or a JSON file with key second_order_vs_sgd (and optionally "
        "per_network; `rerinv train` writes one); default: each network's cited ratio "
        "(docs/timing.md), 35/90 (Osawa et al. 2019) for a user table",
    )
    add(
        "--sweep",
        action="append",
        metavar="AXIS[=SPEC]",
        help=f"sensitivity sweep; AXIS one of {', '.join(SWEEP_AXES)} or 'all'; SPEC "
        "lin:a:b, log:a:b, log2:a:b or a comma list; repeatable",
    )
    add("--points", type=int, default=40, help="points per swept axis (lin/log specs)")
    add("--out", default="timing", metavar="DIR", help="output folder (default ./timing)")
    add("--no-plots", action="store_true", help="JSON and HTML tables only")
    add(
        "--no-tornado",
        action="store_true",
        help="skip the sensitivity of the headline ratios to every assumption",
    )
    add("--force", action="store_true", help="replace existing files in --out")
    parser.set_defaults(func=cmd_timing)
    return parser  # fmt: skip


def _workloads(args) -> list:
    from rerinv.system import large_workloads, load_steps_ratio, load_workload, workload_names

    names = []
    for item in args.workload or ["all"]:
        names += {"all": workload_names(), "large": large_workloads()}.get(item, [item])
    training = {"batch": args.batch, "t_inv": args.t_inv, "t_cov": args.t_cov,
                "epochs": args.epochs}  # fmt: skip
    out = []
    for name in dict.fromkeys(names):
        if args.steps_ratio is not None:
            ratio, source = load_steps_ratio(args.steps_ratio, name)
            training.update(steps_ratio=ratio, steps_ratio_source=source)
        out.append(load_workload(name, **training))
    return out


def _card(args, arch):
    from rerinv.card import load_card
    from rerinv.system.arch import preset_path

    needs = arch["solve.source"] == "card" or arch["inv.source"] == "card"
    if args.card:
        return load_card(args.card), args.card
    if not needs:
        return None, None
    shipped = preset_path("calibrated_card.json")
    if not shipped.is_file():
        raise InputError("no --card given and the shipped calibrated card is missing")
    import json

    from rerinv.card import validate_card

    card = json.loads(shipped.read_text())
    validate_card(card)
    return card, "shipped rerinv/system/presets/calibrated_card.json"


def _sweeps(args) -> dict:
    from rerinv.system import SWEEP_AXES
    from rerinv.system.compare import axis_values

    out = {}
    for item in args.sweep or []:
        axis, _, spec = item.partition("=")
        axes = list(SWEEP_AXES) if axis == "all" else [axis]
        for name in axes:
            if name not in SWEEP_AXES:
                raise InputError(f"--sweep {item}: unknown axis; choose {', '.join(SWEEP_AXES)}")
            try:
                out[name] = axis_values(spec or SWEEP_AXES[name][1], args.points)
            except ValueError:
                raise InputError(f"--sweep {item}: bad values {spec!r}") from None
            if out[name].size == 0 or (out[name] <= 0).any():
                raise InputError(f"--sweep {item}: values must be > 0")
    return out


class _Progress:
    """Points done on one updating line (stderr), when a sweep is long."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def __call__(self, points: int) -> None:
        self.done += points
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        end = "\n" if self.done >= self.total else ""
        print(f"\rrerinv timing: sweep {self.done}/{self.total} points, {rate:.0f}/s", end=end,
              file=sys.stderr, flush=True)  # fmt: skip


def cmd_timing(args: argparse.Namespace) -> int:
    """Handler of ``rerinv timing``: evaluate, write JSON and HTML, print the summary."""
    from rerinv.outputs import check_output_folder
    from rerinv.provenance import software_versions
    from rerinv.system import load_arch
    from rerinv.system.arch import parse_assignments
    from rerinv.system.report import timing_study, write_report
    from rerinv.system.tables import summary_rows, verdict_rows

    inputs = [args.card, args.steps_ratio, args.arch, *(args.workload or [])]
    check_output_folder(args.out, ("timing.json", "timing.html"), force=args.force,
                        inputs=[p for p in inputs if p and Path(p).is_file()])  # fmt: skip
    overrides = parse_assignments(args.overrides)
    for flag, key in (("scheme", "solve.scheme"), ("percentile", "solve.percentile"),
                      ("decomposition", "solve.decomposition")):  # fmt: skip
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    arch = load_arch(args.arch, overrides)
    card, card_source = _card(args, arch)
    workloads = _workloads(args)
    sweeps = _sweeps(args)
    total = sum(v.size for v in sweeps.values()) * len(workloads)
    progress = _Progress(total) if total >= 2000 else None
    study = timing_study(arch, workloads, card, card_source=card_source, sweeps=sweeps,
                         progress=progress, with_tornado=not args.no_tornado)  # fmt: skip
    study["software"] = software_versions(ngspice=False)
    study["command"] = "rerinv " + " ".join(sys.argv[1:])
    paths = write_report(study, args.out, with_plots=not args.no_plots, force=args.force)
    print(f"architecture {arch.name}, decomposition {study['decomposition']}, scheme "
          f"{study['solve_cost']['scheme']} ({study['solve_cost']['source']})")  # fmt: skip
    print(f"{'network':>18} {'vs GPU K-FAC':>13} {'vs GPU SGD':>11} {'vs ReRAM SGD':>13}"
          f" {'energy vs GPU K-FAC':>20} {'energy vs ReRAM SGD':>20}")  # fmt: skip
    for name, *v in summary_rows(study):
        print(f"{name:>18} {v[0]:>12.3g}x {v[1]:>10.3g}x {v[2]:>12.3g}x {v[3]:>19.3g}x "
              f"{v[5]:>19.3g}x")  # fmt: skip
    if study["averages"]:
        a = study["averages"]
        print(f"{'mean (large)':>18} {a['speedup_vs_gpu_kfac']['mean']:>12.3g}x "
              f"{a['speedup_vs_gpu_sgd']['mean']:>10.3g}x "
              f"{a['speedup_vs_reram_sgd']['mean']:>12.3g}x "
              f"{a['energy_saving_vs_gpu_kfac']['mean']:>19.3g}x "
              f"{a['energy_saving_vs_reram_sgd']['mean']:>19.3g}x")  # fmt: skip
        print(f"{'paper (RePAST)':>18} {115.8:>12.3g}x {'':>11} {11.4:>12.3g}x {41.9:>19.3g}x "
              f"{12.8:>19.3g}x")  # fmt: skip
    if study.get("first_order_ranking"):
        print(
            "first-order ReRAM vs GPU SGD, to train (ranking): "
            + ", ".join(f"{n} {v:.3g}x" for n, v in study["first_order_ranking"])
        )
    if study["averages"] and study.get("tornado"):
        for row in verdict_rows(study):
            best = "" if row["corner"] is None else f", best case {row['corner']:.3g}x"
            print(f"{row['label']}: paper {row['paper']:g}x, model {row['model']:.3g}x{best}; "
                  f"decided by {', '.join(d.split(' ')[0] for d in row['deciding'])}")  # fmt: skip
    for note in study["notes"]:
        print(f"note: {note}")
    print(f"wrote {paths['json']} and {paths['html']}")
    return 0
