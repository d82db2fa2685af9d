"""clcNet (arXiv 1712.06145): parameter counts by hand from the author's layer table (models/clcnet.lua of
github.com/dqzhang17/clcnet.torch), and the full channel receptive field of every CLC block (Sec. 3.3)."""

import pytest
import torch

from runners.clcnet.config import PRESETS
from runners.clcnet.model import ClcNet, architecture


def hand_count(a: int, b: int, c: int, d: int) -> int:
    """clcnet.lua's layers: clcBlock(in, out) = 3x3 conv in g1 = in/2 groups (9 * in * 2 weights) + BN (2 in) +
    1x1 conv in 2 groups (in/2 * out) + BN (2 out); stem 3x3 conv 3 -> 32 + BN; fc 1024 -> 1000 with bias."""
    def block(i, o):
        return 9 * i * 2 + 2 * i + i // 2 * o + 2 * o

    blocks = [(32, 64), (64, 128), *[(128, 128)] * a, (128, 256), *[(256, 256)] * b, (256, 512),
              *[(512, 512)] * c, (512, 1024), *[(1024, 1024)] * d]
    return 27 * 32 + 64 + sum(block(i, o) for i, o in blocks) + 1024 * 1000 + 1000


@pytest.mark.parametrize("preset,layout", [("clcnet-a", (1, 1, 5, 2)), ("clcnet-b", (1, 1, 7, 3))])
def test_parameters_by_hand(preset, layout):
    with torch.device("meta"):
        model, example, derived = architecture(PRESETS[preset])
    assert sum(p.numel() for p in model.parameters()) == hand_count(*layout)
    assert derived == {"full_field_blocks": 1.0}
    assert list(example.shape) == [1, 3, 224, 224]


def test_block_count_and_output():
    # clcNet-A: 1 + (1 + 1) + (1 + 1) + (1 + 5) + (1 + 2) CLC blocks.
    model = ClcNet.from_config(PRESETS["smoke"], num_classes=7)
    assert len(ClcNet.from_config(PRESETS["clcnet-a"]).blocks()) == 14
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
