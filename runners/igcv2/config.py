"""Configuration of the IGCV2 runner (arXiv 1804.06202). The training recipe is the classification family's
CIFAR one (SGD, Nesterov momentum 0.9, weight decay 1e-4, batch 64, 300 epochs, lr 0.1 / 10 at 50% and 75%)
and, for ImageNet, MobileNet's usual 224-pixel setting with a linear decay: the paper's own schedule could not
be read here (README, "What differs").

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.classification import config as classification


@dataclass(frozen=True)
class Config(classification.Config):
    """One IGCV2 training run: the network's size on the family's training settings.

    Attributes:
        width: CIFAR network: channels of the first stage (doubled at each of the next two).
        blocks: CIFAR network: IGCV2 blocks per stage.
        width_multiplier: ImageNet network: MobileNet's alpha, scaling every layer's channels.
        branch_channels: K_2, the channels each branch of the first grouped 1x1 convolution sees; the second
            then has K_2 groups of C / K_2 channels, so that K_2 * K_3 = C (the complementary condition,
            Sec. 3.2). 0: the balance condition (Sec. 3.3), the divisor of C nearest sqrt(C), per block.
    """

    width: int = 64
    blocks: int = 6
    width_multiplier: float = 1.0
    branch_channels: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"width": 1, "blocks": 1, "branch_channels": 0}, above={"width_multiplier": 0})


PAPER = Config()

# ImageNet: MobileNet's layout and crop size, batch 256, lr 0.1 decaying linearly to 0 over 100 epochs, and
# TF-slim MobileNet's weight decay 4e-5 (the paper's recipe could not be read).
IMAGENET = replace(PAPER, dataset="imagenet", image_size=224, batch_size=256, epochs=100, schedule="poly",
                   weight_decay=4e-5, eval_batch_size=250)

PRESETS: dict[str, Config] = {
    "default": PAPER,
    # The CIFAR network: 3 stages of 6 blocks at widths 64, 128, 256 (depth 3 x 6 x 3 + 2 = 56 weighted layers).
    "cifar-64": PAPER,
    # MobileNet-like IGCV2 at the width multipliers it is compared with MobileNetV1 at.
    "imagenet-1.0": IMAGENET,
    "imagenet-0.5": replace(IMAGENET, width_multiplier=0.5),
    "imagenet-0.25": replace(IMAGENET, width_multiplier=0.25),
    # CPU, about 2 s: one block per stage at width 8 on 16-pixel generated images.
    "smoke": replace(PAPER, dataset="generated", width=8, blocks=1, epochs=2, batch_size=16, generated_train=64,
                     generated_test=32, generated_size=16, eval_batch_size=32, log_every=1, workers=0),
}
