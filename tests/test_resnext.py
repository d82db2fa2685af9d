"""ResNeXt (arXiv 1611.05431): the networks against published counts and a hand computation, the grouped
convolution against its C separate paths (Sec. 3.3), and the recipe's presets."""

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kb.errors import BadInput
from runners.resnext.config import PRESETS
from runners.resnext.model import Block, ResNeXt, architecture


def parameters(config) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in ResNeXt.from_config(config).parameters())


@pytest.mark.parametrize(("config", "published"), [
    # torchvision's documented counts (torchvision.models.ResNeXt50_32X4D_Weights, ResNeXt101_64X4D_Weights,
    # ResNeXt101_32X8D_Weights: "num_params"), an implementation written independently of this one.
    (PRESETS["imagenet-50-32x4d"], 25_028_904),
    (PRESETS["imagenet-101-64x4d"], 83_455_272),
    (replace(PRESETS["imagenet-101-32x4d"], base_width=8), 88_791_336),
])
def test_imagenet_networks_have_torchvisions_parameter_counts(config, published):
    assert parameters(config) == published


def cifar_block_by_hand(in_channels: int, cardinality: int, d: int, out_channels: int, projection: bool) -> int:
    """Parameters of one block of form (c) from the paper's widths: 1x1 in -> C*d, 3x3 in C groups of d -> d,
    1x1 C*d -> out, a batch norm (scale and shift) after each, and a 1x1 projection with batch norm."""
    width = cardinality * d
    count = in_channels * width + 2 * width                         # 1x1 reduce, BN
    count += cardinality * (d * d * 9) + 2 * width                  # C paths of 3x3 d -> d, BN
    count += width * out_channels + 2 * out_channels                # 1x1 expand, BN
    if projection:
        count += in_channels * out_channels + 2 * out_channels      # shortcut 1x1, BN
    return count


def test_one_cifar_block_has_the_hand_computed_parameters():
    # ResNeXt-29 8x64d, first block of stage 1: 64 -> 8 x 64 = 512 -> 256 (Sec. 5.3's template [1x1, 64; 3x3, 64;
    # 1x1, 256] with C = 8 paths of d = 64): 32,768 + 294,912 + 131,072 + 16,384 weights and 3,072 of batch norm.
    block = Block(64, 512, 256, cardinality=8, stride=1)
    assert sum(p.numel() for p in block.parameters()) == cifar_block_by_hand(64, 8, 64, 256, True) == 478_208


@pytest.mark.parametrize(("preset", "millions"), [("cifar-29-8x64d", 34.4), ("cifar-29-16x64d", 68.1)])
def test_cifar_networks_add_up_from_the_hand_computed_blocks_to_table_7(preset, millions):
    config = PRESETS[preset]
    c, d = config.cardinality, config.base_width
    count = 3 * 64 * 9 + 2 * 64                                     # stem 3x3 conv 64 and its batch norm
    channels, batch_norm = 64, 2 * 64
    for stage in range(3):
        out = 256 * 2 ** stage
        for block in range(3):
            count += cifar_block_by_hand(channels, c, d * 2 ** stage, out, projection=block == 0)
            batch_norm += 2 * (2 * c * d * 2 ** stage + out) + (2 * out if block == 0 else 0)
            channels = out
    count += 1024 * 10 + 10                                         # fc to CIFAR-10's classes
    assert parameters(config) == count
    # Table 7's 34.4M and 68.1M are the count without batch norm's scale and shift (34.37M, 68.05M) rounded;
    # with them, 34.43M and 68.16M (README, "What differs").
    assert round((count - batch_norm) / 1e6, 1) == millions


