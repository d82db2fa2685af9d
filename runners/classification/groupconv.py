"""Channel-local convolutions: grouped convolutions joined by channel permutations, and which input channels
each output channel of a stack of them depends on. Shared by IGCV2 (Xie et al., "IGCV2: Interleaved
Structured Sparse Convolutional Neural Networks", arXiv 1804.06202) and clcNet (Zhang, "clcNet: Improving the
Efficiency of Convolutional Neural Network using Channel Local Convolutions", arXiv 1712.06145).

A grouped convolution is a block-diagonal (structured sparse) kernel over channels; a permutation between two
of them decides which groups of the first each group of the second sees. IGCV2 writes its block as
W_L P_{L-1} ... P_1 W_1 (Sec. 3.2, Eq. 5) and asks for the *complementary condition*: exactly one path from
each input channel to each output channel. clcNet draws the same structure as a *channel dependency graph*
(CDG, Sec. 3) and asks for a *full channel receptive field*: every output depends on every input (Sec. 3.3).

``Interleave`` is the permutation both use: the channels of ``groups`` contiguous groups dealt out
round-robin (clcNet's interlacing, Sec. 3.2 and ChannelInterlace.lua of the authors' clcnet.torch; IGCV2's
P_l, Fig. 2). ``paths`` multiplies the CDG's adjacency matrices: entry (o, i) is the number of paths from
input channel i to output channel o through a stack of grouped convolutions and permutations.
"""

from collections.abc import Iterable

import torch
from torch import nn


def interleave_order(channels: int, groups: int) -> list[int]:
    """The interlacing permutation: ``order[p]`` is the input channel that output position p takes.

    Channel m of group g (of ``groups`` contiguous groups of ``channels // groups``) goes to position
    ``m * groups + g``, so that any ``groups`` consecutive positions hold one channel of every group.

    Raises:
        ValueError: ``channels`` is not a multiple of ``groups``.
    """
    if groups < 1 or channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} equal groups")
    size = channels // groups
    return [g * size + m for m in range(size) for g in range(groups)]


class Interleave(nn.Module):
    """``interleave_order(channels, groups)`` applied to (B, channels, H, W) maps: a reshape and a transpose
    (ShuffleNet's channel shuffle is the same permutation), no copy of an index tensor per call.

    Args:
        channels: the maps' channels.
        groups: the contiguous groups whose channels are dealt out round-robin.
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.order = interleave_order(channels, groups)
        self.channels, self.groups = channels, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"


def adjacency(layer: nn.Module) -> torch.Tensor | None:
    """The CDG edges of one layer as an (out, in) 0/1 matrix (float64 on the CPU, also under a meta device);
    ``None`` for layers that act on each channel alone (batch norm, ReLU, pooling), which add no edges.

    A convolution with g groups joins output o to input i when both are in the same group:
    ``o // (out / g) == i // (in / g)``; ``Interleave`` joins position p to channel ``order[p]``.
    """
    if isinstance(layer, nn.Conv2d):
        groups = layer.groups
        out_group = torch.arange(layer.out_channels, device="cpu") // (layer.out_channels // groups)
        in_group = torch.arange(layer.in_channels, device="cpu") // (layer.in_channels // groups)
        return (out_group[:, None] == in_group[None, :]).double()
    if isinstance(layer, Interleave):
        edges = torch.zeros(layer.channels, layer.channels, dtype=torch.float64, device="cpu")
        edges[torch.arange(layer.channels, device="cpu"), torch.tensor(layer.order, device="cpu")] = 1.0
        return edges
    return None


def paths(layers: Iterable[nn.Module]) -> torch.Tensor:
    """(out, in) counts of paths from each input channel to each output channel through ``layers`` in order
    (the product of their CDG adjacency matrices; layers without channel mixing are skipped).

    Raises:
        ValueError: no layer mixes channels.
    """
    total = None
    for layer in layers:
        edges = adjacency(layer)
        if edges is not None:
            total = edges if total is None else edges @ total
    if total is None:
        raise ValueError("no convolution or permutation among the layers")
    return total


def dependencies(layers: Iterable[nn.Module]) -> list[set[int]]:
    """For each output channel, the input channels it depends on (the CDG's reachable inputs, Sec. 3 of clcNet)."""
    return [set(torch.nonzero(row).flatten().tolist()) for row in paths(layers)]


def full_receptive_field(layers: Iterable[nn.Module]) -> bool:
    """clcNet's condition (Sec. 3.3): every output channel depends on every input channel."""
    return bool((paths(layers) > 0).all())


def complementary(layers: Iterable[nn.Module]) -> bool:
    """IGCV2's complementary condition (Sec. 3.2): exactly one path from each input to each output channel."""
    return bool((paths(layers) == 1).all())
