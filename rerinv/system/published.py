"""Published per-network evaluations of ReRAM first- and second-order training, as data, and
the check of the model's per-network ratios against them.

RePAST (arXiv 2210.15255) was published as STAMP (Zhao et al., APPT 2025, LNCS pp. 160-170).
Its talk slides (``APPT25_STAMP.pdf``, June 4 2025, in the first author's GitHub homepage
repository ``xiaoke0515/xiaoke0515.github.io``, ``resume/publications/slides/``) show, on
slide 31, two bar charts normalised to SGD on a Tesla V100 (GPU-1st = 1): (a) the speed-up of
one epoch and (b) of the whole training, for GPU K-FAC (GPU-2nd), first-order ReRAM training
(ReRAM-1st, the paper's PipeLayer) and STAMP. The values below were **read off those charts**
(bar heights from the PDF's vector drawing, mapped against gridlines and ticks): about +-1 %
on the linear axes (the first-order bars read the same in both panels, as they must, within
0.5 %); the GPU-2nd whole-training bars above 1 (ResNet-50, Bert) sit past a broken axis and
are only "about 1.5-1.7"; the AutoEncoder is on a separate axis (log in panel b, so ~+-5 %).

The check (:func:`check`) compares, network by network, the model's ratios with these:
the Spearman rank correlation over the networks both have, and model / published per network.
Nothing in the model is set from these numbers; they are a check it should pass.
"""

from __future__ import annotations

import numpy as np

STAMP_SOURCE = (
    "STAMP (Zhao et al., APPT 2025; the published RePAST, arXiv 2210.15255), talk slides"
    " APPT25_STAMP.pdf (June 4 2025, xiaoke0515/xiaoke0515.github.io,"
    " resume/publications/slides/), slide 31: speed-up over SGD on a Tesla V100"
)
READING = (
    "read off a bar chart (vector bar heights against gridlines): about +-1 % on the linear"
    " axes; GPU-2nd whole-training bars above 1 (ResNet-50, Bert) past a broken axis, about"
    " 1.5-1.7; AutoEncoder on its own axis (log in the whole-training panel), about +-5 %"
)

#: STAMP's networks -> rerinv's built-in workload (None: not modelled here). The AutoEncoder's
#: layers are not stated; rerinv's is the MNIST deep autoencoder (an assumption)
NETWORKS = {
    "VGG-13": "vgg13", "VGG-16": "vgg16", "VGG-19": "vgg19", "MSRA-1": None, "MSRA-2": None,
    "ResNet-50": "resnet50", "ResNet-101": "resnet101", "Bert": "bert-base",
    "AutoEncoder": "mnist-autoencoder",
}  # fmt: skip

#: STAMP network -> ((a) one epoch: GPU-2nd, ReRAM-1st, STAMP), ((b) whole training: same),
#: every value a speed-up over GPU SGD (GPU-1st = 1), read off slide 31 (:data:`READING`)
STAMP = {
    "VGG-13": ((0.35, 31.3, 26.5), (0.61, 31.2, 45.7)),
    "VGG-16": ((0.35, 23.6, 18.9), (0.61, 23.6, 32.7)),
    "VGG-19": ((0.30, 17.3, 13.6), (0.51, 17.3, 23.5)),
    "MSRA-1": ((0.35, 47.7, 38.4), (0.62, 47.6, 68.0)),
    "MSRA-2": ((0.35, 39.1, 30.6), (0.62, 39.0, 54.3)),
    "ResNet-50": ((0.60, 53.9, 46.0), (1.49, 53.8, 114.1)),
    "ResNet-101": ((0.20, 50.5, 42.8), (0.50, 50.3, 106.0)),
    "Bert": ((0.53, 37.8, 29.5), (1.70, 37.6, 94.1)),
    "AutoEncoder": ((0.67, 247.0, 219.0), (66.6, 246.0, 21600.0)),
}

#: the slide's stated summaries (verbatim numbers): STAMP vs GPU-1st over the whole training,
#: STAMP vs ReRAM-1st over the whole training, STAMP's epoch time over ReRAM-1st's
STAMP_STATED = {"vs_gpu_sgd": 68.0, "vs_first_order": 11.4, "epoch_time_vs_first_order": 1.215}

#: PipeLayer (Song et al., HPCA 2017, section 6): geometric means over its ten networks of
#: the speed-up over a GTX 1080 (Caffe). The text prints "overall, training and testing ...
#: 33.85x, 53.22x and 42.45x" but also says training gains less than testing; sqrt(33.85 x
#: 53.22) = 42.44, so the consistent reading (an inference) is training 33.85x, testing
#: 53.22x, overall 42.45x; energy 6.52x training, 7.88x testing, 7.17x overall (stated)
PIPELAYER = {
    "speedup_training": 33.85, "speedup_testing": 53.22, "speedup_overall": 42.45,
    "energy_training": 6.52, "energy_testing": 7.88, "energy_overall": 7.17,
    "source": "Song et al., PipeLayer, HPCA 2017, section 6 (training 33.85x is the consistent"
              " reading of the printed order, an inference; GPU: GTX 1080, Caffe)",
}  # fmt: skip


