"""XNOR-Net (arXiv 1603.05279): the binary convolutions against hand-written loops of the paper's equations,
the XNOR-popcount path against the float path, and the data-free metrics against hand counts."""

import itertools

import numpy as np
import pytest
import torch

from runners.classification.data import _generated
from runners.common.packed import pack_bits, xnor_dot_masked
from runners.xnor_net.config import PRESETS
from runners.xnor_net.model import (
    BinaryConv2d,
    BinaryResNet18,
    binarize,
    build,
    memory_saving,
    packed_copy,
    speedup,
)
from runners.xnor_net.train import xnor_agreement


def sign(a: np.ndarray) -> np.ndarray:
    return np.where(a >= 0, 1.0, -1.0)


def loop_conv(x: np.ndarray, w: np.ndarray, pad: int, stride: int, xnor: bool) -> np.ndarray:
    """Sec. 3.1 / 3.2 written out: out[o, i, j] = alpha_o sum W~ I over the window, with the XNOR version
    sum sign(I) sign(W) times alpha_o and K[i, j] = mean over the window (zeros in the padding) of mean_c |I|."""
    _, h, width = x.shape
    out_c, _, k, _ = w.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    a_map = np.pad(np.abs(x).mean(axis=0), pad)
    oh, ow = (h + 2 * pad - k) // stride + 1, (width + 2 * pad - k) // stride + 1
    out = np.zeros((out_c, oh, ow))
    for o, i, j in itertools.product(range(out_c), range(oh), range(ow)):
        alpha = np.abs(w[o]).mean()
        window = padded[:, i * stride:i * stride + k, j * stride:j * stride + k]
        if xnor:
            valid = np.zeros_like(padded)
            valid[:, pad:pad + h, pad:pad + width] = 1
            mask = valid[:, i * stride:i * stride + k, j * stride:j * stride + k]
            scale = a_map[i * stride:i * stride + k, j * stride:j * stride + k].sum() / (k * k)
            out[o, i, j] = (sign(window) * sign(w[o]) * mask).sum() * alpha * scale
        else:
            out[o, i, j] = (window * sign(w[o])).sum() * alpha
    return out


@pytest.mark.parametrize("xnor", [False, True])
def test_binary_conv_follows_the_papers_equations(xnor):
    torch.manual_seed(1)
    conv = BinaryConv2d(3, 4, 3, stride=2, padding=1, bias=False, binary_inputs=xnor)
    x = torch.randn(1, 3, 5, 5)
    expected = loop_conv(x[0].numpy().astype(np.float64), conv.weight.detach().numpy().astype(np.float64), 1, 2, xnor)
    assert np.allclose(conv(x)[0].detach().numpy(), expected, atol=1e-5)


def test_alpha_is_the_mean_absolute_weight_of_each_filter():
    conv = BinaryConv2d(1, 2, 2, bias=False, binary_inputs=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]]))
    assert conv.alpha().tolist() == [2.5, 0.5]


def test_sign_passes_gradients_straight_through_inside_one():
    r = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.7, 1.5], requires_grad=True)
    out = binarize(r)
    out.sum().backward()
    assert out.tolist() == [-1, -1, -1, 1, 1, 1]
    assert r.grad.tolist() == [0, 1, 1, 1, 1, 0]


def test_masked_xnor_dot_counts_only_kept_positions():
    rng = np.random.default_rng(0)
    a, w, keep = rng.random((5, 100)) > 0.5, rng.random((3, 100)) > 0.5, rng.random((5, 100)) > 0.3
    expected = ((2.0 * a - 1)[:, None, :] * (2.0 * w - 1)[None] * keep[:, None, :]).sum(-1)
    assert (xnor_dot_masked(pack_bits(a), pack_bits(keep), pack_bits(w)) == expected).all()


def randomise_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm statistics away from 0 / 1, so the check sees a network that is not at its initialisation."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(module.num_features, generator=generator))
    return model.eval()


@pytest.mark.parametrize("arch,size", [("alexnet", 67), ("resnet18", 32)])
def test_xnor_path_equals_float_path(arch, size):
    torch.manual_seed(0)
    config = PRESETS["smoke"].__class__(arch=arch, width=1 / 16, dataset="generated", generated_size=size)
    model = randomise_norms(build(config, 10))
    x = torch.randn(6, 3, size, size)
    with torch.no_grad():
        float_out, packed_out = model(x), packed_copy(model)(x)
    assert torch.equal(float_out, packed_out)


def test_agreement_is_measured_on_every_test_image():
    config = PRESETS["smoke"]
    data = _generated(config)
    model = randomise_norms(build(config, data.num_classes))
    agreement, difference = xnor_agreement(model, data, config)
    assert (agreement, difference) == (100.0, 0.0)


def test_speedup_is_section_3_2s_formula():
    # S = 64 c N_W / (c N_W + 64) with c = 256, N_W = 9: 147456 / 2368.
    assert speedup(256, 9, 196) == pytest.approx(147456 / 2368)
    assert round(speedup(256, 9, 196), 2) == 62.27
    assert speedup(256, 9, 1) == pytest.approx(speedup(256, 9, 10_000))  # independent of the input size


def test_memory_saving_counts_bits_and_one_alpha_per_filter():
    # ResNet-18's binary 3x3 convolutions (He et al. Table 1): (in, out) of the 16 of them.
    layers = [(64, 64)] * 4 + [(64, 128)] + [(128, 128)] * 3 + [(128, 256)] + [(256, 256)] * 3 + [(256, 512)] + \
        [(512, 512)] * 3
    weights = sum(9 * i * o for i, o in layers)
    filters = sum(o for _, o in layers)
    expected = 32 * weights / (weights + 32 * filters)
    assert memory_saving(BinaryResNet18(1000, mode="xnor")) == pytest.approx(expected)
    assert 31.5 < expected < 32


def test_bwn_resnet18_has_torchvisions_parameter_count():
    # torchvision documents resnet18 at 11,689,512 parameters; the BWN network binarises the same layers.
    model = BinaryResNet18(1000, mode="bwn")
    assert sum(p.numel() for p in model.parameters()) == 11_689_512


def test_presets_name_the_papers_networks():
    assert {(p.arch, p.mode) for name, p in PRESETS.items() if name.startswith("paper-")} == {
        ("alexnet", "bwn"), ("alexnet", "xnor"), ("resnet18", "bwn"), ("resnet18", "xnor")}
