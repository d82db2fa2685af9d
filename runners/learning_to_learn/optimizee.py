"""The optimizees of arXiv:1606.04474, Sec. 3, each a batch of independent problems (rows).

A problem's parameters are one row of ``theta`` (B, P); its loss at step t reads what ``batch(t)`` returns
(the MNIST minibatch indices of step t; nothing for a quadratic). Losses are per row, so the gradient of
their sum is each problem's own gradient, and one call trains B problems at once (test problems, or
one problem under each learning rate of a grid).
"""

import torch
import torch.nn.functional as F


class Quadratics:
    """f(θ) = ||Wθ - y||² with W (d, d) and y (d,) drawn i.i.d. from N(0, 1) per problem (Sec. 3.1)."""

    def __init__(self, weights: torch.Tensor, targets: torch.Tensor, theta0: torch.Tensor) -> None:
        self.weights, self.targets, self.theta0 = weights, targets, theta0   # (B, d, d), (B, d), (B, d)

    @classmethod
    def sample(cls, count: int, dims: int, init_std: float, generator: torch.Generator) -> "Quadratics":
        weights = torch.randn(count, dims, dims, generator=generator)
        targets = torch.randn(count, dims, generator=generator)
        return cls(weights, targets, init_std * torch.randn(count, dims, generator=generator))

    def repeat(self, times: int) -> "Quadratics":
        """The same problems ``times`` over, as consecutive blocks of rows."""
        return Quadratics(self.weights.repeat(times, 1, 1), self.targets.repeat(times, 1), self.theta0.repeat(times, 1))

    def constants(self) -> list[torch.Tensor]:
        return [self.weights, self.targets]

    def batch(self, step: int) -> None:
        return None

    def loss(self, theta: torch.Tensor, batch: None) -> torch.Tensor:
        residual = torch.bmm(self.weights, theta.unsqueeze(-1)).squeeze(-1) - self.targets
        return (residual * residual).sum(-1)


class MnistMLP:
    """Cross-entropy of an MLP (784 -> hidden ... -> 10) on minibatches of MNIST images in [0, 1] (Sec. 3.2).

    Each row of ``theta`` holds one network's weights, layer by layer: W (in, out) row-major, then b (out,).
    ``indices`` (B, steps + 1, batch) are the images each problem reads at each step, drawn uniformly with
    replacement as the released code does (problems.py: ``tf.random_uniform`` indices).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sizes: tuple[int, ...], activation: str,
                 theta0: torch.Tensor, indices: torch.Tensor) -> None:
        self.images, self.labels, self.sizes = images, labels, sizes      # (N, 784) float, (N,) long
        self.activation = torch.sigmoid if activation == "sigmoid" else torch.relu
        self.activation_name = activation
        self.theta0, self.indices = theta0, indices

    @staticmethod
    def parameter_count(sizes: tuple[int, ...]) -> int:
        return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    @classmethod
    def sample(cls, images: torch.Tensor, labels: torch.Tensor, sizes: tuple[int, ...], activation: str, *,
               count: int, steps: int, batch_size: int, init_std: float, generator: torch.Generator) -> "MnistMLP":
        # Minibatches first, so that networks of other sizes drawn from the same generator see the same images.
        indices = torch.randint(len(labels), (count, steps + 1, batch_size), generator=generator)
        theta0 = init_std * torch.randn(count, cls.parameter_count(sizes), generator=generator)
        return cls(images, labels, sizes, activation, theta0, indices)

    def repeat(self, times: int) -> "MnistMLP":
        return MnistMLP(self.images, self.labels, self.sizes, self.activation_name, self.theta0.repeat(times, 1),
                        self.indices.repeat(times, 1, 1))

    def constants(self) -> list[torch.Tensor]:
        return []

    def batch(self, step: int) -> torch.Tensor:
        return self.indices[:, step]

    def logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, P) parameters and (B, n, 784) inputs -> (B, n, 10)."""
        offset = 0
        for layer, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            weight = theta[:, offset:offset + n_in * n_out].reshape(-1, n_in, n_out)
            offset += n_in * n_out
            bias = theta[:, offset:offset + n_out]
            offset += n_out
            x = torch.baddbmm(bias.unsqueeze(1), x, weight)
            if layer < len(self.sizes) - 2:
                x = self.activation(x)
        return x

    def loss(self, theta: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        logits = self.logits(theta, self.images[batch])
        per_example = F.cross_entropy(logits.flatten(0, 1), self.labels[batch].flatten(), reduction="none")
        return per_example.view(batch.shape).mean(-1)
