"""The hand-designed optimizers the paper compares with (Sec. 3): SGD, RMSprop, ADAM and Nesterov's
accelerated gradient, with Torch7's ``optim`` defaults for everything but the learning rate, as the
paper says (torch/optim: sgd.lua, rmsprop.lua alpha 0.99 and epsilon 1e-8, adam.lua 0.9 / 0.999 / 1e-8,
nag.lua momentum 0.9).

Each works on a batch of problems (rows of θ, (B, P)) with one learning rate per row (``lr`` (B, 1)), so
a whole grid of rates over the same problems is one call. ``point(θ)`` is where the step's gradient is
taken (NAG's look-ahead; θ for the others) and ``step(θ, gradient)`` returns the next θ.
"""

import torch


class SGD:
    def __init__(self, lr: torch.Tensor) -> None:
        self.lr = lr

    def point(self, theta: torch.Tensor) -> torch.Tensor:
        return theta

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        return theta - self.lr * gradient


class RMSprop(SGD):
    """m = α m + (1 - α) g²; θ -= lr g / (√m + ε), m starting at 0 (rmsprop.lua)."""

    alpha, epsilon = 0.99, 1e-8

    def __init__(self, lr: torch.Tensor) -> None:
        super().__init__(lr)
        self.mean_square = None

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        if self.mean_square is None:
            self.mean_square = torch.zeros_like(theta)
        self.mean_square = self.alpha * self.mean_square + (1 - self.alpha) * gradient * gradient
        return theta - self.lr * gradient / (self.mean_square.sqrt() + self.epsilon)


class Adam(SGD):
    """θ -= lr √(1 - β2^t) / (1 - β1^t) · m / (√v + ε) (adam.lua: ε is added before the bias correction)."""

    beta1, beta2, epsilon = 0.9, 0.999, 1e-8

    def __init__(self, lr: torch.Tensor) -> None:
        super().__init__(lr)
        self.t, self.m, self.v = 0, None, None

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        if self.m is None:
            self.m, self.v = torch.zeros_like(theta), torch.zeros_like(theta)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient * gradient
        step_size = self.lr * (1 - self.beta2 ** self.t) ** 0.5 / (1 - self.beta1 ** self.t)
        return theta - step_size * self.m / (self.v.sqrt() + self.epsilon)


class NAG(SGD):
    """Sutskever's form, as nag.lua: the gradient is taken at θ + μv, then v = μv - lr g and θ += v."""

    momentum = 0.9

    def __init__(self, lr: torch.Tensor) -> None:
        super().__init__(lr)
        self.velocity = None

    def point(self, theta: torch.Tensor) -> torch.Tensor:
        return theta if self.velocity is None else theta + self.momentum * self.velocity

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        velocity = -self.lr * gradient if self.velocity is None else self.momentum * self.velocity - self.lr * gradient
        self.velocity = velocity
        return theta + velocity


BASELINES = {"SGD": SGD, "RMSprop": RMSprop, "ADAM": Adam, "NAG": NAG}
