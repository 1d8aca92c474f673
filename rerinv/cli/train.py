"""``rerinv train`` and ``rerinv train-report``: K-FAC with the analog inverse in the loop.

``rerinv train`` runs the grid {inverse backend x bits x damping x seed} plus tuned SGD and
Adam on the digits task into an HDF5 file, then writes the HTML report and the step-ratio JSON
next to it. The hardware starts from the training defaults (nodal engine, float64 residual;
see ``rerinv.training.spec.TRAINING_DEFAULTS``); ``--preset``, ``--config`` and ``--set``
apply on top. Every output is checked before the first run (an existing file needs
``--force``; an input is never overwritten) and written atomically; training files carry
checksums, verified by ``train-report`` and ``train --resume``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rerinv.cli.common import add_force_option, positive_int, seed_value
from rerinv.config import ENGINES, Config
from rerinv.errors import InputError
from rerinv.outputs import check_output
from rerinv.presets import preset_names, preset_text

TRAIN_DESCRIPTION = """\
Train a small network (an MLP or a 2-D CNN on scikit-learn's digits, a 1-D CNN on MNIST-1D)
with K-FAC whose factor inverses come from the simulated analog crossbar at several cell
resolutions and hardware levels (and from float64), against SGD and Adam tuned with equal
budgets on a validation split: every setting x seed into one HDF5 training file (--out, ending
in .h5), then the HTML report (.html) and the step-ratio JSON (-steps.json) beside it.
Existing outputs are refused without --force (an input is never replaced); an interrupted
run (Ctrl-C, exit status 130) is completed with --resume; a damaged or altered training
file is refused by its checksums. The hardware starts from the training defaults (nodal
engine, float64 residual VMM); --preset, --config and --set apply on top."""

REPORT_DESCRIPTION = """\
Make the HTML report and the step-ratio JSON (read by `rerinv timing --steps-ratio`) of a
training file written by `rerinv train`, after verifying its checksums. Default outputs are
beside it (x.h5 -> x.html and x-steps.json); --out alone writes only the report. Existing
outputs are refused without --force, and the training file itself is never replaced."""

#: Suffixes of a training file (HDF5).
H5_SUFFIXES = (".h5", ".hdf5")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text}") from exc


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas: {text}") from exc


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


#: ``--flag`` -> TrainingSpec field (None: the option is not given, keep the task default).
SPEC_FLAGS = {
    "task": "task",
    "network": "network",
    "hidden": "hidden",
    "pool": "pool",
    "steps": "steps",
    "batch_size": "batch_size",
    "seeds": "seeds",
    "seed": "master_seed",
    "data_seed": "data_seed",
    "backends": "backends",
    "bits": "bits",
    "cell_bits": "cell_bits",
    "noise": "noise",
    "noise_cell_bits": "noise_cell_bits",
    "noise_damping": "noise_damping",
    "analog_damping": "analog_damping",
    "damping": "damping",
    "damping_rules": "damping_rules",
    "eval_every": "eval_every",
    "no_pi_damping": "pi_damping",
    "inverse_every": "inverse_every",
    "lr": "kfac_lr",
    "kl_clip": "kl_clip",
    "sgd_lrs": "sgd_lrs",
    "adam_lrs": "adam_lrs",
    "target_accuracy": "target_accuracy",
    "target_loss": "target_loss",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--out",
        required=True,
        help="HDF5 training file, ending in .h5 (report beside it: .html, steps: -steps.json)",
    )
    add("--task", choices=("classify", "autoencode"), help="digits task (default classify)")
    add("--network", choices=("mlp", "cnn1d", "cnn2d"), help="mlp (default), cnn1d or cnn2d")
    add(
        "--hidden",
        type=_ints,
        help="MLP hidden widths, e.g. 32 or 64,32 (default 32; AE 16), or a CNN's 2 channels",
    )
    add("--pool", type=int, help="average-pool the 8x8 inputs (2: 16 inputs, a small network)")
    add("--steps", type=int, help="optimizer steps per run (default 60)")
    add("--batch-size", type=positive_int, help="mini-batch size (default 256)")
    add("--seeds", type=positive_int, help="runs per setting (default 5)")
    add("--seed", type=seed_value, help="master seed of the run seeds (default 0)")
    add("--data-seed", type=seed_value, help="seed of the train/test split (default 0)")
    add(
        "--backends",
        type=_names,
        help="K-FAC inverse backends: float64, quantised (k-bit stand-in) and analog schemes "
        "(single, refine, krylov, repast); default float64,single",
    )
    add("--bits", type=_floats, help="target / stand-in bits axis (default 8,12,16,24)")
    add("--cell-bits", type=_ints, help="single solve's cell and ADC bits axis (4,5,6,7,8,10)")
    add(
        "--noise",
        type=_names,
        help="hardware levels of the analog backends: ideal, moderate, harsh, sky130 "
        "(default all four; docs/training.md)",
    )
    add("--noise-cell-bits", type=_ints, help="cell bits at levels other than ideal (4,6,8,10)")
    add("--noise-damping", type=_floats, help="damping at levels other than ideal (0.003)")
    add("--analog-damping", type=_floats, help="damping of the analog settings (all --damping)")
    add(
        "--damping",
        type=_floats,
        help="K-FAC Tikhonov lambda axis, K-FAC's tuning grid (default 0.003,0.01,0.001,0.0001)",
    )
    add("--damping-rules", type=_names, help="fixed and/or adaptive (Levenberg-Marquardt)")
    add("--eval-every", type=int, help="measure full-set metrics every k steps (default 1)")
    add("--no-pi-damping", action="store_true", default=None, help="plain Tikhonov damping")
    add("--inverse-every", type=int, help="T_inv: steps between inverse updates (default 10)")
    add("--lr", type=float, help="K-FAC learning rate (default 1)")
    add("--kl-clip", type=float, help="K-FAC KL-clipping budget (default 0.1)")
    add("--sgd-lrs", type=_floats, help="SGD (momentum 0.9) learning-rate grid")
    add("--adam-lrs", type=_floats, help="Adam learning-rate grid")
    add(
        "--target-accuracy",
        type=float,
        help="accuracy target, validation for choices (default 0.95)",
    )
    add("--target-loss", type=float, help="training-loss target, nats/sample (default 0.01)")
    add("--engine", choices=ENGINES, help="engine of the analog inverses (default nodal)")
    add("--preset", choices=preset_names(), help="hardware preset applied on the defaults")
    add("--config", metavar="FILE", help="hardware TOML applied on the training defaults")
    add(
        "--set",
        dest="overrides",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override one hardware value; repeatable (e.g. scheme.residual=analog)",
    )
    add("--workers", type=positive_int, help="local processes (default: all cores)")
    add("--resume", action="store_true", help="complete an interrupted --out file")
    add_force_option(parser)
    add("--no-report", action="store_true", help="skip the HTML report and steps JSON")
    add(
        "--capture-factors",
        metavar="FILE",
        help="also train one float64 K-FAC run (seed 0) and save its damped factors here",
    )
    add("--capture-every", type=int, default=1, help="keep every k-th inverse update (default 1)")
    add(
        "--capture-damping",
        type=float,
        metavar="REL",
        help="store F + REL * tr(F)/n * I of each undamped factor F (the usual K-FAC scale, "
        "e.g. 0.01) instead of the run's own damping",
    )
    add(
        "--capture-sizes",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="keep only factors of these sizes",
    )
    add("--capture-float32", action="store_true", help="store the factors as float32")


def spec_from_args(args: argparse.Namespace):
    from rerinv.training import TrainingSpec

    values = {}
    for flag, key in SPEC_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None or key == "task":
            continue
        values[key] = (not value) if flag == "no_pi_damping" else value
    return TrainingSpec.for_task(args.task or "classify", **values)


def config_from_args(args: argparse.Namespace) -> Config:
    from rerinv.training import training_config

    config = training_config()
    if args.preset:
        config = Config.from_toml(preset_text(args.preset), source=args.preset, base=config)
    if args.config:
        config = Config.load(args.config, base=config)
    overrides = list(args.overrides)
    if args.engine:
        overrides.append(f"simulation.engine={args.engine}")
    return config.with_overrides(overrides)


def command_line(args: argparse.Namespace) -> str:
    """The ``rerinv train`` command line of ``args`` without ``--resume`` (provenance and
    the resume hint)."""
    words = ["rerinv", "train", "--out", args.out]
    for flag in SPEC_FLAGS:
        value = getattr(args, flag, None)
        if value is None:
            continue
        option = "--" + flag.replace("_", "-")
        if isinstance(value, bool):
            words.append(option)
        elif isinstance(value, tuple):
            words += [option, ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)]
        else:
            words += [option, str(value)]
    for option in ("engine", "preset", "config", "workers"):
        if getattr(args, option, None) is not None:
            words += [f"--{option}", str(getattr(args, option))]
    for value in args.overrides:
        words += ["--set", value]
    if args.no_report:
        words.append("--no-report")
    if getattr(args, "capture_factors", None):
        words += ["--capture-factors", args.capture_factors]
        words += ["--capture-every", str(args.capture_every)]
        if args.capture_damping is not None:
            words += ["--capture-damping", f"{args.capture_damping:g}"]
        if args.capture_sizes:
            words += ["--capture-sizes", *map(str, args.capture_sizes)]
        if args.capture_float32:
            words.append("--capture-float32")
    return shlex.join(words)


def outputs(out: str) -> tuple[Path, Path]:
    """Report and steps-JSON paths beside the HDF5 file."""
    base = Path(out)
    stem = base.with_suffix("") if base.suffix.lower() in H5_SUFFIXES else base
    return stem.with_suffix(".html"), Path(f"{stem}-steps.json")


def _distinct(named: dict[str, Path | None]) -> None:
    """Refuse two outputs of one command that are the same file."""
    seen: dict[Path, str] = {}
    for what, path in named.items():
        if path is None:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"{what} {path} is the same file as {seen[key]}; give another name")
        seen[key] = f"{what} {path}"


def check_train_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any run, every output ``rerinv train`` must not write."""
    out = Path(args.out)
    if out.suffix.lower() not in H5_SUFFIXES:
        raise InputError(
            f"--out {out}: the training file is HDF5 and its name ends in .h5 (the report "
            "and steps JSON are written beside it), e.g. --out "
            f"{out.with_suffix('.h5').name}"
        )
    inputs = [args.config]
    # an existing --out is the driver's to refuse (it suggests --resume); never an input
    check_output(out, force=True, inputs=inputs)
    report, steps = (None, None) if args.no_report else outputs(args.out)
    capture = Path(args.capture_factors) if args.capture_factors else None
    _distinct({"--out": out, "the report": report, "the steps JSON": steps,
               "--capture-factors": capture})  # fmt: skip
    for what, path in (("report", report), ("steps JSON", steps), ("--capture-factors", capture)):
        if path is not None:
            check_output(path, force=args.force, inputs=[*inputs, out], what=what)


def cmd_train(args: argparse.Namespace) -> int:
    from rerinv.training import capture_factors, run_training, write_training_outputs

    spec = spec_from_args(args)
    config = config_from_args(args)
    if args.capture_every < 1:
        raise InputError("--capture-every must be >= 1")
    if args.capture_damping is not None and not args.capture_damping > 0:
        raise InputError("--capture-damping must be positive")
    check_train_outputs(args)
    line = command_line(args)
    summary = run_training(
        spec,
        config,
        args.out,
        workers=args.workers,
        resume=args.resume,
        force=args.force,
        command_line=line,
    )
    print(
        f"rerinv train: {summary.stored}/{summary.total} runs stored in {summary.path} "
        f"({summary.ran} run now, {summary.failed} failed, {summary.elapsed:.1f} s)"
    )
    if summary.interrupted:
        return 130  # run_training printed the --resume line
    if not args.no_report:
        report, steps = outputs(args.out)
        write_training_outputs(args.out, report=report, steps=steps)
        print(f"report: {report}   steps JSON: {steps}")
    if args.capture_factors:
        path = capture_factors(
            spec,
            config,
            args.capture_factors,
            every=args.capture_every,
            command_line=line,
            relative_damping=args.capture_damping,
            sizes=tuple(args.capture_sizes),
            dtype="float32" if args.capture_float32 else "float64",
            force=args.force,
        )
        print(f"factors: {path}")
    return 0


def cmd_train_report(args: argparse.Namespace) -> int:
    from rerinv.training import load_training, write_training_outputs

    results = Path(args.results)
    if not results.is_file():
        what = "is a folder, not" if results.is_dir() else "no such file: not"
        raise InputError(f"{results}: {what} a training file")
    default_report, default_steps = outputs(args.results)
    report = Path(args.out) if args.out else default_report
    steps = Path(args.steps_json) if args.steps_json else (None if args.out else default_steps)
    _distinct({"--out": report, "--steps-json": steps})
    check_output(report, force=args.force, inputs=[results], what="--out")
    if steps is not None:
        check_output(steps, force=args.force, inputs=[results], what="--steps-json")
    loaded = load_training(results)  # every checksum, before anything is written
    written = write_training_outputs(loaded, report=report, steps=steps, setting=args.steps_setting)
    if not loaded.checked:
        print(
            f"rerinv train-report: note: {results} carries no checksums (format version 1, "
            "written before training files had them): its numbers are not verified",
            file=sys.stderr,
        )
    for path in written:
        print(f"wrote {path}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="K-FAC training on digits with analog factor inverses vs float64, SGD and Adam",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)
    report = commands.add_parser(
        "train-report",
        help="HTML report and steps JSON of a train file",
        description=REPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("results", help="HDF5 file written by `rerinv train`")
    report.add_argument("--out", help="report file (default: beside the results, .html)")
    report.add_argument("--steps-json", help="also write the step-ratio JSON here")
    report.add_argument(
        "--steps-setting",
        metavar="LABEL",
        help="K-FAC setting whose ratios are the JSON's second_order_vs_* (default "
        "'kfac float64'), e.g. 'kfac single'",
    )
    add_force_option(report)
    report.set_defaults(func=cmd_train_report)
