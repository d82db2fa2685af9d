"""The shared channel-local convolution code (runners/classification/groupconv.py) against hand-written channel
dependency graphs (clcNet, arXiv 1712.06145, Sec. 3) and against autograd on the real modules: every output
reaches every input exactly when the papers' conditions hold, for both papers' blocks."""

import pytest
import torch
from torch import nn

from runners.classification.groupconv import (
    Interleave,
    complementary,
    dependencies,
    full_receptive_field,
    interleave_order,
    paths,
)
from runners.clcnet.model import CLCBlock
from runners.igcv2.model import IGCV2Block


def test_interleave_order_by_hand():
    # Groups {0, 1}, {2, 3}, {4, 5} dealt out round-robin: positions 0..2 take each group's first channel.
    assert interleave_order(6, 3) == [0, 2, 4, 1, 3, 5]
    assert interleave_order(6, 2) == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError):
        interleave_order(6, 4)


def test_interleave_module_is_its_order():
    x = torch.randn(2, 12, 3, 3)
    assert torch.equal(Interleave(12, 4)(x), x[:, interleave_order(12, 4)])


def test_clc_block_dependency_graph_by_hand():
    # C = 4: IGC 3x3 in 2 groups of 2, interlace, GC 1x1 in 2 groups. IGC outputs 0, 1 see inputs {0, 1}, outputs
    # 2, 3 see {2, 3}; the interlace puts IGC outputs 0, 2 in positions 0, 1 and 1, 3 in 2, 3; each GC group
    # reads two positions, one from each IGC group: every output sees all four inputs, by one path each.
    layers = CLCBlock(4, 4, 1, igc_group_size=2, gc_groups=2).layers
    assert dependencies(layers) == [{0, 1, 2, 3}] * 4
    assert paths(layers).tolist() == [[1.0] * 4] * 4
    # Without the interlace each GC group reads one IGC group only: outputs 0, 1 see {0, 1}, outputs 2, 3 {2, 3}.
    plain = [m for m in layers if not isinstance(m, Interleave)]
    assert dependencies(plain) == [{0, 1}, {0, 1}, {2, 3}, {2, 3}]
    assert not full_receptive_field(plain)


def test_igcv2_block_dependency_graph_by_hand():
    # C = 4, K_2 = 2: W_2 branches {0, 1}, {2, 3}; P_2 = [0, 2, 1, 3]; W_3 has 2 groups of 2 positions.
    layers = IGCV2Block(4, 4, 1, branch_channels=2).layers
    assert dependencies(layers) == [{0, 1, 2, 3}] * 4
    assert complementary(layers)


def autograd_dependency(block: nn.Module, channels: int) -> torch.Tensor:
    """(out, in) True where the output channel's sum has a non-zero gradient on the input channel."""
    torch.manual_seed(0)
    block.eval()
    x = torch.randn(1, channels, 5, 5, requires_grad=True)
    y = block(x)
    rows = []
    for o in range(y.shape[1]):
        (grad,) = torch.autograd.grad(y[0, o].sum(), x, retain_graph=True)
        rows.append(grad[0].abs().sum((1, 2)) > 0)
    return torch.stack(rows)


@pytest.mark.parametrize("block", [CLCBlock(8, 8, 1, 2, 2), CLCBlock(8, 16, 2, 2, 4), IGCV2Block(9, 9, 1, 3),
                                   IGCV2Block(8, 8, 1, 2)], ids=["clc", "clc-violating", "igcv2", "igcv2-8"])
def test_paths_agree_with_autograd(block):
    # ReLU after the block could zero a gradient; the dependency is the linear part's, so look before it.
    linear = nn.Sequential(*[m for m in block.layers if not isinstance(m, nn.ReLU)])
    assert torch.equal(autograd_dependency(linear, block.layers[0].in_channels), paths(block.layers) > 0)


@pytest.mark.parametrize("channels,igc_group_size,gc_groups", [(8, 2, 2), (8, 2, 4), (8, 4, 2), (8, 4, 4),
                                                                (12, 3, 3), (12, 2, 3), (12, 3, 2), (16, 8, 2)])
def test_clc_full_field_exactly_when_each_gc_group_spans_every_igc_group(channels, igc_group_size, gc_groups):
    # The CDG condition: a GC group reads channels / gc_groups interlaced positions, which span all
    # channels / igc_group_size IGC groups exactly when channels / gc_groups >= channels / igc_group_size.
    layers = CLCBlock(channels, channels, 1, igc_group_size, gc_groups).layers
    assert full_receptive_field(layers) == (gc_groups <= igc_group_size)


@pytest.mark.parametrize("channels,k2,w3_groups", [(16, 4, 4), (16, 4, 2), (16, 4, 8), (16, 2, 8), (16, 2, 4),
                                                   (9, 3, 3), (12, 3, 4), (12, 4, 3)])
def test_igcv2_complementary_exactly_when_k2_times_k3_is_c(channels, k2, w3_groups):
    # W_3 with w3_groups groups reads K_3 = C / w3_groups positions: one path per channel pair iff K_2 * K_3 = C.
    layers = [nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
              nn.Conv2d(channels, channels, 1, groups=channels // k2), Interleave(channels, channels // k2),
              nn.Conv2d(channels, channels, 1, groups=w3_groups)]
    k3 = channels // w3_groups
    assert complementary(layers) == (k2 * k3 == channels)
    assert full_receptive_field(layers) == (k2 * k3 >= channels)
