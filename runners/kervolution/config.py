"""Configuration of the kervolution runner (LeNet-5 on MNIST, arXiv:1904.03955 Sec. 4).

The defaults are the paper's polynomial KNN as far as its text could be checked (see README,
"What differs"): d_p = 3 (Sec. 3.3 finds d_p = 3 better than 2 for images), c_p = 0.5 (the
setting of Fig. 1) learned by back-propagation (Sec. 3.4). The optimizer recipe (SGD with
momentum 0.9, lr 0.003 divided by 10 at epochs 10 and 15, batch 50, 20 epochs) is the one public
re-implementations attribute to Sec. 4; it could not be read in the paper's own text.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.mnist import config as mnist

# Kernel functions of Sec. 3.3 ("linear" is the plain convolution); Kerv2d accepts these.
KERNELS = ("linear", "polynomial", "gaussian", "l1", "l2")


@dataclass(frozen=True)
class Config(mnist.Config):
    kernel: str = "polynomial"         # linear (= CNN), polynomial, gaussian, l1, l2 (Sec. 3.3)
    dp: int = 3                         # polynomial degree d_p (Eq. 10)
    cp: float = 0.5                     # polynomial offset c_p (Eq. 10), initial value when learned
    learnable_cp: bool = True           # learn c_p by back-propagation (Sec. 3.4)
    gamma: float = 1.0                  # Gaussian gamma_g (Eq. 11)
    learnable_gamma: bool = False       # learn gamma_g (Sec. 3.4)
    activation: bool = True             # ReLU after hidden layers; False = "activations removed"
    pooling: str = "max"                # max or avg
    baseline: bool = True               # also train the CNN (linear kernel) on the same batches (Fig.: CNN vs KNN)
    epochs: int = 20
    batch_size: int = 50
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = (10, 15)  # epochs at which lr is multiplied by lr_decay
    lr_decay: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"kernel": KERNELS, "pooling": ("max", "avg")},
              at_least={"dp": 1, "momentum": 0, "weight_decay": 0, "lr_milestones": 1},
              above={"lr": 0, "lr_decay": 0, "gamma": 0})


PAPER = Config()

PRESETS: dict[str, Config] = {
    # CPU-sized: the paper's models and optimizer, 5 epochs with one lr drop, full test set.
    "default": replace(PAPER, epochs=5, lr_milestones=(3,)),
    "smoke": replace(PAPER, epochs=1, batch_size=32, train_limit=256, test_limit=128, lr_milestones=()),
    "paper": PAPER,
    # The "activations removed" comparison: no ReLU anywhere and average pooling, so the CNN is a
    # linear model and all non-linearity comes from the kernel.
    "paper-noact": replace(PAPER, activation=False, pooling="avg"),
}
