"""Configuration of the DenseNet runner (arXiv 1608.06993). No torch here: kb imports it to list presets.

The family's base ``Config`` (``runners/classification/config.py``) already defaults to this paper's
CIFAR recipe (Sec. 4.2): SGD with Nesterov momentum 0.9 without dampening, weight decay 1e-4, batch 64,
300 epochs, lr 0.1 divided by 10 at 50% and 75% of training. The network defaults are DenseNet-BC
(L=100, k=12). One preset per network of Table 2 (trained as C10+, the default data and augmentation)
and of Table 1 (ImageNet: 90 epochs, batch 256, lr 0.1 divided by 10 at epochs 30 and 60).
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.classification import config as classification


@dataclass(frozen=True)
class Config(classification.Config):
    """One DenseNet training run.

    Attributes:
        depth: L, the network's depth (convolutions plus the classifier; Sec. 3). With ``blocks`` it is only the
            name: Table 1's DenseNet-264 has 2 x 130 + 5 = 265 such layers (121, 169 and 201 add up).
        growth: k, the maps each layer adds (Sec. 3, "Growth rate").
        bottleneck: DenseNet-B layers, a 1x1 conv to 4k maps before each 3x3 (Sec. 3).
        compression: theta of the transition layers (0.5 for DenseNet-C; 1 = none).
        blocks: layers per dense block of an ImageNet network (Table 1); empty = the CIFAR/SVHN network of
            ``depth`` (three equal blocks).
        dropout: 0.2 after each conv but the first for the runs without augmentation (C10, C100, SVHN; Sec. 4.2).
    """

    depth: int = 100
    growth: int = 12
    bottleneck: bool = True
    compression: float = 0.5
    blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"depth": 1, "growth": 1, "blocks": 1}, above={"compression": 0},
              below={"compression": 1.000001})
        per_layer = 6 if self.bottleneck else 3
        if not self.blocks and (self.depth < 4 + per_layer or (self.depth - 4) % per_layer):
            raise BadInput(f"depth={self.depth}: a CIFAR DenseNet{'-BC' if self.bottleneck else ''} needs depth = "
                           f"{per_layer}n + 4")


PAPER = Config()
PLAIN = replace(PAPER, bottleneck=False, compression=1.0)  # DenseNet without bottleneck or compression
IMAGENET = replace(PAPER, dataset="imagenet", image_size=224, growth=32, epochs=90, batch_size=256,
                   lr_milestones=(30 / 90, 60 / 90), nesterov=True, eval_batch_size=250)

PRESETS: dict[str, Config] = {
    "bc-100-12": PAPER,
    # Table 2, top to bottom.
    "40-12": replace(PLAIN, depth=40, growth=12),
    "100-12": replace(PLAIN, depth=100, growth=12),
    "100-24": replace(PLAIN, depth=100, growth=24),
    "bc-250-24": replace(PAPER, depth=250, growth=24),
    "bc-190-40": replace(PAPER, depth=190, growth=40),
    # SVHN (Sec. 4.1-4.2): all 604k training images, no augmentation, dropout 0.2, 40 epochs, the model
    # of the lowest error on a 6,000-image validation split; the network whose 1.59% Sec. 4.3 names.
    "svhn-100-24": replace(PLAIN, depth=100, growth=24, dataset="svhn", svhn_extra=True, augment=False, dropout=0.2,
                           epochs=40, validation_size=6000),
    # Table 1 (k = 32).
    "imagenet-121": replace(IMAGENET, depth=121, blocks=(6, 12, 24, 16)),
    "imagenet-169": replace(IMAGENET, depth=169, blocks=(6, 12, 32, 32)),
    "imagenet-201": replace(IMAGENET, depth=201, blocks=(6, 12, 48, 32)),
    "imagenet-264": replace(IMAGENET, depth=264, blocks=(6, 12, 64, 48)),
    # CPU, about two seconds: every code path (generated data, augmentation, eval, checkpoint) on a
    # DenseNet-BC-16 with k=4 (one bottleneck layer... two per block) at 16x16.
    "smoke": replace(PAPER, dataset="generated", depth=16, growth=4, epochs=2, batch_size=32, generated_train=96,
                     generated_test=64, generated_size=16, eval_batch_size=64, log_every=1, workers=0),
}
