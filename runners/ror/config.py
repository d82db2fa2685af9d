"""Configuration of the RoR runner (arXiv:1608.02908).

Defaults are the network of the abstract's headline result, RoR-3-WRN58-4+SD: a Wide ResNet of depth 58
and width 4 (pre-activation blocks, n = (58 - 4) / 6 = 9 per stage, 64, 128 and 256 channels, 1x1
projections where the shape changes) with RoR-3's root-level and middle-level shortcuts, trained with
stochastic depth (linear decay to p_L = 0.5). The paper's training section could not be read here (see
README, "What the paper reports"): the recipe is the Stochastic Depth paper's (arXiv 1603.09382 Sec. 4,
whose Torch code RoR's SD models follow), SGD with Nesterov momentum 0.9, weight decay 1e-4, batch 128,
lr 0.1 divided by 10 at 50% and 75% of 500 CIFAR epochs; SVHN 50 epochs divided at epochs 30 and 35,
as a reader of the RoR paper quotes its SVHN recipe.
"""

from dataclasses import dataclass, replace

from runners.classification import resnet_config


@dataclass(frozen=True)
class Config(resnet_config.Config):
    blocks_per_stage: int = 9
    widths: tuple[int, ...] = (64, 128, 256)
    block: str = "preact"
    shortcut: str = "projection"
    ror_levels: int = 3
    epochs: int = 500
    batch_size: int = 128
    lr_milestones: tuple[float, ...] = (0.5, 0.75)


PAPER = Config()
SVHN = {"dataset": "svhn", "svhn_extra": True, "augment": False, "epochs": 50, "lr_milestones": (0.6, 0.7)}

PRESETS: dict[str, Config] = {
    "wrn58-4-sd": PAPER,
    "wrn58-4-sd-c100": replace(PAPER, dataset="cifar100"),
    "wrn58-4-sd-svhn": replace(PAPER, **SVHN),
    # Pre-RoR-3 on the 110-layer pre-activation ResNet (18 basic blocks of 16, 32, 64 channels per stage):
    # RoR-3 on a pre-activation ResNet at the depth the Stochastic Depth runner trains; no claim.
    "pre-110-sd": replace(PAPER, blocks_per_stage=18, widths=(16, 32, 64)),
    # RoR-3 on a 6-block pre-activation network with stochastic depth, on a small generated set: every code
    # path (root, stage and block shortcuts, projections, dropped blocks) in about two seconds on one core.
    "smoke": replace(PAPER, dataset="generated", blocks_per_stage=2, widths=(8, 16, 32), epochs=2, batch_size=32,
                     generated_train=128, generated_test=64, eval_batch_size=64, log_every=1),
}
