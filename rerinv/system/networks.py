"""Built-in layer tables: VGG-13/16/19 and ResNet-50/101 on 224 x 224 ImageNet images, the
encoder of BERT-base at sequence length 128, and the MNIST deep autoencoder.

A row is ``(name, kind, fan_in, fan_out, kernel_area, positions, count)``: a convolution or a
fully connected (``fc``) layer with ``fan_in`` input channels (features), ``fan_out`` outputs, a
``kernel_area`` (k*k, 1 for fc) and ``positions`` output positions per sample (H_out*W_out, the
sequence length for BERT, 1 for fc on images); ``count`` identical layers. Only layers with
weights that K-FAC preconditions are listed: pooling, normalisation, embeddings and the
attention score products (activation x activation, about 3 % of BERT's MACs) are left out of
every machine alike.
"""

from __future__ import annotations

from rerinv.system.published import STEPS_RATIOS as _PAPER

Row = tuple[str, str, int, int, int, int, int]

_VGG = {
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
    + [512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
    + [512, 512, 512, 512, "M"],
}


def vgg(name: str) -> list[Row]:
    """VGG (Simonyan and Zisserman, ICLR 2015, configurations B, D, E): 3x3 convolutions with
    padding 1, 2x2 max pooling, three fully connected layers; 224 x 224 input."""
    rows: list[Row] = []
    size, channels, index = 224, 3, 0
    for item in _VGG[name]:
        if item == "M":
            size //= 2
            continue
        index += 1
        rows.append((f"conv{index}", "conv", channels, int(item), 9, size * size, 1))
        channels = int(item)
    rows += [
        ("fc1", "fc", channels * size * size, 4096, 1, 1, 1),
        ("fc2", "fc", 4096, 4096, 1, 1, 1),
        ("fc3", "fc", 4096, 1000, 1, 1, 1),
    ]
    return rows


def resnet(depth: int) -> list[Row]:
    """ResNet-50/101 (He et al., CVPR 2016) with bottleneck blocks, stride on the 3x3
    convolution (torchvision's v1.5); 224 x 224 input."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    rows: list[Row] = [("conv1", "conv", 3, 64, 49, 112 * 112, 1)]
    size, channels = 56, 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
        for block in range(count):
            stride = 2 if stage > 1 and block == 0 else 1
            out = size // stride
            tag = f"layer{stage}.{block}"
            rows.append((f"{tag}.conv1", "conv", channels, width, 1, size * size, 1))
            rows.append((f"{tag}.conv2", "conv", width, width, 9, out * out, 1))
            rows.append((f"{tag}.conv3", "conv", width, 4 * width, 1, out * out, 1))
            if block == 0:
                rows.append((f"{tag}.downsample", "conv", channels, 4 * width, 1, out * out, 1))
            channels, size = 4 * width, out
    rows.append(("fc", "fc", channels, 1000, 1, 1, 1))
    return rows


def bert_base(sequence: int = 128) -> list[Row]:
    """BERT-base encoder (Devlin et al., NAACL 2019): 12 layers, hidden 768, feed-forward 3072;
    the linear layers of one encoder layer, ``count = 12``."""
    hidden, ffn, layers = 768, 3072, 12
    return [
        ("attention.query", "fc", hidden, hidden, 1, sequence, layers),
        ("attention.key", "fc", hidden, hidden, 1, sequence, layers),
        ("attention.value", "fc", hidden, hidden, 1, sequence, layers),
        ("attention.output", "fc", hidden, hidden, 1, sequence, layers),
        ("intermediate", "fc", hidden, ffn, 1, sequence, layers),
        ("output", "fc", ffn, hidden, 1, sequence, layers),
    ]


def mnist_autoencoder() -> list[Row]:
    """The deep autoencoder 784-1000-500-250-30-250-500-1000-784 (Hinton and Salakhutdinov,
    Science 2006), K-FAC's first benchmark (Martens and Grosse, ICML 2015)."""
    widths = (784, 1000, 500, 250, 30, 250, 500, 1000, 784)
    return [
        (f"fc{i}", "fc", a, b, 1, 1, 1)
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True), 1)
    ]


