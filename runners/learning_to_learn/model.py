"""The coordinatewise LSTM optimizer of "Learning to learn by gradient descent by gradient descent"
(Andrychowicz et al., arXiv:1606.04474).

Sec. 2.1 of the paper: one small two-layer LSTM is applied to every coordinate of the
optimizee separately, with its weights shared across coordinates and a hidden state per coordinate,
so the coordinates are the LSTM's batch. Its input is the coordinate's gradient, optionally
preprocessed as Appendix A says; its output, times a fixed scale, is the coordinate's update
θ_{t+1} = θ_t + g_t (Eq. 1).
"""

import math

import torch
from torch import nn


def preprocess(gradients: torch.Tensor, p: float) -> torch.Tensor:
    """Appendix A's gradient preprocessing, (N,) -> (N, 2): (log|∇| / p, sgn ∇) where |∇| >= e^-p,
    and (-1, e^p ∇) elsewhere, so both inputs stay in [-1, 1] for small gradients while the first one
    follows the gradient's magnitude over many orders."""
    magnitude = gradients.abs()
    large = magnitude >= math.exp(-p)
    log_part = torch.where(large, torch.log(magnitude.clamp_min(math.exp(-p))) / p, torch.full_like(gradients, -1.0))
    sign_part = torch.where(large, torch.sign(gradients), gradients * math.exp(p))
    return torch.stack([log_part, sign_part], dim=-1)


class LSTMLayer(nn.Module):
    """One LSTM layer (Hochreiter & Schmidhuber) as one matrix product over [input, h]: gates laid out as
    (input, forget, output | cell), so the three sigmoid gates are one contiguous slice (on a CPU this is
    about twice as fast as ``nn.LSTMCell`` for 10^5 coordinates of 20 units). The forget gate's bias
    starts at 1, as Sonnet's LSTM (the released code's) does."""

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Linear(inputs + hidden, 4 * hidden)
        with torch.no_grad():
            self.gates.bias[hidden:2 * hidden] += 1.0

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, inputs), (N, hidden), (N, hidden) -> the next (h, c)."""
        n = self.hidden
        gates = self.gates(torch.cat([x, h], dim=1))
        sigmoids, candidate = torch.sigmoid(gates[:, :3 * n]), torch.tanh(gates[:, 3 * n:])
        c = sigmoids[:, n:2 * n] * c + sigmoids[:, :n] * candidate
        return sigmoids[:, 2 * n:] * torch.tanh(c), c


class CoordinatewiseLSTM(nn.Module):
    """m(∇_t, h_t; φ) of Eq. 1: ``layers`` LSTM layers of ``hidden`` units and a linear output, one row per
    coordinate.

    The module keeps the coordinates' recurrent state between calls (``self.state``, one (h, c) pair of
    (N, hidden) per layer), as the optimizer does between the steps of one optimisation: ``reset_state``
    starts a new one, ``detach_state`` cuts the meta-gradient at a truncation boundary (Sec. 2: the
    unrolled optimisation is truncated every 20 steps).
    """

    def __init__(self, hidden: int = 20, layers: int = 2, use_preprocess: bool = True, p: float = 10.0,
                 scale: float = 0.1) -> None:
        super().__init__()
        self.use_preprocess, self.p, self.scale = use_preprocess, p, scale
        inputs = 2 if use_preprocess else 1
        self.cells = nn.ModuleList(LSTMLayer(inputs if i == 0 else hidden, hidden) for i in range(layers))
        self.output = nn.Linear(hidden, 1)
        self.state: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def from_config(cls, config) -> "CoordinatewiseLSTM":
        return cls(config.lstm_hidden, config.lstm_layers, config.preprocess, config.preprocess_p, config.output_scale)

    def reset_state(self) -> None:
        self.state = None

    def detach_state(self) -> None:
        self.state = [(h.detach(), c.detach()) for h, c in self.state] if self.state is not None else None

    def forward(self, gradients: torch.Tensor) -> torch.Tensor:
        """Updates for the coordinates' gradients: (N,) -> (N,), advancing each coordinate's state."""
        x = preprocess(gradients, self.p) if self.use_preprocess else gradients.unsqueeze(-1)
        if self.state is None:
            zeros = gradients.new_zeros(len(gradients), self.cells[0].hidden)
            self.state = [(zeros, zeros) for _ in self.cells]
        state = []
        for cell, (h, c) in zip(self.cells, self.state):
            h, c = cell(x, h, c)
            state.append((h, c))
            x = h
        self.state = state
        return self.output(x).squeeze(-1) * self.scale


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The optimizer network and one coordinate's gradient (batch 1): its counts are those of one step of
    one coordinate; an optimizee of P parameters costs P times that per step."""
    return CoordinatewiseLSTM.from_config(config), torch.zeros(1)
