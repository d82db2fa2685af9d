"""IGCV2 (arXiv 1804.06202): the balance condition's branch sizes and block parameter counts by hand, the
MobileNetV1 layout (arXiv 1704.04861, Table 1) of the ImageNet network, and the complementary condition of
every block of every preset (Sec. 3.2)."""

import pytest
import torch

from runners.igcv2.config import PRESETS
from runners.igcv2.model import IGCV2, IGCV2Block, architecture, balanced_branch


def test_balanced_branch_by_hand():
    # sqrt(32) = 5.7: divisors 4 and 8, 4 is nearer; sqrt(64) = 8; sqrt(128) = 11.3: 8 beats 16; sqrt(8) = 2.8: 2.
    assert [balanced_branch(c) for c in (32, 64, 128, 8, 9, 1024)] == [4, 8, 8, 2, 3, 32]


def test_block_parameters_by_hand():
    # C = 64 -> 128, K_2 = 8: channel-wise 9 * 64, W_2 64 * 8, W_3 (K_2 = 8 groups of 8 inputs) 128 * 8, three BNs.
    block = IGCV2Block(64, 128, 1)
    assert sum(p.numel() for p in block.parameters()) == 9 * 64 + 64 * 8 + 128 * 8 + 2 * (64 + 64 + 128)


def test_imagenet_layout_is_mobilenets():
    model = IGCV2.from_config(PRESETS["imagenet-1.0"])
    widths = [b.layers[-1].num_features for b in model.blocks()]
    assert widths == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    assert [b.layers[0].stride[0] for b in model.blocks()] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert [b.layers[-1].num_features for b in IGCV2.from_config(PRESETS["imagenet-0.25"]).blocks()][-1] == 256


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_block_is_complementary(preset):
    with torch.device("meta"):
        _, _, derived = architecture(PRESETS[preset])
    assert derived == {"complementary_blocks": 1.0}


def test_cifar_forward():
    model = IGCV2.from_config(PRESETS["smoke"], num_classes=5)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)
