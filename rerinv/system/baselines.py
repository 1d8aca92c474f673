"""The GPU baseline: a roofline per kernel, running the same K-FAC step or plain SGD.

A kernel of ``F`` FLOPs touching ``B`` bytes takes ``max(F / (peak x efficiency),
B / (bandwidth x memory_efficiency)) + kernel_launch_s``; GEMM-like kernels (forward,
backward, factor statistics, preconditioning) run at ``gpu.gemm_efficiency``, the factor
inverses (Cholesky factorisation and inverse, ``n^3`` FLOPs for an ``n x n`` factor) at
``gpu.inverse_efficiency``. Energy is ``gpu.power_w`` times the time. With the
``block_diagonal`` decomposition the GPU inverts and applies the same diagonal blocks as the
accelerator (the same K-FAC approximation), with ``blockamc`` the whole factors.

Per layer (``Q = batch x positions`` vectors, ``n_A`` and ``n_G`` the factor sizes):
forward, backward-data and weight-gradient GEMMs ``2 n_A n_G Q`` FLOPs each; statistics
``2 Q (n_A^2 + n_G^2)`` every ``t_cov`` steps; inverses every ``t_inv`` steps;
preconditioning ``2 n_G n_A (b_A + b_G)`` with ``b`` the factor size (or block size); update
reads and writes weights, gradient and momentum.
"""

from __future__ import annotations

import numpy as np

from rerinv.system.arch import Architecture
from rerinv.system.blocks import block_counts
from rerinv.system.model import squeeze
from rerinv.system.workloads import Workload

GPU_CATEGORIES = ("gemm", "statistics", "inverse", "preconditioning", "update")


def _kernel(gpu, flops, values, efficiency, launches=1.0):
    """Roofline time of ``launches`` kernels doing ``flops`` and moving ``values`` values."""
    compute = flops / (gpu.peak_flops * efficiency)
    memory = values * gpu.bytes_per_value / (gpu.bytes_per_s * gpu.memory_efficiency)
    return np.maximum(compute, memory) + launches * gpu.kernel_launch_s


def gpu_step(arch: Architecture, workload: Workload, kfac: bool) -> dict:
    """Time and energy of one training step on the GPU.

    Parameters
    ----------
    arch : Architecture
        Its ``[gpu]`` section; ``crossbar.size`` and ``solve.decomposition`` set the K-FAC
        blocks when the decomposition is ``block_diagonal``.
    workload : Workload
    kfac : bool
        K-FAC (True) or SGD with momentum (False).

    Returns
    -------
    dict
        ``time_s``, ``energy_j`` per step and ``time_by_category_s`` (:data:`GPU_CATEGORIES`).
    """
    gpu, lay, tr = arch.section("gpu"), workload.layers, workload.training
    n_a, n_g = lay.n_a.astype(float), lay.n_g.astype(float)
    q = tr.batch * lay.positions.astype(float)
    # 3x3 convolutions run as Winograd transforms (fewer multiplications, same data)
    fast = np.where((lay.kind == "conv") & (lay.kernel_area == 9), gpu.winograd_reduction, 1.0)
    gemm = 3 * _kernel(
        gpu, 2 * n_a * n_g * q / fast, q * n_a + n_a * n_g + q * n_g, gpu.gemm_efficiency
    )
    update = _kernel(gpu, 3 * n_a * n_g, 5 * n_a * n_g, 1.0)
    parts = {"gemm": gemm, "update": update}
    if kfac:
        diag = arch["solve.decomposition"] == "block_diagonal"
        size = arch["crossbar.size"]
        stats, inverse, block = 0.0, 0.0, {}
        for name, n in (("a", n_a), ("g", n_g)):
            stats = stats + _kernel(gpu, 2 * q * n * n, q * n + 3 * n * n, gpu.gemm_efficiency, 2)
            if diag:
                k = block_counts(n, size, "block_diagonal")["k"]
                block[name] = np.minimum(n, size)
                flops, launches = k * np.minimum(n, size) ** 3, 2.0  # batched over blocks
            else:
                block[name] = n
                flops, launches = n**3, 2.0
            inverse = inverse + _kernel(gpu, flops, 2 * n * n, gpu.inverse_efficiency, launches)
        parts["statistics"] = stats / tr.t_cov
        parts["inverse"] = inverse / tr.t_inv
        flops = 2 * n_g * n_a * (block["a"] + block["g"])
        values = 2 * n_a * n_g + n_a * block["a"] + n_g * block["g"]
        parts["preconditioning"] = _kernel(gpu, flops, values, gpu.gemm_efficiency, 2)
    by_cat = {c: np.sum(parts[c] * lay.count, axis=-1, keepdims=True) if c in parts else 0.0
              for c in GPU_CATEGORIES}  # fmt: skip
    time = sum(by_cat.values())
    return squeeze(
        {
            "time_s": time,
            "energy_j": gpu.power_w * time,
            "time_by_category_s": by_cat,
            "area_mm2": gpu.die_area_mm2,
            "power": {"average_w": gpu.power_w},
        }
    )


