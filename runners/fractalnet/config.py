"""Configuration of the FractalNet runner (arXiv 1605.07648). Defaults are the paper's CIFAR network and recipe
(Sec. 4.1-4.2): B = 5 blocks of C = 3 columns (20 layers deep), 64, 128, 256, 512, 512 filters, 2x2 max
pooling after each block; SGD with momentum 0.9, batch 100, lr 0.02 divided by 10 each time the remaining
epochs halve, 400 epochs; dropout 0, 0.1, 0.2, 0.3, 0.4 per block; drop-path alternating local (15% per join
input) and global (one column for the whole network) per mini-batch, half and half.

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.classification import config as classification

STEMS = ("none", "resnet")
PAPER_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)


@dataclass(frozen=True)
class Config(classification.Config):
    """One FractalNet training run: the fractal's shape, its regularisers, and the family's settings.

    Attributes:
        columns: C, columns per block; the deepest has 2^(C-1) convolutions (Sec. 2, Fig. 1).
        blocks: B, fractal blocks, each followed by 2x2 max pooling (Sec. 4.2).
        widths: filters of each block's convolutions.
        block_dropout: dropout rate of each block's convolutions (Sec. 4.2; all 0 = none).
        drop_path: drop-path in training (Sec. 3); local and global mixed by ``global_share``.
        local_drop: the probability that a join drops each input (at least one is kept): 0.15.
        global_share: the share of mini-batches trained with global drop-path (one column): 0.5.
        stem: ``none`` (CIFAR / SVHN: the blocks see the image and the last pool leaves 1x1) or ``resnet``
            (ImageNet: ResNet-34's 7x7/2 convolution and 3x3/2 max pool first, no pool after the last block,
            global average pooling; Sec. 4.2).
    """

    columns: int = 3
    blocks: int = 5
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    block_dropout: tuple[float, ...] = PAPER_DROPOUT
    drop_path: bool = True
    local_drop: float = 0.15
    global_share: float = 0.5
    stem: str = "none"
    dataset: str = "cifar10"
    epochs: int = 400
    batch_size: int = 100
    lr: float = 0.02
    momentum: float = 0.9
    nesterov: bool = False
    # Not stated in the paper; the family's 1e-4 (README, "What differs").
    weight_decay: float = 1e-4
    # lr / 10 at 200, 300, 350 and 375 of 400 epochs: "each time the number of remaining epochs halves".
    lr_milestones: tuple[float, ...] = (0.5, 0.75, 0.875, 0.9375)
    lr_decay: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"stem": STEMS}, at_least={"columns": 1, "blocks": 1, "local_drop": 0, "global_share": 0},
              below={"local_drop": 1}, above={"widths": 0})
        if len(self.widths) != self.blocks or len(self.block_dropout) != self.blocks:
            raise BadInput(f"widths and block_dropout need one entry per block ({self.blocks}), got "
                           f"{len(self.widths)} and {len(self.block_dropout)}")
        if self.global_share > 1 or any(not 0 <= p < 1 for p in self.block_dropout):
            raise BadInput("global_share must be in 0..1 and block_dropout rates in 0..1")


PAPER = Config()
PLAIN = replace(PAPER, drop_path=False, block_dropout=(0.0,) * 5)
SVHN = replace(PAPER, dataset="svhn", augment=False, epochs=20)

PRESETS: dict[str, Config] = {
    # The paper's 20-layer network with drop-path and dropout on CIFAR-10+ (a GPU run; without one, `smoke`).
    "default": PAPER,
    # Table 1, "FractalNet (20 layers)" with drop-path and dropout: C10+ 4.60, deepest column alone 4.68.
    "cifar10-plus": PAPER,
    # Table 1, same network: C10 7.33 (deepest column 7.27).
    "cifar10": replace(PAPER, augment=False),
    # Table 1: C100+ 23.73 (deepest column 24.32).
    "cifar100-plus": replace(PAPER, dataset="cifar100"),
    # Table 1: C100 28.20 (deepest column 29.05).
    "cifar100": replace(PAPER, dataset="cifar100", augment=False),
    # Table 1, FractalNet (20 layers) without drop-path or dropout: C10+ 5.22, C10 10.18, C100+ 23.30, C100 35.34.
    "cifar10-plus-plain": PLAIN,
    "cifar10-plain": replace(PLAIN, augment=False),
    "cifar100-plus-plain": replace(PLAIN, dataset="cifar100"),
    "cifar100-plain": replace(PLAIN, dataset="cifar100", augment=False),
    # Table 1, SVHN (no augmentation, 20 epochs): 1.87 with drop-path and dropout, 2.01 plain (the deepest column's
    # SVHN number could not be read and is not claimed).
    "svhn": SVHN,
    "svhn-plain": replace(SVHN, drop_path=False, block_dropout=(0.0,) * 5),
    # Table 2: FractalNet-34 (24.2 / 7.39 top-1 / top-5 error), ResNet-34's first and last layers around B = 4 blocks
    # of C = 4 columns (8 layers each), 64-512 filters (our reading, README); 70 epochs, lr 0.001, batch 32.
    "imagenet-34": replace(PAPER, dataset="imagenet", image_size=224, columns=4, blocks=4, widths=(64, 128, 256, 512),
                           block_dropout=(0.0,) * 4, stem="resnet", epochs=70, lr=0.001, batch_size=32,
                           eval_batch_size=200),
    # CPU, about 2 s: C = 3 columns, 2 blocks of 8 and 16 filters on 8-pixel generated images (or 48 images of a
    # --data folder), drop-path and dropout on, the deepest column evaluated every epoch.
    "smoke": replace(PAPER, dataset="generated", blocks=2, widths=(8, 16), block_dropout=(0.0, 0.1), epochs=2,
                     batch_size=16, generated_train=48, generated_test=16, generated_size=8, train_limit=48,
                     test_limit=16, eval_batch_size=16, log_every=1, workers=0),
}
