"""Command-line interface: ``rerinv`` and ``python -m rerinv`` are the same program."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from rerinv.config import Config, load_config
from rerinv.errors import RerinvError
from rerinv.schemes import SCHEMES


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration (default: built-in)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override one configuration value; repeatable (e.g. device.sigma_rel=0.01)",
    )


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def cmd_config_show(args: argparse.Namespace) -> int:
    print(_config(args).to_toml(), end="")
    return 0


def cmd_netlist(args: argparse.Namespace) -> int:
    from rerinv.circuit import vmm_crossbar
    from rerinv.inv import build_inv, input_gain, output_factor
    from rerinv.mapping import map_matrix
    from rerinv.matrices import check_matrix, check_vector, load_matrix, load_vector
    from rerinv.spice import batch_netlist

    config = _config(args)
    a = load_matrix(args.matrix)
    if args.kind == "inv":
        inv = build_inv(a, config, seed=args.seed)
        b = check_vector(load_vector(args.rhs), inv.arrays.n)
        k = input_gain(inv, b)
        circuit = dataclasses.replace(inv.circuit, input_values=k * b)
        factor = output_factor(inv, k)[0]
        header = (
            f"x = {factor:.17g} * v(xK)   (x solves the given system A x = b; exact for ideal"
            " parts, fine quantisation and no programming error)",
        )
    else:
        a = check_matrix(a, max_size=config.array.max_size)
        b = check_vector(load_vector(args.rhs), a.shape[0])
        arrays = map_matrix(a, config.device)
        peak_in = np.max(np.abs(b)) or 1.0
        k = config.converters.dac_range / peak_in
        planned = config.array.r_f * arrays.scale * k * np.max(np.abs(a.T @ b))
        limit = 0.8 * min(config.converters.adc_range, config.opamp.v_rail)
        if planned > limit:
            k *= limit / planned
        circuit = vmm_crossbar(arrays, config, k * b)
        factor = -1.0 / (config.array.r_f * arrays.scale * k)
        header = (f"A^T b = {factor:.17g} * v(yK)   (exact for ideal parts and fine quantisation)",)
    text = batch_netlist(circuit, header)
    Path(args.out).write_text(text)
    print(
        f"wrote {args.out}: {circuit.title}, {len(circuit.resistors)} resistors;"
        f" run `ngspice -b {args.out}`"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rerinv.engines.ngspice import ngspice_version
    from rerinv.inv import effective_bits, solve_inv
    from rerinv.matrices import kfac_factor, random_rhs

    config = _config(args)
    a = kfac_factor(args.n, seed=args.seed)
    b = random_rhs(args.n, seed=args.seed + 1)
    x_ref = np.linalg.solve(a, b)
    start = time.perf_counter()
    solution = solve_inv(
        a, b, config, engine=args.engine, seed=args.seed, equilibrated=not args.no_equilibrate
    )
    elapsed = time.perf_counter() - start
    version = ngspice_version() if args.engine == "spice" else "not used"
    print(f"rerinv demo: one analog INV solve of a K-FAC-like {args.n}x{args.n} SPD matrix")
    print(
        f"engine {args.engine} (ngspice {version}), op-amp {config.opamp.model}, "
        f"{config.device.bits}-bit cells in [{config.device.g_min:g}, {config.device.g_max:g}] S, "
        f"cond(A) = {np.linalg.cond(a):.3g}, equilibration {'off' if args.no_equilibrate else 'on'}"
    )
    print(f"{'i':>3} {'x_analog':>14} {'x_numpy':>14} {'rel. error':>11}")
    scale = np.max(np.abs(x_ref))
    for i in range(args.n):
        err = abs(solution.x[i] - x_ref[i]) / scale
        print(f"{i:>3} {solution.x[i]:>14.6e} {x_ref[i]:>14.6e} {err:>11.2e}")
    bits = effective_bits(solution.x, x_ref)
    print(
        f"effective bits: {bits:.2f} (one 8-bit analog solve; the precision schemes chain "
        f"several to reach 16)   wall time {elapsed:.3f} s"
    )
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from rerinv.matrices import load_matrix, load_vector, random_rhs
    from rerinv.schemes import solve

    config = _config(args)
    a = load_matrix(args.matrix)
    b = load_vector(args.rhs) if args.rhs else random_rhs(a.shape[0], seed=args.seed)
    result = solve(
        a,
        b,
        config,
        scheme=args.scheme,
        engine=args.engine,
        target_bits=args.target_bits,
        max_passes=args.max_passes,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"{result.scheme} on the {result.engine} engine, N = {result.n}, target "
        f"{result.target_bits:g} bits, {config.device.bits}-bit INV cells, residual "
        f"{config.scheme.residual}, equilibration {'on' if config.scheme.equilibrate else 'off'}"
    )
    print(f"{'pass':>4} {'effective bits':>14} {'residual':>10} {'INV solves':>10} {'VMM ops':>8}")
    for k, record in enumerate(result.history, 1):
        print(
            f"{k:>4} {record.effective_bits:>14.2f} {record.residual_norm:>10.2e} "
            f"{record.inv_solves:>10} {record.vmm_ops:>8}"
        )
    verdict = "reached" if result.reached_target else "did NOT reach"
    print(
        f"status {result.status}: {result.effective_bits:.2f} effective bits, {verdict} "
        f"{result.target_bits:g} bits; {result.inv_solves} INV solves, {result.vmm_ops} VMM ops, "
        f"{result.conversions} conversions, {result.wall_time:.2f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerinv",
        description="Circuit-level verification of matrix inversion on ReRAM crossbars.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the configuration as TOML")
    _common(show)
    show.set_defaults(func=cmd_config_show)

    netlist = commands.add_parser("netlist", help="write a standalone ngspice netlist")
    _common(netlist)
    netlist.add_argument("--matrix", required=True, help=".npy, .csv, .txt or .mtx file")
    netlist.add_argument("--rhs", required=True, help="right-hand side b (INV) or input v (VMM)")
    netlist.add_argument("--kind", choices=("inv", "vmm"), default="inv")
    netlist.add_argument("--out", required=True, help="netlist file to write (.cir)")
    netlist.add_argument("--seed", type=int, default=0, help="seed of the programming draw")
    netlist.set_defaults(func=cmd_netlist)

    solve = commands.add_parser("solve", help="solve A x = b with a precision scheme")
    _common(solve)
    solve.add_argument("--matrix", required=True, help=".npy, .csv, .txt or .mtx file")
    solve.add_argument("--rhs", help="right-hand side b (default: drawn from --seed)")
    solve.add_argument("--scheme", choices=SCHEMES, default="refine")
    solve.add_argument("--engine", choices=("spice", "nodal"), default="spice")
    solve.add_argument("--target-bits", type=float, default=16.0)
    solve.add_argument("--max-passes", type=int, default=8)
    solve.add_argument("--seed", type=int, default=0, help="seed of b and of every device draw")
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.set_defaults(func=cmd_solve)

    demo = commands.add_parser("demo", help="one default INV solve through ngspice vs numpy")
    _common(demo)
    demo.add_argument("--n", type=int, default=16, help="matrix size (default 16)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--engine", choices=("spice", "nodal"), default="spice")
    demo.add_argument(
        "--no-equilibrate", action="store_true", help="map the matrix without diagonal scaling"
    )
    demo.set_defaults(func=cmd_demo)

    from rerinv.calibrate import add_calibrate_command
    from rerinv.export import add_export_command
    from rerinv.montecarlo import add_mc_command
    from rerinv.report import add_report_command
    from rerinv.settle import add_settle_command
    from rerinv.verify import add_verify_command

    add_mc_command(commands)
    add_report_command(commands)
    add_verify_command(commands)
    add_settle_command(commands)
    add_calibrate_command(commands)
    add_export_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RerinvError as exc:
        print(f"rerinv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerinv: interrupted", file=sys.stderr)
        return 130
