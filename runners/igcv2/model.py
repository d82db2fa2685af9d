"""IGCV2: interleaved structured sparse convolutions.

Paper: Guotian Xie, Jingdong Wang, Ting Zhang, Jianhuang Lai, Richang Hong, Guo-Jun Qi, "IGCV2: Interleaved
Structured Sparse Convolutional Neural Networks", CVPR 2018, arXiv:1804.06202.

Block (Sec. 3.2, Eq. 5, L = 3): x -> W_1 (3x3 channel-wise convolution) -> W_2 (1x1 grouped convolution, branches
of K_2 channels) -> P_2 (``Interleave``) -> W_3 (1x1 grouped convolution, K_2 groups of K_3 = C / K_2
channels). Every W_3 group then sees one output of every W_2 branch: exactly one path from each input channel
to each output channel, the complementary condition (K_2 * K_3 = C). The balance condition (Sec. 3.3) takes
K_2 = K_3 = sqrt(C); where C is not a square we take the divisor of C nearest sqrt(C). Batch norm follows
each convolution and ReLU the block (our reading; no ReLU between the group convolutions, as in IGC).

Networks (our reading of the paper's set-ups, README):
    CIFAR: 3x3 convolution to ``width`` maps, three stages of ``blocks`` residual IGCV2 blocks on 32, 16 and
        8 pixels at widths w, 2w, 4w (the first block of a stage strides and widens, without a shortcut),
        global average pool, linear classifier.
    ImageNet: MobileNetV1's layout (Howard et al. 2017, Table 1) with each depthwise-separable pair replaced by
        an IGCV2 block: 3x3/2 convolution to 32 alpha maps, 13 blocks to 64 ... 1024 alpha, average pool, fc 1000.
"""

import math

import torch
from torch import nn

from runners.classification.groupconv import Interleave, complementary
from runners.classification.weights import he_fan_out_

# MobileNetV1 (arXiv 1704.04861, Table 1): (output channels, stride) of its 13 depthwise-separable layers.
MOBILENET_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1))


def balanced_branch(channels: int) -> int:
    """K_2 under the balance condition: the divisor of ``channels`` nearest sqrt(channels) (the smaller on a tie)."""
    root = math.sqrt(channels)
    return min((d for d in range(1, channels + 1) if channels % d == 0), key=lambda d: (abs(d - root), d))


class IGCV2Block(nn.Module):
    """W_1 (channel-wise 3x3) -> BN -> W_2 (1x1, branches of K_2) -> BN -> P_2 -> W_3 (1x1, K_2 groups) -> BN -> ReLU,
    with an identity shortcut where ``residual`` is set.

    Args:
        in_channels, out_channels: the block's channels.
        stride: of the channel-wise convolution.
        branch_channels: K_2 (0: ``balanced_branch``).
        residual: add the input to the output (same shape only).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, branch_channels: int = 0,
                 residual: bool = False) -> None:
        super().__init__()
        k2 = branch_channels or balanced_branch(in_channels)
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, in_channels, 1, groups=in_channels // k2, bias=False), nn.BatchNorm2d(in_channels),
            Interleave(in_channels, in_channels // k2),
            nn.Conv2d(in_channels, out_channels, 1, groups=k2, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.residual = residual
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return self.relu(y + x if self.residual else y)


class IGCV2(nn.Module):
    """An IGCV2 network: a stem, IGCV2 blocks, global average pooling and a linear classifier.

    Args:
        stem: output channels of the 3x3 stem convolution.
        stem_stride: its stride (2 on ImageNet).
        layers: (output channels, stride, residual) of each block.
        branch_channels: K_2 of every block (0: balanced per block).
        num_classes: outputs of the classifier.
    """

    def __init__(self, *, stem: int, stem_stride: int, layers: list[tuple[int, int, bool]], branch_channels: int,
                 num_classes: int) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(3, stem, 3, stride=stem_stride, padding=1, bias=False),
                                    nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        channels = stem
        for out, stride, residual in layers:
            modules.append(IGCV2Block(channels, out, stride, branch_channels, residual))
            channels = out
        self.features = nn.Sequential(*modules)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        he_fan_out_(self)

    @classmethod
    def from_config(cls, config, num_classes: int | None = None) -> "IGCV2":
        """The CIFAR network, or on ImageNet the MobileNet-like one at the config's width multiplier."""
        classes = num_classes or config.num_classes
        if config.dataset == "imagenet":
            alpha = config.width_multiplier
            layers = [(int(c * alpha), s, False) for c, s in MOBILENET_LAYERS]
            return cls(stem=int(32 * alpha), stem_stride=2, layers=layers, branch_channels=config.branch_channels,
                       num_classes=classes)
        layers = []
        for stage in range(3):
            width = config.width * 2 ** stage
            layers += [(width, 2 if stage and block == 0 else 1, not (stage and block == 0))
                       for block in range(config.blocks)]
        return cls(stem=config.width, stem_stride=1, layers=layers, branch_channels=config.branch_channels,
                   num_classes=classes)

    def blocks(self) -> list[IGCV2Block]:
        """The IGCV2 blocks in order."""
        return [m for m in self.features if isinstance(m, IGCV2Block)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def architecture(config) -> tuple[nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's network (eval mode), one image of its input size, and ``complementary_blocks``: the share of
    IGCV2 blocks with exactly one path from each input channel to each output channel (Sec. 3.2)."""
    model = IGCV2.from_config(config).eval()
    blocks = model.blocks()
    size = config.input_size
    return model, torch.zeros(1, 3, size, size), {
        "complementary_blocks": sum(complementary(b.layers) for b in blocks) / len(blocks)}
