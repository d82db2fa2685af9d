"""FractalNet (arXiv 1605.07648): the block against a recursive reference of the expansion rule (Eq. 1-2),
joins, drop-path's rules, the deepest column alone against a hand-built chain, and the parameter count
against one computed from the paper's layer widths."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from kb.errors import BadInput
from runners.fractalnet.config import PRESETS
from runners.fractalnet.model import (
    FractalBlock,
    FractalNet,
    deepest_column,
    from_config,
    global_keep,
    join,
    joins_after_row,
    local_drops,
)


def expansion(columns: int, z: torch.Tensor, units: list[list]) -> list[torch.Tensor]:
    """The inputs of f_C's last join, from the rule itself: f_1(z) = conv(z), f_{C+1}(z) = (f_C o f_C)(z)
    (+) conv(z), nested joins merged (Fig. 1). ``units[c]`` are column c's convolutions, shallowest first;
    the deeper columns' units split in halves between the two copies of f_C."""
    if columns == 1:
        return [units[0][0](z)]
    first = [column[:len(column) // 2] for column in units[1:]]
    second = [column[len(column) // 2:] for column in units[1:]]
    inner = torch.stack(expansion(columns - 1, z, first)).mean(0)
    return expansion(columns - 1, inner, second) + [units[0][0](z)]


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_block_is_the_expansion_rule(columns):
    torch.manual_seed(0)
    block = FractalBlock(3, 4, columns, dropout=0.0, pool=False).eval()
    x = torch.randn(2, 3, 6, 6)
    keep = torch.ones(max(1, block.join_count), columns)
    with torch.no_grad():
        expected = torch.stack(expansion(columns, x, [list(c) for c in block.columns])).mean(0)
        assert torch.allclose(block(x, keep), expected, atol=1e-6)
    # Column c holds 2^c convolutions: the deepest 2^(C-1), the block 2^C - 1 (n(C+1) = 2 n(C) + 1).
    assert [len(c) for c in block.columns] == [2 ** c for c in range(columns)]
    assert sum(len(c) for c in block.columns) == 2 ** columns - 1


def test_joins_merge_the_deepest_columns_as_fig_1_draws():
    assert [joins_after_row(r, 3) for r in range(4)] == [1, 2, 1, 3]
    assert [joins_after_row(r, 4) for r in range(8)] == [1, 2, 1, 3, 1, 2, 1, 4]


def test_join_is_the_mean_of_kept_inputs():
    a, b, c = torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([6.0])
    assert join([a, b, c], torch.tensor([1.0, 1.0, 1.0])).item() == 3.0
    assert join([a, b, c], torch.tensor([1.0, 0.0, 1.0])).item() == 3.5


def test_local_drop_path_never_drops_every_input_of_a_join():
    sizes = [2, 3, 2, 4]
    generator = torch.Generator().manual_seed(0)
    dropped_some = False
    for _ in range(200):
        keep = local_drops(sizes, 4, 0.9, generator)
        for j, n in enumerate(sizes):
            assert keep[j, 4 - n:].sum() >= 1
            dropped_some |= bool(keep[j, 4 - n:].sum() < n)
    assert dropped_some


def test_global_drop_path_keeps_one_column_in_every_join_it_enters():
    sizes = [2, 3, 2, 4]
    for column in range(4):
        keep = global_keep(sizes, 4, column)
        for j, n in enumerate(sizes):
            if column >= 4 - n:
                assert keep[j].tolist() == [1.0 if c == column else 0.0 for c in range(4)]
            else:
                assert keep[j, 4 - n:].sum() == n  # off the column's path: a finite mean


def test_training_draws_global_and_local_batches_from_the_seed():
    model = FractalNet(widths=(4, 4), columns=3, num_classes=2, block_dropout=(0.0, 0.0), seed=3).train()
    draws = [model.keep_weights(None, torch.device("cpu")) for _ in range(400)]
    globals_ = [d for d in draws if any(torch.equal(d, global_keep(model.join_sizes, 3, c)) for c in range(3))]
    assert 0.4 < len(globals_) / len(draws) < 0.65  # half global (a local draw can look global, rarely)
    locals_ = [d for d in draws if not any(d is g for g in globals_)]
    assert 0.8 < torch.stack(locals_).mean().item() < 0.9  # most inputs kept at p = 0.15 (plus the unused 1s)
    again = FractalNet(widths=(4, 4), columns=3, num_classes=2, block_dropout=(0.0, 0.0), seed=3).train()
    assert all(torch.equal(d, again.keep_weights(None, torch.device("cpu"))) for d in draws[:5])


def test_deepest_column_alone_is_a_plain_chain_of_its_convolutions():
    torch.manual_seed(0)
    model = FractalNet(widths=(4, 6), columns=3, num_classes=5, block_dropout=(0.0, 0.1)).eval()
    x = torch.randn(2, 3, 8, 8)
    h = x
    for block in model.blocks:
        for unit in block.columns[-1]:
            h = unit(h)
        h = F.max_pool2d(h, 2)
    expected = model.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
    with torch.no_grad():
        assert torch.allclose(deepest_column(model)(x), expected, atol=1e-6)
        assert len(model.blocks[0].columns[-1]) == 4  # 2^(C-1) convolutions per block


def test_cifar_network_parameters_from_the_layer_widths():
    # Each block: C = 3 convolutions from the block's input, 2^C - 1 - C = 4 inside, 3x3 with bias; batch norm
    # without affine parameters; a linear classifier on 512 features.
    widths, classes, total, channels = (64, 128, 256, 512, 512), 100, 0, 3
    for w in widths:
        total += 3 * (9 * channels * w + w) + 4 * (9 * w * w + w)
        channels = w
    total += 512 * classes + classes
    assert total == 33_760_484
    model = from_config(PRESETS["cifar100"])
    assert sum(p.numel() for p in model.parameters()) == total


def test_imagenet_network_is_34_layers_deep():
    model = from_config(PRESETS["imagenet-34"])
    assert [len(b.columns[-1]) for b in model.blocks] == [8, 8, 8, 8]
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_config_needs_one_width_and_dropout_rate_per_block():
    with pytest.raises(BadInput, match="one entry per block"):
        replace(PRESETS["cifar10"], blocks=4)
