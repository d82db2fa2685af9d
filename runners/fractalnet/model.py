"""FractalNet: the fractal expansion rule, mean joins, local and global drop-path.

Paper: Gustav Larsson, Michael Maire, Gregory Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without
Residuals", ICLR 2017, arXiv:1605.07648.

Expansion rule (Sec. 2, Eq. 1-2): f_1(z) = conv(z), f_{C+1}(z) = [(f_C o f_C)(z)] (+) [conv(z)], where (+)
is a join, the element-wise mean of its inputs. Nested joins at the same depth are one join (Fig. 1), so a
block of C columns is a grid of 2^(C-1) rows: column c (0 = shallowest, C-1 = deepest) convolves on every
2^(C-1-c)-th row, 2^c convolutions in all, and after row l the 1 + v2(l + 1) deepest columns (v2: the
number of factors 2) meet in one join, all C of them after the last row. The layout is the authors' generator
(github.com/gustavla/fractalnet, ``generation/fractalnet.py``), as is the conv unit (``globals.crox``): 3x3
convolution with bias, dropout, batch norm without scale and shift (Caffe's BatchNorm alone), ReLU; and the
block's 2x2 max pooling, applied to each column before the block's final join.

Drop-path (Sec. 3): local, each join drops each input with probability p = 0.15 (at least one survives);
global, one column is chosen for the whole network and every join keeps only it. Mini-batches alternate
between the two, half and half (Sec. 4.2). A join here is a weighted mean sum_i k_i x_i / sum_i k_i with
k_i in {0, 1} drawn per mini-batch, a tensor rather than a choice of branches, so torch.compile builds one
graph (a dropped column is still computed; its contribution and gradients are zero).
"""

import torch
import torch.nn.functional as F
from torch import nn


def joins_after_row(row: int, columns: int) -> int:
    """How many (deepest) columns meet in the join after ``row`` (0-based) of a block: 1 + v2(row + 1), at
    most C; 1 means no join."""
    count, n = 1, row + 1
    while n % 2 == 0 and count < columns:
        count, n = count + 1, n // 2
    return count