#: a published measured step to check the roofline against: NVIDIA DeepLearningExamples,
#: PyTorch ResNet-50 v1.5 README, training throughput on one V100 16 GB (DGX-1), FP32
GPU_MEASURED = {
    "workload": "resnet50",
    "images_per_s": 380.44,
    "source": "NVIDIA DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5"
    " README: 380.44 img/s FP32 on 1x V100 16G (pytorch-19.10 container)",
}


def gpu_check(arch: Architecture, workload: Workload) -> dict:
    """The roofline's SGD step against :data:`GPU_MEASURED` (same network and batch).

    Returns
    -------
    dict
        ``model_images_per_s``, ``measured_images_per_s``, their ``ratio`` and ``source``.
    """
    step = gpu_step(arch, workload, kfac=False)["time_s"]
    model = workload.training.batch / step
    return {
        "model_images_per_s": model,
        "measured_images_per_s": GPU_MEASURED["images_per_s"],
        "ratio": model / GPU_MEASURED["images_per_s"],
        "source": GPU_MEASURED["source"],
    }


#: measured throughputs of two networks on one GPU, to check the roofline's per-network
#: efficiency (a 3x3-convolution network against a bottleneck one): TensorFlow's published
#: benchmarks, tf_cnn_benchmarks, one P100 of a DGX-1, synthetic data, batch 64, SGD, CUDA 8 /
#: cuDNN 5.1, May 2017 (tensorflow/docs_src/performance/benchmarks.md); on one K80 (GCE)
#: the same table gives 35.4 / 51.9 = 0.68
GPU_MEASURED_RATIO = {
    "workloads": ("vgg16", "resnet50"),
    "images_per_s": (154.0, 219.0),
    "batch": 64,
    "source": "TensorFlow benchmarks (tf_cnn_benchmarks, May 2017): one P100 (DGX-1), synthetic"
    " data, batch 64: VGG16 154 img/s, ResNet-50 219 img/s (K80: 35.4 / 51.9)",
}


def gpu_ratio_check(arch: Architecture, load) -> dict:
    """The roofline's VGG-16 / ResNet-50 SGD throughput ratio against
    :data:`GPU_MEASURED_RATIO` (same GPU for both, so its peak cancels).

    ``load(name, batch=...)`` builds a workload (``rerinv.system.load_workload``).

    Returns
    -------
    dict
        ``model_ratio``, ``measured_ratio``, their ``factor`` and ``source``.
    """
    m = GPU_MEASURED_RATIO
    rates = []
    for name in m["workloads"]:
        w = load(name, batch=m["batch"])
        rates.append(m["batch"] / gpu_step(arch, w, kfac=False)["time_s"])
    model = float(np.mean(rates[0] / rates[1]))
    measured = m["images_per_s"][0] / m["images_per_s"][1]
    return {"model_ratio": model, "measured_ratio": measured, "factor": model / measured,
            "source": m["source"]}  # fmt: skip
