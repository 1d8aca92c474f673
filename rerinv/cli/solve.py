"""``rerinv config show``, ``netlist``, ``demo`` and ``solve``: single circuits and solves."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from rerinv.cli.common import (
    add_config_options,
    add_force_option,
    add_simulation_options,
    config_from,
    positive_int,
    seed_value,
)
from rerinv.errors import InputError
from rerinv.outputs import atomic_write, check_output, check_output_folder


def cmd_config_show(args: argparse.Namespace) -> int:
    print(config_from(args).to_toml(), end="")
    return 0


def cmd_netlist(args: argparse.Namespace) -> int:
    from rerinv.analog import inv as inv_mod
    from rerinv.analog import vmm as vmm_mod
    from rerinv.hw.netlist import batch_netlist
    from rerinv.matrices import check_matrix, check_vector, load_matrix, load_vector

    config = config_from(args)
    out = check_output(args.out, force=args.force, inputs=(args.matrix, args.rhs, args.config))
    a = load_matrix(args.matrix)
    if args.kind == "machine":
        return _machine_netlist(a, load_vector(args.rhs), config, args, out)
    if args.kind == "inv":
        inv = inv_mod.build_inv(a, config, seed=args.seed)
        b = check_vector(load_vector(args.rhs), inv.arrays.n)
        k = inv_mod.input_gain(inv, b)
        circuit = dataclasses.replace(inv.circuit, input_values=k * b)
        factor = inv_mod.output_factor(inv, k)[0]
        header = (
            f"x = {factor:.17g} * v(xK)   (x solves the given system A x = b; exact for ideal"
            " parts, fine quantisation and no programming error)",
        )
    else:
        a = check_matrix(a, max_size=config.array.max_size)
        b = check_vector(load_vector(args.rhs), a.shape[0])
        vmm = vmm_mod.build_vmm(a, config, seed=args.seed)
        k = vmm_mod.input_gain(vmm, b)
        circuit = dataclasses.replace(vmm.circuit, input_values=k * b)
        factor = vmm_mod.output_factor(vmm, k)
        header = (
            f"A^T b = {factor:.17g} * v(yK)   (exact for ideal parts, fine quantisation and no"
            " programming error)",
        )
    if not (math.isfinite(factor) and factor):
        raise InputError(
            f"the output factor of this netlist is {factor}: the right-hand side's scale "
            f"(largest entry {np.max(np.abs(b)):.3g}) leaves float64; scale b"
        )
    from rerinv.engines.amplifier import trimmed  # sky130 offset trims, as the engine sets them

    text = batch_netlist(trimmed(circuit), header)
    atomic_write(out, text)
    print(
        f"wrote {args.out}: {circuit.title}, {len(circuit.resistors)} resistors;"
        f" run `ngspice -b {args.out}`"
    )
    return 0


def _machine_netlist(a, b, config, args: argparse.Namespace, out) -> int:
    """``--kind machine``: every crossbar of the preconditioner (one INV crossbar, or the
    BlockAMC / block-Jacobi blocks of a matrix larger than ``array.max_size``) side by side in
    one netlist, each driven by the DAC voltages of its first read while the machine applies
    its preconditioner to ``b``; stock ``ngspice -b`` solves them all in one operating point."""
    from rerinv.analog.blocks import machine_circuit
    from rerinv.hw.netlist import batch_netlist
    from rerinv.matrices import check_matrix, check_vector

    a = check_matrix(a)
    b = check_vector(b, a.shape[0])
    circuit, header = machine_circuit(a, b, config, seed=args.seed)
    atomic_write(out, batch_netlist(circuit, header))
    print(
        f"wrote {args.out}: {circuit.title}, {len(circuit.resistors)} resistors;"
        f" run `ngspice -b {args.out}`"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rerinv.analog.inv import resolve_scaling, solve_inv
    from rerinv.engines.ngspice import ngspice_version
    from rerinv.matrices import random_rhs, wishart_factor
    from rerinv.schemes import effective_bits

    config = config_from(args)
    engine = config.simulation.engine
    a = wishart_factor(args.n, seed=args.seed)
    b = random_rhs(args.n, seed=args.seed + 1)
    x_ref = np.linalg.solve(a, b)
    start = time.perf_counter()
    scaling = "none" if args.no_equilibrate else resolve_scaling(a, config)
    solution = solve_inv(a, b, config, seed=args.seed, scaling=scaling)
    elapsed = time.perf_counter() - start
    version = ngspice_version() if engine == "spice" else "not used"
    print(f"rerinv demo: one analog INV solve of a K-FAC-like {args.n}x{args.n} SPD matrix")
    print(
        f"engine {engine} (ngspice {version}), op-amp {config.opamp.model}, "
        f"{config.device.bits}-bit cells in [{config.device.g_min:g}, {config.device.g_max:g}] S, "
        f"cond(A) = {np.linalg.cond(a):.3g}, {scaling} scaling"
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

    config = config_from(args)
    a = load_matrix(args.matrix)
    b = load_vector(args.rhs) if args.rhs else random_rhs(a.shape[0], seed=args.seed)
    result = solve(a, b, config, seed=args.seed)
    status = 0 if result.reached_target else 1
    gap = None
    if config.opamp.model == "sky130" and config.simulation.engine == "spice":
        from rerinv.studies.amplifier import macro_model_gap

        gap = macro_model_gap(a, b, config, seed=args.seed)
    if args.json:
        record = result.to_dict()
        if gap is not None:
            record["amplifier_model_gap"] = gap
        print(json.dumps(record, allow_nan=False))
        return status
    print(
        f"{result.scheme} on the {result.engine} engine, N = {result.n}, target "
        f"{result.target_bits:g} bits, {config.device.bits}-bit INV cells, {result.scaling} "
        f"scaling; residual {config.scheme.residual}, {result.residual_bits[0]}-bit weights, "
        f"{result.residual_bits[1]}-bit inputs (condition estimate "
        f"{result.condition_estimate:.3g}, floor about {result.residual_floor_bits:.1f} bits)"
    )
    print(
        f"{'pass':>4} {'bits':>6} {'worst entry':>11} {'residual':>9} {'INV solves':>10} "
        f"{'VMM ops':>8}  preconditioner"
    )
    for k, record in enumerate(result.history, 1):
        print(
            f"{k:>4} {record.effective_bits:>6.2f} {record.componentwise_bits:>11.2f} "
            f"{record.residual_norm:>9.2e} {record.inv_solves:>10} {record.vmm_ops:>8}  "
            f"{record.preconditioner}"
        )
    for at, what in result.switches:
        print(f"     switched to {what} after pass {at}")
    verdict = "reached" if result.reached_target else "did NOT reach"
    first = f" at pass {result.passes_to_target}" if result.passes_to_target else ""
    print(
        f"status {result.status} (loop: {result.loop_status}): {result.effective_bits:.2f} "
        f"effective bits (worst entry {result.componentwise_bits:.2f}), {verdict} "
        f"{result.target_bits:g} bits{first}; {result.passes} passes, {result.inv_solves} INV "
        f"solves, {result.vmm_ops} VMM ops, {result.conversions} conversions, "
        f"{result.wall_time:.2f} s"
    )
    if gap is not None:
        print(
            f"amplifier models vs the transistors (one INV solve, full scale "
            f"{gap['full_scale_v']:.3g} V): extracted linear model {gap['extracted_gap_v']:.2e} V "
            f"({gap['extracted_gap_bits']:.1f} bits), single-pole macro-model "
            f"{gap['macro_gap_v']:.2e} V ({gap['macro_gap_bits']:.1f} bits)"
        )
    return status


def cmd_suite(args: argparse.Namespace) -> int:
    """``rerinv suite``: the real-matrix suite; a table, ``suite.json`` and ``suite.png``."""
    import shlex
    import sys

    from rerinv.studies.suite import run_suite, write_suite

    config = config_from(args)
    check_output_folder(args.out, ("suite.json", "suite.png"), force=args.force,
                        inputs=[args.config, *args.factors])  # fmt: skip
    print(
        f"rerinv suite: {config.simulation.scheme} on the {config.simulation.engine} engine, "
        f"target {config.simulation.target_bits:g} bits, at most "
        f"{config.simulation.max_passes} passes"
    )
    print(
        f"{'matrix':<22} {'kind':<20} {'N':>4} {'cond':>8} {'circuit':<11} {'scaling':<9} "
        f"{'passes':>6} {'to 16':>5} {'INV':>5} {'VMM ops':>8} {'bits':>6}  status"
    )

    def show(r) -> None:
        line = (
            f"{r.name:<22} {r.kind:<20} {r.n:>4} {r.cond:>8.2g} {r.circuit or '-':<11} "
            f"{r.scaling or '-':<9} {r.passes:>6} {r.passes_to_target or '-':>5} "
            f"{r.inv_solves:>5} {r.vmm_ops:>8} "
            f"{r.effective_bits:>6.1f}  {r.status}"
        )
        print(line, flush=True)

    rows = run_suite(
        config,
        folder=Path(args.matrices) if args.matrices else None,
        factors=[Path(p) for p in args.factors],
        seed=args.seed,
        progress=show,
    )
    write_suite(rows, config, Path(args.out), shlex.join(["rerinv", *sys.argv[1:]]))
    solvable = [r for r in rows if r.status not in ("singular",)]
    reached = sum(r.reached_target for r in solvable)
    print(
        f"{reached} of {len(solvable)} non-singular matrices reached "
        f"{config.simulation.target_bits:g} bits; {len(rows) - len(solvable)} refused as "
        f"singular. Wrote {args.out}/suite.json and {args.out}/suite.png"
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser(
        "config",
        help="configuration",
        description="Print the configuration a command would run with: the built-in default, "
        "a preset, a TOML file and --set overrides, in that order.",
    )
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser(
        "show",
        help="print the configuration as TOML",
        description="Print every configuration value as TOML (a file --config reads back).",
    )
    add_config_options(show)
    show.set_defaults(func=cmd_config_show)

    netlist = commands.add_parser(
        "netlist",
        help="write a standalone ngspice netlist",
        description="Write the INV or VMM crossbar of a matrix (or every crossbar of the "
        "analog machine) as a netlist stock `ngspice -b` runs; its header says how the "
        "printed node voltages map back to x (INV) or A^T b (VMM).",
    )
    add_config_options(netlist)
    netlist.add_argument("--matrix", required=True, help=".npy, .csv, .txt or .mtx file")
    netlist.add_argument("--rhs", required=True, help="right-hand side b (INV) or input v (VMM)")
    netlist.add_argument(
        "--kind",
        choices=("inv", "vmm", "machine"),
        default="inv",
        help="one INV or VMM crossbar, or every crossbar of the machine's preconditioner "
        "(blocks when the matrix is larger than array.max_size) in one netlist",
    )
    netlist.add_argument("--out", required=True, help="netlist file to write (.cir)")
    netlist.add_argument("--seed", type=seed_value, default=0, help="seed of the programming draw")
    add_force_option(netlist)
    netlist.set_defaults(func=cmd_netlist)

    solve = commands.add_parser(
        "solve",
        help="solve A x = b with a precision scheme",
        description="Solve A x = b on the analog machine with a precision scheme and verify "
        "the answer against float64 (numpy.linalg.solve of the intended matrix).",
        epilog="Bits: 'bits' is norm-wise, -log2(max|x - x*| / max|x*|); 'worst entry' is "
        "component-wise, -log2(max |x_i - x*_i| / |x*_i|). 'status' is the verdict of that "
        "check: converged if and only if the verified bits reach the target. 'loop' is what "
        "the loop concluded from the residuals the hardware measures (it can believe it "
        "converged while the check disagrees: status unverified). 'passes' counts every pass "
        "run, 'passes_to_target' (--json) the first pass that reached the target. "
        "Exit status: 0 when the verified bits reach the target, 1 when they do not, 2 for "
        "an input error (one line on stderr), 130 when interrupted.",
    )
    add_config_options(solve)
    solve.add_argument("--matrix", required=True, help=".npy, .csv, .txt or .mtx file")
    solve.add_argument("--rhs", help="right-hand side b (default: drawn from --seed)")
    add_simulation_options(solve, "scheme", "engine", "target_bits", "max_passes", "workers")
    solve.add_argument(
        "--seed", type=seed_value, default=0, help="seed of b and of every device draw"
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.set_defaults(func=cmd_solve)

    suite = commands.add_parser(
        "suite",
        help="run the real-matrix suite (table, JSON, plot)",
        description="Solve every matrix of the real-matrix suite (SuiteSparse and generated "
        "classics, captured K-FAC factors) and write a table, suite.json and a plot of "
        "verified bits against condition number. Exit status 0 once they are written, "
        "whatever bits the matrices reached (the table says).",
    )
    add_config_options(suite)
    add_simulation_options(suite, "scheme", "engine", "target_bits", "max_passes", "workers")
    suite.add_argument(
        "--matrices", metavar="DIR", help="folder with index.toml (default: shipped)"
    )
    suite.add_argument(
        "--factors",
        nargs="*",
        default=[],
        metavar="FILE.h5",
        help="K-FAC factor sets (rerinv train --capture) to add",
    )
    suite.add_argument(
        "--seed", type=seed_value, default=0, help="seed of b and of every device draw"
    )
    suite.add_argument("--out", default="suite", help="output folder (default suite/)")
    add_force_option(suite)
    suite.set_defaults(func=cmd_suite)

    demo = commands.add_parser(
        "demo",
        help="one default INV solve through ngspice vs numpy",
        description="Solve one generated K-FAC-like system on the INV crossbar (one analog "
        "pass, no refinement) and print it next to numpy's answer.",
    )
    add_config_options(demo)
    demo.add_argument("--n", type=positive_int, default=16, help="matrix size (default 16)")
    demo.add_argument("--seed", type=seed_value, default=0)
    add_simulation_options(demo, "engine")
    demo.add_argument(
        "--no-equilibrate", action="store_true", help="map the matrix without diagonal scaling"
    )
    demo.set_defaults(func=cmd_demo)
