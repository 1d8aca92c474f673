# ruff: noqa: E501  (a table of citations: one entry per line reads best)
"""Where every value of the ``repast`` preset comes from, and the cited range of each value
that is an assumption or disputed (the tornado of ``rerinv timing`` varies over it).

:data:`SOURCES` maps ``"section.key"`` to its citation or derivation (every field of
:data:`~rerinv.system.arch.ARCH_FIELDS` has one; a test checks it and that docs/timing.md
lists it). :data:`RANGES` maps a field to ``(low, high, why)`` in the field's own unit.

Main sources: ISAAC (Shafiee et al., ISCA 2016, Table I; 32 nm; its component rows add up
to the published tile, 0.372 mm^2 and 330 mW with the router's share, and chip, 85.4 mm^2
and 65.8 W), as transcribed with derivations in Accelergy's hwcomponents-library
(``hwcomponents_library/library/isaac.py``); RePAST (arXiv 2210.15255) as the brief states
it; PipeLayer (Song et al., HPCA 2017) for the training pipeline; Horowitz (ISSCC 2014)
for digital arithmetic; NVIDIA's V100 datasheet and whitepaper. RePAST's and PipeLayer's
own configuration tables could not be read here; what they would fix is marked.
"""

from __future__ import annotations

_ISAAC = "ISAAC (Shafiee et al., ISCA 2016) Table I"
_ACC = "Accelergy hwcomponents-library isaac.py"

