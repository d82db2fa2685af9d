"""Binary-Weight-Networks and XNOR-Networks on AlexNet and ResNet-18, and their XNOR-popcount inference path.

Paper: Mohammad Rastegari, Vicente Ordonez, Joseph Redmon, Ali Farhadi, "XNOR-Net: ImageNet Classification
Using Binary Convolutional Neural Networks", ECCV 2016, arXiv:1603.05279.

Binary weights (Sec. 3.1): a filter W of n = c w h weights is approximated by alpha B with B = sign(W) and
alpha = ||W||_l1 / n, the mean of |W| (Eq. 3-4), one alpha per output filter. XNOR (Sec. 3.2): the input I of
a binary convolution is binarised too, sign(I), and scaled by K = A * k, A the mean of |I| over channels and k
a w x h filter of entries 1 / (w h) (Fig. 2), so I * W ~ (sign(I) (*) sign(W)) . K alpha, where (*) is a
convolution of +-1 values: XNOR and popcount. Gradients pass sign by the straight-through estimator
d sign(r) / dr = 1_{|r| <= 1} (Sec. 3.2, after Hubara et al.); alpha and K are part of the graph.

Block order (Fig. 3): an XNOR-Net block is BatchNorm -> BinActiv -> BinConv -> Pool, so the binarised input is
the normalised one and pooling comes after the binary convolution; a BWN block keeps the usual Conv -> BN ->
ReLU -> Pool with binary weights. The first and last layers stay real-valued (Sec. 4). The AlexNet is the
authors' ``models/alexnetxnor.lua`` (github.com/allenai/XNOR-Net): conv1 11x11/4 pad 2, BN, ReLU, pool; binary
conv2-5; fc6 and fc7 as binary convolutions (6x6 on the last map, then 1x1); BN, ReLU and a real 1x1
classifier; no LRN (Table 1's "AlexNet without LRN" baseline is the ``float`` mode). ResNet-18 is He et al.'s
ImageNet network (arXiv 1512.03385, Table 1) with binary 3x3 convolutions and real 1x1 projection shortcuts.

The XNOR path (``packed_copy``) replaces every XNOR convolution with ``PackedXnorConv``: the signs of the input
patches and of the filters packed into uint64 words (``runners/common/packed.py``), integer dot products from
XNOR and popcount, then the same alpha, K and bias. The float path computes those integers as sums of +-1 in
float32, exactly (n < 2^24), so both paths give identical outputs, not merely close ones.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from runners.common.binarize import binarize
from runners.common.packed import pack_bits, xnor_dot_masked

# Sec. 3.2's example for the speed-up: c = 256 channels, a 3x3 filter (N_W = 9), a 14x14 input (N_I = 196),
# and 64 binary operations per CPU clock.
SPEEDUP_CHANNELS, SPEEDUP_FILTER, SPEEDUP_INPUT, BINARY_OPS_PER_CLOCK = 256, 3 * 3, 14 * 14, 64


class BinaryConv2d(nn.Conv2d):
    """A convolution with binary weights alpha sign(W) (Sec. 3.1) and, with ``binary_inputs``, binary inputs
    scaled by K (Sec. 3.2). The input of an XNOR convolution is the batch-normalised activation (Fig. 3)."""

    def __init__(self, *args, binary_inputs: bool, input_scaling: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.binary_inputs = binary_inputs
        self.input_scaling = input_scaling

    def alpha(self) -> torch.Tensor:
        """One scaling factor per filter, the mean of |W| (Eq. 4)."""
        return self.weight.abs().mean(dim=(1, 2, 3))

    def input_scale(self, x: torch.Tensor) -> torch.Tensor:
        """K = A * k (Sec. 3.2, Fig. 2): the channel mean of |x| averaged over each filter window, zeros
        counted where the window meets the padding, as a convolution with k = 1 / (w h) would; (B, 1, H', W')."""
        if not self.input_scaling:
            return torch.ones((), dtype=x.dtype, device=x.device)
        return F.avg_pool2d(x.abs().mean(dim=1, keepdim=True), self.kernel_size, self.stride, self.padding,
                            count_include_pad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha()
        signs = binarize(self.weight)
        if not self.binary_inputs:
            return F.conv2d(x, alpha.view(-1, 1, 1, 1) * signs, self.bias, self.stride, self.padding)
        counts = F.conv2d(binarize(x), signs, None, self.stride, self.padding)
        out = counts * alpha.view(1, -1, 1, 1) * self.input_scale(x)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class PackedXnorConv(nn.Module):
    """A trained XNOR ``BinaryConv2d`` at inference: packed sign bits, integer XNOR-popcount dot products."""

    def __init__(self, conv: BinaryConv2d) -> None:
        super().__init__()
        self.conv = conv  # for K, alpha and the geometry; its float weights are not used for the dot products
        weight = conv.weight.detach()
        self.out_channels = weight.shape[0]
        self.bits = pack_bits((weight >= 0).reshape(self.out_channels, -1).numpy())

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        batch, _, height, width = x.shape
        out_h = (height + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        out_w = (width + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
        geometry = {"kernel_size": conv.kernel_size, "padding": conv.padding, "stride": conv.stride}
        # im2col of the sign bits and of a validity mask (0 where a window meets the zero padding).
        signs = F.unfold((x >= 0).float(), **geometry)
        valid = F.unfold(torch.ones_like(x[:, :1]).expand_as(x), **geometry)
        rows = lambda t: t.transpose(1, 2).reshape(-1, t.shape[1]).numpy() > 0.5
        counts = xnor_dot_masked(pack_bits(rows(signs)), pack_bits(rows(valid)), self.bits)
        # Contiguous NCHW: a permuted (channels-last) tensor would send the next real convolution down another
        # oneDNN kernel whose rounding differs from the float path's.
        counts = torch.from_numpy(counts.astype(np.float32)).view(batch, out_h, out_w, -1)
        counts = counts.permute(0, 3, 1, 2).contiguous()
        out = counts * conv.alpha().view(1, -1, 1, 1) * conv.input_scale(x)
        return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)


def packed_copy(model: nn.Module) -> nn.Module:
    """A CPU float32 copy of ``model`` (eval mode) whose XNOR convolutions run on packed bits."""
    packed = copy.deepcopy(model).float().cpu().eval()
    for name, module in list(packed.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, BinaryConv2d) and child.binary_inputs:
                setattr(module, child_name, PackedXnorConv(child))
    return packed


def binary_block(in_channels: int, out_channels: int, kernel: int, *, mode: str, input_scaling: bool,
                 stride: int = 1, padding: int = 0, pool: bool = False) -> nn.Sequential:
    """One layer of the binarised AlexNet: XNOR BatchNorm -> BinActiv -> BinConv -> Pool (Fig. 3); BWN and
    float Conv -> BN -> ReLU -> Pool. Pools are 3x3 stride 2 as AlexNet's."""
    pooling = [nn.MaxPool2d(3, stride=2)] if pool else []
    if mode == "xnor":
        return nn.Sequential(nn.BatchNorm2d(in_channels), BinaryConv2d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, binary_inputs=True,
            input_scaling=input_scaling), *pooling)
    conv = BinaryConv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, binary_inputs=False) \
        if mode == "bwn" else nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), *pooling)


