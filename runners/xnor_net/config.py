"""Configuration of the XNOR-Net runner (arXiv 1603.05279). Defaults are the paper's XNOR-Network AlexNet
(Sec. 3.2, Fig. 3, Table 1) with the ImageNet recipe of the authors' Torch code (github.com/allenai/XNOR-Net,
``opts.lua`` and ``train.lua``: SGD, momentum 0.9, batch 128, 55 epochs, lr 1e-2 falling to 1e-4, weight decay
5e-4), within what the family's loop schedules (README, "What differs").

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.classification import config as classification

ARCHITECTURES = ("alexnet", "resnet18")
MODES = ("bwn", "xnor", "float")


@dataclass(frozen=True)
class Config(classification.Config):
    """One XNOR-Net training run: the network, what is binary, and the family's settings.

    Attributes:
        arch: ``alexnet`` (Table 1; the authors' ``alexnetxnor.lua`` layout, fc6 and fc7 as convolutions)
            or ``resnet18`` (Table 2).
        mode: ``bwn`` (Binary-Weight-Network: weights alpha * sign(W), real inputs, Sec. 3.1), ``xnor``
            (XNOR-Network: binary weights and inputs, Sec. 3.2, block BatchNorm -> BinActiv -> BinConv ->
            Pool of Fig. 3) or ``float`` (the full-precision network of the same layout, the tables' baseline).
        width: the networks' channel widths times this (1 = the paper's; smaller for smoke runs).
        input_scaling: XNOR-Nets' input scaling K (Sec. 3.2: the mean of |I| over channels, averaged over
            each filter window); off gives the sign-only input of the authors' released BinActiveZ.
    """

    arch: str = "alexnet"
    mode: str = "xnor"
    width: float = 1.0
    input_scaling: bool = True
    dataset: str = "imagenet"
    image_size: int = 224
    epochs: int = 55
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    # train.lua's regimes: 1e-2 to epoch 18, 5e-3 to 29, 1e-3 to 43, 5e-4 to 52, 1e-4 after; the family's one
    # factor per milestone, 10^-0.5, reaches the same 1e-4 at the same epochs.
    lr_milestones: tuple[float, ...] = (18 / 55, 29 / 55, 43 / 55, 52 / 55)
    lr_decay: float = 10 ** -0.5
    eval_batch_size: int = 250

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"arch": ARCHITECTURES, "mode": MODES}, above={"width": 0})


PAPER = Config()

PRESETS: dict[str, Config] = {
    # The paper's XNOR-Net AlexNet and recipe (a GPU run on ImageNet; without a GPU, kb runs `smoke`).
    "default": PAPER,
    # Binary-Weight-Network AlexNet: 56.8 top-1 (the authors' README; Table 1).
    "paper-alexnet-bwn": replace(PAPER, mode="bwn"),
    # XNOR-Net AlexNet: 43.3 top-1, the authors' released model (their README; Table 1 not read here).
    "paper-alexnet-xnor": PAPER,
    # Table 2: BWN ResNet-18, 60.8 top-1 (as a benchmark listing gives it).
    "paper-resnet18-bwn": replace(PAPER, arch="resnet18", mode="bwn"),
    # Table 2: XNOR-Net ResNet-18, 51.2 top-1 (likewise).
    "paper-resnet18-xnor": replace(PAPER, arch="resnet18"),
    # CPU, about 2 s: an XNOR ResNet-18 at 1/8 of the widths on 32-pixel generated images (strided and padded
    # binary convolutions, real shortcuts), then the XNOR-popcount path checked against the float path.
    "smoke": replace(PAPER, arch="resnet18", width=0.125, dataset="generated", epochs=2, batch_size=16, lr=0.01,
                     generated_train=64, generated_test=32, generated_size=32, eval_batch_size=32, log_every=1,
                     workers=0),
}
