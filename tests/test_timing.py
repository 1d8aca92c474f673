"""The system timing model (rerinv.system): a hand-counted step, invariants, the card
round-trip, bad input and the ``rerinv timing`` command. Pure Python, no ngspice."""

import copy
import json

import numpy as np
import pytest

from rerinv.card import example_card, validate_card
from rerinv.cli import main
from rerinv.errors import ConfigError, InputError
from rerinv.system import (
    evaluate,
    inv_timing,
    large_workloads,
    load_arch,
    load_steps_ratio,
    load_workload,
    solve_cost,
    sweep,
    workload_names,
)
from rerinv.system.baselines import gpu_step
from rerinv.system.blocks import block_counts
from rerinv.system.model import reram_step
from rerinv.system.workloads import with_training

# One fc layer 3 -> 4 (factors A: 3 + 1 = 4, G: 4) on 4 x 4 crossbars: one tile, one VMM
# crossbar, one INV block of two arrays; batch 2; 2-bit activations on 1-bit DACs (2 planes);
# every unit cost a distinct number so each joule can be traced.
HAND = {
    "chip.tiles": 1, "chip.vmm_crossbars_per_tile": 1, "chip.inv_crossbars_per_tile": 2,
    "crossbar.size": 4, "crossbar.vmm_cell_bits": 16, "crossbar.inv_cell_bits": 16,
    "crossbar.cell_read_energy_j": 1e-15, "precision.activation_bits": 2,
    "precision.residual_weight_bits": 16, "converters.adcs_per_crossbar": 4,
    "converters.adc_rate_hz": 1e9, "converters.adc_energy_j": 2e-12,
    "converters.vmm_dac_energy_j": 3e-13, "converters.inv_dac_energy_j": 5e-12,
    "inv.settle_s": 1e-7, "inv.opamp_power_w": 1e-3, "solve.scheme": "refine",
    "solve.passes": 2, "solve.inv_solves": 3, "solve.vmm_ops": 5,
    "solve.conversions_per_row": 16, "solve.decomposition": "block_diagonal",
    "digital.ops_per_s_per_tile": 1e9, "digital.energy_per_op_j": 1.5e-12,
    "digital.shift_add_energy_j": 2e-14, "buffer.bits_per_s_per_tile": 1e9,
    "buffer.energy_per_bit_j": 1e-13, "noc.bits_per_s_per_tile": 1e9,
    "noc.energy_per_bit_j": 2e-13, "offchip.bits_per_s": 1e9, "offchip.energy_per_bit_j": 4e-12,
    "write.row_s": 2e-7, "write.energy_per_cell_j": 7e-12, "write.verify_pulses": 1,
    "noc.tiles_per_router": 1, "model.overlap": "none", "gpu.peak_flops": 1e9,
    "gpu.bytes_per_s": 1e9,
    "gpu.gemm_efficiency": 1.0, "gpu.inverse_efficiency": 1.0, "gpu.memory_efficiency": 1.0,
    "gpu.kernel_launch_s": 0.0, "gpu.power_w": 100.0,
}  # fmt: skip


@pytest.fixture()
def hand(tmp_path):
    table = tmp_path / "one.csv"
    table.write_text("name,kind,fan_in,fan_out,kernel_area,positions\nfc,fc,3,4,1,1\n")
    workload = load_workload(table, batch=2, t_inv=1, t_cov=1)
    return load_arch("repast", HAND), workload


