"""A weight agnostic network as an ``nn.Module`` with one weight per connection, for the "Trained
Weights" row of the MNIST table (arXiv:1906.04358, Sec. 4.2: the champion's connections get
individual weights, started at the best shared weight and trained) and for the data-free
architecture counts.

The same layer-by-layer order as the numpy search forward pass (runners/wann/network.py): a node's
input is the weighted sum of its sources, its output one of the Sec. 3 activations.
"""

import math

import numpy as np
import torch
from torch import nn

from runners.wann import genome as genes
from runners.wann.config import Config

TORCH_ACTIVATIONS = (
    lambda x: x,
    lambda x: (x > 0).to(x.dtype),
    lambda x: torch.sin(math.pi * x),
    lambda x: torch.exp(-x * x / 2),
    torch.tanh,
    lambda x: (torch.tanh(x / 2) + 1) / 2,
    lambda x: -x,
    torch.abs,
    torch.relu,
    lambda x: torch.cos(math.pi * x),
)


class WannNet(nn.Module):
    """A genome's enabled connections as trainable weights (all ``weight`` at the start).

    Input: (B, n_inputs) pixels; output: (B, n_outputs) logits.
    """

    def __init__(self, genome: genes.Genome, weight: float) -> None:
        super().__init__()
        n_in = genome.n_in
        others = np.arange(n_in, genome.n_nodes)
        nodes = others[np.argsort(genome.layer[others], kind="stable")]   # by layer; the outputs come last
        layer_of = genome.layer[nodes]
        starts = np.flatnonzero(np.r_[True, layer_of[1:] != layer_of[:-1]])
        self.bounds = list(zip(starts.tolist(), np.r_[starts[1:], len(nodes)].tolist()))
        kinds = genome.activation[nodes]
        self.groups = [[(int(k), np.flatnonzero(kinds[s:e] == k).tolist()) for k in np.unique(kinds[s:e])]
                       for s, e in self.bounds]
        self.n_in, self.n_nodes, self.n_outputs = n_in, len(nodes), genome.n_outputs
        position = np.full(genome.n_nodes, -1)
        position[nodes] = np.arange(len(nodes))
        source, target = genome.source[genome.enabled], genome.target[genome.enabled]
        # Rows: bias and inputs first, then the ordered nodes; columns: the ordered nodes.
        rows = np.where(source < n_in, source, n_in + position[source])
        self.register_buffer("rows", torch.tensor(rows.tolist(), dtype=torch.long))
        self.register_buffer("cols", torch.tensor(position[target].tolist(), dtype=torch.long))
        self.weight = nn.Parameter(torch.full((len(rows),), float(weight)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        matrix = torch.zeros(self.n_in + self.n_nodes, self.n_nodes, dtype=self.weight.dtype,
                             device=self.weight.device).index_put((self.rows, self.cols), self.weight,
                                                                  accumulate=True)
        values = [torch.ones(len(pixels), 1, dtype=pixels.dtype, device=pixels.device), pixels]
        for (start, end), groups in zip(self.bounds, self.groups):
            summed = torch.cat(values, dim=1) @ matrix[:self.n_in + start, start:end]
            layer = torch.empty_like(summed)
            for kind, columns in groups:
                layer[:, columns] = TORCH_ACTIVATIONS[kind](summed[:, columns])
            values.append(layer)
        return torch.cat(values, dim=1)[:, -self.n_outputs:]


def full_genome(config: Config) -> genes.Genome:
    """The starting gene pool: every bias/input-output connection enabled, no hidden node."""
    return genes.minimal(config.image_size ** 2, 10, 1.0, np.random.RandomState(0))


def architecture(config: Config) -> tuple[nn.Module, torch.Tensor]:
    """The search's gene pool before any topological change (256 inputs and the bias fully connected
    to 10 outputs, one weight per connection) and one 16x16 input. The searched networks are sparser
    and grow hidden nodes: their size is a result of the run, recorded there."""
    return WannNet(full_genome(config), 1.0), torch.zeros(1, config.image_size ** 2)
