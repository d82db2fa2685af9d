"""clcNet: channel local convolution (CLC) blocks in an ImageNet network.

Paper: Dong-Qing Zhang, "clcNet: Improving the Efficiency of Convolutional Neural Network using Channel Local
Convolutions", CVPR 2018, arXiv:1712.06145. The layer order and widths follow the author's Torch code
(github.com/dqzhang17/clcnet.torch, models/clcnet.lua), which the paper points to for its networks.

CLC block (Sec. 3.2-3.4): an interlaced grouped convolution (IGC: a 3x3 convolution in g1 groups whose outputs
are interlaced, ``Interleave``) followed by a grouped 1x1 convolution (GC, g2 groups), batch norm after each
and ReLU after the block. The CDG analysis (Sec. 3.3) asks every output channel of the block to depend on
every input channel (a full channel receptive field); with g1 = C / 2 groups of two channels and g2 = 2 each
GC group sees one channel of every IGC group, so the block also has exactly one path per channel pair.

Network: 3x3/2 convolution to 32 maps, a CLC block to 64, then four stages that each open with a stride-2 CLC
block doubling the width (128, 256, 512, 1024) followed by (a, b, c, d) stride-1 blocks, global average pool
(7x7 at 224 pixels) and a 1000-way linear classifier. clcNet-A is (1, 1, 5, 2), clcNet-B (1, 1, 7, 3).
"""

import torch
from torch import nn

from runners.classification.groupconv import Interleave, full_receptive_field
from runners.classification.weights import he_fan_out_


class CLCBlock(nn.Module):
    """IGC (3x3, ``in / igc_group_size`` groups, interlaced) -> BN -> GC (1x1, ``gc_groups``) -> BN -> ReLU.

    Args:
        in_channels, out_channels: the block's channels.
        stride: of the 3x3 convolution.
        igc_group_size: channels per IGC group.
        gc_groups: groups of the 1x1 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, igc_group_size: int, gc_groups: int) -> None:
        super().__init__()
        groups = in_channels // igc_group_size
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=groups, bias=False),
            nn.BatchNorm2d(in_channels), Interleave(in_channels, groups),
            nn.Conv2d(in_channels, out_channels, 1, groups=gc_groups, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ClcNet(nn.Module):
    """The clcNet of a stage layout (a, b, c, d).

    Args:
        stage_blocks: stride-1 blocks of each of the four stages.
        width: the stem's filters.
        igc_group_size, gc_groups: the CLC blocks' meta-parameters.
        num_classes: outputs of the classifier.
    """

    def __init__(self, *, stage_blocks: tuple[int, ...], width: int, igc_group_size: int, gc_groups: int,
                 num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True), CLCBlock(width, 2 * width, 1, igc_group_size, gc_groups)]
        channels = 2 * width
        for blocks in stage_blocks:
            layers.append(CLCBlock(channels, 2 * channels, 2, igc_group_size, gc_groups))
            channels *= 2
            layers += [CLCBlock(channels, channels, 1, igc_group_size, gc_groups) for _ in range(blocks)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        # fb.resnet.torch's initialisation, as models/clcnet.lua keeps it.
        he_fan_out_(self, zero_classifier_bias=True)

    @classmethod
    def from_config(cls, config, num_classes: int | None = None) -> "ClcNet":
        """The network of a runner ``Config``; ``num_classes`` (the data's) overrides the dataset's count."""
        return cls(stage_blocks=config.stage_blocks, width=config.width, igc_group_size=config.igc_group_size,
                   gc_groups=config.gc_groups, num_classes=num_classes or config.num_classes)

    def blocks(self) -> list[CLCBlock]:
        """The CLC blocks in order."""
        return [m for m in self.features if isinstance(m, CLCBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def architecture(config) -> tuple[nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's network (eval mode), one image of its input size, and ``full_field_blocks``: the share
    of CLC blocks whose every output channel depends on every input channel (Sec. 3.3's requirement)."""
    model = ClcNet.from_config(config).eval()
    blocks = model.blocks()
    full = sum(full_receptive_field(block.layers) for block in blocks)
    size = config.input_size
    return model, torch.zeros(1, 3, size, size), {"full_field_blocks": full / len(blocks)}