def test_one_layer_one_crossbar_counted_by_hand(hand):
    arch, workload = hand
    r = reram_step(arch, workload, solve_cost(arch, None), inv_timing(arch, None))
    # Totals over the phases (see the comments for where each count comes from):
    # VMM read cycles: forward 4 + backward 4 + gradient 8 + statistics 16 + precondition 40
    vmm_cycles = 4 + 4 + 8 + 16 + 40
    inv_ops = 2 * 4 * 3  # two factors x 4 right-hand sides x 3 INV solves
    adc = 16 + 16 + 32 + 64 + (96 + 160)  # VMM columns, plus 4 rows per INV solve
    dac_vmm, dac_inv = 16 + 16 + 16 + 32 + 160, 96
    cell_reads = 64 + 64 + 64 + 128 + 640
    shift_adds = 16 + 16 + 32 + 64 + 160
    rows_vmm = 2 + 4 + 2 + 8 + 8  # gradient, update, statistics, refresh, 2 overflowing xbars
    rows_inv = 16 + 8  # refresh (2 factors x 4 rows x 2 arrays), 2 overflowing INV arrays
    cells = 8 + 16 + 8 + 96 + 64
    # the 12-bit stash of the backward pass fits the 64 KiB buffer: kept on chip
    buffer_bits, noc_bits = 28 + 12 + 28 + 12 + 48 + 32 + 448, 16 + 12 + 256
    offchip_bits = 2048 + 128 + 64
    digital_ops = 8 + 6 + 48 + 64 + 128 + 256
    busy = r["busy_by_category_s"]
    assert busy["vmm"] == pytest.approx(vmm_cycles * 1e-7)
    assert busy["inv"] == pytest.approx(inv_ops * 1e-7)
    assert busy["conversions"] == 0.0  # 4 columns / 4 ADCs at 1 GS/s: 1 ns < 100 ns
    assert busy["writes"] == pytest.approx((rows_vmm / 1 + rows_inv / 2) * 2e-7)
    assert busy["buffers"] == pytest.approx((buffer_bits + noc_bits + offchip_bits) / 1e9)
    assert busy["digital"] == pytest.approx(digital_ops / 1e9)
    assert r["time_s"] == pytest.approx(sum(busy.values()))  # overlap = "none"
    e = r["energy_by_category_j"]
    assert e["inv"] == pytest.approx(inv_ops * 2 * 4 * 1e-3 * 1e-7)  # 2 op-amps x 4 rows
    assert e["vmm"] == pytest.approx(cell_reads * 1e-15)
    # the 6-bit INV DAC costs 2^5 one-bit samples (converters.dac_growth_per_bit = 2)
    assert e["conversions"] == pytest.approx(adc * 2e-12 + dac_vmm * 3e-13 + dac_inv * 5e-12 * 32)
    assert e["writes"] == pytest.approx(cells * (7e-12 + 1e-15))  # pulse + verify read
    assert e["buffers"] == pytest.approx(
        buffer_bits * 1e-13 + noc_bits * 2e-13 + offchip_bits * 4e-12
    )
    assert e["digital"] == pytest.approx(digital_ops * 1.5e-12 + shift_adds * 2e-14)
    assert r["capacity"]["vmm_crossbars_needed"] == 3  # weights + copies of A and G
    assert r["capacity"]["inv_crossbars_needed"] == 4


def test_first_order_and_gpu_counted_by_hand(hand):
    arch, workload = hand
    sgd = reram_step(arch, workload, None, None)
    # the first-order chip of the same area: the INV block (2 arrays, 8 op-amps of 1000 um^2,
    # 4 DACs, 4 ADCs) makes room for 2 more VMM crossbars (4 ADCs of 1200 um^2 each);
    # forward 4 + backward 4 cycles on the weights and at most one useful replica (2 vectors),
    # gradient 8 cycles on all 3
    cap = sgd["capacity"]
    assert cap["vmm_crossbars"] == 3 and cap["weight_replicas"] <= 1
    used = 1 + cap["weight_replicas"]
    assert sgd["busy_by_category_s"]["vmm"] == pytest.approx((8 / used + 8 / 3) * 1e-7)
    assert sgd["busy_by_category_s"]["inv"] == 0.0
    # GPU, roofline at 1 GFLOP/s and 1 GB/s, FP32: each GEMM 64 FLOP, 32 values = 128 ns;
    # update 48 FLOP, 80 values = 320 ns; statistics 2 x 224 ns; inverses 2 x 128 ns;
    # preconditioning 256 FLOP, 64 values = 256 ns
    gpu = gpu_step(arch, workload, kfac=False)
    assert gpu["time_s"] == pytest.approx(3 * 128e-9 + 320e-9)
    kfac = gpu_step(arch, workload, kfac=True)
    assert kfac["time_s"] == pytest.approx(3 * 128e-9 + 320e-9 + 448e-9 + 256e-9 + 256e-9)
    assert kfac["energy_j"] == pytest.approx(100.0 * kfac["time_s"])