# fmt: off
SOURCES: dict[str, str] = {
    "chip.tiles": "derivation: the most tiles of this composition whose chip (tiles + off-chip"
                  " interface) fits chip.area_budget_mm2 (rerinv.system.components.tiles_for_area)",
    "chip.vmm_crossbars_per_tile": "derivation: an ISAAC tile holds 96 arrays of 128x128"
                                   " (1.57 M cells); 32 VMM + 2 INV arrays of 256x256 keep"
                                   " RePAST's 16:1 VMM:INV crossbar ratio (one INV block of"
                                   " A+ and A- per 32 VMM crossbars)",
    "chip.inv_crossbars_per_tile": "RePAST: VMM:INV crossbars 16:1; one INV block = crossbar.inv_arrays arrays",
    "chip.static_power_w": f"{_ISAAC}: powers are per component while active; no separate leakage",
    "chip.area_budget_mm2": "NVIDIA V100 whitepaper: the GV100 die, 815 mm^2 (12 nm; the"
                            " components here are ISAAC's 32 nm ones, which favours the GPU);"
                            " iso-area with the GPU compared against",
    "chip.power_budget_w": "NVIDIA V100 datasheet: 300 W board power, the GPU compared against",
    "chip.first_order_chip": "choice: iso_area, a first-order accelerator of the same area (the"
                             " INV blocks' area as VMM crossbars); same_crossbars, the K-FAC"
                             " chip running SGD with its INV blocks idle (what STAMP's bars fit)",
    "crossbar.size": "RePAST: 256 x 256 crossbars",
    "crossbar.vmm_cell_bits": "RePAST: 8-bit cells (A_L in one VMM crossbar)",
    "crossbar.inv_cell_bits": "RePAST: 8-bit A_H in the INV crossbar",
    "crossbar.vmm_arrays_per_weight": "ISAAC section V: offset-encoded weights in one array",
    "crossbar.inv_arrays": "Sun et al., PNAS 2019 INV topology: A+ and A- arrays",
    "crossbar.read_cycle_s": "RePAST: 100 ns cycle; ISAAC section IV: one read = 100 ns",
    "crossbar.cell_read_energy_j": f"{_ISAAC}: 8 arrays 128x128 draw 2.4 mW -> 2.4 mW x 100 ns / 131072",
    "crossbar.cell_area_um2": f"{_ISAAC}: 8 arrays 128x128 in 0.0002 mm^2 -> 1.53e-3 um^2 per cell",
    "precision.weight_bits": "ISAAC section V: 16-bit fixed-point weights",
    "precision.activation_bits": "ISAAC section V: 16-bit inputs, applied bit-serially",
    "precision.residual_weight_bits": "RePAST: 16-bit A = A_H + A_L (8 + 8 bits)",
    "precision.master_weight_bits": "assumption: FP32 master weights off chip, as on the GPU",
    "converters.vmm_dac_bits": "ISAAC section V: 1-bit DACs, 16 input cycles",
    "converters.inv_dac_bits": "RePAST: 6-bit DAC for b",
    "converters.adc_bits": "RePAST and ISAAC: 8-bit ADC",
    "converters.adc_ref_bits": f"{_ISAAC}: the ADC whose energy, area and rate are given is"
                               " 8-bit (Kull et al., ISSCC 2013 SAR)",
    "converters.adcs_per_crossbar": "derivation: one ISAAC ADC converts 128 columns per 100 ns;"
                                    " 256 columns need two",
    "converters.adc_rate_hz": "ISAAC section V: 1.28 GS/s (128 columns per 100 ns)",
    "converters.adc_energy_j": f"{_ISAAC}: 16 mW for 8 ADCs / (8 x 1.28 GS/s)",
    "converters.adc_area_um2": f"{_ISAAC}: 0.0096 mm^2 for 8 ADCs ({_ACC}: 1200 um^2)",
    "converters.adc_energy_growth_per_bit": "Walden figure of merit, E = FOM x 2^bits (Murmann's"
                                            f" ADC survey); {_ACC} scales ISAAC's ADC by 2^bits",
    "converters.adc_area_growth_per_bit": f"{_ACC}: ISAAC's ADC area scaled by 2^bits",
    "converters.vmm_dac_energy_j": f"{_ISAAC}: 4 mW for 1024 1-bit DACs x 100 ns / 1024"
                                   " (per 1-bit sample; b bits cost growth^(b-1) times it)",
    "converters.inv_dac_energy_j": "as converters.vmm_dac_energy_j: a 1-bit sample (ISAAC); the"
                                   " INV DAC's inv_dac_bits scale it by growth^(bits-1)",
    "converters.dac_area_um2": f"{_ISAAC}: 0.00017 mm^2 for 1024 1-bit DACs",
    "converters.dac_growth_per_bit": f"{_ACC}: ISAAC's DAC energy and area scaled by 2^bits",
    "inv.source": "choice: arch (this section) or card (rerinv calibrate)",
    "inv.settle_s": "RePAST: an INV solve takes one 100 ns cycle (ideal INV block)",
    "inv.opamp_power_w": "assumption: rerinv's default op-amp power (config opamp.power)",
    "inv.opamps_per_row": "Sun et al. topology: row op-amp + unity-gain inverter per row",
    "inv.crossbar_power_w": "not stated; op-amps dominate (the calibrated card measures the array)",
    "inv.opamp_area_um2": "assumption: a 100-MHz op-amp able to drive a 256-cell row, about the"
                          " area of ISAAC's 8-bit ADC (1200 um^2, 32 nm)",
    "solve.source": "choice: ideal values below or the card's Monte Carlo",
    "solve.scheme": "choice: the scheme RePAST proposes",
    "solve.percentile": "choice: the median solve",
    "solve.passes": "RePAST x slicing: 16-bit x from an 8-bit ADC, 8 bits per pass",
    "solve.inv_solves": "RePAST: pass 1 two DAC slices (12-bit b, 6-bit DAC), pass 2 two"
                        " slices x two Neumann terms",
    "solve.vmm_ops": "derivation: 2 residuals of 16-bit A in 8-bit cells x 16 planes + one"
                     " A_L VMM of 16 planes",
    "solve.conversions_per_row": "derivation: 2 per row per INV solve + 2 per row per VMM op",
    "solve.target_bits": "RePAST and the brief: training needs 16-bit solves",
    "solve.decomposition": "choice: exact factors, as the GPU inverts them (BlockAMC)",
    "solve.blockamc_vmm_planes": "derivation: vectors inside a BlockAMC solve are 8-bit ADC outputs",
    "digital.ops_per_s_per_tile": "assumption: 16 lanes at ISAAC's 1.2 GHz tile clock",
    "digital.energy_per_op_j": "Horowitz, ISSCC 2014 (45 nm): 16-bit FP mult 1.1 pJ + add 0.4 pJ",
    "digital.shift_add_energy_j": f"{_ISAAC}: 0.2 mW S+A / (8 ADCs x 1.2 GS/s)",
    "digital.area_mm2_per_tile": "Horowitz, ISSCC 2014 (45 nm): 16-bit FP mult 1640 um^2 + add"
                                 " 1360 um^2, x 16 lanes",
    "buffer.bytes_per_tile": f"{_ISAAC}: 64 KB eDRAM per tile",
    "buffer.bits_per_s_per_tile": f"derivation: {_ISAAC}'s eDRAM-to-IMA bus of 384 wires at the"
                                  " 1.2 GHz tile clock",
    "buffer.energy_per_bit_j": f"{_ACC}: ISAAC eDRAM 20.45 pJ per 256-bit access + bus 0.054 pJ/bit",
    "buffer.edram_area_mm2_per_kib": f"{_ISAAC}: 64 KB eDRAM in 0.083 mm^2",
    "buffer.bus_area_mm2": f"{_ISAAC}: eDRAM-to-IMA bus 0.090 mm^2 per tile",
    "offchip.bits_per_s": "assumption: the V100's HBM2 (900 GB/s)",
    "offchip.energy_per_bit_j": "O'Connor et al., MICRO 2017: HBM2 about 3.9 pJ/bit",
    "offchip.interface_area_mm2": f"{_ISAAC}: HyperTransport links 22.88 mm^2 per chip",
    "offchip.interface_power_w": f"{_ISAAC}: HyperTransport links 10.4 W per chip",
    "noc.bits_per_s_per_tile": f"derivation: {_ISAAC}: 32-bit flits at the 1.2 GHz clock, one router"
                               " port per tile (8 ports: 4 tiles and 4 mesh links)",
    "noc.tiles_per_router": f"{_ISAAC}: one router is shared by 4 tiles ({_ACC})",
    "noc.energy_per_bit_j": f"{_ISAAC}: 42 mW router / (8 ports x 32 bit x 1.2 GHz)",
    "noc.router_area_mm2": f"{_ISAAC}: 0.151 mm^2 per router (shared by 4 tiles; {_ACC})",
    "write.row_s": "assumption: 100 ns program pulse + one 100 ns verify read, a row at once",
    "write.energy_per_cell_j": "assumption: ~100 uA at ~1 V for 100 ns (Wong et al., Proc. IEEE 2012)",
    "write.verify_pulses": "RePAST's ideal devices: one pulse lands on the target level",
    "write.endurance_cycles": "assumption: low end of RRAM endurance 1e6-1e12 (Wong et al. 2012)",
    "model.overlap": "choice: within a phase the slowest resource decides (a roofline)",
    "gpu.peak_flops": "NVIDIA V100 (SXM2) datasheet: 15.7 TFLOP/s FP32",
    "gpu.bytes_per_s": "V100 datasheet: 900 GB/s HBM2",
    "gpu.power_w": "V100 datasheet: 300 W board power, charged for the whole step",
    "gpu.gemm_efficiency": "check: set to 0.55 when the model's ResNet-50 SGD step was within 10 % of"
                           " NVIDIA's measured 380 img/s (FP32, 1 V100; rerinv.system.baselines);"
                           " with Winograd 3x3 convolutions (gpu.winograd_reduction) it runs at 1.23x",
    "gpu.winograd_reduction": "Lavin and Gray, CVPR 2016: Winograd F(2x2,3x3) computes a 3x3"
                              " convolution in 16 multiplications instead of 36 (2.25x); cuDNN"
                              " (>= 5) runs 3x3 forward, backward-data and backward-filter"
                              " convolutions with it. Checked: VGG-16 / ResNet-50 throughput 0.44"
                              " (1.0: 0.27) against 0.70 measured (TensorFlow benchmarks, one P100;"
                              " rerinv.system.baselines.gpu_ratio_check)",
    "gpu.inverse_efficiency": "assumption: cuSOLVER Cholesky + inverse well below GEMM rate",
    "gpu.memory_efficiency": "assumption: streaming kernels reach ~80 % of HBM2 bandwidth",
    "gpu.kernel_launch_s": "assumption: ~5 us fixed cost per CUDA kernel",
    "gpu.bytes_per_value": "FP32",
    "gpu.die_area_mm2": "NVIDIA Tesla V100 whitepaper: GV100 815 mm^2 (12 nm)",
}

