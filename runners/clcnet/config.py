"""Configuration of the clcNet runner (arXiv 1712.06145). Defaults are the ImageNet recipe of the authors'
code (github.com/dqzhang17/clcnet.torch, README, opts.lua and train.lua; fb.resnet.torch underneath): batch
256, SGD with Nesterov momentum 0.9, weight decay 1e-4, lr 0.1 decreasing linearly to 0 over 100 epochs,
224x224 random-resized crops and flips.

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.classification import config as classification


@dataclass(frozen=True)
class Config(classification.Config):
    """One clcNet training run: the network's stage layout on the family's training settings.

    Attributes:
        stage_blocks: the stride-1 CLC blocks after the first (stride-2) block of each of the four stages,
            (a, b, c, d) of the paper's layout (clcNet-A: 1, 1, 5, 2; clcNet-B: 1, 1, 7, 3).
        width: the stem's filters (32); the first CLC block doubles them and each stage doubles again
            (64, 128, 256, 512, 1024).
        igc_group_size: input channels of each group of the interlaced 3x3 convolution (2 in the authors'
            networks: g1 = C / 2 groups).
        gc_groups: groups of the 1x1 convolution (g2 = 2).
    """

    dataset: str = "imagenet"
    image_size: int = 224
    stage_blocks: tuple[int, ...] = (1, 1, 5, 2)
    width: int = 32
    igc_group_size: int = 2
    gc_groups: int = 2
    epochs: int = 100
    batch_size: int = 256
    schedule: str = "poly"
    eval_batch_size: int = 250

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"width": 1, "igc_group_size": 1, "gc_groups": 1, "stage_blocks": 0})


PAPER = Config()

PRESETS: dict[str, Config] = {
    "default": PAPER,
    # clcNet-A, layout (1, 1, 5, 2): the official repository's README gives 70.4% top-1.
    "clcnet-a": PAPER,
    # clcNet-B, layout (1, 1, 7, 3): 71.6% top-1 there.
    "clcnet-b": replace(PAPER, stage_blocks=(1, 1, 7, 3)),
    # CPU, about 2 s: a width-4 clcNet with no stride-1 blocks on 16-pixel generated images.
    "smoke": replace(PAPER, dataset="generated", image_size=32, stage_blocks=(0, 0, 0, 0), width=4, epochs=2,
                     batch_size=16, generated_train=64, generated_test=32, generated_size=16, eval_batch_size=32,
                     log_every=1, workers=0),
}
