"""Configuration of the BNN runner: the MNIST MLP of arXiv:1602.02830, Sec. 2.1 (Theano).

Defaults are the paper's Theano MLP (Table 1, 0.96% test error): 3 hidden layers of 4096 binary
units, batch norm with minibatches of 100, dropout, squared hinge loss, ADAM with an
exponentially decaying learning rate, 1000 epochs, the last 10k training images held out for
choosing the epoch. Values the paper's text leaves open are the authors' released training script
(BinaryNet, Train-time/mnist.py): dropout 0.2 on the input and 0.5 on hidden units, lr 0.003
decaying to 3e-7, batch norm epsilon 1e-4 and moving-average factor 0.1, per-layer learning rates
scaled by Glorot's initialization coefficient.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.mnist import config as mnist


@dataclass(frozen=True)
class Config(mnist.Config):
    hidden: int = 4096                 # units per hidden layer (Sec. 2.1)
    layers: int = 3                    # hidden layers (Sec. 2.1)
    dropout_in: float = 0.2            # dropout on the input pixels
    dropout_hidden: float = 0.5        # dropout after each hidden layer's sign
    bn_eps: float = 1e-4
    bn_momentum: float = 0.1
    batch_size: int = 100              # batch norm minibatch (Sec. 2.1)
    epochs: int = 1000
    lr_start: float = 0.003            # ADAM lr, multiplied every epoch by (lr_end / lr_start) ** (1 / epochs)
    lr_end: float = 3e-7
    glorot_lr_scale: bool = True       # binary weights' lr times 1 / sqrt(1.5 / (fan_in + fan_out))
    validation_size: int = 10000       # last N training images choose the epoch (Sec. 2.1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"hidden": 1, "layers": 1, "dropout_in": 0, "dropout_hidden": 0, "bn_momentum": 0,
                              "validation_size": 0},
              above={"bn_eps": 0, "lr_start": 0, "lr_end": 0},
              at_most={"bn_momentum": 1},
              below={"dropout_in": 1, "dropout_hidden": 1})


PAPER = Config()

PRESETS: dict[str, Config] = {
    # CPU-sized: the paper's recipe at 1024 units for 10 epochs, lr decayed 10x over the run.
    "default": replace(PAPER, hidden=1024, epochs=10, lr_end=3e-4),
    "smoke": replace(PAPER, hidden=64, epochs=2, train_limit=400, validation_size=100, test_limit=100),
    "paper": PAPER,
}
