"""Hardware time per training step, from the system timing model (``rerinv timing``).

The report's time axes are not the simulator's wall time (which measures how long the nodal
engine takes to *simulate* an inverse) but the time the modelled accelerator would take:
:func:`rerinv.system.model.reram_step` for the network's layer table (built from the trained
network: K-FAC factor widths and positions per sample), the batch and ``T_inv`` of the grid,
on the ``repast`` architecture preset. K-FAC settings use the second-order machine with the
solve's target bits set to the setting's cell bits (``single``) or 16 (float64: an exact
inverse stands for RePAST's 16-bit solve); SGD and Adam use the first-order machine (Adam's
extra element-wise work is not modelled).
"""

from __future__ import annotations

import numpy as np

from rerinv.training.spec import Setting, TrainingSpec

#: The architecture preset of the timing model the axes use.
ARCH = "repast"


def layer_rows(spec: TrainingSpec) -> list[tuple]:
    """``(name, kind, fan_in, fan_out, kernel_area, positions, count)`` per K-FAC layer:
    ``fan_in * kernel_area + 1`` is the layer's A width; positions per sample are measured
    on one sample of the dataset (1 for a dense layer)."""
    data = spec.dataset()
    net = spec.model(data)
    weights = net.init_weights(np.random.default_rng(0))
    trace = net.forward(weights, data.x_train[:1])
    rows = []
    for k, ((a, g), inputs) in enumerate(
        zip(net.factor_sizes(), net.kfac_inputs(trace), strict=True)
    ):
        positions = max(1, int(np.asarray(inputs).size) // int(a))
        kind = "fc" if positions == 1 else "conv"
        rows.append((f"layer{k + 1}", kind, int(a) - 1, int(g), 1, positions, 1))
    return rows


def step_times(spec: TrainingSpec, settings: list[Setting]) -> dict[str, float]:
    """Seconds per training step on the modelled hardware, by setting label (settings the
    model has no machine for are left out)."""
    from rerinv.system.arch import load_arch
    from rerinv.system.calibration import inv_timing, solve_cost
    from rerinv.system.model import reram_step
    from rerinv.system.workloads import Training, Workload, layers_from_rows

    layers = layers_from_rows(layer_rows(spec), spec.network)
    training = Training(batch=spec.batch_size, t_inv=spec.inverse_every,
                        dataset_size=len(spec.dataset().x_train))  # fmt: skip
    workload = Workload(spec.network, layers, training, False, "rerinv train")
    out: dict[str, float] = {}
    first = float(np.asarray(reram_step(load_arch(ARCH), workload, None, None)["time_s"]))
    for setting in settings:
        if setting.optimizer != "kfac":
            out[setting.label] = first
            continue
        if setting.backend not in ("float64", "single"):
            continue
        bits = 16 if setting.backend == "float64" or setting.bits is None else setting.bits
        arch = load_arch(ARCH, {"solve.target_bits": float(bits)})
        step = reram_step(arch, workload, solve_cost(arch, None), inv_timing(arch, None))
        out[setting.label] = float(np.asarray(step["time_s"]))
    return out
