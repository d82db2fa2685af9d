"""ResNeXt: residual networks whose bottleneck aggregates C identical low-width paths.

Paper: Saining Xie, Ross Girshick, Piotr Dollár, Zhuowen Tu, Kaiming He, "Aggregated Residual
Transformations for Deep Neural Networks", CVPR 2017, arXiv:1611.05431.

The block is form (c) of Fig. 3: 1x1 convolution to C*d channels, a 3x3 convolution in C groups (each of
the C paths sees only its own d channels, the equivalence of Sec. 3.3), 1x1 back to the block's output,
batch norm after each convolution and ReLU after the first two and after the sum (Sec. 4). Shortcuts are
identities except where the width or the resolution changes, which get a 1x1 projection with batch norm
(option B of ResNet); downsampling is the stride 2 of the first 3x3 convolution of a stage (Sec. 4).

Networks (the template of Sec. 3.1: each stage doubles every width and halves the resolution):
    ImageNet (Table 1): 7x7/2 conv 64, 3x3/2 max pool, four stages of IMAGENET_BLOCKS[depth] blocks with
        outputs 256, 512, 1024, 2048 and path width d, 2d, 4d, 8d; global average pool, fc 1000.
    CIFAR (Sec. 5.3, Appendix A): 3x3 conv 64, three stages of 3 blocks (ResNeXt-29) on 32, 16 and 8
        pixels, outputs 256, 512, 1024 and path width 64, 128, 256; global average pool, fc.
"""

import torch
from torch import nn

from runners.classification.weights import he_fan_out_


class Block(nn.Module):
    """One aggregated residual transformation, form (c) of Fig. 3.

    Args:
        in_channels: channels entering the block.
        group_width: C * d, the channels of the grouped 3x3 convolution (all paths together).
        out_channels: channels leaving it.
        cardinality: C, the groups of the 3x3 convolution.
        stride: 2 in the first block of a downsampling stage.
    """

    def __init__(self, in_channels: int, group_width: int, out_channels: int, cardinality: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, group_width, 1, bias=False), nn.BatchNorm2d(group_width), nn.ReLU(inplace=True),
            nn.Conv2d(group_width, group_width, 3, stride=stride, padding=1, groups=cardinality, bias=False),
            nn.BatchNorm2d(group_width), nn.ReLU(inplace=True),
            nn.Conv2d(group_width, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class ResNeXt(nn.Module):
    """A ResNeXt of Sec. 3.1's template.

    Args:
        stage_blocks: blocks in each stage (4 stages on ImageNet, 3 on CIFAR).
        cardinality: C.
        base_width: d, each path's width in the first stage.
        width: the stem's filters; the first stage outputs 4 * width.
        num_classes: outputs of the classifier.
        imagenet_stem: the 7x7/2 convolution and 3x3/2 max pool of Table 1 (else CIFAR's 3x3 convolution).
    """

    def __init__(self, *, stage_blocks: tuple[int, ...], cardinality: int, base_width: int, width: int,
                 num_classes: int, imagenet_stem: bool) -> None:
        super().__init__()
        if imagenet_stem:
            stem = [nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            stem = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers, channels = list(stem), width
        for stage, blocks in enumerate(stage_blocks):
            group_width, out_channels = cardinality * base_width * 2 ** stage, 4 * width * 2 ** stage
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(Block(channels, group_width, out_channels, cardinality, stride))
                channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        # He initialisation (Sec. 4 cites [13]) with fan-out and a zero classifier bias, as
        # models/resnext.lua of facebookresearch/ResNeXt draws it.
        he_fan_out_(self, zero_classifier_bias=True)

    @classmethod
    def from_config(cls, config, num_classes: int | None = None) -> "ResNeXt":
        """The network of a runner ``Config``; ``num_classes`` (the data's) overrides the dataset's usual count."""
        return cls(stage_blocks=config.stage_blocks, cardinality=config.cardinality, base_width=config.base_width,
                   width=config.width, num_classes=num_classes or config.num_classes,
                   imagenet_stem=config.dataset == "imagenet")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one image of the paper's size (224 on ImageNet, 32 on CIFAR)."""
    size = config.input_size
    return ResNeXt.from_config(config).eval(), torch.zeros(1, 3, size, size)
