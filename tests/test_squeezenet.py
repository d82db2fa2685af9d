"""SqueezeNet (arXiv 1602.07360) and its AlexNet baseline: the networks against Table 1, a hand computation
and published counts; the bypass variants of Table 6; Deep Compression refused in one line."""

from dataclasses import replace

import pytest
import torch

from kb.errors import BadInput
from runners.classification.alexnet import AlexNet
from runners.squeezenet.config import PRESETS
from runners.squeezenet.model import Fire, SqueezeNet, architecture, fire_widths

# Table 1: (s1x1, e1x1, e3x3) of fire2 .. fire9.
TABLE_1_FIRES = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                 (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_metaparameters_give_table_1s_fire_modules():
    assert fire_widths(PRESETS["imagenet"]) == TABLE_1_FIRES


def test_squeezenet_has_table_1s_parameters_by_hand_and_torchvisions_count():
    by_hand, channels = 96 * 3 * 7 * 7 + 96, 96                    # conv1 96 7x7, with biases
    for s, e1, e3 in TABLE_1_FIRES:
        by_hand += (channels * s + s) + (s * e1 + e1) + (s * 9 * e3 + e3)
        channels = e1 + e3
    by_hand += 512 * 1000 + 1000                                   # conv10 1x1 to 1000 classes
    model = SqueezeNet.from_config(PRESETS["imagenet"])
    # 1,248,424: Table 1's total, and torchvision's documented count of squeezenet1_0
    # (SqueezeNet1_0_Weights "num_params"), an implementation written independently of this one.
    assert count(model) == by_hand == 1_248_424


def test_maps_have_table_1s_sizes_on_a_227_pixel_image():
    model, x = SqueezeNet.from_config(PRESETS["imagenet"]), torch.zeros(1, 3, 227, 227)
    sizes = []
    for layer in model.features:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sizes[0] == 111 and sorted(set(sizes), reverse=True) == [111, 55, 27, 13]
    assert model(torch.zeros(2, 3, 227, 227)).shape == (2, 1000)


def test_alexnet_counts_by_hand_and_as_published():
    widths = (96, 256, 384, 384, 256)
    single = (96 * 3 * 121 + 96) + (256 * 96 * 25 + 256) + (384 * 256 * 9 + 384) + (384 * 384 * 9 + 384) + (
        256 * 384 * 9 + 256) + (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert count(AlexNet(widths=widths)) == single == 62_378_344
    # Two towers (conv2, conv4, conv5 see half the channels): Caffe's bvlc_alexnet, 60,965,224 parameters.
    assert count(AlexNet(groups=2)) == 60_965_224
    # torchvision's alexnet is the single tower with 64, 192, 384, 256, 256 filters: 61,100,840 parameters
    # (AlexNet_Weights "num_params").
    assert count(AlexNet(widths=(64, 192, 384, 256, 256))) == 61_100_840
    assert AlexNet(groups=2)(torch.zeros(1, 3, 227, 227)).shape == (1, 1000)


def test_the_parameter_ratio_against_alexnet_is_about_50():
    _, example, derived = architecture(PRESETS["imagenet"])
    assert example.shape == (1, 3, 227, 227)
    assert derived["alexnet_ratio"] == pytest.approx(60_965_224 / 1_248_424)
    assert round(derived["alexnet_ratio"], -1) == 50                # the abstract's round "50x"


def test_fire_concatenates_its_expand_paths_and_bypasses_add_the_input():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 5)
    plain, simple = Fire(16, 4, 8, 8), Fire(16, 4, 8, 8, "simple")
    simple.load_state_dict(plain.state_dict())
    s = plain.squeeze(x)
    assert torch.equal(plain(x), torch.cat([plain.expand1x1(s), plain.expand3x3(s)], 1))
    assert torch.allclose(simple(x), plain(x) + x)
    complex_ = Fire(16, 4, 8, 8, "complex")
    assert count(complex_) == count(plain) + 16 * 16 + 16
    with pytest.raises(ValueError, match="simple bypass"):
        Fire(16, 4, 8, 4, "simple")


def test_bypasses_sit_where_table_6_puts_them():
    def kinds(preset):
        fires = [m for m in SqueezeNet.from_config(PRESETS[preset]).features if isinstance(m, Fire)]
        return [type(f.bypass).__name__ if f.bypass is not None else None for f in fires]

    assert kinds("imagenet") == [None] * 8
    assert kinds("simple-bypass") == [None, "Identity"] * 4
    assert kinds("complex-bypass") == ["Conv2d", "Identity"] * 4
    # Simple bypass adds no parameters; complex adds a 1x1 conv (with bias) around fire2, 4, 6, 8:
    # 96 -> 128, 128 -> 256, 256 -> 384, 384 -> 512.
    extra = sum(i * o + o for i, o in [(96, 128), (128, 256), (256, 384), (384, 512)])
    assert count(SqueezeNet.from_config(PRESETS["simple-bypass"])) == 1_248_424
    assert count(SqueezeNet.from_config(PRESETS["complex-bypass"])) == 1_248_424 + extra == 1_589_672


def test_weights_start_from_the_authors_caffe_fillers():
    torch.manual_seed(0)
    model = SqueezeNet.from_config(PRESETS["imagenet"])
    fire9 = [m for m in model.features if isinstance(m, Fire)][-1]
    # Caffe's xavier filler: uniform in +-sqrt(3 / fan_in); fire9's expand3x3 has fan_in 64 * 9 (std 1 / sqrt(576)).
    weight = fire9.expand3x3[0].weight
    bound = (3 / (64 * 9)) ** 0.5
    assert weight.abs().max() <= bound and weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.02)
    assert model.classifier[1].weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert all(m.bias.abs().max() == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_the_solver_recipe_is_the_authors():
    config = PRESETS["imagenet"]
    # solver.prototxt: lr 0.04, poly power 1, 170k iterations of batch 512 (= 68 epochs), momentum 0.9, wd 2e-4.
    assert (config.lr, config.schedule, config.batch_size, config.momentum, config.weight_decay) == (
        0.04, "poly", 512, 0.9, 2e-4)
    assert config.epochs == round(170_000 * 512 / 1_281_167)
    assert (config.image_size, config.dropout, config.nesterov) == (227, 0.5, False)


def test_deep_compression_is_refused_naming_the_claim():
    with pytest.raises(BadInput, match="not implemented.*0.47 MB"):
        replace(PRESETS["imagenet"], deep_compression=True)
