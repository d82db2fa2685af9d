"""Configuration of the ResNeXt runner (arXiv 1611.05431). Defaults are the paper's CIFAR recipe
(Sec. 5.3 and Appendix A): ResNeXt-29 (8x64d), mini-batch 128, weight decay 5e-4, momentum 0.9, lr 0.1
divided by 10 at epochs 150 and 225 of 300, 4-pixel padded random crops and flips.

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.classification import config as classification

# Residual blocks per stage of the ImageNet networks (Table 1 and Sec. 5.1: the ResNet-50/101/152 layouts).
IMAGENET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


@dataclass(frozen=True)
class Config(classification.Config):
    """One ResNeXt training run: the network's template (Sec. 3.1) on the family's training settings.

    Attributes:
        depth: layers. ImageNet: 50, 101 or 152 (``IMAGENET_BLOCKS``). CIFAR and generated data: 9n + 2,
            three stages of n blocks (29: n = 3, Sec. 5.3).
        cardinality: C, the number of paths of each block (the groups of its 3x3 convolution).
        base_width: d, the width of each path in the first stage ("C x d" in the paper's names); it doubles
            at each stage, as every width does (Sec. 3.1).
        width: the template's base width: the stem convolution's filters and a quarter of the first stage's
            output ([1x1, 64; 3x3, 64; 1x1, 256] in Sec. 5.3); the output doubles at each stage.
    """

    depth: int = 29
    cardinality: int = 8
    base_width: int = 64
    width: int = 64
    batch_size: int = 128
    weight_decay: float = 5e-4
    # fb.resnet.torch, whose recipe the paper follows (Sec. 4, "Implementation details"; Appendix A),
    # uses Nesterov momentum (train.lua of github.com/facebookresearch/ResNeXt).
    nesterov: bool = True
    lr_milestones: tuple[float, ...] = (0.5, 0.75)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"cardinality": 1, "base_width": 1, "width": 1})
        if self.dataset == "imagenet" and self.depth not in IMAGENET_BLOCKS:
            raise BadInput(f"depth={self.depth}: the ImageNet ResNeXt has depth "
                           f"{', '.join(map(str, IMAGENET_BLOCKS))}")
        if self.dataset != "imagenet" and (self.depth < 11 or (self.depth - 2) % 9):
            raise BadInput(f"depth={self.depth}: the CIFAR ResNeXt has depth 9n + 2 (11, 20, 29, ...)")

    @property
    def stage_blocks(self) -> tuple[int, ...]:
        """Residual blocks of each stage."""
        if self.dataset == "imagenet":
            return IMAGENET_BLOCKS[self.depth]
        return ((self.depth - 2) // 9,) * 3


PAPER = Config()

# ImageNet (Sec. 4, "Implementation details"): 224x224 random-resized crops and flips, mini-batch 256,
# weight decay 1e-4, momentum 0.9, lr 0.1 divided by 10 three times on fb.resnet.torch's schedule (every 30
# epochs; the official code trains 100 epochs: opts.lua, train.lua of facebookresearch/ResNeXt).
IMAGENET = replace(PAPER, dataset="imagenet", image_size=224, depth=50, cardinality=32, base_width=4,
                   batch_size=256, weight_decay=1e-4, epochs=100, lr_milestones=(0.3, 0.6, 0.9), eval_batch_size=250)

PRESETS: dict[str, Config] = {
    # The paper's CIFAR recipe on its first CIFAR network (a GPU run; without one, kb runs `smoke`).
    "default": PAPER,
    # Table 7: 34.4M parameters, 3.65 / 17.77 test error on CIFAR-10 / CIFAR-100 (--set dataset=cifar100).
    "cifar-29-8x64d": PAPER,
    # Table 7: 68.1M parameters, 3.58 / 17.31, the mean of 10 runs (Sec. 5.3).
    "cifar-29-16x64d": replace(PAPER, cardinality=16),
    # Table 1 (25.0M parameters, 4.2 GFLOPs) and Table 3 (22.2 top-1 error).
    "imagenet-50-32x4d": IMAGENET,
    # Tables 3 and 4: 21.2 / 5.6 top-1 / top-5 error, the 1x-complexity reference of Table 4.
    "imagenet-101-32x4d": replace(IMAGENET, depth=101),
    # Table 4: 20.4 / 5.3, twice ResNet-101's complexity.
    "imagenet-101-64x4d": replace(IMAGENET, depth=101, cardinality=64),
    # CPU, about 2 s: ResNeXt-11 (2x4d, base width 8) on 16-pixel generated images.
    "smoke": replace(PAPER, dataset="generated", depth=11, cardinality=2, base_width=4, width=8, epochs=2,
                     batch_size=16, generated_train=64, generated_test=32, generated_size=16, eval_batch_size=32,
                     log_every=1, workers=0),
}