def test_time_to_train_combines_steps_and_the_ratio(hand):
    arch, workload = hand
    workload = with_training(workload, epochs=3, dataset_size=10, steps_ratio=0.5)
    r = evaluate(arch, workload, solve_cost(arch, None), inv_timing(arch, None))
    assert r["steps"] == {"sgd": 15.0, "second_order": 7.5}  # 3 x ceil(10 / 2)
    t = r["to_train"]
    assert t["reram_kfac"]["time_s"] == pytest.approx(7.5 * r["machines"]["reram_kfac"]["time_s"])
    assert t["gpu_sgd"]["energy_j"] == pytest.approx(15 * r["machines"]["gpu_sgd"]["energy_j"])
    assert r["speedup"]["vs_gpu_kfac"] == pytest.approx(
        t["gpu_kfac"]["time_s"] / t["reram_kfac"]["time_s"]
    )


# -- invariants ----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["repast", "calibrated"])
def test_doubling_t_inv_never_increases_time(preset):
    card = example_card()
    arch = load_arch(preset)
    cost, timing = solve_cost(arch, card), inv_timing(arch, card)
    t_inv = 2.0 ** np.arange(0, 11)[:, None]
    for name in workload_names():
        w = with_training(load_workload(name), t_inv=t_inv)
        r = evaluate(arch, w, cost, timing)
        for machine in ("reram_kfac", "gpu_kfac"):
            time = r["machines"][machine]["time_s"]
            assert np.all(np.diff(time) <= 1e-12 * time[:-1]), (name, machine)


@pytest.mark.parametrize("decomposition", ["blockamc", "block_diagonal"])
def test_a_larger_crossbar_never_needs_more_blocks(decomposition):
    n = np.arange(1, 3000, 7)[None, :]
    sizes = np.array([8, 16, 32, 64, 100, 128, 256, 512, 1024])[:, None]
    b = block_counts(n, sizes, decomposition)
    for key in ("k", "inv_blocks", "vmm_tiles", "inv_held", "residual_tiles"):
        assert np.all(np.diff(b[key], axis=0) <= 0), key
    assert np.all(b["k"][:, 0] == 1)


def test_blockamc_counts_small_cases():
    b = block_counts(np.array([4, 8, 12, 16]), 4, "blockamc")  # k = 1, 2, 3, 4
    assert b["inv_blocks"].tolist() == [1, 3, 7, 9]  # I(k) = 2 I(ceil k/2) + I(floor k/2)
    assert b["vmm_tiles"].tolist() == [0, 2, 8, 14]  # V(k) = 2 V(k1) + V(k2) + 2 k1 k2
    assert b["residual_tiles"].tolist() == [1, 4, 9, 16]
    d = block_counts(np.array([4, 8, 12]), 4, "block_diagonal")
    assert d["inv_blocks"].tolist() == [1, 2, 3] and not d["vmm_tiles"].any()


# -- the card drives the answer ------------------------------------------------------------
def _kfac(card, **changes):
    arch = load_arch("calibrated", {"solve.decomposition": "block_diagonal", **changes})
    w = load_workload("resnet50")
    return reram_step(arch, w, solve_cost(arch, card), inv_timing(arch, card))


def test_changing_a_card_field_changes_the_result_it_should():
    card = example_card()
    base = _kfac(card)
    more = copy.deepcopy(card)
    more["accuracy"]["schemes"]["repast"]["inv_solves_per_solve"] = [80, 80, 104]
    assert _kfac(more)["busy_by_category_s"]["inv"] == pytest.approx(
        2 * base["busy_by_category_s"]["inv"]
    )
    slow = copy.deepcopy(card)
    slow["timing"]["inv_settle_vs_n"]["settle_s"] = [
        3 * t for t in card["timing"]["inv_settle_vs_n"]["settle_s"]
    ]
    assert _kfac(slow)["busy_by_category_s"]["inv"] == pytest.approx(
        3 * base["busy_by_category_s"]["inv"]
    )
    hungry = copy.deepcopy(card)
    hungry["energy"]["inv_op_j"] *= 5
    assert _kfac(hungry)["energy_by_category_j"]["inv"] == pytest.approx(
        5 * base["energy_by_category_j"]["inv"]
    )
    other = copy.deepcopy(card)
    other["accuracy"]["schemes"]["refine"]["vmm_ops_per_solve"] = [1, 1, 1]  # not the scheme used
    assert _kfac(other)["time_s"] == base["time_s"]
    assert _kfac(card, **{"solve.scheme": "refine"})["time_s"] != base["time_s"]
    assert _kfac(card, **{"solve.percentile": 100.0})["time_s"] > base["time_s"]