def conv_unit(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """3x3 convolution -> dropout -> batch norm (no affine) -> ReLU (the authors' ``conv`` macro)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Dropout(dropout),
                         nn.BatchNorm2d(out_channels, affine=False), nn.ReLU(inplace=True))


def join(inputs: list[torch.Tensor], keep: torch.Tensor) -> torch.Tensor:
    """The mean of the kept inputs (``keep``: one 0/1 weight per input, at least one 1)."""
    total = sum(k * x for k, x in zip(keep, inputs))
    return total / keep.sum()


class FractalBlock(nn.Module):
    """One block f_C of the expansion rule, with 2x2 max pooling (``pool``) before its last join.

    Args:
        in_channels, out_channels: channels entering and of every convolution.
        columns: C.
        dropout: the convolutions' dropout rate.
        pool: max-pool each column before the final join.
    """

    def __init__(self, in_channels: int, out_channels: int, columns: int, dropout: float, pool: bool) -> None:
        super().__init__()
        self.columns_count, self.pool = columns, pool
        self.columns = nn.ModuleList(
            nn.ModuleList(conv_unit(in_channels if i == 0 else out_channels, out_channels, dropout)
                          for i in range(2 ** c)) for c in range(columns))
        self.rows = 2 ** (columns - 1)
        self.join_sizes = [joins_after_row(row, columns) for row in range(self.rows)]

    @property
    def join_count(self) -> int:
        """Joins in the block (rows after which two or more columns meet)."""
        return sum(n > 1 for n in self.join_sizes)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``keep``: (join_count, C) 0/1 weights, row j for the j-th join, column c for column c's input."""
        columns = self.columns_count
        states, done, j = [x] * columns, [0] * columns, 0
        for row in range(self.rows):
            for c in range(columns):
                if (row + 1) % 2 ** (columns - 1 - c) == 0:
                    states[c] = self.columns[c][done[c]](states[c])
                    done[c] += 1
            if row == self.rows - 1 and self.pool:
                states = [F.max_pool2d(s, 2) for s in states]
            count = self.join_sizes[row]
            if count > 1:
                merged = join(states[columns - count:], keep[j, columns - count:])
                states[columns - count:] = [merged] * count
                j += 1
        return states[0]


class FractalNet(nn.Module):
    """B fractal blocks, then a linear classifier (CIFAR: on the 1x1 map left by the fifth pool; ImageNet:
    after ResNet-34's stem, pools after all blocks but the last, and global average pooling).

    Args:
        widths: filters of each block.
        columns: C.
        num_classes: outputs.
        block_dropout: dropout rate per block.
        stem: ``none`` or ``resnet``.
        local_drop, global_share: drop-path's local rate and share of global mini-batches.
        drop_path: drop paths in training.
        seed: seeds the drop-path draws; the draw of training step t is a function of (seed, t) alone, and
            both are part of ``state_dict()``, so a resumed run drops the same paths.
    """

    def __init__(self, *, widths: tuple[int, ...], columns: int, num_classes: int, block_dropout: tuple[float, ...],
                 stem: str = "none", local_drop: float = 0.15, global_share: float = 0.5, drop_path: bool = True,
                 seed: int = 0) -> None:
        super().__init__()
        self.columns, self.local_drop, self.global_share, self.drop_path = columns, local_drop, global_share, drop_path
        self.seed, self.step = int(seed), 0
        channels = 3
        if stem == "resnet":
            channels = 64
            self.stem = nn.Sequential(nn.Conv2d(3, channels, 7, stride=2, padding=3), nn.BatchNorm2d(channels),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.stem = nn.Identity()
        blocks = []
        for b, (width, rate) in enumerate(zip(widths, block_dropout)):
            blocks.append(FractalBlock(channels, width, columns, rate, pool=stem == "none" or b < len(widths) - 1))
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(channels, num_classes)
        # The number of inputs of every join in the network, in order.
        self.join_sizes = [n for block in self.blocks for n in block.join_sizes if n > 1]

    def get_extra_state(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def set_extra_state(self, state: dict) -> None:
        self.seed, self.step = int(state["seed"]), int(state["step"])

    @torch.compiler.disable  # host-side draws, moved to the device as one small tensor
    def keep_weights(self, column: int | None, device: torch.device) -> torch.Tensor:
        """(joins, C) 0/1 weights for this forward pass: all ones in evaluation; ``column`` alone (a global
        choice, as when evaluating one column); in training with drop-path, for each mini-batch a global
        column with probability ``global_share``, else local drops."""
        keep = torch.ones(len(self.join_sizes), self.columns)
        if column is None and self.training and self.drop_path:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
            self.step += 1
            if torch.rand((), generator=generator) < self.global_share:
                column = int(torch.randint(self.columns, (), generator=generator))
            else:
                keep = local_drops(self.join_sizes, self.columns, self.local_drop, generator)
        if column is not None:
            keep = global_keep(self.join_sizes, self.columns, column)
        return keep.to(device, non_blocking=True)

    def forward(self, x: torch.Tensor, column: int | None = None) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits; with ``column``, that column alone."""
        keep = self.keep_weights(column, x.device)
        x, start = self.stem(x), 0
        for block in self.blocks:
            x = block(x, keep[start:start + block.join_count])
            start += block.join_count
        if x.shape[-1] > 1:
            x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def local_drops(sizes: list[int], columns: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Local drop-path weights: join j (of ``sizes[j]`` inputs, the deepest columns) keeps each input with
    probability 1 - rate, and one input chosen uniformly when it would lose all (Sec. 3: at least one input
    survives). Weights of columns that do not enter a join are 1 and unused."""
    keep = torch.ones(len(sizes), columns)
    for j, n in enumerate(sizes):
        row = (torch.rand(n, generator=generator) >= rate).float()
        if not row.any():
            row[int(torch.randint(n, (), generator=generator))] = 1.0
        keep[j, columns - n:] = row
    return keep


def global_keep(sizes: list[int], columns: int, column: int) -> torch.Tensor:
    """Global drop-path weights: every join that ``column`` enters keeps it alone. A join it does not enter
    is off its path (its output only feeds deeper columns, which the later joins weigh by 0), so it keeps
    all its inputs: a finite value, since 0 times it must stay 0."""
    keep = torch.ones(len(sizes), columns)
    for j, n in enumerate(sizes):
        if column >= columns - n:
            keep[j] = 0.0
            keep[j, column] = 1.0
    return keep


class ColumnView(nn.Module):
    """One column of a trained FractalNet as a network of its own (the paper's "deepest column alone",
    Table 1): every join passes only that column, in evaluation mode."""

    def __init__(self, model: FractalNet, column: int) -> None:
        super().__init__()
        self.model, self.column = model, column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, column=self.column)


def deepest_column(model: FractalNet) -> ColumnView:
    """The deepest column of ``model`` (B 2^(C-1) convolutions deep)."""
    return ColumnView(model, model.columns - 1)


def from_config(config, num_classes: int | None = None, *, seed: int = 0) -> FractalNet:
    """The network of a runner ``Config``; ``num_classes`` (the data's) overrides the dataset's usual count."""
    return FractalNet(widths=config.widths, columns=config.columns, num_classes=num_classes or config.num_classes,
                      block_dropout=config.block_dropout, stem=config.stem, local_drop=config.local_drop,
                      global_share=config.global_share, drop_path=config.drop_path, seed=seed)


def architecture(config) -> tuple[nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's FractalNet (eval mode), one input image, and ``depth``: convolutions on the deepest path,
    B 2^(C-1) (20 for the CIFAR network), plus the ImageNet stem's convolution and the classifier."""
    model = from_config(config).eval()
    depth = config.blocks * 2 ** (config.columns - 1) + (2 if config.stem == "resnet" else 0)
    size = config.input_size
    return model, torch.zeros(1, 3, size, size), {"depth": float(depth)}