def test_the_grouped_convolution_is_c_separate_paths_concatenated():
    # Sec. 3.3 / Fig. 3: form (c)'s grouped 3x3 conv equals C paths, each a 3x3 conv of its own d channels.
    torch.manual_seed(0)
    c, d = 4, 3
    grouped = nn.Conv2d(c * d, c * d, 3, padding=1, groups=c, bias=False)
    x = torch.randn(2, c * d, 6, 6)
    paths = []
    for i in range(c):
        path = nn.Conv2d(d, d, 3, padding=1, bias=False)
        path.weight.data.copy_(grouped.weight[i * d:(i + 1) * d])
        paths.append(path(x[:, i * d:(i + 1) * d]))
    assert torch.allclose(grouped(x), torch.cat(paths, 1), atol=1e-6)
    block = Block(8, c * d, 16, cardinality=c, stride=1)
    assert block.residual[3].groups == c and block.residual[3].weight.shape == (c * d, d, 3, 3)


def test_stages_halve_the_map_and_double_the_width():
    # CIFAR (Appendix A): maps 32, 16, 8 with outputs 256, 512, 1024; ImageNet (Table 1): 56, 28, 14, 7.
    def stage_outputs(config, size):
        model, shapes = ResNeXt.from_config(replace(config, width=8, base_width=1, cardinality=2)), []
        x = torch.zeros(1, 3, size, size)
        for layer in model.features:
            x = layer(x)
            if isinstance(layer, Block):
                shapes.append(tuple(x.shape[1:]))
        return sorted(set(shapes), key=lambda s: -s[1])

    assert stage_outputs(PRESETS["cifar-29-8x64d"], 32) == [(32, 32, 32), (64, 16, 16), (128, 8, 8)]
    assert stage_outputs(PRESETS["imagenet-50-32x4d"], 224) == [(32, 56, 56), (64, 28, 28), (128, 14, 14),
                                                                (256, 7, 7)]


def test_presets_carry_the_papers_recipes():
    cifar, imagenet = PRESETS["cifar-29-16x64d"], PRESETS["imagenet-101-32x4d"]
    # Appendix A: batch 128, wd 5e-4, momentum 0.9, lr 0.1 /10 at epochs 150 and 225 of 300.
    assert (cifar.batch_size, cifar.weight_decay, cifar.momentum, cifar.lr, cifar.epochs) == (128, 5e-4, 0.9, 0.1, 300)
    assert [round(m * cifar.epochs) for m in cifar.lr_milestones] == [150, 225]
    # Sec. 4: batch 256, wd 1e-4, lr 0.1 divided by 10 three times (fb.resnet.torch: every 30 of 100 epochs).
    assert (imagenet.batch_size, imagenet.weight_decay, imagenet.image_size, imagenet.stage_blocks) == (
        256, 1e-4, 224, (3, 4, 23, 3))
    assert [round(m * imagenet.epochs) for m in imagenet.lr_milestones] == [30, 60, 90]


def test_depths_outside_the_papers_layouts_are_refused_in_one_line():
    with pytest.raises(BadInput, match="depth=34"):
        replace(PRESETS["imagenet-50-32x4d"], depth=34)
    with pytest.raises(BadInput, match="9n"):
        replace(PRESETS["cifar-29-8x64d"], depth=30)


def test_resnext_50_mult_adds_by_hand_are_table_1s_4_2_billion():
    # Multiply-adds of every convolution (k*k*in/groups*out per output pixel) and the fc, from Table 1's layout
    # at 224 pixels: stem 7x7/2 to 112, max pool to 56, stages on 56, 28, 14, 7 (stride 2 in the 3x3).
    total = 7 * 7 * 3 * 64 * 112 * 112
    channels, side = 64, 56
    for stage, blocks in enumerate((3, 4, 6, 3)):
        width, out = 128 * 2 ** stage, 256 * 2 ** stage
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            after = side // stride
            total += channels * width * side * side                         # 1x1 reduce, at the input's side
            total += 9 * (width // 32) * width * after * after              # 3x3 in 32 groups
            total += width * out * after * after                            # 1x1 expand
            if block == 0:
                total += channels * out * after * after                     # projection shortcut
            channels, side = out, after
    total += 2048 * 1000
    with torch.device("meta"):
        model, example = architecture(PRESETS["imagenet-50-32x4d"])
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    assert counter.get_total_flops() == 2 * total
    assert round(total / 1e9, 1) == 4.2