#: "section.key" -> (low, high, why): the values the tornado should span
RANGES: dict[str, tuple[float, float, str]] = {
    "chip.tiles": (73, 925, "this tile in ISAAC's chip area (85.4 mm^2) .. in the V100's die"
                            " (815 mm^2)"),
    "chip.area_budget_mm2": (85.4, 815.0, "ISAAC's chip .. the V100's die"),
    "converters.adc_rate_hz": (1.2e9, 1.28e9, f"{_ISAAC} lists 1.2 GS/s, section V 1.28 GS/s"),
    "converters.adc_energy_j": (1.5625e-12, 1.667e-12, f"16 mW / 8 ADCs at 1.28 or 1.2 GS/s ({_ACC})"),
    "converters.adc_energy_growth_per_bit": (1.2, 4.0, "Saberi et al. 2011 C-DAC table ("
                                             f"{_ACC}: ~1.2x per bit near 8 bits) .. thermal-noise"
                                             " limited (Schreier FOM, 4x per bit)"),
    "converters.adc_area_growth_per_bit": (1.35, 2.0, f"Saberi et al. 2011 table in {_ACC}: 1.35-1.58x per bit"),
    "converters.dac_growth_per_bit": (1.2, 2.0, "Saberi et al. C-DAC scaling .. 2^bits"),
    "inv.opamp_power_w": (1e-4, 3e-3, "assumption: 0.1-3 mW for a 100-MHz op-amp"),
    "inv.opamp_area_um2": (300.0, 5000.0, "assumption: 0.25x-4x ISAAC's ADC area"),
    "inv.crossbar_power_w": (0.0, 0.5, "assumption: none .. half the op-amps' power"),
    "inv.settle_s": (1e-7, 5.1e-6, "RePAST's one cycle .. the shipped SKY130 card's 5.1 us at N = 256"
                                   " (extrapolated from N <= 32)"),
    "buffer.bits_per_s_per_tile": (8.192e10, 4.608e11, "1 KB per 100 ns (what ISAAC's IMAs consume) .."
                                   " 384 wires x 1.2 GHz"),
    "buffer.energy_per_bit_j": (0.06e-12, 0.34e-12, f"{_ACC} per-access energy .. ISAAC's eDRAM+bus"
                                " power over 1 KB per 100 ns"),
    "noc.tiles_per_router": (1, 4, "a router per tile .. ISAAC's one per 4 tiles"),
    "offchip.bits_per_s": (2.048e11, 7.2e12, "ISAAC's HyperTransport (4 x 6.4 GB/s) .. V100 HBM2"),
    "digital.ops_per_s_per_tile": (4.8e9, 7.68e10, "4 .. 64 lanes at 1.2 GHz"),
    "digital.area_mm2_per_tile": (0.012, 0.2, "4 .. 64 FP16 lanes (Horowitz 45 nm)"),
    "write.energy_per_cell_j": (1e-13, 1e-10, "Wong et al., Proc. IEEE 2012: sub-pJ .. 100 pJ"),
    "write.row_s": (1e-7, 1e-6, "one 100 ns pulse .. ten program-and-verify pulses"),
    "write.endurance_cycles": (1e6, 1e12, "Wong et al. 2012"),
    "gpu.gemm_efficiency": (0.45, 0.8, "measured ResNet-50 FP32 (380 img/s) .. cuBLAS large-GEMM rate"),
    "gpu.winograd_reduction": (1.0, 4.0, "direct or implicit-GEMM convolution .. Winograd F(4x4,3x3), 36"
                               " instead of 144 multiplications (Lavin and Gray, CVPR 2016)"),
    "gpu.inverse_efficiency": (0.1, 0.6, "assumption"),
    "gpu.memory_efficiency": (0.6, 0.9, "assumption"),
    "gpu.kernel_launch_s": (2e-6, 2e-5, "assumption"),
    "chip.power_budget_w": (65.8, 300.0, "ISAAC's chip power .. the V100's board power"),
    "training.steps_ratio": (0.389, 1.0, "Osawa et al. CVPR 2019 (35/90 epochs) .. no gain"),
}
# fmt: on