def alexnet_side(image_size: int) -> int:
    """The side of AlexNet's last feature map (6 at 224 pixels): conv1 11x11/4 pad 2 and three 3x3/2 pools."""
    side = (image_size + 4 - 11) // 4 + 1
    for _ in range(3):
        side = (side - 3) // 2 + 1
    return side


class BinaryAlexNet(nn.Module):
    """The authors' XNOR AlexNet (``alexnetxnor.lua``); ``mode`` bwn / float give the same layers with real
    inputs in the usual Conv -> BN -> ReLU order.

    Args:
        num_classes: outputs of the real classifier.
        mode: xnor, bwn or float.
        image_size: input side (fc6's kernel is the side of the last map).
        width: channel multiplier (1 = 96, 256, 384, 384, 256, fc 4096).
        input_scaling: K in the XNOR convolutions.
    """

    def __init__(self, num_classes: int, *, mode: str, image_size: int = 224, width: float = 1.0,
                 input_scaling: bool = True) -> None:
        super().__init__()
        c1, c2, c3, c4, c5, fc = (max(1, round(c * width)) for c in (96, 256, 384, 384, 256, 4096))
        side = alexnet_side(image_size)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for AlexNet's strides")
        block = lambda *a, **k: binary_block(*a, mode=mode, input_scaling=input_scaling, **k)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=2), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            block(c1, c2, 5, padding=2, pool=True), block(c2, c3, 3, padding=1), block(c3, c4, 3, padding=1),
            block(c4, c5, 3, padding=1, pool=True),
            block(c5, fc, side), block(fc, fc, 1),  # fc6, fc7 as convolutions
        )
        final = [nn.BatchNorm2d(fc), nn.ReLU(inplace=True)] if mode == "xnor" else []
        self.classifier = nn.Sequential(*final, nn.Conv2d(fc, num_classes, 1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.classifier(self.features(x))


class BinaryBasicBlock(nn.Module):
    """ResNet-18's basic block with binary 3x3 convolutions. XNOR: BN -> BinActiv -> BinConv twice, added to
    the shortcut (Fig. 3's order inside a residual block); BWN / float: conv-BN-ReLU-conv-BN + shortcut, ReLU
    (He et al. Sec. 3.3). Shortcuts are real: identity, or a 1x1 projection + BN where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, mode: str, input_scaling: bool) -> None:
        super().__init__()
        self.mode = mode
        binary = mode != "float"

        def conv(i: int, o: int, s: int) -> nn.Conv2d:
            if not binary:
                return nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False)
            return BinaryConv2d(i, o, 3, stride=s, padding=1, bias=False, binary_inputs=mode == "xnor",
                                input_scaling=input_scaling)

        self.conv1, self.conv2 = conv(in_channels, out_channels, stride), conv(out_channels, out_channels, 1)
        norm_in = (in_channels, out_channels) if mode == "xnor" else (out_channels, out_channels)
        self.bn1, self.bn2 = nn.BatchNorm2d(norm_in[0]), nn.BatchNorm2d(norm_in[1])
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "xnor":
            return self.conv2(self.bn2(self.conv1(self.bn1(x)))) + self.shortcut(x)
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class BinaryResNet18(nn.Module):
    """ResNet-18 (He et al., arXiv 1512.03385 Table 1): a real 7x7/2 stem and 3x3/2 max pool, four stages of
    two basic blocks (64, 128, 256, 512 channels, stride 2 from the second), global average pooling and a real
    fully connected classifier; the XNOR network normalises and rectifies the last block's sum before pooling."""

    def __init__(self, num_classes: int, *, mode: str, width: float = 1.0, input_scaling: bool = True) -> None:
        super().__init__()
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        blocks, channels = [], widths[0]
        for stage, out in enumerate(widths):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BinaryBasicBlock(channels, out, stride, mode=mode, input_scaling=input_scaling))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        final = [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if mode == "xnor" else []
        self.head = nn.Sequential(*final, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.head(self.blocks(self.stem(x)))


def build(config, num_classes: int | None = None) -> nn.Module:
    """The network of a runner ``Config``; ``num_classes`` (the data's) overrides the dataset's usual count."""
    classes = num_classes or config.num_classes
    if config.arch == "alexnet":
        return BinaryAlexNet(classes, mode=config.mode, image_size=config.input_size, width=config.width,
                             input_scaling=config.input_scaling)
    return BinaryResNet18(classes, mode=config.mode, width=config.width, input_scaling=config.input_scaling)


def memory_saving(model: nn.Module) -> float:
    """32-bit weights over binary ones for the binarised layers (the abstract's "32x memory saving"): each
    binary filter of n weights keeps n bits and its 32-bit alpha, so the ratio is 32 n / (n + 32) per filter,
    just under 32. Real layers (first, last, shortcuts, BN) are not counted. 1.0 for the float network."""
    convs = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    if not convs:
        return 1.0
    weights = sum(m.weight.numel() for m in convs)
    filters = sum(m.weight.shape[0] for m in convs)
    return 32 * weights / (weights + 32 * filters)


def speedup(channels: int, filter_size: int, input_size: int, ops_per_clock: int = BINARY_OPS_PER_CLOCK) -> float:
    """Sec. 3.2's speed-up of a binary convolution in high-precision operations: a standard convolution costs
    c N_W N_I; the binary one c N_W N_I binary operations, ``ops_per_clock`` of them per clock, plus N_I
    non-binary ones (the scaling), so S = c N_W N_I / (c N_W N_I / 64 + N_I) = 64 c N_W / (c N_W + 64)."""
    work = channels * filter_size * input_size
    return work / (work / ops_per_clock + input_size)


def architecture(config) -> tuple[nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's network (eval mode), one input image, and two data-free metrics: ``memory_saving`` of its
    binary layers, and for XNOR networks ``speedup``, Sec. 3.2's formula at c = 256, 3x3 filters, 14x14 input
    (the sizes as we read the paper's example; that text could not be re-read, so no claim judges it), which
    does not depend on the network."""
    model = build(config).eval()
    metrics = {"memory_saving": memory_saving(model)}
    if config.mode == "xnor":
        metrics["speedup"] = speedup(SPEEDUP_CHANNELS, SPEEDUP_FILTER, SPEEDUP_INPUT)
    size = config.input_size
    return model, torch.zeros(1, 3, size, size), metrics
