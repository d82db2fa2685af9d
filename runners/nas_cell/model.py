"""The recurrent cell found by neural architecture search, as a word-level language model.

Paper: Barret Zoph, Quoc V. Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017,
arXiv:1611.01578.

The search space (Sec. 3.4, Fig. 5) is a tree: each leaf combines the input x_t and the previous output
h_{t-1} (each through its own matrix) and applies an activation; inner nodes combine two children and
apply an activation; the previous cell state c_{t-1} is injected at one node and the new c_t is read at
another. The PTB cell (appendix, Fig. 8, the cell of the search space without max and sin) has a base of
8 leaves; read node by node (README.md, "The cell", says how the figure was read and cross-checked):

    leaves, a_k = f_k(W_k x_t  o_k  U_k h_{t-1}):
        a0 = sigmoid(+)  a1 = relu(+)  a2 = sigmoid(+)  a3 = relu(*)
        a4 = tanh(+)     a5 = sigmoid(+)  a6 = tanh(+)  a7 = sigmoid(+)
    second level: b0 = tanh(a0 * a1)  b1 = tanh(a2 + a3)  b2 = tanh(a4 * a5)  b3 = sigmoid(a6 + a7)
    cell inject:  b0' = tanh(b0 + c_{t-1})
    third level:  c_t = b0' * b1 (the new cell state)   d = tanh(b2 + b3)
    output:       h_t = tanh(c_t * d)

The matrices have no biases (the figure has none; TensorFlow's NASCell, tf.contrib.rnn, defaults to none).
The language model: embedding, 2 layers of the cell with variational (locked) dropout on each layer's
input and the last layer's output, a softmax layer, optionally sharing the embedding ("shared
embeddings", Table 2; Inan et al. 2016, Press & Wolf 2016).
"""

import torch
from torch import nn

from runners.language_model.models import NextTokenLogits, check_tying, init_and_tie_
from runners.language_model.regularizers import LockedDropout

BASE = 8   # leaves of the cell's tree


class NASCell(nn.Module):
    """One layer of the NAS cell over a sequence: (B, T, input) -> (B, T, hidden), state (c, h) each (B, hidden).

    The input half of every leaf (W_k x_t) is one matrix product for all T steps; the recurrent half
    (U_k h_{t-1}) is one (hidden, 8 hidden) product per step.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_weights = nn.Linear(input_size, BASE * hidden_size, bias=False)     # W_0..W_7
        self.hidden_weights = nn.Linear(hidden_size, BASE * hidden_size, bias=False)   # U_0..U_7

    @staticmethod
    def step(x: torch.Tensor, m: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the tree: leaf inputs x = (W_k x_t)_k and m = (U_k h_{t-1})_k, each (B, 8 hidden),
        and c_{t-1} -> (h_t, c_t)."""
        x0, x1, x2, x3, x4, x5, x6, x7 = x.chunk(BASE, dim=1)
        m0, m1, m2, m3, m4, m5, m6, m7 = m.chunk(BASE, dim=1)
        a0, a1 = torch.sigmoid(x0 + m0), torch.relu(x1 + m1)
        a2, a3 = torch.sigmoid(x2 + m2), torch.relu(x3 * m3)
        a4, a5 = torch.tanh(x4 + m4), torch.sigmoid(x5 + m5)
        a6, a7 = torch.tanh(x6 + m6), torch.sigmoid(x7 + m7)
        b0, b1, b2, b3 = torch.tanh(a0 * a1), torch.tanh(a2 + a3), torch.tanh(a4 * a5), torch.sigmoid(a6 + a7)
        cell = torch.tanh(b0 + c) * b1
        return torch.tanh(cell * torch.tanh(b2 + b3)), cell

    def forward(self, x: torch.Tensor, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        c, h = state
        projected = self.input_weights(x)                                    # (B, T, 8 hidden)
        outputs = []
        for t in range(x.shape[1]):
            h, c = self.step(projected[:, t], self.hidden_weights(h), c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (c, h)


class NASLanguageModel(nn.Module):
    """Embedding -> (locked dropout -> NAS cell layer) x layers -> locked dropout -> softmax layer.

    ``forward(tokens (B, T), state) -> (logits (B, T, V), per-layer (c, h))``; ``state`` None is the zero state.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 tie_weights: bool = False, init_range: float = 0.05) -> None:
        super().__init__()
        check_tying(tie_weights, embedding_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.cells = nn.ModuleList(NASCell(embedding_size if i == 0 else hidden_size, hidden_size)
                                   for i in range(layers))
        self.drop = LockedDropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        init_and_tie_(self, self.embedding, self.decoder, init_range=init_range, tie_weights=tie_weights)

    def forward(self, tokens: torch.Tensor, state=None):
        x = self.embedding(tokens)
        states = []
        for i, cell in enumerate(self.cells):
            x, layer_state = cell(self.drop(x), None if state is None else state[i])
            states.append(layer_state)
        return self.decoder(self.drop(x)), tuple(states)


def build(config) -> NASLanguageModel:
    return NASLanguageModel(config.vocab_size, config.embedding_size, config.hidden_size, config.layers,
                            config.dropout, config.tie_weights, config.init_range)


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one stream of ``bptt`` tokens, for parameters and FLOPs."""
    return NextTokenLogits(build(config)).eval(), torch.zeros(1, config.bptt, dtype=torch.long)