def test_old_cards_validate_but_the_timing_model_names_what_is_missing():
    card = example_card()
    del card["timing"]["inv_settle_vs_n"]
    for scheme in card["accuracy"]["schemes"].values():
        for key in ("n", "passes_per_solve", "inv_solves_per_solve", "vmm_ops_per_solve",
                    "conversions_per_solve"):  # fmt: skip
            scheme.pop(key, None)
    validate_card(card)
    arch = load_arch("calibrated")
    with pytest.raises(InputError, match=r"lacks accuracy\.schemes\.repast\.n "):
        solve_cost(arch, card)
    with pytest.raises(InputError, match=r"lacks timing\.inv_settle_vs_n "):
        inv_timing(arch, card)
    ideal = load_arch("calibrated", {"solve.source": "ideal", "inv.source": "arch"})
    assert solve_cost(ideal, card).passes == 2  # the documented way round: ideal values


def test_the_shipped_card_is_a_real_calibration():
    from rerinv.system.arch import preset_path

    card = json.loads(preset_path("calibrated_card.json").read_text())
    validate_card(card)
    assert not card.get("example") and card["software"]["ngspice"] not in (None, "not used")
    arch = load_arch("calibrated")
    assert solve_cost(arch, card).passes > 0 and inv_timing(arch, card).settle(256) > 0


# -- workloads -----------------------------------------------------------------------------
def test_builtin_layer_tables_match_published_sizes():
    vgg16 = load_workload("vgg16").layers
    assert vgg16.weights() == 138_357_544  # torchvision's VGG-16 parameter count
    assert vgg16.macs_per_sample() == pytest.approx(15.47e9, rel=0.01)
    assert load_workload("resnet50").layers.macs_per_sample() == pytest.approx(4.1e9, rel=0.02)
    assert load_workload("resnet101").layers.macs_per_sample() == pytest.approx(7.8e9, rel=0.02)
    assert load_workload("bert-base").layers.weights() == pytest.approx(85.0e6, rel=0.01)
    assert set(large_workloads()) == set(workload_names()) - {"mnist-autoencoder"}