def epoch_ratio(network: str) -> float:
    """SGD epochs / K-FAC epochs implied by STAMP's bars: its whole-training speed-up over
    its one-epoch speed-up (GPU-2nd gives the same within about 1 %)."""
    (_, _, epoch), (_, _, whole) = STAMP[network]
    return whole / epoch


#: rerinv workload -> (K-FAC / SGD steps implied by STAMP's bars, STAMP's network name)
STEPS_RATIOS = {ours: (1.0 / epoch_ratio(theirs), theirs)
                for theirs, ours in NETWORKS.items() if ours}  # fmt: skip
STEPS_SOURCE = (
    "RePAST/STAMP's own epoch ratio for {name}: SGD:K-FAC = {ratio:.3g}, its whole-training"
    " over its one-epoch speed-up (" + STAMP_SOURCE + "; chart readings)"
)

#: ratio name -> (meaning, published value from ((a), (b)), the model's from an evaluate result)
RATIOS = {
    "first_order_vs_gpu_sgd": (
        "first-order ReRAM vs GPU SGD (per epoch = to train)",
        lambda a, b: a[1],
        lambda r: _per_step(r, "gpu_sgd", "reram_sgd"),
    ),
    "second_order_vs_gpu_sgd_epoch": (
        "ReRAM K-FAC vs GPU SGD, one epoch",
        lambda a, b: a[2],
        lambda r: _per_step(r, "gpu_sgd", "reram_kfac"),
    ),
    "second_order_vs_first_order_epoch": (
        "ReRAM K-FAC vs first-order ReRAM, one epoch",
        lambda a, b: a[2] / a[1],
        lambda r: _per_step(r, "reram_sgd", "reram_kfac"),
    ),
    "gpu_kfac_vs_gpu_sgd_epoch": (
        "GPU K-FAC vs GPU SGD, one epoch",
        lambda a, b: a[0],
        lambda r: _per_step(r, "gpu_sgd", "gpu_kfac"),
    ),
    "second_order_vs_gpu_sgd_train": (
        "ReRAM K-FAC vs GPU SGD, to train (at the run's steps ratio)",
        lambda a, b: b[2],
        lambda r: r["speedup"]["vs_gpu_sgd"],
    ),
    "second_order_vs_first_order_train": (
        "ReRAM K-FAC vs first-order ReRAM, to train (at the run's steps ratio)",
        lambda a, b: b[2] / b[1],
        lambda r: r["speedup"]["vs_reram_sgd"],
    ),
}


def _per_step(result: dict, slow: str, fast: str):
    """Time per step of ``slow`` over ``fast`` (per epoch: both take the same steps)."""
    m = result["machines"]
    return m[slow]["time_s"] / m[fast]["time_s"]


def spearman(x, y) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None below three points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(v.size, dtype=float)
    for value in np.unique(v):  # ties: the mean of their ranks
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def check(results: dict | list) -> dict:
    """The model's per-network ratios against STAMP's published bars.

    Parameters
    ----------
    results : dict or list
        ``evaluate`` results by workload name (or a list of them; each names its
        ``workload``). Networks STAMP did not evaluate are left out.

    Returns
    -------
    dict
        Per ratio of :data:`RATIOS`: ``meaning``, ``networks`` (rerinv names, in STAMP's
        order), ``model``, ``published``, ``factor`` (model / published) per network,
        ``spearman`` (rank correlation, None below three networks), ``model_ranking`` and
        ``published_ranking`` (largest first); and ``source``, ``reading``.
    """
    if isinstance(results, list):
        results = {r["workload"]: r for r in results}
    pairs = [(theirs, ours) for theirs, ours in NETWORKS.items() if ours in results]
    out: dict = {"source": STAMP_SOURCE, "reading": READING, "ratios": {}}
    for key, (meaning, published_of, model_of) in RATIOS.items():
        names = [ours for _, ours in pairs]
        model = {ours: float(np.mean(model_of(results[ours]))) for _, ours in pairs}
        published = {ours: float(published_of(*STAMP[theirs])) for theirs, ours in pairs}
        out["ratios"][key] = {
            "meaning": meaning,
            "networks": names,
            "model": model,
            "published": published,
            "factor": {n: model[n] / published[n] for n in names},
            "spearman": spearman([model[n] for n in names], [published[n] for n in names]),
            "model_ranking": sorted(names, key=lambda n: -model[n]),
            "published_ranking": sorted(names, key=lambda n: -published[n]),
        }
    return out
