"""Kervolution and the LeNet-5 used on MNIST.

Paper: Chen Wang, Jianfei Yang, Lihua Xie, Junsong Yuan, "Kervolutional Neural Networks",
CVPR 2019, arXiv:1904.03955.

Kervolution (Sec. 3, Eq. 5) replaces the inner product of convolution, f(x) = <x, w>, by a kernel
kappa(x, w) evaluated on every receptive-field patch x of the input, keeping weight sharing and
the conv layer's interface (Sec. 3.4: channels, padding, bias, groups, stride, dilation). Kernels
of Sec. 3.3:

    linear      <x, w>                          (convolution itself)
    polynomial  (<x, w> + c_p) ** d_p           (Eq. 10; d_p a positive integer, c_p >= 0)
    gaussian    exp(-gamma_g * ||x - w||^2)     (Eq. 11)
    l1, l2      ||x - w||_1, ||x - w||_2        (Eq. 9a, 9b)

c_p and gamma_g may be learned by back-propagation (Sec. 3.4); d_p is not, being an integer.
"""

import torch
import torch.nn.functional as F
from torch import nn

from runners.kervolution.config import KERNELS


def as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, 28, 28) -> float (B, 1, 28, 28) scaled to [0, 1], LeNet-5's input."""
    return images.unsqueeze(1).float().div_(255)


class Kerv2d(nn.Conv2d):
    """A drop-in replacement of ``nn.Conv2d`` computing ``kernel(patch, filter) + bias``.

    Same constructor, parameters and initialization as ``nn.Conv2d`` (padding must be zeros given
    as numbers), plus the kernel and its hyperparameters as keyword arguments. Patches come from
    ``F.unfold`` and the kernel is evaluated for all patches and filters of a group at once.

    Args:
        kernel: one of ``KERNELS``.
        cp: polynomial offset c_p (Eq. 10).
        dp: polynomial degree d_p (Eq. 10).
        learnable_cp: learn c_p (Sec. 3.4); ``cp`` is then its initial value.
        gamma: Gaussian smoothness gamma_g (Eq. 11).
        learnable_gamma: learn gamma_g (Sec. 3.4).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None, *,
                 kernel: str = "linear", cp: float = 1.0, dp: int = 3, learnable_cp: bool = False,
                 gamma: float = 1.0, learnable_gamma: bool = False) -> None:
        if isinstance(padding, str) or padding_mode != "zeros":
            raise TypeError(f"Kerv2d supports zero padding given as numbers, not {padding!r} / {padding_mode!r}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
        if dp < 1:
            raise ValueError(f"polynomial degree dp must be a positive integer, got {dp}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.kernel = kernel
        self.dp = int(dp)
        cp_value = torch.tensor(float(cp), device=device, dtype=dtype)
        gamma_value = torch.tensor(float(gamma), device=device, dtype=dtype)
        if learnable_cp:
            self.cp = nn.Parameter(cp_value)
        else:
            self.register_buffer("cp", cp_value)
        if learnable_gamma:
            self.gamma = nn.Parameter(gamma_value)
        else:
            self.register_buffer("gamma", gamma_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        kh, kw = self.kernel_size
        out_h = (height + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        out_w = (width + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        g = self.groups
        # patches: (N, G, K, L) with K = C/G * kh * kw values per patch, L = out_h * out_w patches
        patches = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        patches = patches.view(n, g, -1, out_h * out_w)
        # filters: (G, O/G, K)
        filters = self.weight.view(g, self.out_channels // g, -1)
        response = self.evaluate_kernel(patches, filters)  # (N, G, O/G, L)
        response = response.reshape(n, self.out_channels, out_h, out_w)
        if self.bias is not None:
            response = response + self.bias.view(1, -1, 1, 1)
        return response

    def evaluate_kernel(self, patches: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        """kappa(patch, filter) for patches (N, G, K, L) and filters (G, O/G, K) -> (N, G, O/G, L)."""
        if self.kernel in ("linear", "polynomial", "gaussian"):
            dot = torch.matmul(filters, patches)  # (N, G, O/G, L)
            if self.kernel == "linear":
                return dot
            if self.kernel == "polynomial":
                return (dot + self.cp) ** self.dp
            # ||x - w||^2 = ||x||^2 - 2 <x, w> + ||w||^2, clamped against rounding below zero
            squared = (patches * patches).sum(2, keepdim=True) - 2 * dot + (filters * filters).sum(2)[..., None]
            return torch.exp(-self.gamma * squared.clamp_min(0))
        # Lp distances between every patch and every filter without materializing the differences
        rows = patches.transpose(2, 3)  # (N, G, L, K)
        columns = filters.expand(patches.shape[0], *filters.shape)  # (N, G, O/G, K)
        distance = torch.cdist(rows, columns, p=1.0 if self.kernel == "l1" else 2.0)  # (N, G, L, O/G)
        return distance.transpose(2, 3)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel={self.kernel}"


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 MNIST with both conv layers replaced by kervolution (Sec. 4).

    conv 1->6 5x5 (padding 2) - act - pool 2 - conv 6->16 5x5 - act - pool 2 - fc 400->120 - act
    - fc 120->84 - act - fc 84->10. The first layer has six 5x5 filters as in Fig. 1.

    Args:
        kernel, cp, dp, learnable_cp, gamma, learnable_gamma: see ``Kerv2d``; "linear" is the CNN.
        activation: ReLU after every hidden layer; False gives the network without activations.
        pooling: "max" or "avg".
    """

    def __init__(self, *, kernel: str, cp: float, dp: int, learnable_cp: bool, gamma: float,
                 learnable_gamma: bool, activation: bool, pooling: str) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        options = {"kernel": kernel, "cp": cp, "dp": dp, "learnable_cp": learnable_cp, "gamma": gamma,
                   "learnable_gamma": learnable_gamma}

        def act() -> nn.Module:
            return nn.ReLU() if activation else nn.Identity()

        def pool() -> nn.Module:
            return nn.MaxPool2d(2) if pooling == "max" else nn.AvgPool2d(2)

        self.features = nn.Sequential(
            Kerv2d(1, 6, 5, padding=2, **options), act(), pool(),
            Kerv2d(6, 16, 5, **options), act(), pool(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, 10),
        )

    @classmethod
    def from_config(cls, config, kernel: str | None = None) -> "LeNet5":
        """The model of a runner ``Config``; ``kernel`` overrides it (the CNN baseline is "linear")."""
        return cls(kernel=kernel or config.kernel, cp=config.cp, dp=config.dp, learnable_cp=config.learnable_cp,
                   gamma=config.gamma, learnable_gamma=config.learnable_gamma, activation=config.activation,
                   pooling=config.pooling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's LeNet-5 (its kernel's KNN, in eval mode) and one 28x28 MNIST image as its input,
    for counting parameters and operations without data."""
    return LeNet5.from_config(config).eval(), as_input(torch.zeros(1, 28, 28, dtype=torch.uint8))