def test_steps_ratio_from_a_number_or_a_file(tmp_path):
    assert load_steps_ratio("0.5") == (0.5, "given on the command line")
    path = tmp_path / "ratio.json"
    ratios = {"second_order_vs_sgd": 0.4, "second_order_vs_adam": 0.6}
    path.write_text(
        json.dumps({**ratios, "source": "training study", "per_network": {"vgg16": 0.3}})
    )
    assert load_steps_ratio(str(path), "resnet50") == (0.4, f"{path}: training study")
    assert load_steps_ratio(str(path), "vgg16")[0] == 0.3
    path.write_text(json.dumps({"second_order_vs_adam": 0.6}))
    with pytest.raises(InputError, match="missing key 'second_order_vs_sgd'"):
        load_steps_ratio(str(path))


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: load_workload("alexnet"), InputError, "unknown workload 'alexnet'"),
        (lambda: load_workload("vgg16", batch=0), InputError, r"training\.batch must be > 0"),
        (lambda: load_workload("vgg16", t_inv=-1), InputError, r"training\.t_inv must be > 0"),
        (lambda: load_arch("repast", {"crossbar.size": 0}), ConfigError, r"crossbar\.size must"),
        (lambda: load_arch("repast", {"write.row_s": -1.0}), ConfigError, r"write\.row_s must"),
        (lambda: load_arch("repast", {"chip.colour": 1}), ConfigError, r"unknown key chip\.colour"),
        (lambda: load_arch("nosuch"), ConfigError, "unknown architecture 'nosuch'"),
        (lambda: load_steps_ratio("-2"), InputError, "--steps-ratio must be > 0"),
    ],
)
def test_bad_input_names_the_field(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_layer_table_with_a_missing_column_or_bad_value(tmp_path):
    table = tmp_path / "net.csv"
    table.write_text("name,kind,fan_in,fan_out,kernel_area\nfc,fc,3,4,1\n")
    with pytest.raises(InputError, match="missing column 'positions'"):
        load_workload(table)
    table.write_text("name,kind,fan_in,fan_out,kernel_area,positions\nfc,fc,3,0,1,1\n")
    with pytest.raises(InputError, match=r"row 1 \(fc\): fan_out must be a whole number > 0"):
        load_workload(table)
    toml = tmp_path / "net.toml"
    toml.write_text('[training]\nbatch = 8\n[[layer]]\nname = "a"\nkind = "conv"\nfan_in = 3\n'
                    "fan_out = 8\nkernel_area = 9\npositions = 16\ncount = 2\n")  # fmt: skip
    w = load_workload(toml)
    assert w.training.batch == 8 and w.layers.n_a.tolist() == [28] and w.layers.count[0] == 2


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["timing", "--workload", "alexnet", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("rerinv: error: unknown workload 'alexnet'")
    assert main(["timing", "--set", "crossbar.size=-4", "--out", str(tmp_path)]) == 2
    assert "crossbar.size must be > 0" in capsys.readouterr().err
    card = example_card()
    del card["timing"]["inv_settle_vs_n"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(card))
    args = ["timing", "--arch", "calibrated", "--card", str(path), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "lacks timing.inv_settle_vs_n" in err and err.count("\n") == 1


# -- the command ---------------------------------------------------------------------------
def test_timing_command_writes_json_and_html(tmp_path, capsys):
    out = tmp_path / "t"
    code = main(["timing", "--workload", "mnist-autoencoder", "--workload", "resnet50",
                 "--steps-ratio", "0.5", "--sweep", "passes=1,2,4", "--out", str(out)])  # fmt: skip
    assert code == 0
    study = json.loads((out / "timing.json").read_text())
    assert set(study["networks"]) == {"mnist-autoencoder", "resnet50"}
    assert study["averaged_over"] == ["resnet50"] and study["decomposition"] == "blockamc"
    assert study["networks"]["resnet50"]["steps"]["second_order"] == pytest.approx(
        0.5 * study["networks"]["resnet50"]["steps"]["sgd"]
    )
    speedups = study["sweeps"]["passes"]["resnet50"]["speedup"]["vs_gpu_kfac"]
    assert len(speedups) == 3 and speedups[0] >= speedups[1] >= speedups[2]
    page = (out / "timing.html").read_text()
    assert "data:image/png;base64," in page and "115.8x" in page
    assert (out / "speedup.png").exists() and (out / "sweep_passes.png").exists()
    assert "mean (large)" in capsys.readouterr().out


def test_sweeps_are_vectorised_and_match_single_points():
    arch, card = load_arch("calibrated"), example_card()
    w = load_workload("bert-base")
    values = np.array([64.0, 128.0, 256.0])
    s = sweep(arch, w, card, "crossbar_size", values, chunk=2)
    for i, size in enumerate(values):
        a = load_arch("calibrated", {"crossbar.size": int(size)})
        r = evaluate(a, w, solve_cost(a, card), inv_timing(a, card))
        assert s["speedup"]["vs_reram_sgd"][i] == pytest.approx(float(r["speedup"]["vs_reram_sgd"]))
    with pytest.raises(ValueError, match="unknown sweep axis"):
        sweep(arch, w, card, "colour", values)


def test_architecture_files_start_from_a_preset(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "repast"\n[crossbar]\nsize = 128\n')
    arch = load_arch(path)
    assert arch["crossbar.size"] == 128 and arch["chip.tiles"] == load_arch("repast")["chip.tiles"]
    path.write_text("[crossbar]\nsize = 128\n")
    with pytest.raises(ConfigError, match=r"missing chip\.tiles .*base = \"repast\""):
        load_arch(path)
    path.write_text('base = "repast"\n[crossbar]\nsize = "big"\n')
    with pytest.raises(ConfigError, match=r"crossbar\.size must be a number"):
        load_arch(path)
