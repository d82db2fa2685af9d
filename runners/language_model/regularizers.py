"""The regularisers the family's papers share, written once, and the plain LSTM language model their
baselines are.

- ``LockedDropout``: variational dropout (Gal & Ghahramani 2016, arXiv 1512.05287): one mask per sequence,
  the same at every time step.
- ``embedding_dropout``: dropout of whole words of the embedding matrix (Gal & Ghahramani 2016, Sec. 4.2;
  AWD-LSTM arXiv 1708.02182 Sec. 4.3), rescaled by 1 / (1 - p).
- ``zoneout``: a gate set to 1 with probability p, without rescaling (Krueger et al. 2016, arXiv
  1606.01305): the unit keeps its previous value. With the QRNN's forget gate this is the paper's
  F = 1 - dropout(1 - sigmoid(W_f * X)) (Bradbury et al. 2016, Sec. 2.1).
- ``LSTMLanguageModel``: embedding, stacked ``nn.LSTM`` (cuDNN on CUDA), dropout between layers
  (Zaremba et al. 2014, arXiv 1409.2329, Sec. 3: dropout on the non-recurrent connections only), a linear
  softmax layer, optionally tied to the embedding (Press & Wolf 2016; Inan et al. 2016).
"""

import torch
import torch.nn.functional as F
from torch import nn


class LockedDropout(nn.Module):
    """Dropout of (B, T, H) activations with one (B, 1, H) mask for all T steps."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def embedding_dropout(embedding: nn.Embedding, tokens: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look ``tokens`` up in ``embedding`` with whole rows (words) dropped with probability ``p``: every
    occurrence of a dropped word in the batch is zero."""
    weight = embedding.weight
    if training and p > 0:
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * keep
    return F.embedding(tokens, weight)


def zoneout(gate: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``gate`` with each entry set to 1 with probability ``p`` while training (no rescaling; at test time
    the gate is used as it is, as the QRNN paper's Sec. 2.1 does)."""
    if not training or p == 0:
        return gate
    return 1 - F.dropout(1 - gate, p=p) * (1 - p)


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> ``layers`` LSTM layers with dropout between them -> dropout -> softmax layer.

    ``forward(tokens (B, T), state) -> (logits (B, T, V), (h, c))``, each (layers, B, hidden); ``state``
    None is the zero state.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, layers: int, dropout: float,
                 tie_weights: bool = False, init_range: float = 0.05) -> None:
        super().__init__()
        if tie_weights and embedding_size != hidden_size:
            raise ValueError(f"tied weights need embedding_size = hidden_size, got {embedding_size} and {hidden_size}")
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = nn.LSTM(embedding_size, hidden_size, layers, dropout=dropout if layers > 1 else 0.0,
                           batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if init_range:
            for weight in self.parameters():
                nn.init.uniform_(weight, -init_range, init_range)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    @classmethod
    def from_config(cls, config) -> "LSTMLanguageModel":
        return cls(config.vocab_size, config.embedding_size, config.hidden_size, config.layers, config.dropout,
                   config.tie_weights, config.init_range)

    def forward(self, tokens: torch.Tensor, state=None):
        output, state = self.rnn(self.drop(self.embedding(tokens)), state)
        return self.decoder(self.drop(output)), state
