"""The binarized MLP of the MNIST experiment, as a float simulation for training.

Paper: Matthieu Courbariaux, Itay Hubara, Daniel Soudry, Ran El-Yaniv, Yoshua Bengio,
"Binarized Neural Networks: Training Deep Neural Networks with Weights and Activations
Constrained to +1 or -1", arXiv:1602.02830.

- Deterministic binarization x_b = sign(x) = +1 if x >= 0 else -1 (Sec. 1.1).
- Straight-through estimator with gradient cancelling: g_r = g_q * 1_{|r| <= 1} (Sec. 1.3),
  used for activations and for weights (whose real values are clipped to [-1, 1], Algorithm 1).
- MNIST MLP (Sec. 2.1, Theano): 3 hidden layers of 4096 binary units, batch norm after every
  binary linear layer, dropout, an L2-SVM output layer (trained with the squared hinge loss).

Run-time values are all +-1 except the input layer, which sees 8-bit pixels (Sec. 1.6). Pixels p
are fed as the odd integers 2p - 255 (the [-1, 1] scaling of the authors' code times 255, which
the following batch norm undoes): every pre-activation is then an integer that float32 represents
exactly, so the XNOR-popcount path (``PackedMLP``, on ``runners/common/packed.py``) reproduces this
simulation bit for bit.
"""

import copy
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from runners.common.binarize import binarize
from runners.common.packed import fold_threshold, pack_bits, pixel_dot, xnor_dot


class BinaryLinear(nn.Linear):
    """A linear layer (no bias: the batch norm after it has one) computing with sign(W).

    The real-valued weights are kept for the updates (Algorithm 1) and initialised uniformly in
    [-1, 1], the range they are clipped to.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, binarize(self.weight))


class BinaryMLP(nn.Module):
    """input dropout - [BinaryLinear - BatchNorm - sign - dropout] x layers - BinaryLinear - BatchNorm.

    The output batch norm's scores feed the squared hinge loss (L2-SVM output, Sec. 2.1).

    Args:
        hidden: units per hidden layer (4096 in the paper's Theano MLP).
        layers: number of hidden layers (3).
        dropout_in, dropout_hidden: dropout probabilities on the input and after each hidden layer.
        bn_eps, bn_momentum: batch norm epsilon and running-average factor.
    """

    def __init__(self, *, in_features: int = 784, hidden: int = 4096, layers: int = 3, classes: int = 10,
                 dropout_in: float = 0.2, dropout_hidden: float = 0.5, bn_eps: float = 1e-4,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        widths = [in_features] + [hidden] * layers
        self.input_dropout = nn.Dropout(dropout_in)
        self.linears = nn.ModuleList(BinaryLinear(a, b) for a, b in itertools.pairwise(widths))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden, eps=bn_eps, momentum=bn_momentum) for _ in range(layers))
        self.dropouts = nn.ModuleList(nn.Dropout(dropout_hidden) for _ in range(layers))
        self.output = BinaryLinear(widths[-1], classes)
        self.output_norm = nn.BatchNorm1d(classes, eps=bn_eps, momentum=bn_momentum)

    @classmethod
    def from_config(cls, config) -> "BinaryMLP":
        """The MLP of a runner ``Config``."""
        return cls(hidden=config.hidden, layers=config.layers, dropout_in=config.dropout_in,
                   dropout_hidden=config.dropout_hidden, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(x)
        for linear, norm, dropout in zip(self.linears, self.norms, self.dropouts):
            x = dropout(binarize(norm(linear(x))))
        return self.output_norm(self.output(x))

    def binary_linears(self) -> list[BinaryLinear]:
        return [*self.linears, self.output]


def as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, 28, 28) -> float (B, 784) holding 2p - 255, odd integers in [-255, 255].

    This is the authors' [-1, 1] scaling times 255; the first batch norm absorbs the factor, and
    integer inputs keep the first layer's float32 sums exact (see the module docstring).
    """
    return images.reshape(len(images), -1).float().mul_(2).sub_(255)


def squared_hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean over examples and classes of max(0, 1 - t * y)^2 with targets t = +1 for the label, -1 else."""
    targets = torch.full_like(scores, -1.0).scatter_(1, labels[:, None], 1.0)
    return torch.clamp(1 - targets * scores, min=0).pow(2).mean()


@dataclass
class PackedMLP:
    """A ``BinaryMLP`` at run time: packed weights, integer thresholds, output batch norm."""

    weights: list[np.ndarray]      # uint64 bits per binary layer (out, words), input layer first
    widths: list[int]              # fan-in of each binary layer
    flips: list[np.ndarray]        # int8 (units,) per hidden layer
    thresholds: list[np.ndarray]   # int64 (units,) per hidden layer
    output_norm: dict[str, np.ndarray]  # float32 running_mean, running_var, weight, bias, eps

    @classmethod
    def from_model(cls, model) -> "PackedMLP":
        model = copy.deepcopy(model).cpu()
        layers = model.binary_linears()
        weights = [pack_bits((layer.weight.detach() >= 0).numpy()) for layer in layers]
        folded = [fold_threshold(norm) for norm in model.norms]
        norm = model.output_norm
        output_norm = {key: getattr(norm, key).detach().numpy()
                       for key in ("running_mean", "running_var", "weight", "bias")}
        output_norm["eps"] = np.float32(norm.eps)
        return cls(weights, [layer.in_features for layer in layers], [f for f, _ in folded],
                   [t for _, t in folded], output_norm)

    def integer_scores(self, pixels: np.ndarray) -> np.ndarray:
        """The output layer's integer pre-activations for uint8 pixels (B, 784), int64 (B, classes)."""
        s = pixel_dot(pixels, self.weights[0], self.widths[0])
        for index, weights in enumerate(self.weights[1:]):
            fires = self.flips[index][None, :] * s >= self.thresholds[index][None, :]
            s = xnor_dot(pack_bits(fires), weights, self.widths[index + 1])
        return s

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Predicted classes: the output batch norm (the only float step) then argmax."""
        s = torch.from_numpy(self.integer_scores(pixels)).float()
        norm = {k: torch.from_numpy(np.asarray(v)) for k, v in self.output_norm.items() if k != "eps"}
        scores = F.batch_norm(s, norm["running_mean"], norm["running_var"], norm["weight"], norm["bias"],
                              training=False, eps=float(self.output_norm["eps"]))
        return scores.argmax(1).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything needed at run time, for ``np.savez`` (thresholds fit int32: |s| <= 784 * 255)."""
        out = {f"weights_{i}": w for i, w in enumerate(self.weights)}
        out["widths"] = np.asarray(self.widths, dtype=np.int32)
        out.update({f"flip_{i}": f for i, f in enumerate(self.flips)})
        out.update({f"threshold_{i}": np.clip(t, -2 ** 31, 2 ** 31 - 1).astype(np.int32)
                    for i, t in enumerate(self.thresholds)})
        out.update({f"output_{k}": np.asarray(v, dtype=np.float32) for k, v in self.output_norm.items()})
        return out


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's MLP (in eval mode: batch norm with running statistics) and one MNIST image as its
    input, for counting parameters and operations without data."""
    return BinaryMLP.from_config(config).eval(), as_input(torch.zeros(1, 28, 28, dtype=torch.uint8))
