"""Configuration of the stochastic-depth runner (arXiv:1603.09382, Sec. 4, "Implementation details").

Defaults are the paper's CIFAR-10 experiment: the 110-layer ResNet of He et al. (three stages of 18
residual blocks with 16, 32 and 64 filters, average pooling + zero padding in the transitional blocks),
linear decay of the survival probability from p_0 = 1 to p_L = 0.5; 45,000 training and 5,000 held-out
validation images, flips and 4-pixel translations; SGD for 500 epochs, batch 128, lr 0.1 divided by 10
after epochs 250 and 375, weight decay 1e-4, Nesterov momentum 0.9 with 0 dampening; the test error
reported at the epoch of lowest validation error. ``survival_rule=constant`` is the constant-depth
baseline: the same network and recipe without dropping.
"""

from dataclasses import dataclass, replace

from runners.classification import resnet_config


@dataclass(frozen=True)
class Config(resnet_config.Config):
    epochs: int = 500
    batch_size: int = 128
    lr_milestones: tuple[float, ...] = (0.5, 0.75)   # epochs 250 and 375 of 500
    validation_size: int = 5000


PAPER = Config()
CONSTANT = {"survival_rule": "constant"}
# SVHN (Sec. 4): 152 layers (n = 25), all training and extra images without augmentation, 6,000 held out,
# 50 epochs, lr 0.1 divided by 10 after epochs 30 and 35 (the authors' code: --N 25 -maxEpochs 50).
SVHN = replace(PAPER, dataset="svhn", svhn_extra=True, augment=False, blocks_per_stage=25, epochs=50,
               lr_milestones=(0.6, 0.7), validation_size=6000)
# 1202 layers (n = 200) on CIFAR-10 (Sec. 4): 300 epochs, lr 0.01 for the first 10 epochs, then 0.1,
# divided by 10 at epochs 150 and 225.
DEEP = replace(PAPER, blocks_per_stage=200, epochs=300, warmup_epochs=10)

PRESETS: dict[str, Config] = {
    "c10-110": PAPER,
    "c10-110-constant": replace(PAPER, **CONSTANT),
    "c100-110": replace(PAPER, dataset="cifar100"),
    "c100-110-constant": replace(PAPER, dataset="cifar100", **CONSTANT),
    "svhn-152": SVHN,
    "svhn-152-constant": replace(SVHN, **CONSTANT),
    # Its constant-depth baseline is `--set survival_rule=constant` (no preset of its own: measuring a
    # 1202-layer network on the meta device takes seconds, and each preset's architecture is tested).
    "c10-1202": DEEP,
    # A ResNet-14 (n = 2, 6 blocks, still dropped with linear decay) on a small generated set, the
    # best-validation-epoch path included: every code path in about two seconds on one CPU core.
    "smoke": replace(PAPER, dataset="generated", blocks_per_stage=2, widths=(8, 16, 32), epochs=2, batch_size=32,
                     generated_train=160, generated_test=64, validation_size=32, eval_batch_size=64, log_every=1),
}
