"""DenseNet and DenseNet-BC.

Paper: Gao Huang, Zhuang Liu, Laurens van der Maaten, Kilian Q. Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017, arXiv:1608.06993.

- Dense connectivity (Sec. 3, Eq. 2): layer l of a block sees the concatenation of the block's input and
  every earlier layer's k new feature maps (k, the growth rate).
- Composite function H_l (Sec. 3): BN-ReLU-Conv(3x3); with bottleneck (DenseNet-B),
  BN-ReLU-Conv(1x1, 4k)-BN-ReLU-Conv(3x3, k).
- Transition layers (Sec. 3, "Pooling layers"): BN, 1x1 conv, 2x2 average pooling; with compression
  (DenseNet-C) the conv keeps floor(theta m) of a block's m maps, theta = 0.5. The ReLU between BN and
  conv is that of the authors' code (models/densenet.lua) and torchvision; it has no parameters.
- CIFAR/SVHN networks (Sec. 3, "Implementation Details"): a 3x3 conv with 16 outputs (2k for DenseNet-BC),
  three dense blocks of equal size at 32x32, 16x16 and 8x8, global average pooling and a linear
  classifier (after a final BN-ReLU, as in the authors' code). A depth L counts the convolutions plus the
  classifier: L = 3n + 4 for n plain layers per block and L = 6n + 4 for n bottleneck layers.
- Without data augmentation, dropout 0.2 after each conv except the first (Sec. 4.2).
- ImageNet networks (Table 1, k = 32): a 7x7 stride-2 conv with 2k outputs, BN-ReLU, 3x3 stride-2 max
  pooling, four DenseNet-BC blocks with transitions, global average pooling, a 1000-way classifier.
- Weights: He initialisation (Sec. 4.2 cites [10]); BN weight 1, bias 0; classifier bias 0.
"""

import torch
from torch import nn

from runners.classification.weights import he_fan_out_


class DenseLayer(nn.Module):
    """H_l: (N, c, H, W) -> (N, k, H, W), the k new maps of one layer (Sec. 3)."""

    def __init__(self, channels: int, growth: int, *, bottleneck: bool, dropout: float) -> None:
        super().__init__()
        width = 4 * growth if bottleneck else channels
        self.reduce = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                    nn.Conv2d(channels, width, 1, bias=False), nn.Dropout(dropout)) \
            if bottleneck else nn.Identity()
        self.conv = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, growth, 3, padding=1, bias=False), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.reduce(x))


class DenseBlock(nn.Module):
    """``layers`` dense layers; the output is the input and every layer's maps, concatenated (Eq. 2)."""

    def __init__(self, channels: int, layers: int, growth: int, *, bottleneck: bool, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(channels + i * growth, growth, bottleneck=bottleneck, dropout=dropout)
                                    for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1x1) to ``out_channels`` maps, then 2x2 average pooling (Sec. 3)."""

    def __init__(self, channels: int, out_channels: int, dropout: float) -> None:
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, out_channels, 1, bias=False), nn.Dropout(dropout), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    """A DenseNet: a stem, dense blocks joined by transitions, BN-ReLU, global pooling, a linear classifier.

    Args:
        blocks: dense layers per block, e.g. (16, 16, 16) for DenseNet-BC-100 or (6, 12, 24, 16) for -121.
        growth: k.
        bottleneck: DenseNet-B layers (1x1 conv to 4k maps first).
        compression: theta of the transitions (1 = none).
        stem_channels: outputs of the first conv (16, or 2k for DenseNet-BC and on ImageNet).
        num_classes: outputs of the classifier.
        imagenet: the ImageNet stem (7x7 stride-2 conv, BN-ReLU, 3x3 stride-2 max pooling) instead of a 3x3 conv.
        dropout: after each conv but the first (the networks trained without augmentation).
    """

    def __init__(self, blocks: tuple[int, ...], growth: int, *, bottleneck: bool, compression: float,
                 stem_channels: int, num_classes: int, imagenet: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if imagenet:
            stem = [nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(stem_channels),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            stem = [nn.Conv2d(3, stem_channels, 3, padding=1, bias=False)]
        layers, channels = stem, stem_channels
        for index, size in enumerate(blocks):
            layers.append(DenseBlock(channels, size, growth, bottleneck=bottleneck, dropout=dropout))
            channels += size * growth
            if index < len(blocks) - 1:
                # floor(theta m) output maps (Sec. 3, "Compression").
                out_channels = int(compression * channels)
                layers.append(Transition(channels, out_channels, dropout))
                channels = out_channels
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        he_fan_out_(self, zero_classifier_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def cifar_blocks(depth: int, bottleneck: bool) -> tuple[int, int, int]:
    """Three equal blocks of a depth-L CIFAR network: n = (L - 4) / 3, or (L - 4) / 6 with bottlenecks.

    Raises:
        ValueError: L - 4 is not a multiple of 3 (6).
    """
    per_layer = 6 if bottleneck else 3
    if depth < 4 + per_layer or (depth - 4) % per_layer:
        raise ValueError(f"depth {depth}: a CIFAR DenseNet{'-B' if bottleneck else ''} needs depth = "
                         f"{per_layer}n + 4 (e.g. {per_layer * 16 + 4})")
    n = (depth - 4) // per_layer
    return n, n, n


def from_config(config, num_classes: int) -> DenseNet:
    """The network of a densenet ``Config`` (``blocks`` empty: the CIFAR network of ``depth``)."""
    imagenet = bool(config.blocks)
    blocks = tuple(config.blocks) if imagenet else cifar_blocks(config.depth, config.bottleneck)
    # "16 (or twice the growth rate for DenseNet-BC)" on CIFAR; 2k on ImageNet (Sec. 3).
    stem = 2 * config.growth if imagenet or (config.bottleneck and config.compression < 1) else 16
    return DenseNet(blocks, config.growth, bottleneck=config.bottleneck, compression=config.compression,
                    stem_channels=stem, num_classes=num_classes, imagenet=imagenet, dropout=config.dropout)


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one image of the paper's size, for counting without data."""
    model = from_config(config, config.num_classes).eval()
    return model, torch.zeros(1, 3, config.input_size, config.input_size)

