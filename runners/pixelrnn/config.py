"""Configuration of the PixelRNN runner: binarized MNIST models of arXiv:1601.06759, Sec. 5.5.

Defaults are the paper's best MNIST network: a Diagonal BiLSTM of 7 layers with h = 16 (79.20 nats),
residual and skip connections (Sec. 3.4), RMSProp with minibatches of 16 (Sec. 5.2). The paper prints
neither the learning rate nor the number of epochs for MNIST: lr 1e-3 (RMSProp's usual rate) and 50
epochs are ours, and the claims pin these values. The data are the genuine MNIST binarized here with a
fixed seed (``binarize_seed``), not the standard binarized MNIST, whose file is not on this machine; the
last ``validation_size`` training images are held out (the standard 50k/10k split of binarized MNIST).
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.mnist import config as mnist

MODELS = ("pixelcnn", "row_lstm", "diagonal_bilstm")


@dataclass(frozen=True)
class Config(mnist.Config):
    model: str = "diagonal_bilstm"     # pixelcnn, row_lstm or diagonal_bilstm (Sec. 3)
    layers: int = 7                    # recurrent layers / PixelCNN residual blocks (Sec. 5.5)
    hidden: int = 16                   # h: LSTM state size; maps between layers have 2h features (Sec. 3.4)
    output_hidden: int = 32            # features of the ReLU-1x1 output layers (Table 1 does not print it)
    skip_connections: bool = True      # every layer to the output stack (Sec. 3.4)
    batch_size: int = 16               # Sec. 5.2: 16 images for MNIST
    epochs: int = 50                   # not printed in the paper
    lr: float = 1e-3                   # RMSProp (Sec. 5.2); the rate is not printed
    grad_clip: float = 0.0             # clip the gradient norm at this value (0 = no clipping, as printed)
    validation_size: int = 10000       # last N training images: choose the epoch, never trained on
    binarize_seed: int = 0             # pixel ~ Bernoulli(intensity / 255), drawn once with this seed
    samples: int = 16                  # images drawn by ancestral sampling at the end (a square grid)
    eval_batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"model": MODELS},
              at_least={"layers": 1, "hidden": 1, "output_hidden": 1, "grad_clip": 0, "validation_size": 1,
                        "binarize_seed": 0, "samples": 0},
              above={"lr": 0})


PAPER = Config()

PRESETS: dict[str, Config] = {
    # About 40 minutes on one CPU thread (README.md, measured speeds): the Diagonal BiLSTM trains at 3-6
    # images/s there, so a CPU sees a fraction of one epoch of it; the PixelCNN of the paper's MNIST table,
    # at the same depth and width, does two epochs over all 50k training images at 40-55 images/s.
    "cpu": replace(PAPER, model="pixelcnn", epochs=2),
    # Seconds: no samples, as drawing one image takes 784 forward passes (about 10 s for this tiny network).
    "smoke": replace(PAPER, layers=1, hidden=4, output_hidden=8, epochs=2, train_limit=200, validation_size=40,
                     test_limit=40, samples=0, eval_batch_size=40),
    "paper": PAPER,
}
