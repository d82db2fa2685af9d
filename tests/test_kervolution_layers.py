"""Kerv2d against nn.Conv2d, a per-position loop reference, finite differences; LeNet-5's size."""

import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call

from runners.kervolution.model import KERNELS, Kerv2d, LeNet5

GEOMETRIES = [  # stride, padding, dilation, groups
    (1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 3), (2, 0, 3, 6), ((1, 2), (0, 1), (2, 1), 2),
]


@pytest.mark.parametrize("stride, padding, dilation, groups", GEOMETRIES)
@pytest.mark.parametrize("bias", [True, False])
def test_degree_one_polynomial_without_offset_is_conv2d(stride, padding, dilation, groups, bias):
    torch.manual_seed(0)
    kerv = Kerv2d(6, 12, 3, stride, padding, dilation, groups, bias, kernel="polynomial", cp=0.0, dp=1)
    conv = nn.Conv2d(6, 12, 3, stride, padding, dilation, groups, bias)
    conv.load_state_dict(kerv.state_dict(), strict=False)
    x = torch.randn(2, 6, 13, 11)
    torch.testing.assert_close(kerv(x), conv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("stride, padding, dilation, groups", GEOMETRIES)
def test_output_shape_is_conv2d_shape(kernel, stride, padding, dilation, groups):
    x = torch.randn(2, 6, 13, 11)
    expected = nn.Conv2d(6, 12, 3, stride, padding, dilation, groups)(x).shape
    assert Kerv2d(6, 12, 3, stride, padding, dilation, groups, kernel=kernel)(x).shape == expected


def kernel_value(kernel, patch, w, cp, dp, gamma):
    """One kernel evaluation, written out from Eq. 9-11."""
    if kernel == "linear":
        return patch @ w
    if kernel == "polynomial":
        return (patch @ w + cp) ** dp
    if kernel == "gaussian":
        return torch.exp(-gamma * ((patch - w) ** 2).sum())
    if kernel == "l1":
        return (patch - w).abs().sum()
    return ((patch - w) ** 2).sum().sqrt()


def reference(x, weight, bias, kernel, cp, dp, gamma, stride, padding, groups):
    """kappa(patch, filter) + bias by explicit loops over positions and filters (Eq. 5)."""
    n = x.shape[0]
    o, cg, kh, kw = weight.shape
    x = nn.functional.pad(x, (padding, padding, padding, padding))
    out_h = (x.shape[2] - kh) // stride + 1
    out_w = (x.shape[3] - kw) // stride + 1
    out = torch.empty(n, o, out_h, out_w, dtype=x.dtype)
    per_group = o // groups
    for b, f, i, j in itertools.product(range(n), range(o), range(out_h), range(out_w)):
        g = f // per_group
        patch = x[b, g * cg:(g + 1) * cg, i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(-1)
        out[b, f, i, j] = kernel_value(kernel, patch, weight[f].reshape(-1), cp, dp, gamma) + bias[f]
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_matches_per_position_loop(kernel):
    torch.manual_seed(1)
    kerv = Kerv2d(4, 6, 3, stride=2, padding=1, groups=2, kernel=kernel, cp=0.7, dp=2, gamma=0.3).double()
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    expected = reference(x, kerv.weight.detach(), kerv.bias.detach(), kernel, 0.7, 2, 0.3, 2, 1, 2)
    torch.testing.assert_close(kerv(x), expected)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gradients_match_finite_differences(kernel):
    torch.manual_seed(2)
    kerv = Kerv2d(4, 4, 3, stride=1, padding=1, groups=2, kernel=kernel, cp=0.5, dp=3,
                  learnable_cp=True, gamma=0.2, learnable_gamma=True).double()
    names = [name for name, _ in kerv.named_parameters()]
    assert {"cp", "gamma"} <= set(names)
    params = tuple(p.detach().clone().requires_grad_() for p in kerv.parameters())
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)

    def forward(x, *values):
        return functional_call(kerv, dict(zip(names, values)), (x,))

    assert torch.autograd.gradcheck(forward, (x, *params))


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown kernel"):
        Kerv2d(1, 1, 3, kernel="sigmoid")
    with pytest.raises(ValueError, match="positive integer"):
        Kerv2d(1, 1, 3, kernel="polynomial", dp=0)
    with pytest.raises(TypeError, match="zero padding given as numbers"):
        Kerv2d(1, 1, 3, padding="same")
    with pytest.raises(TypeError, match="zero padding"):
        Kerv2d(1, 1, 3, padding_mode="reflect")


def test_lenet5_has_the_classic_parameter_count():
    # LeNet-5 on 28x28 (conv1 padded): 156 + 2416 + 48120 + 10164 + 850 = 61706 weights and biases
    cnn = LeNet5(kernel="linear", cp=0.0, dp=1, learnable_cp=False, gamma=1.0, learnable_gamma=False,
                 activation=True, pooling="max")
    assert sum(p.numel() for p in cnn.parameters()) == 61706
    knn = LeNet5(kernel="polynomial", cp=0.5, dp=3, learnable_cp=True, gamma=1.0, learnable_gamma=False,
                 activation=False, pooling="avg")
    assert sum(p.numel() for p in knn.parameters()) == 61706 + 2  # one learnable c_p per kervolution
    assert knn(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert not any(isinstance(m, nn.ReLU) for m in knn.modules())