IMAGENET = (1_281_167, "ImageNet-1k training set (Russakovsky et al., IJCV 2015)")

#: name -> (rows, large, dataset size, epochs, batch, where the training numbers come from)
BUILTIN = {
    "vgg13": (lambda: vgg("vgg13"), True, IMAGENET[0], 74, 256, "74 epochs at batch 256"
              " (Simonyan and Zisserman 2015); " + IMAGENET[1]),
    "vgg16": (lambda: vgg("vgg16"), True, IMAGENET[0], 74, 256, "74 epochs at batch 256"
              " (Simonyan and Zisserman 2015); " + IMAGENET[1]),
    "vgg19": (lambda: vgg("vgg19"), True, IMAGENET[0], 74, 256, "74 epochs at batch 256"
              " (Simonyan and Zisserman 2015); " + IMAGENET[1]),
    "resnet50": (lambda: resnet(50), True, IMAGENET[0], 90, 256, "90 epochs at batch 256"
                 " (Goyal et al. 2017 reference recipe); " + IMAGENET[1]),
    "resnet101": (lambda: resnet(101), True, IMAGENET[0], 90, 256, "90 epochs at batch 256"
                  " (Goyal et al. 2017 reference recipe); " + IMAGENET[1]),
    "bert-base": (bert_base, True, 256_000_000, 1, 256, "1,000,000 steps of 256 sequences"
                  " (Devlin et al. 2019), counted as one pass over 256e6 sequences"),
    "mnist-autoencoder": (mnist_autoencoder, False, 60_000, 100, 1000, "MNIST's 60,000"
                          " training images; 100 epochs at batch 1000 is an assumption"),
}  # fmt: skip

_PAULOSKI = (
    "Pauloski et al., SC 2020 (kfac-pytorch): ResNet-50 on ImageNet to the 75.9 % MLPerf target"
    " in 55 K-FAC epochs against SGD's 90 (the epochs as recalled from the paper's body, not"
    " re-read here; its abstract, read, states 18-25 % less time than SGD), with factor"
    " statistics every 10 and inverses every 100 steps (kfac-pytorch's current ImageNet example"
    " defaults; its SC 2020-era script used 1 and 10, raised 10x later in training)"
)
_EVA = (
    "assumption: Zhang et al. (Eva), ICLR 2023: K-FAC needs ~50 % fewer iterations than SGD to"
    " the target, stated across their models; not measured on this network"
)
#: name -> (steps ratio K-FAC / SGD, t_cov, t_inv, source, low, high): per-network training
#: of the second-order runs; the intervals are those of the source the ratio comes from
STEPS_RATIOS = {
    "vgg13": (0.5, 10, 100, _EVA + "; intervals as kfac-pytorch's ImageNet example", 0.389, 1.0),
    "vgg16": (0.5, 10, 100, _EVA + "; intervals as kfac-pytorch's ImageNet example", 0.389, 1.0),
    "vgg19": (0.5, 10, 100, _EVA + "; intervals as kfac-pytorch's ImageNet example", 0.389, 1.0),
    "resnet50": (55 / 90, 10, 100, _PAULOSKI, 35 / 90, 0.8),
    "resnet101": (55 / 90, 10, 100, _PAULOSKI + "; ResNet-101 assumed as ResNet-50", 35 / 90, 0.8),
    # the low ends include RePAST/STAMP's own ratio (rerinv.system.published.STEPS_RATIOS)
    "bert-base": (0.5, 10, 100, _EVA + "; intervals as kfac-pytorch's examples",
                  _PAPER["bert-base"][0], 1.0),
    "mnist-autoencoder": (0.5, 1, 20, _EVA + "; statistics every step and inverses every 20"
                          " (Martens and Grosse, ICML 2015)", _PAPER["mnist-autoencoder"][0], 1.0),
}  # fmt: skip
